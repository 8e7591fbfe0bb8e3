"""How the etcd backend reaches etcd: endpoints and TLS → one gRPC channel; gRPC errors → kinds.

All etcd traffic of one API server goes over one HTTP/2 channel (gRPC multiplexes every call and
watch stream on it). Several endpoints become one ``ipv4:``/``ipv6:`` target with grpc's default
pick-first policy, so the channel uses the first member that answers and moves to the next one when
it fails; host names are resolved once, at start, off the event loop. Reconnect back-off is kept
short (at most a second) so that writes succeed again soon after an etcd restart.

etcd reports its errors as gRPC statuses whose details carry etcd's message; :func:`classify` maps
them to the few kinds the storage contract distinguishes (see ``ERROR_KINDS``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grpc

ErrorKind = Literal["compacted", "future", "too_large", "unavailable"]

#: etcd's error messages (gRPC details) that mean something to the storage contract; the rest,
#: including every transport failure, leave the store unavailable for now (HTTP 503)
ERROR_KINDS: tuple[tuple[str, ErrorKind], ...] = (
    ("required revision has been compacted", "compacted"),
    ("required revision is a future revision", "future"),
    ("request is too large", "too_large"),  # over etcd's --max-request-bytes (1.5 MiB by default)
    ("received message larger than max", "too_large"),  # over its gRPC limit (that + 512 KiB)
)

#: gRPC channel options: unlimited replies (a large list), short reconnect back-off, and pings that
#: notice a silently dead peer under an idle watch (etcd accepts one every 5 s at most)
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


@dataclass(frozen=True)
class EtcdConfig:
    """Where etcd is and how to prove who we are; ``prefix`` is prepended to every key on the wire
    (tests share one etcd that way; see docs/etcd.md for why clusters should not, yet)."""

    endpoints: tuple[tuple[str, int], ...]
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    prefix: str = ""

    @property
    def tls(self) -> bool:
        return bool(self.cafile or self.certfile)

    def describe(self) -> str:
        scheme = "https" if self.tls else "http"
        return ",".join(f"{scheme}://{_hostport(host, port)}" for host, port in self.endpoints)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str, port: int) -> list[tuple[int, str]]:
    """(family, address) pairs of ``host``; an IP literal is its own answer."""
    if _is_ip(host):
        return [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OSError(f"cannot resolve etcd host {host!r}: {exc.strerror or exc}") from None
    return [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]


async def target_of(endpoints: tuple[tuple[str, int], ...]) -> str:
    """A gRPC target naming every endpoint: ``ipv4:a:p,b:p`` (or ``ipv6:``)."""
    v4: list[str] = []
    v6: list[str] = []
    for host, port in endpoints:
        for family, address in await _resolve(host, port):
            (v6 if family == socket.AF_INET6 else v4).append(_hostport(address, port))
    if v4:
        return "ipv4:" + ",".join(dict.fromkeys(v4))
    if v6:
        return "ipv6:" + ",".join(dict.fromkeys(v6))
    raise OSError(f"no address found for etcd endpoints {endpoints!r}")


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


async def open_channel(config: EtcdConfig) -> grpc.aio.Channel:
    """A channel to the configured endpoints (nothing is dialled until the first call)."""
    target = await target_of(config.endpoints)
    options = list(CHANNEL_OPTIONS)
    if not config.tls:
        return grpc.aio.insecure_channel(target, options=options)
    ca, cert, key = await asyncio.to_thread(
        lambda: (_read(config.cafile, "etcd CA file"), _read(config.certfile, "etcd client certificate"),
                 _read(config.keyfile, "etcd client key")))
    name = config.endpoints[0][0]
    if not _is_ip(name):  # verify the server certificate against the name we were given
        options.append(("grpc.ssl_target_name_override", name))  # type: ignore[arg-type]
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.aio.secure_channel(target, credentials, options=options)


def classify(error: grpc.aio.AioRpcError) -> ErrorKind:
    details = error.details() or ""
    for needle, kind in ERROR_KINDS:
        if needle in details:
            return kind
    return "unavailable"


def describe_error(error: grpc.aio.AioRpcError) -> str:
    """One line: the status name and etcd's message (without grpc's debug string)."""
    details = (error.details() or "").removeprefix("etcdserver: ")
    return f"{error.code().name.lower()}: {details}" if details else error.code().name.lower()
