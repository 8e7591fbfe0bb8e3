"""API semantics clients rely on, checked over the wire: metadata, subresources, deletion, watch."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import uuid

import pytest

from e2e.cluster import Kubectl, Server


@pytest.fixture
def ns(server: Server):
    name = f"sem-{uuid.uuid4().hex[:8]}"
    code, _ = server.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201
    # as in a real cluster, the controller-manager publishes the root CA into each new namespace
    deadline = time.monotonic() + 10
    while server.request("GET", f"/api/v1/namespaces/{name}/configmaps/kube-root-ca.crt")[0] != 200:
        assert time.monotonic() < deadline, "kube-root-ca.crt never appeared"
        time.sleep(0.05)
    yield name
    server.request("DELETE", f"/api/v1/namespaces/{name}")


def _pod(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def test_generate_name_dry_run_and_generation(server: Server, ns: str):
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    deploy = {"metadata": {"generateName": "web-"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    code, dry = server.request("POST", f"{base}?dryRun=All", deploy)
    assert code == 201 and dry["metadata"]["name"].startswith("web-")
    assert server.request("GET", f"{base}/{dry['metadata']['name']}")[0] == 404
    code, created = server.request("POST", base, deploy)
    name = created["metadata"]["name"]
    assert code == 201 and len(name) == len("web-") + 5 and created["metadata"]["generation"] == 1
    # label changes do not bump generation; spec changes do
    code, labelled = server.request("PATCH", f"{base}/{name}", {"metadata": {"labels": {"x": "y"}}},
                                    content_type="application/merge-patch+json")
    assert labelled["metadata"]["generation"] == 1
    code, scaled = server.request("PATCH", f"{base}/{name}", {"spec": {"replicas": 5}},
                                  content_type="application/merge-patch+json")
    assert scaled["metadata"]["generation"] == 2


def test_status_subresource_writes_status_only(server: Server, ns: str):
    """On a kind no controller writes (a PVC), so the statuses below are all ours."""
    base = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "1Gi"}}}}
    code, created = server.request("POST", base, claim)
    assert code == 201 and created["status"] == {"phase": "Pending"}
    created["status"] = {"phase": "Bound"}
    created["spec"]["volumeName"] = "ignored-by-a-status-write"
    code, status = server.request("PUT", f"{base}/data/status", created)
    assert code == 200 and status["status"]["phase"] == "Bound" and "volumeName" not in status["spec"]
    status["status"] = {"phase": "Lost"}
    status["metadata"]["labels"] = {"main": "write"}
    code, main = server.request("PUT", f"{base}/data", status)
    assert code == 200 and main["status"]["phase"] == "Bound" and main["metadata"]["labels"] == {"main": "write"}


def test_finalizers_hold_deletion(server: Server, ns: str):
    path = f"/api/v1/namespaces/{ns}/configmaps"
    server.request("POST", path, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    code, deleting = server.request("DELETE", f"{path}/held")
    assert code == 200 and deleting["metadata"]["deletionTimestamp"]
    code, _still = server.request("GET", f"{path}/held")
    assert code == 200
    code, _refused = server.request("PATCH", f"{path}/held", {"metadata": {"finalizers": ["a", "example.com/hold"]}},
                                   content_type="application/merge-patch+json")
    assert code == 403
    code, _ = server.request("PATCH", f"{path}/held", {"metadata": {"finalizers": None}},
                             content_type="application/merge-patch+json")
    assert code == 200
    assert server.request("GET", f"{path}/held")[0] == 404


def test_preconditions_and_deletecollection(server: Server, ns: str):
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(3):
        server.request("POST", path, {"metadata": {"name": f"c{i}", "labels": {"batch": "yes" if i else "no"}}})
    code, body = server.request("DELETE", f"{path}/c0", {"preconditions": {"uid": "not-the-uid"}})
    assert code == 409 and "Precondition failed" in body["message"]
    code, deleted = server.request("DELETE", f"{path}?labelSelector=batch%3Dyes")
    assert code == 200 and sorted(i["metadata"]["name"] for i in deleted["items"]) == ["c1", "c2"]
    code, left = server.request("GET", f"{path}?labelSelector=batch")
    assert [i["metadata"]["name"] for i in left["items"]] == ["c0"]


def test_binding_field_selectors_and_streams(server: Server, ns: str):
    pods = f"/api/v1/namespaces/{ns}/pods"
    code, pod = server.request("POST", pods, _pod("p1"))
    assert code == 201 and pod["status"]["phase"] == "Pending"
    assert pod["spec"]["restartPolicy"] == "Always" and pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    code, body = server.request("GET", f"{pods}/p1/log")
    assert code == 400 and "does not have a host assigned" in body["message"]
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    assert server.request("POST", f"{pods}/p1/binding", binding)[0] == 201
    code, again = server.request("POST", f"{pods}/p1/binding", binding)
    assert code == 409 and "already assigned" in again["message"]
    code, listed = server.request("GET", f"{pods}?fieldSelector=spec.nodeName%3Dnode-a")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["p1"]
    code, listed = server.request("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-b")
    assert listed["items"] == []
    code, listed = server.request("GET", f"{pods}?fieldSelector=status.phase%3DPending")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["p1"]
    code, body = server.request("GET", f"{pods}?fieldSelector=spec.bogus%3Dx")
    assert code == 400
    code, body = server.request("GET", f"{pods}/p1/log")  # its node does not exist: no kubelet to ask
    assert code == 404 and body["message"] == 'nodes "node-a" not found'
    # a scheduled pod waits for its kubelet: deletion marks it, grace period 0 removes it
    code, marked = server.request("DELETE", f"{pods}/p1")
    assert code == 200 and marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert server.request("DELETE", f"{pods}/p1", {"gracePeriodSeconds": 0})[0] == 200
    assert server.request("GET", f"{pods}/p1")[0] == 404


def _watch_lines(server: Server, path: str, count: int) -> list[dict]:
    pki = server.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    events = [json.loads(response.readline()) for _ in range(count)]
    conn.close()
    return events


def test_watch_initial_events_and_bookmark(server: Server, ns: str):
    path = f"/api/v1/namespaces/{ns}/configmaps"
    server.request("POST", path, {"metadata": {"name": "first"}})
    events = _watch_lines(server, f"{path}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
                                  f"&resourceVersionMatch=NotOlderThan&resourceVersion=", 3)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert {e["object"]["metadata"]["name"] for e in events[:2]} == {"first", "kube-root-ca.crt"}
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_with_selector_sees_objects_leave(server: Server, ns: str):
    path = f"/api/v1/namespaces/{ns}/configmaps"
    _code, created = server.request("POST", path, {"metadata": {"name": "moving", "labels": {"on": "yes"}}})
    rv = created["metadata"]["resourceVersion"]
    server.request("PATCH", f"{path}/moving", {"metadata": {"labels": {"on": "no"}}},
                   content_type="application/merge-patch+json")
    events = _watch_lines(server, f"{path}?watch=true&labelSelector=on%3Dyes&resourceVersion={int(rv) - 1}", 2)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_bad_continue_token_and_limit(server: Server, ns: str):
    code, body = server.request("GET", f"/api/v1/namespaces/{ns}/configmaps?limit=1&continue=garbage!")
    assert code == 400 and "continue" in body["message"]
    code, body = server.request("GET", f"/api/v1/namespaces/{ns}/configmaps?limit=-3")
    assert code == 400 and "limit" in body["message"]


def test_can_i_list(kubectl: Kubectl):
    rules = kubectl("auth", "can-i", "--list")
    assert "*.*" in rules
