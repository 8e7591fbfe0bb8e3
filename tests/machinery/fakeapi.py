"""A fake Kubernetes API server over real HTTPS with client certs, for the client and informer tests."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from apiserver.pki import Pki, ensure_pki, write_admin_kubeconfig
from machinery.client import (
    Resource,
)
from machinery.kubeconfig import ClusterConfig, load_kubeconfig

PODS = Resource("", "v1", "pods", True)
NODES = Resource("", "v1", "nodes", False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", True)
KINDS = {"pods": "Pod", "nodes": "Node", "deployments": "Deployment", "configmaps": "ConfigMap"}


def status(code: int, reason: str, message: str = "") -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "reason": reason, "message": message or reason, "code": code}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]


@dataclass
class _Event:
    rv: int
    type: str
    plural: str
    obj: dict[str, Any]
    live_only: bool = False  # ERROR/BOOKMARK: only for watches open when it happened


@dataclass
class FakeApiServer:
    pki: Pki
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    rv: int = 0
    events: list[_Event] = field(default_factory=list)
    compacted_rv: int = 0
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[tuple[int, bytes]] = field(default_factory=list)
    raw_watch_chunks: list[bytes] | None = None
    port: int = 0
    _generation: int = 0
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    _uids: Any = field(default_factory=lambda: itertools.count(1))

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.pki.server_ssl_context(),
                           reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # -- test controls ----------------------------------------------------------------------------

    def put(self, plural: str, obj: dict[str, Any], *, emit: bool = True) -> dict[str, Any]:
        """Create or update an object; with emit=False no watch event is recorded (as if compacted)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = (plural, meta.get("namespace", ""), meta["name"])
        old = self.objects.get(key)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        meta.setdefault("uid", old["metadata"]["uid"] if old else f"uid-{next(self._uids)}")
        obj.setdefault("kind", KINDS.get(plural, "Thing"))
        obj.setdefault("apiVersion", "apps/v1" if plural == "deployments" else "v1")
        self.objects[key] = obj
        if emit:
            self._record(_Event(self.rv, "MODIFIED" if old else "ADDED", plural, obj))
        return obj

    def remove(self, plural: str, namespace: str, name: str, *, emit: bool = True) -> dict[str, Any]:
        obj = copy.deepcopy(self.objects.pop((plural, namespace, name)))
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if emit:
            self._record(_Event(self.rv, "DELETED", plural, obj))
        return obj

    def compact(self) -> None:
        """Forget history: watches from any older resourceVersion now get 410 Gone."""
        self.compacted_rv = self.rv

    def bookmark(self, plural: str) -> None:
        obj = {"kind": KINDS.get(plural, "Thing"), "apiVersion": "v1",
               "metadata": {"resourceVersion": str(self.rv)}}
        self._record(_Event(self.rv, "BOOKMARK", plural, obj, live_only=True))

    def watch_error(self, plural: str, code: int, reason: str) -> None:
        self._record(_Event(self.rv, "ERROR", plural, status(code, reason), live_only=True))

    async def close_watches(self) -> None:
        async with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def requests_for(self, method: str, *, watch: bool | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.method == method
                and (watch is None or (r.query.get("watch") == "true") == watch)]

    def _record(self, event: _Event) -> None:
        self.events.append(event)
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    # -- HTTP -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                      dict(request.headers), body, tuple(peer[:2])))
        if request.transport is None or (request.transport.get_extra_info("peercert") is None
                                         and request.headers.get("Authorization") != "Bearer good"):
            return _json(status(401, "Unauthorized"), 401)
        if self.fail_next:
            code, raw = self.fail_next.pop(0)
            return web.Response(status=code, body=raw, content_type="application/json")
        parts = request.path.strip("/").split("/")
        parts = parts[1:] if parts[0] == "api" else parts[2:]  # drop api/v1 or apis/group
        parts = parts[1:]  # version
        namespace = ""
        if parts[0] == "namespaces" and len(parts) >= 3:
            namespace, parts = parts[1], parts[2:]
        plural, name, sub = [*parts, None, None][:3]
        if name is None and request.method == "GET":
            if request.query.get("watch") == "true":
                return await self._watch(request, plural, namespace)
            return self._list(request, plural, namespace)
        handler = {"GET": self._get, "POST": self._create, "PUT": self._replace,
                   "PATCH": self._patch, "DELETE": self._delete}[request.method]
        return handler(plural=plural, namespace=namespace, name=name, sub=sub, body=body, request=request)

    def _matches(self, obj: dict[str, Any], plural: str, namespace: str, request: web.Request) -> bool:
        meta = obj["metadata"]
        if namespace and meta.get("namespace") != namespace:
            return False
        selector = request.query.get("labelSelector")
        if selector:
            labels = meta.get("labels") or {}
            for term in selector.split(","):
                k, v = term.split("=")
                if labels.get(k) != v:
                    return False
        fields = request.query.get("fieldSelector")
        return not fields or fields == f"metadata.name={meta['name']}"

    def _list(self, request: web.Request, plural: str, namespace: str) -> web.Response:
        keys = sorted(k for k, o in self.objects.items()
                      if k[0] == plural and self._matches(o, plural, namespace, request))
        start = 0
        if request.query.get("continue"):
            token = request.query["continue"]
            if token.startswith("expired"):
                return _json(status(410, "Expired", "the continue token has expired"), 410)
            start = int(token)
        limit = int(request.query.get("limit", "0")) or len(keys)
        page = keys[start:start + limit]
        items = []
        for key in page:
            item = copy.deepcopy(self.objects[key])
            item.pop("kind"), item.pop("apiVersion")  # as the real server: items carry neither
            items.append(item)
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if start + limit < len(keys):
            meta["continue"] = str(start + limit)
        kind = KINDS.get(plural, "Thing") + "List"
        return _json({"kind": kind, "apiVersion": "apps/v1" if plural == "deployments" else "v1",
                      "metadata": meta, "items": items})

    async def _watch(self, request: web.Request, plural: str, namespace: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        if self.raw_watch_chunks is not None:
            for chunk in self.raw_watch_chunks:
                await resp.write(chunk)
                await asyncio.sleep(0.01)
            return resp
        since = int(request.query.get("resourceVersion") or self.rv)
        if since < self.compacted_rv:
            await resp.write(watch_line("ERROR", status(410, "Expired", f"too old resource version: {since}")))
            return resp
        bookmarks = request.query.get("allowWatchBookmarks") == "true"
        timeout = float(request.query.get("timeoutSeconds", "30"))
        generation, pos, history = self._generation, 0, len(self.events)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i in range(pos, len(self.events)):
                ev = self.events[i]
                if ev.plural != plural or (ev.live_only and i < history):
                    continue
                if ev.type == "BOOKMARK" and not bookmarks:
                    continue
                if ev.type not in ("ERROR", "BOOKMARK") and (
                        ev.rv <= since or not self._matches(ev.obj, plural, namespace, request)):
                    continue
                await resp.write(watch_line(ev.type, ev.obj))
                if ev.type == "ERROR":
                    return resp
            pos = len(self.events)
            try:
                async with self._cond, asyncio.timeout(deadline - loop.time()):
                    await self._cond.wait_for(
                        lambda pos=pos: len(self.events) > pos or self._generation != generation)
            except TimeoutError:
                return resp
            if self._generation != generation:
                return resp

    def _get(self, *, plural: str, namespace: str, name: str, **_: Any) -> web.Response:
        obj = self.objects.get((plural, namespace, name))
        if obj is None:
            return _json(status(404, "NotFound", f'{plural} "{name}" not found'), 404)
        return _json(obj)

    def _create(self, *, plural: str, namespace: str, body: bytes, **_: Any) -> web.Response:
        obj = orjson.loads(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            return _json(status(422, "Invalid", "metadata.name: Required value"), 422)
        if namespace:
            meta["namespace"] = namespace
        if (plural, namespace, meta["name"]) in self.objects:
            return _json(status(409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists'), 409)
        return _json(self.put(plural, obj), 201)

    def _replace(self, *, plural: str, namespace: str, name: str, sub: str | None, body: bytes,
                 **_: Any) -> web.Response:
        current = self.objects.get((plural, namespace, name))
        if current is None:
            return _json(status(404, "NotFound"), 404)
        obj = orjson.loads(body)
        if obj["metadata"].get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
            return _json(status(409, "Conflict", "the object has been modified"), 409)
        if sub == "status":
            obj = {**current, "status": obj.get("status")}
        return _json(self.put(plural, obj))

    def _patch(self, *, plural: str, namespace: str, name: str, body: bytes, **_: Any) -> web.Response:
        current = self.objects.get((plural, namespace, name))
        if current is None:
            return _json(status(404, "NotFound"), 404)
        patch = orjson.loads(body)
        merged = _merge(copy.deepcopy(current), patch) if isinstance(patch, dict) else current
        return _json(self.put(plural, merged))

    def _delete(self, *, plural: str, namespace: str, name: str, **_: Any) -> web.Response:
        if (plural, namespace, name) not in self.objects:
            return _json(status(404, "NotFound"), 404)
        return _json(self.remove(plural, namespace, name))


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return patch
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = _merge(target.get(k), v)
    return target


def _json(obj: Any, code: int = 200) -> web.Response:
    return web.Response(status=code, body=orjson.dumps(obj), content_type="application/json")


def watch_line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def pod(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def start_fake(tmp_path: Path) -> tuple[FakeApiServer, ClusterConfig]:
    """A running fake server and a config loaded from a real admin kubeconfig for it."""
    pki = ensure_pki(tmp_path / "data", hosts=[])
    server = FakeApiServer(pki)
    await server.start()
    kubeconfig = write_admin_kubeconfig(pki, tmp_path / "kubeconfig", server=server.url)
    return server, load_kubeconfig(kubeconfig)



async def wait_until(predicate: Callable[[], Any], *, within: float = 5.0) -> None:
    """Poll ``predicate`` (every 10 ms) until it holds; fail the test after ``within`` seconds."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {within} s")
