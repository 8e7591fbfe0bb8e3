"""``host:port`` as Go's net.JoinHostPort writes it (IPv6 in brackets): probe URLs, service links."""

from __future__ import annotations

import contextlib
import ipaddress


def join_host_port(host: str, port: int) -> str:
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    return f"{host}:{port}"
