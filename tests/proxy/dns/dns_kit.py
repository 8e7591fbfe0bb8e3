"""Helpers of the cluster DNS tests: object builders and a raw-socket DNS client."""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

from proxy.dns import wire


def service(name: str, ns: str, *, cluster_ip: str | None = "10.43.7.7",
            ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": ports if ports is not None else [{"name": "http", "port": 80,
                                                                      "protocol": "TCP"}], **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": body}


def endpoint(ip: str, *, ready: bool | None = True, hostname: str | None = None) -> dict[str, Any]:
    ep: dict[str, Any] = {"addresses": [ip]}
    if ready is not None:
        ep["conditions"] = {"ready": ready}
    if hostname:
        ep["hostname"] = hostname
    return ep


def endpoint_slice(name: str, ns: str, *, svc: str, endpoints: list[dict[str, Any]],
                   ports: list[dict[str, Any]] | None = None, address_type: str = "IPv4") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": address_type, "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def query(name: str, qtype: int, *, edns: int | None = None, ident: int | None = None) -> bytes:
    msg = wire.Message(random.randrange(0x10000) if ident is None else ident, wire.RD,
                       [wire.Question(name, qtype)])
    if edns is not None:
        msg.additional.append(wire.edns_opt(edns))
    return wire.encode(msg)


def ask_udp(port: int, name: str, *, qtype: int, host: str = "127.0.0.1", edns: int | None = None,
            timeout: float = 5.0) -> wire.Message:
    """One query over UDP from a plain socket (blocking: run it in a thread from async tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        data = query(name, qtype, edns=edns)
        s.sendto(data, (host, port))
        while True:
            reply, _ = s.recvfrom(65535)
            if reply[:2] == data[:2]:
                return wire.decode(reply)


def ask_tcp(port: int, name: str, *, qtype: int, host: str = "127.0.0.1", timeout: float = 5.0) -> wire.Message:
    with socket.create_connection((host, port), timeout=timeout) as s:
        data = query(name, qtype)
        s.sendall(len(data).to_bytes(2, "big") + data)
        size = int.from_bytes(_recv_exactly(s, 2), "big")
        return wire.decode(_recv_exactly(s, size))


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed early")
        buf += chunk
    return buf


async def aask(port: int, name: str, *, qtype: int, **kw: Any) -> wire.Message:
    return await asyncio.to_thread(ask_udp, port, name, qtype=qtype, **kw)


def rdata(msg: wire.Message, rtype: int) -> list[Any]:
    return sorted((r.data for r in msg.answers if r.rtype == rtype), key=str)
