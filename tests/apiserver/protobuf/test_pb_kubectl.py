"""Real kubectl 1.32 against a tiny aiohttp server: its protobuf POST bodies must decode correctly.

The server (in a thread with its own event loop) answers /version, aggregated discovery, and every
POST with 201 + the decoded object; it records what it received for the assertions.
"""

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from apiserver.protobuf import ProtobufError, decode_request

KUBECTL = "/usr/bin/kubectl"
PROTOBUF = "application/vnd.kubernetes.protobuf"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]

pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason=f"{KUBECTL} (real kubectl) is not installed")

# group -> [(resource, kind, namespaced)]; "" is the core group
RESOURCES = {
    "": [
        ("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True), ("secrets", "Secret", True),
        ("services", "Service", True), ("pods", "Pod", True), ("serviceaccounts", "ServiceAccount", True),
    ],
    "apps": [("deployments", "Deployment", True)],
    "batch": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "policy": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "rbac.authorization.k8s.io": [("roles", "Role", True)],
    "authorization.k8s.io": [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview", False),
    ],
    "authentication.k8s.io": [("selfsubjectreviews", "SelfSubjectReview", False)],
}

# what the fake server puts in "status" of its answer, per kind (the review kinds need one)
STATUS_ANSWERS = {
    "SelfSubjectAccessReview": {"allowed": True, "reason": "test"},
    "SelfSubjectRulesReview": {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": False,
    },
    "SelfSubjectReview": {"userInfo": {"username": "tester", "groups": ["system:authenticated"]}},
    "TokenRequest": {"token": "token-from-fake-server", "expirationTimestamp": "2030-01-01T00:00:00Z"},
}

# a CronJob whose job template sets pointer fields to their zero values (and hostPort: 0)
CRONJOB_PATH = "/apis/batch/v1/namespaces/default/cronjobs/zeros"
ZERO_POD_SPEC = {
    "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
    "securityContext": {"runAsUser": 0, "runAsNonRoot": False},
    "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 0}]}],
    "restartPolicy": "Never",
}
ZERO_JOB_SPEC = {"backoffLimit": 0, "suspend": False, "activeDeadlineSeconds": 0, "template": {"spec": ZERO_POD_SPEC}}
CRONJOB_WITH_ZEROS = {
    "apiVersion": "batch/v1", "kind": "CronJob",
    "metadata": {"name": "zeros", "namespace": "default", "uid": "5f2c7a1e-0000-4000-8000-000000000001"},
    "spec": {"schedule": "* * * * *", "suspend": False, "jobTemplate": {"spec": ZERO_JOB_SPEC}},
}


def discovery(groups: list[str]) -> dict:
    """An APIGroupDiscoveryList (apidiscovery.k8s.io/v2) for the given groups of RESOURCES."""
    items = []
    for group in groups:
        resources = [
            {
                "resource": plural,
                "responseKind": {"group": group, "version": "v1", "kind": kind},
                "scope": "Namespaced" if namespaced else "Cluster",
                "verbs": VERBS,
            }
            for plural, kind, namespaced in RESOURCES[group]
        ]
        items.append({"metadata": {"name": group}, "versions": [{"version": "v1", "resources": resources}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


@dataclass
class Post:
    path: str
    content_type: str
    obj: dict | None
    error: str = ""


@dataclass
class FakeServer:
    url: str = ""
    posts: list[Post] = field(default_factory=list)


SERVER = web.AppKey("server", FakeServer)


async def handle(request: web.Request) -> web.Response:
    server: FakeServer = request.app[SERVER]
    if request.method == "GET" and request.path == "/version":
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
    if request.method == "GET" and request.path == CRONJOB_PATH:  # for create job --from=cronjob/...
        return web.json_response(CRONJOB_WITH_ZEROS)
    if request.method == "GET" and request.path in ("/api", "/apis"):
        groups = [""] if request.path == "/api" else [g for g in RESOURCES if g]
        return web.json_response(discovery(groups), content_type=AGGREGATED)
    if request.method == "POST":
        body = await request.read()
        try:
            obj = decode_request(body)
        except ProtobufError as exc:
            server.posts.append(Post(request.path, request.content_type, None, str(exc)))
            return web.json_response({"kind": "Status", "code": 400, "message": str(exc)}, status=400)
        server.posts.append(Post(request.path, request.content_type, obj))
        answer = dict(obj)
        if obj["kind"] in STATUS_ANSWERS:
            answer["status"] = STATUS_ANSWERS[obj["kind"]]
        return web.json_response(answer, status=201)
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}, status=404)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    state = FakeServer()
    loop = asyncio.new_event_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = web.Application()
    app[SERVER] = state
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def kubectl(server: FakeServer) -> Iterator:
    """Run kubectl with a fresh HOME (no discovery cache) and return (stdout, the one POST it made)."""
    home = tempfile.mkdtemp(prefix="pb-kubectl-")
    config = Path(home, "config")
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: t, cluster: {{server: '{server.url}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: c, context: {cluster: t, user: u, namespace: default}}]\n"
        "current-context: c\n"
    )
    env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def run(*args: str) -> tuple[str, Post]:
        server.posts.clear()
        done = subprocess.run(
            [KUBECTL, "--kubeconfig", str(config), *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stderr
        assert len(server.posts) == 1, server.posts
        (post,) = server.posts
        assert post.content_type == PROTOBUF
        assert not post.error
        assert post.obj is not None
        return done.stdout, post

    try:
        yield run
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_create_namespace(kubectl) -> None:
    out, post = kubectl("create", "namespace", "dev")
    assert out.strip() == "namespace/dev created"
    assert post.path == "/api/v1/namespaces"
    assert post.obj == {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"},
        "spec": {}, "status": {},
    }


def test_create_deployment(kubectl) -> None:
    out, post = kubectl("create", "deployment", "d", "--image=nginx", "--replicas=2", "--port=80")
    assert out.strip() == "deployment.apps/d created"
    assert post.path == "/apis/apps/v1/namespaces/default/deployments"
    obj = post.obj
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]["name"]) == ("apps/v1", "Deployment", "d")
    assert obj["spec"]["replicas"] == 2
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    template = obj["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "d"}
    (container,) = template["spec"]["containers"]
    assert (container["name"], container["image"]) == ("nginx", "nginx")
    assert [p["containerPort"] for p in container["ports"]] == [80]
    assert container["resources"] == {}
    assert "creationTimestamp" not in template["metadata"]  # zero metav1.Time dropped


def test_create_deployment_port_has_no_zero_host_port(kubectl) -> None:
    _out, post = kubectl("create", "deployment", "d", "--image=nginx", "--port=80")
    (container,) = post.obj["spec"]["template"]["spec"]["containers"]
    # Go writes hostPort: 0 on the wire; its JSON (omitempty) and a real server's stored object have none
    assert container["ports"] == [{"containerPort": 80}]
    assert "paused" not in post.obj["spec"] and "minReadySeconds" not in post.obj["spec"]


def test_create_deployment_zero_replicas_is_kept(kubectl) -> None:
    _out, post = kubectl("create", "deployment", "d", "--image=nginx", "--replicas=0")
    assert post.obj["spec"]["replicas"] == 0  # *int32: set, so kept


def test_create_job_from_cronjob_keeps_pointer_zeros(kubectl) -> None:
    _out, post = kubectl("create", "job", "j", "--from=cronjob/zeros")
    assert post.path == "/apis/batch/v1/namespaces/default/jobs"
    spec = post.obj["spec"]
    assert (spec["backoffLimit"], spec["suspend"], spec["activeDeadlineSeconds"]) == (0, False, 0)
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 0
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"runAsUser": 0, "runAsNonRoot": False}
    assert pod["containers"][0]["ports"] == [{"containerPort": 80}]
    assert "parallelism" not in spec  # unset pointer: not on the wire


def test_create_configmap(kubectl) -> None:
    _out, post = kubectl("create", "configmap", "cm1", "--from-literal=a=b", "--from-literal=empty=")
    assert post.path == "/api/v1/namespaces/default/configmaps"
    assert post.obj["metadata"]["name"] == "cm1"
    assert post.obj["data"] == {"a": "b", "empty": ""}


def test_create_secret_generic(kubectl) -> None:
    _out, post = kubectl("create", "secret", "generic", "s1", "--from-literal=a=b", "--from-literal=pw=s3cr3t")
    assert post.path == "/api/v1/namespaces/default/secrets"
    assert "type" not in post.obj  # kubectl leaves it "" for the server to default; "" is dropped
    assert post.obj["data"] == {"a": base64.b64encode(b"b").decode(), "pw": base64.b64encode(b"s3cr3t").decode()}


def test_create_service_clusterip(kubectl) -> None:
    _out, post = kubectl("create", "service", "clusterip", "s", "--tcp=80:8080")
    assert post.path == "/api/v1/namespaces/default/services"
    spec = post.obj["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["selector"] == {"app": "s"}
    (port,) = spec["ports"]
    assert (port["port"], port["targetPort"], port["protocol"]) == (80, 8080, "TCP")
    assert isinstance(port["targetPort"], int)


def test_create_job(kubectl) -> None:
    _out, post = kubectl("create", "job", "j", "--image=busybox", "--", "echo", "hi")
    assert post.path == "/apis/batch/v1/namespaces/default/jobs"
    pod_spec = post.obj["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    (container,) = pod_spec["containers"]
    assert (container["image"], container["command"]) == ("busybox", ["echo", "hi"])


def test_create_cronjob(kubectl) -> None:
    _out, post = kubectl("create", "cronjob", "c", "--image=busybox", "--schedule=*/5 * * * *", "--", "date")
    assert post.path == "/apis/batch/v1/namespaces/default/cronjobs"
    spec = post.obj["spec"]
    assert spec["schedule"] == "*/5 * * * *"
    job_pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert job_pod["restartPolicy"] == "OnFailure"
    # nothing kubectl leaves unset shows up as a zero (suspend is *bool, concurrencyPolicy "" omitempty)
    assert set(spec) == {"schedule", "jobTemplate"}
    assert job_pod["containers"][0]["command"] == ["date"]


def test_create_role_keeps_core_api_group(kubectl) -> None:
    _out, post = kubectl("create", "role", "r", "--verb=get,list", "--resource=pods")
    assert post.path == "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles"
    assert post.obj["rules"] == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]


def test_create_pdb_int_or_string(kubectl) -> None:
    _out, post = kubectl("create", "poddisruptionbudget", "b", "--selector=app=x", "--min-available=50%")
    assert post.path == "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
    assert post.obj["spec"]["minAvailable"] == "50%"
    assert post.obj["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    # these status counters have no omitempty, so Go's JSON (and ours) keeps their zeros
    assert post.obj["status"] == {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                                  "expectedPods": 0}


def test_auth_can_i(kubectl) -> None:
    out, post = kubectl("auth", "can-i", "create", "pods")
    assert out.strip() == "yes"
    assert post.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    assert post.obj["kind"] == "SelfSubjectAccessReview"
    assert post.obj["spec"] == {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}}


def test_auth_can_i_list(kubectl) -> None:
    out, post = kubectl("auth", "can-i", "--list")
    assert post.path == "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
    assert post.obj["kind"] == "SelfSubjectRulesReview"
    assert post.obj["spec"] == {"namespace": "default"}
    assert "*.*" in out


def test_auth_whoami(kubectl) -> None:
    out, post = kubectl("auth", "whoami")
    assert post.path == "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    assert (post.obj["apiVersion"], post.obj["kind"]) == ("authentication.k8s.io/v1", "SelfSubjectReview")
    assert "tester" in out


def test_create_token(kubectl) -> None:
    out, post = kubectl("create", "token", "default", "--duration=10m", "--audience=api")
    assert post.path == "/api/v1/namespaces/default/serviceaccounts/default/token"
    assert post.obj["kind"] == "TokenRequest"
    assert post.obj["spec"]["audiences"] == ["api"]
    assert post.obj["spec"]["expirationSeconds"] == 600
    assert out.strip() == "token-from-fake-server"
