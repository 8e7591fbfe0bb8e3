"""A tiny recording API server for driving the real kubectl against our OpenAPI documents.

It serves /version, aggregated discovery built from the registry, /openapi/v3 from
``apiserver.openapi`` and a toy object store (404 on GET until a POST creates the object), and
records every request so tests can assert what kubectl sent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from apiserver import openapi
from apiserver.registry import RESOURCES

KUBECTL = "/usr/bin/kubectl"
DISCOVERY_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "test",
           "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3",
           "compiler": "gc", "platform": "linux/amd64"}


def discovery(core: bool) -> dict[str, Any]:
    """The aggregated discovery list for /api (core) or /apis (every named group)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rt in RESOURCES:
        if (rt.group == "") != core:
            continue
        entry = {"resource": rt.plural, "responseKind": {"group": rt.group, "version": rt.version,
                                                         "kind": rt.kind},
                 "scope": "Namespaced" if rt.namespaced else "Cluster", "singularResource": rt.singular,
                 "verbs": list(rt.verbs), "shortNames": list(rt.short_names),
                 "categories": list(rt.categories)}
        groups.setdefault(rt.group, {}).setdefault(rt.version, []).append(entry)
    items = [{"metadata": {"name": group},
              "versions": [{"version": v, "resources": res} for v, res in versions.items()]}
             for group, versions in groups.items()]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes


@dataclass
class FakeServer:
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def find(self, method: str, path_part: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and path_part in r.path]


def _json(data: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=None,
                        headers={"Content-Type": content_type})


def _not_found(path: str) -> web.Response:
    return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": f"{path} not found", "reason": "NotFound", "code": 404}, status=404)


def _app(state: FakeServer) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        state.requests.append(Seen(request.method, path, dict(request.query),
                                   request.headers.get("Content-Type", ""), body))
        if path == "/version":
            return _json(VERSION)
        if path in ("/api", "/apis"):
            return _json(discovery(core=path == "/api"), content_type=DISCOVERY_TYPE)
        if path == "/openapi/v3":
            return _json(await openapi.aindex())
        if path.startswith("/openapi/v3/"):
            doc = await openapi.adocument(path)
            if doc is None:
                return _not_found(path)
            return web.Response(body=doc, headers={"Content-Type": "application/json"})
        if request.method == "GET" and path in state.objects:
            return _json(state.objects[path])
        if request.method == "POST":
            obj = orjson.loads(body)
            obj.setdefault("metadata", {}).update(uid="0000-1", resourceVersion="1",
                                                  creationTimestamp="2025-01-01T00:00:00Z")
            state.objects[f"{path}/{obj['metadata']['name']}"] = obj
            return _json(obj, status=201)
        if request.method == "PATCH" and path in state.objects:
            return _json(state.objects[path])
        return _not_found(path)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    state = FakeServer()
    runner = web.AppRunner(_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def kubectl(fake_server: FakeServer, tmp_path: Path):
    """Run the real kubectl against the fake server with a private HOME and kubeconfig."""
    if not os.path.exists(KUBECTL) or shutil.which(KUBECTL) is None:
        pytest.skip(f"{KUBECTL} is not installed")
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters:\n- name: t\n  cluster:\n    server: {fake_server.url}\n"
        "contexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: default\n"
        "users:\n- name: t\n  user: {}\n")
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    async def run(*args: str, stdin: bytes | None = None) -> Result:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(config), *args, env=env, cwd=str(tmp_path),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return Result(proc.returncode or 0, out.decode(), err.decode())

    return run
