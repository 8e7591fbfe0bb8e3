"""The everyday kubectl commands, each against the real server."""

from __future__ import annotations

import json
import time

from e2e.cluster import Kubectl


def _deploy(kubectl: Kubectl, ns: str, name: str = "web") -> None:
    kubectl("create", "deployment", name, "--image=nginx:1.25", "--replicas=2", "--port=80", "-n", ns)


def _get(kubectl: Kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json"))


def test_create_generators_send_protobuf(kubectl: Kubectl, namespace: str):
    assert "configmap/c1 created" in kubectl("create", "configmap", "c1", "--from-literal=a=b", "-n", namespace)
    assert "secret/s1 created" in kubectl("create", "secret", "generic", "s1", "--from-literal=a=b", "-n",
                                          namespace)
    _deploy(kubectl, namespace, "d2")
    assert "service/s2 created" in kubectl("create", "service", "clusterip", "s2", "--tcp=80:8080", "-n",
                                           namespace)
    assert _get(kubectl, "cm", "c1", "-n", namespace)["data"] == {"a": "b"}
    secret = _get(kubectl, "secret", "s1", "-n", namespace)
    assert secret["data"] == {"a": "Yg=="} and secret["type"] == "Opaque"
    deploy = _get(kubectl, "deploy", "d2", "-n", namespace)
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    svc = _get(kubectl, "svc", "s2", "-n", namespace)
    assert svc["spec"]["ports"][0]["targetPort"] == 8080 and svc["spec"]["clusterIP"].startswith("10.43.")


def test_patch_all_three_types(kubectl: Kubectl, namespace: str):
    _deploy(kubectl, namespace)
    kubectl("patch", "deploy", "web", "-n", namespace, "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}')
    kubectl("patch", "deploy", "web", "-n", namespace, "--type=merge", "-p", '{"spec":{"paused":true}}')
    kubectl("patch", "deploy", "web", "-n", namespace, "--type=json", "-p",
            '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]')
    deploy = _get(kubectl, "deploy", "web", "-n", namespace)
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("nginx", "nginx:2")]
    assert containers[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]  # merged, not replaced
    assert deploy["spec"]["paused"] is True and deploy["spec"]["revisionHistoryLimit"] == 3
    bad = kubectl.run("patch", "deploy", "web", "-n", namespace, "--type=json", "-p",
                      '[{"op":"test","path":"/spec/replicas","value":99}]', check=False)
    assert bad.returncode != 0


def test_label_annotate_scale(kubectl: Kubectl, namespace: str):
    _deploy(kubectl, namespace)
    kubectl("label", "deploy", "web", "tier=front", "-n", namespace)
    kubectl("annotate", "deploy", "web", "owner=me", "-n", namespace)
    assert "deployment.apps/web scaled" in kubectl("scale", "deploy/web", "--replicas=3", "-n", namespace)
    deploy = _get(kubectl, "deploy", "web", "-n", namespace)
    assert deploy["metadata"]["labels"]["tier"] == "front"
    assert deploy["metadata"]["annotations"]["owner"] == "me"
    assert deploy["spec"]["replicas"] == 3
    assert kubectl("get", "deploy", "-l", "tier=front", "-n", namespace, "-o", "name") == "deployment.apps/web\n"
    kubectl("label", "deploy", "web", "tier-", "-n", namespace)
    assert "tier" not in _get(kubectl, "deploy", "web", "-n", namespace)["metadata"]["labels"]
    # --current-replicas sends PUT .../scale without a Content-Type
    kubectl("scale", "deploy/web", "--current-replicas=3", "--replicas=1", "-n", namespace)
    assert _get(kubectl, "deploy", "web", "-n", namespace)["spec"]["replicas"] == 1


def test_get_pods_watch_sees_a_concurrent_create(kubectl: Kubectl, namespace: str):
    watcher = kubectl.popen("get", "pods", "-w", "-n", namespace, "--output-watch-events")
    try:
        time.sleep(1.5)
        kubectl("run", "watched", "--image=busybox", "-n", namespace, "--", "sleep", "3600")
        deadline = time.monotonic() + 15
        seen = ""
        while time.monotonic() < deadline and "watched" not in seen:
            seen += watcher.stdout.readline()
        assert "ADDED" in seen and "watched" in seen and "Pending" in seen, seen
    finally:
        watcher.kill()
        watcher.wait()


def test_discovery_explain_and_get_all(kubectl: Kubectl, namespace: str):
    resources = kubectl("api-resources")
    assert "deployments" in resources and "deploy" in resources and "apps/v1" in resources
    explain = kubectl("explain", "deployment.spec.template")
    assert "FIELDS:" in explain and "spec" in explain
    _deploy(kubectl, namespace)
    kubectl("create", "service", "clusterip", "web", "--tcp=80:80", "-n", namespace)
    everything = kubectl("get", "all", "-n", namespace)
    assert "deployment.apps/web" in everything and "service/web" in everything


def test_auth_events_describe(kubectl: Kubectl, namespace: str, tmp_path):
    assert kubectl("auth", "can-i", "create", "pods").strip() == "yes"
    assert "admin" in kubectl("auth", "whoami")
    _deploy(kubectl, namespace)
    uid = kubectl("get", "deploy", "web", "-n", namespace, "-o", "jsonpath={.metadata.uid}")
    event = tmp_path / "event.yaml"
    event.write_text(f"""apiVersion: v1
kind: Event
metadata:
  name: web.1
  namespace: {namespace}
involvedObject:
  apiVersion: apps/v1
  kind: Deployment
  name: web
  namespace: {namespace}
  uid: {uid}
reason: ScalingReplicaSet
message: Scaled up replica set web-1 to 2
type: Normal
source:
  component: deployment-controller
firstTimestamp: "2026-01-01T00:00:00Z"
lastTimestamp: "2026-01-01T00:00:00Z"
count: 1
""")
    kubectl("create", "-f", str(event))
    events = kubectl("get", "events", "-n", namespace)
    assert events.split("\n")[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "ScalingReplicaSet" in events and "deployment/web" in events
    assert "Scaled up replica set web-1 to 2" in kubectl("events", "-n", namespace)
    describe = kubectl("describe", "deploy", "web", "-n", namespace)
    assert "Name:" in describe and "web" in describe and "nginx:1.25" in describe
    assert "RollingUpdate" in describe
    assert "ScalingReplicaSet" in describe  # describe finds the deployment's events by field selector


def test_delete_and_errors(kubectl: Kubectl, namespace: str):
    kubectl("create", "configmap", "doomed", "-n", namespace)
    assert 'configmap "doomed" deleted' in kubectl("delete", "configmap", "doomed", "-n", namespace)
    missing = kubectl.run("get", "configmap", "doomed", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): configmaps "doomed" not found' in missing.stderr
    exists = kubectl.run("create", "namespace", namespace, check=False)
    assert exists.returncode == 1 and "AlreadyExists" in exists.stderr
    invalid = kubectl.run("create", "configmap", "Bad_Name", "-n", namespace, check=False)
    assert invalid.returncode == 1 and "is invalid" in invalid.stderr
