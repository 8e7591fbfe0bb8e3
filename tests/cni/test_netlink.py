"""``cni.netlink`` against the kernel, read back with pyroute2 (an independent netlink implementation).

Each test runs its netlink work on a worker thread that entered a scratch namespace (``setns`` moves
one thread only), so the test process itself never leaves the host's namespace.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from netns_kit import Namespaces, needs_net

from cni import netlink, netns
from cni.ipnet import IP, Prefix

T = TypeVar("T")


def test_attribute_parsing_survives_garbage() -> None:
    packed = netlink.attr(3, b"eth0\0") + netlink.nest(18, netlink.attr(1, b"veth"))
    found = netlink.parse_attrs(packed)
    assert found[3] == b"eth0\0" and netlink.parse_attrs(found[18]) == {1: b"veth"}
    assert netlink.parse_attrs(b"\x02\x00\x01\x00garbage") == {}, "a too-short length stops the walk"
    assert netlink.parse_attrs(b"\x01") == {}


@pytest.fixture
def inside(namespaces: Namespaces) -> Iterator[tuple[Callable[[Callable[[], T]], T], str, str]]:
    """Run a function on a thread inside a fresh namespace; also give a second namespace (a "pod")."""
    host, pod = namespaces.create("nlhost"), namespaces.create("nlpod")
    pool = ThreadPoolExecutor(max_workers=1)
    fd = netns.open_netns(host)
    try:
        pool.submit(netns.enter, fd).result()

        def call(function: Callable[[], T]) -> T:
            return pool.submit(function).result(timeout=30)

        yield call, host, pod
    finally:
        pool.shutdown()
        os.close(fd)


@needs_net
def test_bridge_veth_addresses_routes_as_pyroute2_reads_them(inside: tuple) -> None:
    call, _host, pod = inside
    pod_fd = netns.open_netns(pod)

    def work() -> dict:
        from pyroute2 import IPRoute

        with netlink.Rtnl() as rtnl, IPRoute() as ipr:
            rtnl.add_bridge("br-test", mac=bytes.fromhex("0a0000000001"), mtu=1450)
            mtu_at_creation = ipr.link("get", ifname="br-test")[0].get_attr("IFLA_MTU")
            with pytest.raises(netlink.NetlinkError) as dup:
                rtnl.add_bridge("br-test")
            bridge = rtnl.link("br-test")
            rtnl.add_veth("vhost", peer_name="eth0", peer_netns_fd=pod_fd, mac=bytes.fromhex("0a0000000002"),
                          peer_mac=bytes.fromhex("0a0000000003"), mtu=1400, master=bridge.index)
            rtnl.set_hairpin(rtnl.link("vhost").index)
            rtnl.set_link(bridge.index, promisc=True)
            rtnl.add_address(bridge.index, Prefix.parse("10.66.0.1/24"))
            rtnl.add_address(bridge.index, Prefix.parse("fd00:66::1/64"), nodad=True)
            with pytest.raises(netlink.NetlinkError) as dup_address:
                rtnl.add_address(bridge.index, Prefix.parse("10.66.0.1/24"))
            rtnl.add_route(Prefix.parse("10.67.0.0/16"), gateway=IP.parse("10.66.0.9"), oif=bridge.index)
            with pytest.raises(netlink.NetlinkError) as unreachable:
                rtnl.add_route(Prefix.parse("10.68.0.0/16"), gateway=IP.parse("172.16.0.1"))
            seen = {
                "bridge": ipr.link("get", ifname="br-test")[0],
                "bridge_mtu": mtu_at_creation,
                "veth": ipr.link("get", ifname="vhost")[0],
                "addresses": [(a.get_attr("IFA_ADDRESS"), a["prefixlen"], a["flags"])
                              for a in ipr.addr("dump", index=bridge.index)],
                "routes": [(r.get_attr("RTA_DST"), r.get_attr("RTA_GATEWAY"))
                           for r in ipr.route("dump", table=254) if r.get_attr("RTA_GATEWAY")],
                "ours": {"bridge": rtnl.link("br-test"), "addresses": rtnl.addresses(bridge.index),
                         "routes": rtnl.routes(), "missing": rtnl.link("nope")},
                "errors": (dup.value.errno, dup_address.value.errno, unreachable.value.errno,
                           str(unreachable.value)),
                "deleted": (rtnl.delete_link("vhost"), rtnl.delete_link("vhost")),
            }
            return seen

    try:
        seen = call(work)
    finally:
        os.close(pod_fd)
    bridge, veth = seen["bridge"], seen["veth"]
    assert bridge.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "bridge"
    assert bridge.get_attr("IFLA_ADDRESS") == "0a:00:00:00:00:01" and seen["bridge_mtu"] == 1450
    assert bridge["flags"] & netlink.IFF_UP and bridge["flags"] & netlink.IFF_PROMISC
    assert veth.get_attr("IFLA_MASTER") == bridge["index"] and veth.get_attr("IFLA_MTU") == 1400
    assert veth.get_attr("IFLA_ADDRESS") == "0a:00:00:00:00:02" and veth["flags"] & netlink.IFF_UP
    assert veth.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_MODE") == 1, "hairpin"
    assert ("10.66.0.1", 24, 0x80) in seen["addresses"]
    v6 = [a for a in seen["addresses"] if a[0] == "fd00:66::1"]
    assert v6 and v6[0][2] & netlink.IFA_F_NODAD
    assert ("10.67.0.0", "10.66.0.9") in seen["routes"]
    ours = seen["ours"]
    assert ours["bridge"].kind == "bridge" and ours["bridge"].mac_text == "0a:00:00:00:00:01"
    assert ours["missing"] is None
    assert {str(a) for a in ours["addresses"]} >= {"10.66.0.1/24", "fd00:66::1/64"}
    assert any(str(r.dst) == "10.67.0.0/16" and str(r.gateway) == "10.66.0.9" for r in ours["routes"])
    assert seen["errors"][:3] == (errno.EEXIST, errno.EEXIST, errno.ENETUNREACH)
    assert "add route 10.68.0.0/16 via 172.16.0.1" in seen["errors"][3]
    assert seen["deleted"] == (True, False)


@needs_net
def test_the_peer_is_born_in_the_pod_namespace(inside: tuple) -> None:
    call, _host, pod = inside
    pod_fd = netns.open_netns(pod)

    def create() -> tuple[bool, bool]:
        with netlink.Rtnl() as rtnl:
            rtnl.add_veth("vhost", peer_name="eth0", peer_netns_fd=pod_fd, mac=bytes.fromhex("0a0000000004"),
                          peer_mac=bytes.fromhex("0a0000000005"))
            return rtnl.link("vhost") is not None, rtnl.link("eth0") is not None

    def in_pod() -> tuple[str, bool]:
        netns.enter(pod_fd)
        with netlink.Rtnl() as rtnl:
            link = rtnl.link("eth0")
            rtnl.set_link(link.index, up=True)
            return link.mac_text, rtnl.link("eth0").up

    try:
        assert call(create) == (True, False)
        assert call(in_pod) == ("0a:00:00:00:00:05", True)
    finally:
        os.close(pod_fd)


def test_opening_something_that_is_not_a_netns_fails_clearly() -> None:
    with pytest.raises(netns.NetnsError) as missing:
        netns.open_netns("/nonexistent/netns")
    assert missing.value.errno == errno.ENOENT
    for path in ("/proc/self/ns/mnt", "/etc/hostname"):
        with pytest.raises(netns.NetnsError, match="not a network namespace"):
            netns.open_netns(path)
    fd = netns.open_netns("/proc/self/ns/net")
    os.close(fd)
