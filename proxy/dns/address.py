"""The node-local address of the cluster DNS: a dummy interface ``pinnace-dns`` holding the DNS IP.

Pods are given the cluster DNS IP (default 10.43.0.10) as their nameserver. Instead of a DNAT rule
to some pod, every node owns that IP on a dummy interface in its own network namespace (as
NodeLocal DNSCache does with 169.254.20.10), so a pod's query follows its default route to the node
and is delivered locally to the DNS server bound there. A kernel built without the dummy link type
(some microVM kernels) gets the address on ``lo`` instead, labelled ``lo:pinnace-dns`` so it stays
recognisable and removable; delivery is the same, as any local address is. Runs `ip` (iproute2) as
asyncio subprocesses: pyroute2's asyncio netlink client does not work on uvloop (AF_NETLINK sockets
are refused), and a subprocess works on any loop without blocking it; both calls are idempotent.
"""

from __future__ import annotations

import asyncio
import ipaddress

INTERFACE = "pinnace-dns"
LOOPBACK = "lo"
IP_TIMEOUT = 10.0  # seconds one `ip` call may take


class AddressError(RuntimeError):
    """The interface or address could not be set up or removed (message says which and why)."""


def _label(name: str) -> str:
    return f"{LOOPBACK}:{name}"[:15]


async def _ip(*argv: str, netns: str | None = None) -> tuple[int, str]:
    """Run ``ip [-n NETNS] argv``: (exit status, stderr)."""
    prefix = ("-n", netns) if netns else ()
    try:
        process = await asyncio.create_subprocess_exec(
            "ip", *prefix, *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), IP_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise AddressError(f"cannot run ip {' '.join(argv)}: {exc}") from None
    return process.returncode or 0, err.decode(errors="replace").strip()


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        raise AddressError(f"not an IP address: {address!r}") from None


async def ensure(address: str, *, name: str = INTERFACE, netns: str | None = None) -> str:
    """Make ``address`` (/32 or /128) local on the dummy interface ``name`` (created, set up), or on
    ``lo`` if the kernel has no dummy links; returns the interface that holds it."""
    ip = _parse(address)
    holder = await _dummy(name, netns)
    extra = ("label", _label(name)) if holder == LOOPBACK and ip.version == 4 else ()
    code, err = await _ip("addr", "add", f"{ip}/{ip.max_prefixlen}", "dev", holder, *extra, netns=netns)
    if code != 0 and "File exists" not in err and "already assigned" not in err:
        raise AddressError(f"cannot put {ip} on interface {holder}: {err}")
    code, err = await _ip("link", "set", holder, "up", netns=netns)
    if code != 0:
        raise AddressError(f"cannot set interface {holder} up: {err}")
    return holder


async def _dummy(name: str, netns: str | None) -> str:
    """Interface ``name``, created as a dummy if missing; ``lo`` if dummies are unsupported."""
    if (await _ip("link", "show", "dev", name, netns=netns))[0] == 0:
        return name
    code, err = await _ip("link", "add", name, "type", "dummy", netns=netns)
    if code == 0 or "File exists" in err:
        return name
    if "Unknown device type" in err or "not supported" in err.lower():
        return LOOPBACK
    raise AddressError(f"cannot create interface {name}: {err}")


async def remove(address: str | None = None, *, name: str = INTERFACE, netns: str | None = None) -> bool:
    """Delete the dummy interface (and so its address), or the fallback address ``address`` on ``lo``;
    False if neither was there."""
    if (await _ip("link", "show", "dev", name, netns=netns))[0] == 0:
        code, err = await _ip("link", "del", name, netns=netns)
        if code != 0:
            raise AddressError(f"cannot remove interface {name}: {err}")
        return True
    if address is None:
        return False
    ip = _parse(address)
    code, err = await _ip("addr", "del", f"{ip}/{ip.max_prefixlen}", "dev", LOOPBACK, netns=netns)
    if code == 0:
        return True
    if "Cannot assign requested address" in err or "not found" in err or "No such" in err:
        return False
    raise AddressError(f"cannot remove {ip} from {LOOPBACK}: {err}")
