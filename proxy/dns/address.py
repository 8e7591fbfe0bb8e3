"""The node-local address of the cluster DNS: a dummy interface ``pinnace-dns`` holding the DNS IP.

Pods are given the cluster DNS IP (default 10.43.0.10) as their nameserver. Instead of a DNAT rule
to some pod, every node owns that IP on a dummy interface in its own network namespace (as
NodeLocal DNSCache does with 169.254.20.10), so a pod's query follows its default route to the node
and is delivered locally to the DNS server bound there. A kernel built without the dummy link type
(some microVM kernels) gets the address on ``lo`` instead, labelled ``lo:pinnace-dns`` so it stays
recognisable and removable; delivery is the same, as any local address is. Uses pyroute2's asyncio
netlink client so no netlink wait blocks the event loop; both calls are idempotent.
"""

from __future__ import annotations

import errno
import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyroute2 import AsyncIPRoute

INTERFACE = "pinnace-dns"
LOOPBACK = "lo"


class AddressError(RuntimeError):
    """The interface or address could not be set up or removed (message says which and why)."""


def _label(name: str) -> str:
    return f"{LOOPBACK}:{name}"[:15]


async def ensure(address: str, *, name: str = INTERFACE, netns: str | None = None) -> str:
    """Make ``address`` (/32 or /128) local on the dummy interface ``name`` (created, set up), or on
    ``lo`` if the kernel has no dummy links; returns the interface that holds it."""
    from pyroute2 import AsyncIPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise AddressError(f"not an IP address: {address!r}") from None
    try:
        async with AsyncIPRoute(netns=netns) as ipr:
            index, holder = await _dummy(ipr, name)
            extra = {"label": _label(name)} if holder == LOOPBACK and ip.version == 4 else {}
            try:
                await ipr.addr("add", index=index, address=str(ip), prefixlen=ip.max_prefixlen, **extra)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            await ipr.link("set", index=index, state="up")
            return holder
    except NetlinkError as exc:
        raise AddressError(f"cannot put {ip} on interface {name}: {exc}") from None


async def _dummy(ipr: AsyncIPRoute, name: str) -> tuple[int, str]:
    """The index of interface ``name``, created as a dummy; ``lo``'s if dummies are unsupported."""
    from pyroute2.netlink.exceptions import NetlinkError

    found = await ipr.link_lookup(ifname=name)
    if not found:
        try:
            await ipr.link("add", ifname=name, kind="dummy")
        except NetlinkError as exc:
            if exc.code not in (errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
            return (await ipr.link_lookup(ifname=LOOPBACK))[0], LOOPBACK
        found = await ipr.link_lookup(ifname=name)
    return found[0], name


async def remove(address: str | None = None, *, name: str = INTERFACE, netns: str | None = None) -> bool:
    """Delete the dummy interface (and so its address), or the fallback address ``address`` on ``lo``;
    False if neither was there."""
    from pyroute2 import AsyncIPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        async with AsyncIPRoute(netns=netns) as ipr:
            found = await ipr.link_lookup(ifname=name)
            if found:
                await ipr.link("del", index=found[0])
                return True
            if address is None:
                return False
            ip = ipaddress.ip_address(address)
            lo = (await ipr.link_lookup(ifname=LOOPBACK))[0]
            try:
                await ipr.addr("del", index=lo, address=str(ip), prefixlen=ip.max_prefixlen)
            except NetlinkError as exc:
                if exc.code in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH):
                    return False
                raise
            return True
    except (NetlinkError, ValueError) as exc:
        raise AddressError(f"cannot remove {address or ''} / interface {name}: {exc}") from None
