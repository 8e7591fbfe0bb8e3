"""The bridge plugin (type ``pinnace-bridge``): a Linux bridge on the node, a veth pair per pod.

ADD, in order — everything that can be refused is checked before anything is changed, and a failure
after the first change undoes what this call did (IPAM lease, veth), so a failed ADD leaves nothing:

1. parse the config, open the pod's namespace (code 3 when it does not exist);
2. lease addresses from the IPAM plugin (``cni.delegate``: ours in-process, others by exec);
3. on the host: ensure the bridge (created up with a fixed MAC, the gateway addresses when
   ``isGateway``; bridge-netfilter sysctls when it is new), forwarding, then one netlink request
   creates the veth with its peer born inside the pod's namespace, named ``CNI_IFNAME``, and the host
   end already enslaved and up; hairpin mode on the port;
4. inside the pod (this thread enters its namespace): bring the interface up, add the addresses and
   routes (a default route via the gateway with ``isDefaultGateway``);
5. ``ipMasq``: ``cni.masquerade`` re-asserts the network's one nftables chain (traffic leaving the pod
   subnets and ``ipMasqExclude`` is masqueraded); it is per network, not per pod: DEL has nothing to undo.

The host end's name is derived from (network, container id, ifname), so DEL needs neither the pod's
namespace nor a cached result: it frees the leases and deletes that name, and both may already be gone.
Config fields follow the reference bridge plugin where they overlap (``bridge``, ``isGateway``,
``isDefaultGateway``, ``ipMasq``, ``mtu``, ``hairpinMode``, ``promiscMode``, ``ipam``); reference fields
we do not implement are refused with code 2 when set, rather than silently ignored.
"""

from __future__ import annotations

import posix  # os costs ~1 ms of start-up (cni/main.py)

from cni import delegate, naming, netlink, netns, spec
from cni.ipnet import AF_INET, AF_INET6, IP, AddressError, Prefix

DEFAULT_BRIDGE = "pinnace0"
DEFAULT_ROUTE = {AF_INET: "0.0.0.0/0", AF_INET6: "::/0"}
FORWARDING_SYSCTL = {AF_INET: "net/ipv4/ip_forward", AF_INET6: "net/ipv6/conf/all/forwarding"}
BRIDGE_NF_SYSCTLS = ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")
# reference bridge fields we do not implement: refused (code 2) when set to anything but these values
UNSUPPORTED_FIELDS = {"vlan": (None, 0), "vlanTrunk": (None, []), "preserveDefaultVlan": (None, True, False),
                      "macspoofchk": (None, False), "enabledad": (None, False), "forceAddress": (None, False),
                      "disableContainerInterface": (None, False), "portIsolation": (None, False)}
BOOL_FIELDS = {"isGateway": False, "isDefaultGateway": False, "ipMasq": False, "hairpinMode": True,
               "promiscMode": False, "bridgeNetfilter": True}


class Config:
    """The bridge plugin's fields, validated (the ``ipam`` section is the IPAM plugin's business)."""

    __slots__ = ("bridge", "bridge_netfilter", "hairpin", "is_default_gateway", "is_gateway", "masq",
                 "masq_exclude", "mtu", "promisc")

    def __init__(self, config: dict) -> None:
        for field, allowed in UNSUPPORTED_FIELDS.items():
            if config.get(field) not in allowed:
                raise spec.CniError(spec.UNSUPPORTED_FIELD,
                                    f"{field}={config[field]!r} is not supported by pinnace-bridge")
        flags = {}
        for field, default in BOOL_FIELDS.items():
            value = config.get(field, default)
            if not isinstance(value, bool):
                raise spec.CniError(spec.INVALID_CONFIG, f"{field} must be true or false")
            flags[field] = value
        self.bridge = config.get("bridge", DEFAULT_BRIDGE)
        if not spec.is_ifname(self.bridge):
            raise spec.CniError(spec.INVALID_CONFIG, f"bridge {self.bridge!r} is not a valid interface name")
        mtu = config.get("mtu")
        if mtu is not None and (not isinstance(mtu, int) or isinstance(mtu, bool) or not 68 <= mtu <= 65535):
            raise spec.CniError(spec.INVALID_CONFIG, f"mtu {mtu!r} must be an integer from 68 to 65535")
        self.mtu = mtu
        self.is_default_gateway = flags["isDefaultGateway"]
        self.is_gateway = flags["isGateway"] or self.is_default_gateway
        self.masq, self.hairpin, self.promisc = flags["ipMasq"], flags["hairpinMode"], flags["promiscMode"]
        self.bridge_netfilter = flags["bridgeNetfilter"]
        exclude = config.get("ipMasqExclude", [])
        try:
            if not isinstance(exclude, list):
                raise AddressError("ipMasqExclude must be a list of CIDRs")
            self.masq_exclude = [Prefix.parse(item).masked() for item in exclude]
        except AddressError as exc:
            raise spec.CniError(spec.INVALID_CONFIG, f"ipMasqExclude: {exc}") from None


def _random_mac() -> bytes:
    """A random locally administered unicast MAC."""
    raw = bytearray(posix.urandom(6))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return bytes(raw)


def _mac_text(mac: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in mac)


def _ensure_sysctl(path: str, value: str = "1") -> None:
    """Write /proc/sys/<path> when it differs; missing paths (module not loaded) are skipped."""
    full = f"/proc/sys/{path}"
    try:
        with open(full, encoding="ascii") as f:
            if f.read().strip() == value:
                return
        with open(full, "w", encoding="ascii") as f:
            f.write(value)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise spec.CniError(spec.IO_FAILURE, f"cannot set {full}: {exc.strerror}") from None


def _ips(ipam_result: dict) -> list[tuple[Prefix, IP | None]]:
    """(address with prefix, gateway) per IPAM address."""
    found = []
    try:
        for item in ipam_result.get("ips", []):
            gateway = item.get("gateway")
            found.append((Prefix.parse(item["address"]), IP.parse(gateway) if gateway else None))
    except (AddressError, KeyError, AttributeError) as exc:
        raise spec.CniError(spec.DECODE_FAILURE, f"IPAM result has an invalid address: {exc}") from None
    if not found:
        raise spec.CniError(spec.INVALID_CONFIG, "the IPAM plugin returned no addresses")
    return found


def ensure_bridge(host: netlink.Rtnl, conf: Config, *, gateways: list[Prefix]) -> netlink.Link:
    """The bridge, up, holding the gateway addresses; created when missing (racing ADDs both succeed)."""
    link = host.link(conf.bridge)
    if link is None:
        try:
            host.add_bridge(conf.bridge, mac=_random_mac(), mtu=conf.mtu)
        except netlink.NetlinkError as exc:
            if exc.errno != 17:  # EEXIST: a concurrent ADD made it first
                raise
        if conf.bridge_netfilter:  # bridged pod traffic through netfilter: service NAT for same-bridge pods
            for path in BRIDGE_NF_SYSCTLS:
                _ensure_sysctl(path)
        link = host.link(conf.bridge)
        if link is None:
            raise spec.CniError(spec.IO_FAILURE, f"bridge {conf.bridge} vanished after creation")
    if link.kind != "bridge":
        raise spec.CniError(spec.INVALID_CONFIG,
                            f"{conf.bridge} exists and is not a bridge (it is {link.kind or 'a device'})")
    if not link.up or conf.promisc:
        host.set_link(link.index, up=True, promisc=True if conf.promisc else None)
    for gateway in gateways:
        try:
            host.add_address(link.index, gateway, nodad=gateway.family == AF_INET6)
        except netlink.NetlinkError as exc:
            if exc.errno != 17:
                raise
    return link


def _routes(routes: list[dict], ips: list[tuple[Prefix, IP | None]]) -> list[tuple[Prefix, IP | None]]:
    """(destination, gateway) per result route; a route without "gw" goes via its family's gateway."""
    gateways = {address.family: gateway for address, gateway in ips if gateway is not None}
    parsed = []
    try:
        for route in routes:
            dst = Prefix.parse(route["dst"])
            parsed.append((dst, IP.parse(route["gw"]) if route.get("gw") else gateways.get(dst.family)))
    except (AddressError, KeyError, TypeError) as exc:
        raise spec.CniError(spec.DECODE_FAILURE, f"IPAM result has an invalid route: {exc}") from None
    return parsed


def _configure_pod(*, ifname: str, ips: list[tuple[Prefix, IP | None]],
                   routes: list[tuple[Prefix, IP | None]]) -> None:
    """Inside the pod's namespace: interface up, addresses, routes."""
    with netlink.Rtnl() as pod:
        link = pod.link(ifname)
        if link is None:
            raise spec.CniError(spec.IO_FAILURE, f"{ifname} did not appear in the pod's namespace")
        pod.set_link(link.index, up=True)
        for address, _gateway in ips:
            pod.add_address(link.index, address, nodad=address.family == AF_INET6)
        for dst, gateway in routes:
            try:
                pod.add_route(dst, gateway=gateway, oif=link.index)
            except netlink.NetlinkError as exc:
                if exc.errno != 17:
                    raise


def _plan_routes(conf: Config, ipam_result: dict,
                 ips: list[tuple[Prefix, IP | None]]) -> tuple[list[dict], list[tuple[Prefix, IP | None]]]:
    """The result's routes (IPAM's, plus default routes with isDefaultGateway) and their parsed form."""
    routes = list(ipam_result.get("routes", []))
    if conf.is_default_gateway:
        routes += [{"dst": DEFAULT_ROUTE[a.family], "gw": str(g)} for a, g in ips if g is not None]
    return routes, _routes(routes, ips)


def _attach_host_side(conf: Config, *, veth: str, ifname: str, pod_fd: int,
                      ips: list[tuple[Prefix, IP | None]]) -> tuple[netlink.Link, bytes, bytes]:
    """Bridge (ensured), sysctls, the veth with its peer born in the pod; (bridge, host MAC, pod MAC)."""
    host_mac, pod_mac = _random_mac(), _random_mac()
    with netlink.Rtnl() as host:
        gateways = [Prefix(g, a.length) for a, g in ips if g is not None] if conf.is_gateway else []
        bridge = ensure_bridge(host, conf, gateways=gateways)
        for family in {a.family for a, _ in ips} if conf.is_gateway else ():
            _ensure_sysctl(FORWARDING_SYSCTL[family])
        host.add_veth(veth, peer_name=ifname, peer_netns_fd=pod_fd, mac=host_mac, peer_mac=pod_mac,
                      mtu=conf.mtu, master=bridge.index)
        if conf.hairpin:
            port = host.link(veth)
            if port is not None:
                host.set_hairpin(port.index)
    return bridge, host_mac, pod_mac


def add(inv: spec.Invocation) -> dict:
    conf = Config(inv.config)
    try:
        pod_fd = netns.open_netns(inv.netns)
    except netns.NetnsError as exc:
        raise spec.CniError(spec.UNKNOWN_CONTAINER, spec.describe(exc)) from None
    host_fd = netns.current()
    veth = naming.host_veth_name(inv.network, container_id=inv.container_id, ifname=inv.ifname)
    try:
        with netlink.Rtnl() as host:
            if host.link(veth) is not None:  # so that undoing this call can never tear down another
                raise spec.CniError(spec.IO_FAILURE, f"{veth} exists: {inv.container_id}/{inv.ifname} is already "
                                                     f"attached to {inv.network} (DEL it first)")
        ipam_result = delegate.run(inv, "ADD") or {}
        try:
            ips = _ips(ipam_result)
            routes, pod_routes = _plan_routes(conf, ipam_result, ips)
            bridge, host_mac, pod_mac = _attach_host_side(conf, veth=veth, ifname=inv.ifname, pod_fd=pod_fd,
                                                          ips=ips)
            netns.enter(pod_fd)
            try:
                _configure_pod(ifname=inv.ifname, ips=ips, routes=pod_routes)
            finally:
                netns.enter(host_fd)
            if conf.masq:
                from cni import masquerade  # only when asked for: it brings nft and the process spawner along

                masquerade.ensure(inv.network, subnets=[a.masked() for a, _ in ips], exclude=conf.masq_exclude)
        except BaseException:
            _undo(inv, veth=veth)
            raise
    finally:
        posix.close(pod_fd)
        posix.close(host_fd)
    result = {
        "interfaces": [{"name": conf.bridge, "mac": _mac_text(bridge.mac)},
                       {"name": veth, "mac": _mac_text(host_mac)},
                       {"name": inv.ifname, "mac": _mac_text(pod_mac), "sandbox": inv.netns}],
        "ips": [{**item, "interface": 2} for item in ipam_result.get("ips", [])],
        "routes": routes,
        "dns": ipam_result.get("dns", {}),
    }
    return spec.format_result(result, inv.version)


def _undo(inv: spec.Invocation, *, veth: str) -> None:
    """Best effort: a failed ADD gives back its lease and its veth if it got that far (ADD checked that
    no veth of that name existed before); the original error is what counts."""
    try:
        with netlink.Rtnl() as host:
            host.delete_link(veth)
    except OSError:
        pass
    try:
        delegate.run(inv, "DEL")
    except (spec.CniError, OSError):
        pass


def delete(inv: spec.Invocation) -> None:
    """Free the leases and delete the host end of the veth (its peer goes with it); gone is fine."""
    Config(inv.config)
    delegate.run(inv, "DEL")
    with netlink.Rtnl() as host:
        host.delete_link(naming.host_veth_name(inv.network, container_id=inv.container_id, ifname=inv.ifname))


def check(inv: spec.Invocation) -> None:
    """The interfaces and addresses of prevResult are still in place, and the leases are still ours."""
    conf = Config(inv.config)
    prev = inv.prev_result
    if prev is None:
        raise spec.CniError(spec.INVALID_CONFIG, "CHECK needs prevResult")
    delegate.check(inv, prev)
    with netlink.Rtnl() as host:
        bridge = host.link(conf.bridge)
        if bridge is None or bridge.kind != "bridge" or not bridge.up:
            raise spec.CniError(spec.CHECK_FAILED, f"bridge {conf.bridge} is missing or down")
        veth = naming.host_veth_name(inv.network, container_id=inv.container_id, ifname=inv.ifname)
        port = host.link(veth)
        if port is None or port.master != bridge.index:
            raise spec.CniError(spec.CHECK_FAILED, f"host interface {veth} is missing or not on {conf.bridge}")
    interfaces = prev.get("interfaces", [])
    index = next((i for i, item in enumerate(interfaces) if item.get("name") == inv.ifname and item.get("sandbox")),
                 None)
    if index is None:
        raise spec.CniError(spec.CHECK_FAILED, f"prevResult lists no sandbox interface {inv.ifname}")
    try:
        expected = [Prefix.parse(item["address"]) for item in prev.get("ips", []) if item.get("interface") == index]
    except (AddressError, KeyError, TypeError) as exc:
        raise spec.CniError(spec.INVALID_CONFIG, f"prevResult has an invalid address: {exc}") from None
    try:
        pod_fd = netns.open_netns(inv.netns)
    except netns.NetnsError as exc:
        raise spec.CniError(spec.UNKNOWN_CONTAINER, spec.describe(exc)) from None
    host_fd = netns.current()
    try:
        netns.enter(pod_fd)
        try:
            with netlink.Rtnl() as pod:
                link = pod.link(inv.ifname)
                present = pod.addresses(link.index) if link is not None else []
        finally:
            netns.enter(host_fd)
    finally:
        posix.close(pod_fd)
        posix.close(host_fd)
    if link is None or not link.up:
        raise spec.CniError(spec.CHECK_FAILED, f"{inv.ifname} is missing or down in {inv.netns}")
    if interfaces[index].get("mac") and str(interfaces[index]["mac"]).lower() != link.mac_text:
        raise spec.CniError(spec.CHECK_FAILED, f"{inv.ifname} has MAC {link.mac_text}, not {interfaces[index]['mac']}")
    missing = [str(address) for address in expected if address not in present]
    if missing:
        raise spec.CniError(spec.CHECK_FAILED, f"{inv.ifname} lacks {', '.join(missing)}")
    if conf.masq:
        from cni import masquerade

        if not masquerade.present(inv.network):
            raise spec.CniError(spec.CHECK_FAILED, f"masquerade chain for network {inv.network} is missing")


def gc(inv: spec.Invocation) -> None:
    """Release stale leases (IPAM GC) and delete our veths on the bridge that no valid attachment owns."""
    conf = Config(inv.config)
    keep = {naming.host_veth_name(inv.network, container_id=cid, ifname=ifname)
            for cid, ifname in inv.valid_attachments()}
    delegate.run(inv, "GC")
    with netlink.Rtnl() as host:
        bridge = host.link(conf.bridge)
        if bridge is None:
            return
        for link in host.links():
            if link.master == bridge.index and naming.is_host_veth_name(link.name) and link.name not in keep:
                host.delete_link(link.name)


def status(inv: spec.Invocation) -> None:
    Config(inv.config)
    delegate.run(inv, "STATUS")
