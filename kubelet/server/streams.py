"""``/exec`` and ``/attach``: ask the CRI for a streaming URL, then proxy the client's upgrade to it.

The engine's streaming server speaks the Kubernetes WebSocket channel protocol itself, so the
kubelet only relays: the client's WebSocket handshake goes to the URL and, after the ``101``, bytes
flow untouched both ways (``machinery.upgrade_proxy``). The kubelet checks what it can answer better
than the engine (a non-WebSocket request, an unknown container) before asking the CRI.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from kubelet.cri import pb
from kubelet.server import context, pods
from machinery import upgrade_proxy

STREAM_FLAGS = ("stdin", "stdout", "stderr", "tty")


def stream_flags(query: Mapping[str, str]) -> dict[str, bool]:
    return {flag: query.get(flag, "").lower() in ("true", "1") for flag in STREAM_FLAGS}


def require_websocket(request: web.Request) -> None:
    if not upgrade_proxy.is_upgrade(request) or request.headers.get("Upgrade", "").lower() != "websocket":
        raise web.HTTPBadRequest(text="this endpoint needs a WebSocket upgrade (SPDY is not supported)\n")


async def handle_exec(request: web.Request) -> web.StreamResponse:
    require_websocket(request)
    ctx = context.of(request)
    command = request.query.getall("command", [])
    if not command:
        raise web.HTTPBadRequest(text="you must specify a command\n")
    flags = stream_flags(request.query)
    container = await pods.running_container(ctx.cri, **_names(request))
    answer = await ctx.cri.runtime.Exec(pb.ExecRequest(container_id=container.id, cmd=command, **flags),
                                        timeout=pods.CALL_TIMEOUT)
    return await upgrade_proxy.forward(request, url=answer.url, ssl=False)


async def handle_attach(request: web.Request) -> web.StreamResponse:
    require_websocket(request)
    ctx = context.of(request)
    flags = stream_flags(request.query)
    container = await pods.running_container(ctx.cri, **_names(request))
    answer = await ctx.cri.runtime.Attach(pb.AttachRequest(container_id=container.id, **flags),
                                          timeout=pods.CALL_TIMEOUT)
    return await upgrade_proxy.forward(request, url=answer.url, ssl=False)


def _names(request: web.Request) -> dict[str, str]:
    info = request.match_info
    return {"namespace": info["namespace"], "pod": info["pod"], "container": info["container"]}
