"""What every kubelet server handler reaches through its app: the config and the CRI client."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from kubelet.config import KubeletConfig
from kubelet.cri import CriClient


@dataclass(frozen=True)
class ServerContext:
    config: KubeletConfig
    cri: CriClient


CONTEXT: web.AppKey[ServerContext] = web.AppKey("kubelet_server", ServerContext)


def of(request: web.Request) -> ServerContext:
    return request.app[CONTEXT]
