"""Real kubectl binaries against /openapi/v2: 1.27 (which needs it) and 1.32/1.33 (which still read it).

Two setups. A small in-process server that serves discovery and /openapi/v2 but answers 404 on
/openapi/v3, so kubectl *must* take validation and the apply patch from v2; serving a v2 document
with the containers merge key removed changes the patch, proving where it came from. And a real
``pinnace server`` process for the end-to-end commands: apply (twice), create, replace, diff,
explain, and strict validation.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from apiserver.handlers import discovery
from apiserver.openapi import gnostic, v2
from e2e.cluster import Server

SDK = Path("/usr/lib/google-cloud-sdk/bin")
K127 = SDK / "kubectl.1.27"
K133 = SDK / "kubectl.1.33"
K132 = Path("/usr/bin/kubectl")  # the dispatcher: runs kubectl.1.32 against a 1.32 server


def need(binary: Path) -> Path:
    if not binary.exists():
        pytest.skip(f"{binary} is not installed")
    return binary


def deployment(name: str, *, replicas: int = 1, second: bool = True, env_b: bool = True) -> str:
    """A Deployment manifest; the second container and the env var B can be left out."""
    env = [{"name": "A", "value": "1"}] + ([{"name": "B", "value": "2"}] if env_b else [])
    containers = [{"name": "a", "image": "nginx", "env": env}]
    if second:
        containers.append({"name": "b", "image": "busybox"})
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}},
    })


@dataclass
class Run:
    """One kubectl binary with a private HOME (empty caches) and a kubeconfig."""

    binary: Path
    kubeconfig: Path
    home: Path
    workdir: Path

    def __call__(self, *args: str, manifest: str | None = None) -> subprocess.CompletedProcess:
        argv = [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args]
        if manifest is not None:
            path = self.workdir / "manifest.json"
            path.write_text(manifest)
            argv += ["-f", str(path)]
        env = {"HOME": str(self.home), "PATH": "/usr/bin:/bin"}
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def make_run(binary: Path, kubeconfig: Path, tmp: Path) -> Run:
    home = tmp / f"home-{binary.name}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return Run(binary, kubeconfig, home, tmp)


# -- a server with /openapi/v2 only ---------------------------------------------------------------


@dataclass
class V2Only:
    url: str = ""
    v2_body: bytes | None = None  # None: the real handler
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    patches: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (query, type, body)


def _status(code: int) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                              "reason": "NotFound", "message": "not found"}, status=code)


def _v2_only_app(state: V2Only) -> web.Application:
    async def openapi_v2(request: web.Request) -> web.StreamResponse:
        if state.v2_body is None:
            return await v2.handle(request)
        return web.Response(body=state.v2_body, headers={"Content-Type": v2.CONTENT_TYPE})

    async def objects(request: web.Request) -> web.Response:
        path, body = request.path, await request.read()
        if request.method == "GET" and path in state.objects:
            return web.json_response(state.objects[path])
        if request.method == "POST":
            obj = orjson.loads(body)
            obj["metadata"].update(uid="0000-1", resourceVersion="1", namespace="default")
            state.objects[f"{path}/{obj['metadata']['name']}"] = obj
            return web.json_response(obj, status=201)
        if request.method == "PATCH" and path in state.objects:
            state.patches.append((request.query_string, request.content_type, orjson.loads(body)))
            return web.json_response(state.objects[path])
        return _status(404)

    app = web.Application()
    for path, handler in (("/version", discovery.version), ("/api", discovery.api), ("/apis", discovery.apis),
                          ("/api/v1", discovery.api_v1), ("/apis/{group}", discovery.api_group),
                          ("/apis/{group}/{version}", discovery.group_version), ("/openapi/v2", openapi_v2)):
        app.router.add_get(path, handler)
    app.router.add_route("*", "/{tail:.*}", objects)  # /openapi/v3 included: 404
    return app


@pytest.fixture
async def v2_only(tmp_path: Path) -> AsyncIterator[tuple[V2Only, Path]]:
    state = V2Only()
    runner = web.AppRunner(_v2_only_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: t, cluster: {{server: '{state.url}'}}}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]\nusers: [{name: t, user: {}}]\n")
    try:
        yield state, config
    finally:
        await runner.cleanup()


async def apply_twice(run: Run) -> subprocess.CompletedProcess:
    first = await asyncio.to_thread(run, "apply", manifest=deployment("web"))
    assert first.returncode == 0, first.stderr
    return await asyncio.to_thread(run, "apply", manifest=deployment("web", second=False, env_b=False))


@pytest.mark.parametrize("binary", [K127, K133], ids=["1.27", "1.33"])
async def test_apply_patch_comes_from_the_v2_merge_keys(v2_only, tmp_path: Path, binary: Path) -> None:
    state, config = v2_only
    second = await apply_twice(make_run(need(binary), config, tmp_path))
    assert second.returncode == 0, second.stderr
    ((query, content_type, patch),) = state.patches
    assert "fieldValidation=Strict" in query  # the verifier found the parameter in v2: server validates
    assert content_type == "application/strategic-merge-patch+json"
    pod = patch["spec"]["template"]["spec"]
    assert pod["$setElementOrder/containers"] == [{"name": "a"}]
    by_name = {c["name"]: c for c in pod["containers"]}
    assert by_name["b"] == {"$patch": "delete", "name": "b"}
    assert by_name["a"]["env"] == [{"$patch": "delete", "name": "B"}]


async def test_without_the_merge_key_kubectl_replaces_the_list(v2_only, tmp_path: Path) -> None:
    """The control for the test above: a v2 document lacking the key changes kubectl's patch."""
    state, config = v2_only
    doc = v2.build()
    containers = doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    del containers["x-kubernetes-patch-merge-key"], containers["x-kubernetes-patch-strategy"]
    state.v2_body = gnostic.encode_document(doc)
    second = await apply_twice(make_run(need(K127), config, tmp_path))
    assert second.returncode == 0, second.stderr
    ((_query, _type, patch),) = state.patches
    pod = patch["spec"]["template"]["spec"]
    assert "$setElementOrder/containers" not in pod
    assert [c["name"] for c in pod["containers"]] == ["a"]


# -- a real server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("v2-cluster") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def k127(cluster: Server, tmp_path: Path) -> Run:
    return make_run(need(K127), cluster.kubeconfig, tmp_path)


def containers_of(run: Run, name: str) -> list[dict[str, Any]]:
    got = run("get", "deployment", name, "-o", "json")
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)["spec"]["template"]["spec"]["containers"]


def check_apply_twice_and_diff(run: Run, name: str) -> None:
    first = run("apply", manifest=deployment(name))
    assert first.returncode == 0, first.stderr
    assert f"deployment.apps/{name} created" in first.stdout
    same = run("diff", manifest=deployment(name))
    assert (same.returncode, same.stdout) == (0, ""), same.stderr
    changed = run("diff", manifest=deployment(name, second=False, env_b=False))
    assert changed.returncode == 1, changed.stderr  # 1: differences found
    assert "-        - name: B" in changed.stdout and "-        name: b" in changed.stdout
    second = run("apply", manifest=deployment(name, second=False, env_b=False))
    assert second.returncode == 0, second.stderr
    assert f"deployment.apps/{name} configured" in second.stdout
    (container,) = containers_of(run, name)
    assert (container["name"], container["env"]) == ("a", [{"name": "A", "value": "1"}])


def check_explain_v2(run: Run) -> None:
    out = run("explain", "deployment.spec.template.spec.containers.ports", "--output=plaintext-openapiv2")
    assert out.returncode == 0, out.stderr
    assert "RESOURCE: ports <[]Object>" in out.stdout
    assert "containerPort\t<integer> -required-" in out.stdout


def test_127_apply_twice_removes_container_and_env_and_diff(k127: Run) -> None:
    check_apply_twice_and_diff(k127, "web-127")


def test_127_create_replace_and_strict_validation(k127: Run) -> None:
    created = k127("create", manifest=deployment("made-127"))
    assert created.returncode == 0, created.stderr
    again = k127("create", manifest=deployment("made-127"))
    assert again.returncode == 1 and "AlreadyExists" in again.stderr
    replaced = k127("replace", manifest=deployment("made-127", replicas=3))
    assert replaced.returncode == 0, replaced.stderr
    got = k127("get", "deployment", "made-127", "-o", "jsonpath={.spec.replicas}")
    assert got.stdout == "3"
    bad = json.loads(deployment("bad-127"))
    bad["spec"]["replicaz"] = 1
    rejected = k127("apply", manifest=json.dumps(bad))
    assert rejected.returncode == 1
    assert 'unknown field "spec.replicaz"' in rejected.stderr  # the server's strict check, not kubectl's


def test_127_explain(k127: Run) -> None:
    check_explain_v2(k127)
    out = k127("explain", "deployment.spec.strategy")
    assert out.returncode == 0, out.stderr
    assert "rollingUpdate" in out.stdout


@pytest.mark.parametrize("binary", [K132, K133], ids=["1.32", "1.33"])
def test_newer_kubectl_apply_diff_and_explain(cluster: Server, tmp_path: Path, binary: Path) -> None:
    run = make_run(need(binary), cluster.kubeconfig, tmp_path)
    check_apply_twice_and_diff(run, f"web-{binary.name.replace('.', '-')}")
    check_explain_v2(run)
