"""The model (proxy/model.py) as one nftables table, and the nft transaction that gets the kernel there.

Pure functions, no I/O: ``ruleset`` lays the table out the way kube-proxy's nftables mode does, and
``full_script``/``diff_script`` write the one ``nft -f`` transaction a sync applies.

Layout (table ``ip <name>``, default ``pinnace-proxy``):

- base chains: ``nat-prerouting`` and ``nat-output`` jump to ``services``; ``nat-postrouting`` to
  ``masquerading``; ``filter-input/forward/output`` (priority -110, before NAT) send new connections
  through ``service-endpoints-check``, which rejects (ICMP port-unreachable, ECONNREFUSED for TCP)
  connections to a service port without endpoints, so clients fail at once instead of timing out;
- ``services``: ``ip daddr . meta l4proto . th dport vmap @service-ips`` (ClusterIPs and external
  IPs), and for the node's own addresses (set ``nodeport-ips``) ``meta l4proto . th dport vmap
  @service-nodeports``;
- ``service-<hash>-<ns/name/proto/port>``: marks for masquerade traffic from outside the cluster CIDR
  and not from the node itself (all traffic with ``masquerade_all``), then with sessionAffinity
  ClientIP a lookup in each endpoint's affinity set, then ``numgen random mod N vmap`` over the
  endpoints;
- ``external-…`` (NodePort, externalIPs, load-balancer ingress IPs): marks for masquerade and goes
  to the service chain; with externalTrafficPolicy Local, traffic from outside goes to ``local-…``
  (local endpoints only, no SNAT, dropped when there are none) and only the node's own traffic uses
  the cluster chain;
- ``endpoint-…__<ip>/<port>``: marks hairpin traffic (a pod reaching itself) for masquerade, records
  the client in the affinity set (a dynamic set with the service's timeout), and DNATs;
- ``mark-for-masquerade`` sets bit 0x4000; ``masquerading`` masquerades marked packets.

Return traffic between pods on one bridge does not cross the host's IP stack, so un-DNAT relies on
br_netfilter (``net.bridge.bridge-nf-call-iptables=1``, which proxy/main.py sets) unless
``masquerade_all`` is on.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from proxy.model import Endpoint, ServicePort

MASQ_BIT = "0x00004000"
SERVICE_MAP = "ipv4_addr . inet_proto . inet_service : verdict"
PORT_MAP = "inet_proto . inet_service : verdict"
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")

# base chain name -> its declaration and fixed rules
BASE_CHAINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nat-prerouting": ("type nat hook prerouting priority dstnat; policy accept;", ("jump services",)),
    "nat-output": ("type nat hook output priority -100; policy accept;", ("jump services",)),
    "nat-postrouting": ("type nat hook postrouting priority srcnat; policy accept;", ("jump masquerading",)),
    "filter-input": ("type filter hook input priority -110; policy accept;",
                     ("ct state new jump service-endpoints-check",)),
    "filter-forward": ("type filter hook forward priority -110; policy accept;",
                       ("ct state new jump service-endpoints-check",)),
    "filter-output": ("type filter hook output priority -110; policy accept;",
                      ("ct state new jump service-endpoints-check",)),
    "service-endpoints-check": ("", ("ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
                                     "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports")),
    "reject-chain": ("", ("reject",)),
    "services": ("", ("ip daddr . meta l4proto . th dport vmap @service-ips",
                      "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")),
    "mark-for-masquerade": ("", (f"meta mark set meta mark or {MASQ_BIT}",)),
    "masquerading": ("", (f"meta mark & {MASQ_BIT} == 0 return", f"meta mark set meta mark xor {MASQ_BIT}",
                          "masquerade fully-random")),
}
MAPS = {"service-ips": SERVICE_MAP, "service-nodeports": PORT_MAP,
        "no-endpoint-services": SERVICE_MAP, "no-endpoint-nodeports": PORT_MAP}


@dataclass(frozen=True)
class Config:
    """Node-level settings the rules depend on."""

    table: str = "pinnace-proxy"
    node_name: str | None = None
    node_ips: tuple[str, ...] = ()
    cluster_cidr: str | None = None
    masquerade_all: bool = False

    def __post_init__(self) -> None:
        if not _TABLE_NAME.match(self.table):
            raise ValueError(f"invalid nftables table name {self.table!r}")
        for ip in self.node_ips:
            if ipaddress.ip_address(ip).version != 4:
                raise ValueError(f"node IP {ip!r} is not IPv4")
        if self.cluster_cidr is not None:
            ipaddress.IPv4Network(self.cluster_cidr, strict=False)


@dataclass
class Ruleset:
    """The table's intended content: chain -> (declaration, rules), affinity sets, maps -> elements."""

    table: str
    chains: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    sets: dict[str, str] = field(default_factory=dict)  # name -> declaration
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # map or set -> key -> value

    def prefix(self) -> str:
        return f"ip {self.table}"


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:8]


def _names(sp: ServicePort) -> tuple[str, str, str]:
    h = _hash(sp.key)
    return f"service-{h}-{sp.key}", f"external-{h}-{sp.key}", f"local-{h}-{sp.key}"


def _endpoint_names(sp: ServicePort, ip: str, port: int) -> tuple[str, str]:
    suffix = f"{sp.key}__{ip}/{port}"
    return f"endpoint-{_hash(suffix)}-{suffix}", f"affinity-{_hash(f'{suffix}/{sp.affinity_timeout}')}-{suffix}"


def _balance(rs: Ruleset, sp: ServicePort, endpoints: tuple[Endpoint, ...]) -> list[str]:
    """Affinity lookups then a random pick; the endpoint chains (and sets) are added to ``rs``."""
    rules, targets = [], []
    for ep in endpoints:
        chain, affinity = _endpoint_names(sp, ep.ip, ep.port)
        targets.append(chain)
        ep_rules = [f"ip saddr {ep.ip} jump mark-for-masquerade"]
        if sp.affinity_timeout:
            rs.sets[affinity] = f"type ipv4_addr; flags dynamic,timeout; timeout {sp.affinity_timeout}s;"
            ep_rules.append(f"update @{affinity} {{ ip saddr }}")
            rules.append(f"ip saddr @{affinity} goto {chain}")
        ep_rules.append(f"meta l4proto {sp.protocol} dnat to {ep.ip}:{ep.port}")
        rs.chains[chain] = ("", tuple(ep_rules))
    picks = ", ".join(f"{i} : goto {chain}" for i, chain in enumerate(targets))
    rules.append(f"numgen random mod {len(targets)} vmap {{ {picks} }}")
    return rules


def ruleset(model: list[ServicePort], config: Config) -> Ruleset:
    """The whole table for ``model`` on this node."""
    rs = Ruleset(table=config.table, chains=dict(BASE_CHAINS))
    elems: dict[str, dict[str, str]] = {name: {} for name in MAPS}
    elems["nodeport-ips"] = {ip: "" for ip in config.node_ips}
    for sp in model:
        service, external, local = _names(sp)
        match = f"ip daddr {sp.cluster_ip} {sp.protocol} dport {sp.port}"
        masq: tuple[str, ...] = ()
        if config.masquerade_all:
            masq = (f"{match} jump mark-for-masquerade",)
        elif config.cluster_cidr:
            # the node's own traffic is left alone: replies come back to it anyway, and SNAT would cap
            # new connections at the port range per conntrack TIME_WAIT period (bench/services)
            masq = (f"{match} ip saddr != {config.cluster_cidr} fib saddr type != local jump mark-for-masquerade",)
        port_keys = [f"{sp.protocol} . {sp.node_port}"] if sp.node_port is not None else []
        ip_keys = [f"{ip} . {sp.protocol} . {sp.port}" for ip in sp.external_ips]
        key = f"{sp.cluster_ip} . {sp.protocol} . {sp.port}"
        all_eps = sp.usable()
        if not all_eps:  # nothing anywhere: every way in is refused
            elems["no-endpoint-services"].update(dict.fromkeys([key, *ip_keys], "goto reject-chain"))
            elems["no-endpoint-nodeports"].update(dict.fromkeys(port_keys, "goto reject-chain"))
            continue
        rs.chains[service] = ("", (*masq, *_balance(rs, sp, all_eps)))
        external_ways = bool(port_keys or ip_keys)
        if sp.internal_local or (sp.external_local and external_ways):
            # local endpoints only; traffic for a policy-Local service with none here is dropped
            local_eps = sp.usable(node=config.node_name)
            rs.chains[local] = ("", (*masq, *_balance(rs, sp, local_eps)) if local_eps else ("drop",))
        elems["service-ips"][key] = f"goto {local if sp.internal_local else service}"
        if not external_ways:
            continue
        if sp.external_local:
            rs.chains[external] = ("", ("fib saddr type local jump mark-for-masquerade",
                                        f"fib saddr type local goto {service}", f"goto {local}"))
        else:
            rs.chains[external] = ("", ("jump mark-for-masquerade", f"goto {service}"))
        elems["service-nodeports"].update(dict.fromkeys(port_keys, f"goto {external}"))
        elems["service-ips"].update(dict.fromkeys(ip_keys, f"goto {external}"))
    rs.sets["nodeport-ips"] = "type ipv4_addr;"
    rs.elements = elems
    return rs


def _element(key: str, value: str) -> str:
    return f"{key} : {value}" if value else key


def _element_lines(prefix: str, name: str, items: list[str], *, verb: str = "add", batch: int = 1000) -> list[str]:
    return [f"{verb} element {prefix} {name} {{ {', '.join(items[i:i + batch])} }}"
            for i in range(0, len(items), batch)]


def _declarations(rs: Ruleset, chains: list[str], sets: list[str]) -> list[str]:
    p = rs.prefix()
    lines = [f"add chain {p} {c} {{ {rs.chains[c][0]} }}" if rs.chains[c][0] else f"add chain {p} {c}"
             for c in chains]
    lines += [f"add set {p} {s} {{ {rs.sets[s]} }}" for s in sets]
    return lines


def _rules(rs: Ruleset, chains: list[str]) -> list[str]:
    p = rs.prefix()
    return [f"add rule {p} {c} {rule}" for c in chains for rule in rs.chains[c][1]]


def full_script(rs: Ruleset, *, existing_chains: AbstractSet[str] = frozenset(),
                existing_sets: AbstractSet[str] = frozenset()) -> str:
    """Rewrite the whole table in one transaction; objects listed as existing but unwanted are deleted.

    Affinity sets that stay keep their members (``add set`` leaves an existing set alone), so a
    restart or full resync does not move pinned clients.
    """
    p = rs.prefix()
    lines = [f"add table {p}", f"flush table {p}"]
    lines += _declarations(rs, sorted(rs.chains), sorted(rs.sets))
    for name, decl in MAPS.items():
        lines += [f"add map {p} {name} {{ type {decl}; }}", f"flush map {p} {name}"]
    lines.append(f"flush set {p} nodeport-ips")
    lines += _rules(rs, sorted(rs.chains))
    for name, items in rs.elements.items():
        lines += _element_lines(p, name, [_element(k, v) for k, v in sorted(items.items())])
    lines += [f"delete chain {p} {c}" for c in sorted(set(existing_chains) - rs.chains.keys())]
    lines += [f"delete set {p} {s}" for s in sorted(set(existing_sets) - rs.sets.keys() - MAPS.keys())]
    return "\n".join(lines) + "\n"


def diff_script(old: Ruleset, new: Ruleset) -> str:
    """The transaction taking a table that holds ``old`` to ``new``, touching only what changed ("" if nothing)."""
    p = new.prefix()
    added = sorted(new.chains.keys() - old.chains.keys())
    removed = sorted(old.chains.keys() - new.chains.keys())
    changed = sorted(c for c in new.chains.keys() & old.chains.keys() if new.chains[c] != old.chains[c])
    lines = _declarations(new, added, sorted(new.sets.keys() - old.sets.keys()))
    additions: list[str] = []
    for name in sorted(new.elements.keys() | old.elements.keys()):
        before, after = old.elements.get(name, {}), new.elements.get(name, {})
        gone = sorted(k for k in before if before[k] != after.get(k))
        fresh = sorted(k for k in after if before.get(k) != after[k])
        lines += _element_lines(p, name, gone, verb="delete")
        additions += _element_lines(p, name, [_element(k, after[k]) for k in fresh])
    lines += [f"flush chain {p} {c}" for c in changed + removed]
    lines += _rules(new, added + changed)
    lines += additions
    lines += [f"delete chain {p} {c}" for c in removed]
    lines += [f"delete set {p} {s}" for s in sorted(old.sets.keys() - new.sets.keys())]
    return "\n".join(lines) + "\n" if lines else ""
