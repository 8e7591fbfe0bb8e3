"""The portmap plugin (type ``pinnace-portmap``, chained after the bridge): hostPort → pod port DNAT.

All mappings of the node live in one nftables table, ``inet pinnace_portmap``, as elements of maps —
no rule per pod:

- ``ports4``/``ports6``: ``protocol . hostPort → podIP . containerPort`` (any local address);
- ``ports4_ip``/``ports6_ip``: the same keyed by ``hostIP`` too, for mappings bound to one address;
- ``hairpin4``/``hairpin6``: pod addresses whose own DNATed connections (a pod reaching itself via
  its hostPort) are masqueraded, so replies return through the host (the reference plugin's ``snat``).

Fixed rules send packets to a local address (``fib daddr type local``; from outside via prerouting,
from the node itself via output, loopback excepted) through a ``hostports`` chain that looks the
maps up. Each element carries a comment naming its owner, ``<network>/<container id>/<ifname>``
(``cni.naming``), so DEL and GC find a pod's elements from the ids alone. ADD is one nft
transaction (rules re-asserted, elements added: a port another pod holds fails the whole batch);
DEL lists the table and deletes the owner's elements in one more. ADD returns prevResult unchanged.
"""

from __future__ import annotations

from cni import naming, nft, spec
from cni.ipnet import AF_INET, AF_INET6, IP, AddressError, Prefix

TABLE = "pinnace_portmap"
PROTOCOLS = ("tcp", "udp", "sctp")
FAMILY_SUFFIX = {AF_INET: "4", AF_INET6: "6"}
# name → nftables type, for the table's maps and sets
MAPS = {
    "ports4": "inet_proto . inet_service : ipv4_addr . inet_service",
    "ports4_ip": "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
    "ports6": "inet_proto . inet_service : ipv6_addr . inet_service",
    "ports6_ip": "ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service",
}
SETS = {"hairpin4": "ipv4_addr", "hairpin6": "ipv6_addr"}
BASE_CHAINS = {"prerouting": "prerouting priority dstnat", "output": "output priority -100",
               "postrouting": "postrouting priority srcnat"}
# the fixed rules, written exactly as ``nft list`` prints them back (so a healthy table is left alone)
RULES = (
    ("prerouting", "fib daddr type local jump hostports"),
    ("output", "ip daddr != 127.0.0.0/8 fib daddr type local jump hostports"),
    ("output", "ip6 daddr != ::1 fib daddr type local jump hostports"),
    ("postrouting", "ct status dnat ip saddr @hairpin4 ip daddr @hairpin4 masquerade"),
    ("postrouting", "ct status dnat ip6 saddr @hairpin6 ip6 daddr @hairpin6 masquerade"),
    ("hostports", "dnat ip to ip daddr . meta l4proto . th dport map @ports4_ip"),
    ("hostports", "meta nfproto ipv4 dnat ip to meta l4proto . th dport map @ports4"),
    ("hostports", "dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_ip"),
    ("hostports", "meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @ports6"),
)
# reference portmap fields we do not implement: refused (code 2) when set
UNSUPPORTED_FIELDS = ("markMasqBit", "externalSetMarkChain", "conditionsV4", "conditionsV6")


class Mapping:
    __slots__ = ("container_port", "host_ip", "host_port", "protocol")

    def __init__(self, item: object) -> None:
        if not isinstance(item, dict):
            raise spec.CniError(spec.INVALID_CONFIG, "each portMappings item must be an object")
        self.host_port = _port(item.get("hostPort"), "hostPort")
        self.container_port = _port(item.get("containerPort"), "containerPort")
        protocol = item.get("protocol") or "tcp"
        self.protocol = protocol.lower() if isinstance(protocol, str) else protocol
        if self.protocol not in PROTOCOLS:
            raise spec.CniError(spec.INVALID_CONFIG, f"portMappings protocol {protocol!r} is not tcp, udp or sctp")
        host_ip = item.get("hostIP") or ""
        try:
            self.host_ip = IP.parse(host_ip) if host_ip not in ("", "0.0.0.0", "::") else None
        except AddressError as exc:
            raise spec.CniError(spec.INVALID_CONFIG, f"portMappings hostIP: {exc}") from None

    @property
    def key(self) -> str:
        """The map key in nft syntax: "proto . port", with "hostIP . " in front when bound to one address."""
        key = f"{self.protocol} . {self.host_port}"
        return key if self.host_ip is None else f"{self.host_ip} . {key}"


def _port(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise spec.CniError(spec.INVALID_CONFIG, f"portMappings {field} {value!r} must be 1-65535")
    return value


def mappings(config: dict) -> list[Mapping]:
    for field in UNSUPPORTED_FIELDS:
        if config.get(field):
            raise spec.CniError(spec.UNSUPPORTED_FIELD,
                                f"{field}={config[field]!r} is not supported by pinnace-portmap")
    snat = config.get("snat", True)
    if not isinstance(snat, bool):
        raise spec.CniError(spec.INVALID_CONFIG, "snat must be true or false")
    runtime = config.get("runtimeConfig") or {}
    items = runtime.get("portMappings", []) if isinstance(runtime, dict) else None
    if not isinstance(items, list):
        raise spec.CniError(spec.INVALID_CONFIG, "runtimeConfig.portMappings must be a list")
    return [Mapping(item) for item in items]


def pod_addresses(prev: dict) -> dict[int, IP]:
    """The first pod address per family from prevResult (addresses of sandbox interfaces)."""
    interfaces = prev.get("interfaces") or []
    found: dict[int, IP] = {}
    for item in prev.get("ips") or []:
        index = item.get("interface")
        if isinstance(index, int) and 0 <= index < len(interfaces) and not interfaces[index].get("sandbox"):
            continue
        try:
            ip = Prefix.parse(item.get("address")).ip
        except AddressError as exc:
            raise spec.CniError(spec.INVALID_CONFIG, f"prevResult: {exc}") from None
        found.setdefault(ip.family, ip)
    return found


def expected_chains() -> dict[str, list[str]]:
    chains: dict[str, list[str]] = {name: [] for name in (*BASE_CHAINS, "hostports")}
    for chain, rule in RULES:
        chains[chain].append(rule)
    return chains


def setup_needed() -> bool:
    """Whether the table, its chains or their rules differ from ours (listing is ~2 ms; rewriting ~15)."""
    return nft.chain_rules("inet", TABLE) != expected_chains()


def setup_script() -> list[str]:
    """Table, maps, sets, chains and fixed rules: applied when ``setup_needed``, so a damaged table heals."""
    lines = [f"add table inet {TABLE}"]
    lines += [f"add map inet {TABLE} {name} {{ type {kind}; }}" for name, kind in MAPS.items()]
    lines += [f"add set inet {TABLE} {name} {{ type {kind}; }}" for name, kind in SETS.items()]
    for name, hook in BASE_CHAINS.items():
        lines.append(f"add chain inet {TABLE} {name} {{ type nat hook {hook}; policy accept; }}")
    lines.append(f"add chain inet {TABLE} hostports")
    lines += [f"flush chain inet {TABLE} {name}" for name in (*BASE_CHAINS, "hostports")]
    lines += [f"add rule inet {TABLE} {chain} {rule}" for chain, rule in RULES]
    return lines


def element_lines(*, owner: str, items: list[Mapping], pods: dict[int, IP], snat: bool) -> list[str]:
    """``add element`` commands for one pod's mappings (and its hairpin entry)."""
    tag = nft.comment(owner)
    lines = []
    for family, pod in sorted(pods.items()):
        suffix = FAMILY_SUFFIX[family]
        for m in items:
            if m.host_ip is not None and m.host_ip.family != family:
                continue
            name = f"ports{suffix}" if m.host_ip is None else f"ports{suffix}_ip"
            lines.append(f"add element inet {TABLE} {name} {{ {m.key} comment {tag} : {pod} . {m.container_port} }}")
        if snat and items:
            lines.append(f"add element inet {TABLE} hairpin{suffix} {{ {pod} comment {tag} }}")
    return lines


def _elements(table: list[dict]) -> list[tuple[str, str, str]]:
    """(map or set name, key in nft syntax, comment) of every commented element in the listed table."""
    found = []
    for item in table:
        container = item.get("map") or item.get("set")
        if not container or container.get("name") not in (*MAPS, *SETS):
            continue
        for elem in container.get("elem") or []:
            key = elem[0] if isinstance(elem, list) else elem
            if isinstance(key, dict) and "elem" in key:
                found.append((container["name"], _key_text(key["elem"].get("val")), key["elem"].get("comment", "")))
    return found


def _key_text(value: object) -> str:
    """Re-render a listed key for a delete command, validating each part (no syntax from the listing)."""
    parts = value["concat"] if isinstance(value, dict) and "concat" in value else [value]
    rendered = []
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            rendered.append(str(part))
        elif part in PROTOCOLS:
            rendered.append(part)
        else:
            rendered.append(str(IP.parse(part)))
    return " . ".join(rendered)


def _delete_where(keep: object) -> None:
    """Delete every element whose comment ``keep`` rejects (one transaction; retried once on a race)."""
    for attempt in range(2):
        table = nft.list_table("inet", TABLE)
        if table is None:
            return
        doomed = [(name, key) for name, key, comment in _elements(table) if not keep(comment)]
        if not doomed:
            return
        try:
            nft.apply("".join(f"delete element inet {TABLE} {name} {{ {key} }}\n" for name, key in doomed))
            return
        except nft.NftError:
            if attempt:
                raise


def add(inv: spec.Invocation) -> dict:
    prev = inv.prev_result
    if prev is None:
        raise spec.CniError(spec.INVALID_CONFIG, "pinnace-portmap must be chained after a plugin that gives prevResult")
    items = mappings(inv.config)
    if items:
        pods = pod_addresses(prev)
        if not pods:
            raise spec.CniError(spec.INVALID_CONFIG, "prevResult has no pod address to map ports to")
        owner = naming.owner_tag(inv.network, container_id=inv.container_id, ifname=inv.ifname)
        lines = (setup_script() if setup_needed() else []) + element_lines(
            owner=owner, items=items, pods=pods, snat=inv.config.get("snat", True))
        try:
            nft.apply("\n".join(lines) + "\n")
        except nft.NftError as exc:
            if "File exists" in str(exc):
                ports = ", ".join(m.key for m in items)
                raise spec.CniError(spec.IO_FAILURE, f"a hostPort of {ports} is already mapped to another pod "
                                                     f"(nothing was mapped): {exc}") from None
            raise
    return spec.format_result(prev, inv.version)


def delete(inv: spec.Invocation) -> None:
    owner = naming.owner_tag(inv.network, container_id=inv.container_id, ifname=inv.ifname)
    _delete_where(lambda comment: comment != owner)


def check(inv: spec.Invocation) -> None:
    if inv.prev_result is None:
        raise spec.CniError(spec.INVALID_CONFIG, "CHECK needs prevResult")
    items = mappings(inv.config)
    if not items:
        return
    owner = naming.owner_tag(inv.network, container_id=inv.container_id, ifname=inv.ifname)
    table = nft.list_table("inet", TABLE) or []
    present = {key for name, key, comment in _elements(table) if comment == owner and name.startswith("ports")}
    for m in items:
        if m.key not in present:
            raise spec.CniError(spec.CHECK_FAILED, f"hostPort {m.key} is not mapped to {inv.container_id}")


def gc(inv: spec.Invocation) -> None:
    """Delete this network's elements whose owner is not among the valid attachments."""
    prefix = naming.network_tag(inv.network) + "/"
    keep = {naming.owner_tag(inv.network, container_id=cid, ifname=ifname) for cid, ifname in inv.valid_attachments()}
    _delete_where(lambda comment: not comment.startswith(prefix) or comment in keep)


def status(inv: spec.Invocation) -> None:
    mappings(inv.config)
