"""The official ``kubernetes`` Python client against the real server."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from e2e.cluster import Server


@pytest.fixture
def api(server: Server):
    api_client = config.new_client_from_config(config_file=str(server.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def ns(api):
    name = f"py-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # as in a real cluster, the controller-manager publishes the root CA into each new namespace
    deadline = time.monotonic() + 10
    while not core.list_namespaced_config_map(name, field_selector="metadata.name=kube-root-ca.crt").items:
        assert time.monotonic() < deadline, "kube-root-ca.crt never appeared"
        time.sleep(0.05)
    yield name
    core.delete_namespace(name)


def test_configmap_crud(api, ns):
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cfg", labels={"app": "x"}), data={"a": "1"}))
    assert created.metadata.uid and created.metadata.resource_version
    read = core.read_namespaced_config_map("cfg", ns)
    assert read.data == {"a": "1"}
    read.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("cfg", ns, read)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    # replacing with the stale resourceVersion is a 409
    read.metadata.resource_version = created.metadata.resource_version
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("cfg", ns, read)
    assert stale.value.status == 409
    patched = core.patch_namespaced_config_map("cfg", ns, {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    status = core.delete_namespaced_config_map("cfg", ns)  # this client returns deletes as plain dicts
    assert status["kind"] == "Status" and status["status"] == "Success"
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("cfg", ns)
    assert gone.value.status == 404


def _replace_retrying(apps, ns: str, change, attempts: int = 10):
    """Read-modify-replace, retried on 409 as client-go's RetryOnConflict does: the deployment
    controller writes status and annotations concurrently."""
    for _ in range(attempts):
        current = apps.read_namespaced_deployment("web", ns)
        change(current)
        try:
            return apps.replace_namespaced_deployment("web", ns, current)
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise AssertionError("replace kept conflicting")


def test_deployment_crud(api, ns):
    apps = client.AppsV1Api(api)
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx:1.25")]))))
    created = apps.create_namespaced_deployment(ns, body)
    assert created.metadata.generation == 1 and created.spec.strategy.type == "RollingUpdate"


    def new_image(current):
        current.spec.template.spec.containers[0].image = "nginx:1.26"

    replaced = _replace_retrying(apps, ns, new_image)
    assert replaced.metadata.generation == 2
    patched = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 4 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 2}})
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2


    def other_selector(current):
        current.spec.selector = client.V1LabelSelector(match_labels={"app": "other"})
        current.spec.template.metadata.labels = {"app": "other"}

    with pytest.raises(ApiException) as immutable:
        _replace_retrying(apps, ns, other_selector)
    assert immutable.value.status == 422 and "immutable" in immutable.value.body
    apps.delete_namespaced_deployment("web", ns)
    assert apps.list_namespaced_deployment(ns).items == []


def test_watch_configmaps_and_deployments(api, ns):
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume():
        for event in w.stream(core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w")))
    core.patch_namespaced_config_map("w", ns, {"data": {"x": "y"}})
    core.delete_namespaced_config_map("w", ns)
    thread.join(15)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]

    apps = client.AppsV1Api(api)
    rv = apps.list_namespaced_deployment(ns).metadata.resource_version
    events: list[str] = []
    w2 = watch.Watch()

    def consume_deployments():
        for event in w2.stream(apps.list_namespaced_deployment, ns, resource_version=rv, timeout_seconds=10):
            events.append(event["type"])
            w2.stop()

    thread = threading.Thread(target=consume_deployments)
    thread.start()
    apps.create_namespaced_deployment(ns, {
        "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    thread.join(15)
    assert events == ["ADDED"]


def test_list_with_label_selector_and_pagination(api, ns):
    core = client.CoreV1Api(api)
    for i in range(7):
        core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"cm-{i}", labels={"parity": "even" if i % 2 == 0 else "odd"})))
    even = core.list_namespaced_config_map(ns, label_selector="parity=even")
    assert sorted(i.metadata.name for i in even.items) == ["cm-0", "cm-2", "cm-4", "cm-6"]
    assert [i.metadata.name for i in core.list_namespaced_config_map(
        ns, label_selector="parity in (odd),parity!=even").items] == ["cm-1", "cm-3", "cm-5"]
    names, token = [], None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(ns, limit=3, _continue=token, label_selector="parity")
        pages += 1
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3 and names == [f"cm-{i}" for i in range(7)]
    filtered = core.list_namespaced_config_map(ns, limit=2, label_selector="parity=odd")
    assert [i.metadata.name for i in filtered.items] == ["cm-1", "cm-3"] and filtered.metadata._continue
