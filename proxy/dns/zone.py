"""The cluster's DNS records, kept from Services, EndpointSlices (and Pods in "verified" mode).

This is the part of the cluster DNS that knows Kubernetes: the informers feed objects in through
``set_*``/``delete_*`` and the server asks ``lookup``. It follows the record set of the DNS
specification for Kubernetes as CoreDNS's kubernetes plugin serves it:

- ``<svc>.<ns>.svc.<domain>``: A/AAAA = the ClusterIPs; for a headless Service, one per ready
  endpoint; ExternalName Services a CNAME;
- ``<host>.<svc>.<ns>.svc.<domain>`` for each endpoint of a headless Service (``host`` = its
  hostname, else its IP with dashes);
- ``_<port>._<proto>.<svc>.<ns>.svc.<domain>`` SRV for named ports (the bare service name also
  answers SRV for every port);
- ``<a-b-c-d>.<ns>.pod.<domain>`` A (insecure mode answers any IP, verified mode only pod IPs);
- PTR for ClusterIPs and headless endpoint IPs;
- NXDOMAIN with the zone's SOA for unknown names, NODATA for names that exist with other types.

When a Service or one of its slices changes, that Service's records are marked stale and rebuilt
at the next lookup (a burst of events costs one rebuild); otherwise a lookup is a dict access.
Names are matched case-insensitively.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.dns import wire

#: record TTL, as CoreDNS's kubernetes plugin (its ``ttl`` option defaults to 5 seconds)
TTL = 5
#: SOA timers CoreDNS uses for the cluster zone
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400
POD_MODES = ("insecure", "verified", "disabled")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_REVERSE_SUFFIXES = (".in-addr.arpa", ".ip6.arpa")

Obj = Mapping[str, Any]
ServiceKey = tuple[str, str]


@dataclass
class Answer:
    """What the zone says about one question; ``records`` use lower-case owner names."""

    rcode: int = wire.NOERROR
    answers: list[wire.Record] = field(default_factory=list)
    authority: list[wire.Record] = field(default_factory=list)
    additional: list[wire.Record] = field(default_factory=list)


@functools.lru_cache(maxsize=1 << 16)
def canonical_ip(ip: str) -> tuple[int, str] | None:
    """(record type, canonical text) of an IP address, None if it is not one; C parsing and a cache,
    since a large headless Service's rebuild parses thousands of addresses."""
    for family, rtype in ((socket.AF_INET, wire.A), (socket.AF_INET6, wire.AAAA)):
        try:
            return rtype, socket.inet_ntop(family, socket.inet_pton(family, ip))
        except (OSError, ValueError):
            continue
    return None


@functools.lru_cache(maxsize=1 << 16)
def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def _meta(obj: Obj) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return str(md.get("namespace") or ""), str(md.get("name") or "")


def _ip_record(name: str, ip: str) -> wire.Record | None:
    found = canonical_ip(ip)
    return wire.Record(name, found[0], TTL, found[1]) if found is not None else None


def _srv_records(name: str, targets: list[tuple[int, str]]) -> list[wire.Record]:
    """SRV records sharing the weight equally, as CoreDNS does (100 split over the targets)."""
    unique = sorted(set(targets), key=lambda t: (t[1], t[0]))
    weight = max(1, 100 // max(1, len(unique)))
    return [wire.Record(name, wire.SRV, TTL, wire.Srv(0, weight, port, target)) for port, target in unique]


class Zone:
    """The records of the cluster domain, rebuilt per Service as objects change."""

    def __init__(self, *, domain: str = "cluster.local", dns_ip: str | None = None,
                 pods: str = "insecure") -> None:
        if pods not in POD_MODES:
            raise ValueError(f"pods mode must be one of {', '.join(POD_MODES)}, not {pods!r}")
        labels = wire.name_labels(domain.strip("."))
        if not labels:
            raise ValueError("the cluster domain must not be the root")
        self.domain = domain.strip(".").lower()
        self.pods = pods
        self.dns_ip = dns_ip
        #: False until the informers have listed; cluster questions get SERVFAIL meanwhile
        self.ready = False
        self.serial = int(time.time()) & 0xFFFFFFFF
        #: bumped on every change (answer caches key on it)
        self.generation = 0
        self._suffix = "." + self.domain
        self._services: dict[ServiceKey, Obj] = {}
        self._slices: dict[ServiceKey, tuple[str, Obj]] = {}  # (ns, slice) -> (service, slice)
        self._slices_of: dict[ServiceKey, set[str]] = {}
        self._owned: dict[ServiceKey, dict[str, list[wire.Record]]] = {}  # service -> its records by name
        self._by_name: dict[str, dict[ServiceKey, list[wire.Record]]] = {}  # name -> services' records
        self._dirty: set[ServiceKey] = set()
        self._tree: dict[ServiceKey, set[str]] = {}  # service -> its names and their parents
        self._names: Counter[str] = Counter()  # how many services hold each of those names
        self._pod_ips: dict[ServiceKey, tuple[str, ...]] = {}
        self._pod_ip_count: Counter[tuple[str, str]] = Counter()
        self._soa = self._make_soa()

    def _make_soa(self) -> wire.Record:
        soa = wire.Soa(f"ns.dns.{self.domain}", f"hostmaster.{self.domain}", self.serial,
                       SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, TTL)
        return wire.Record(self.domain, wire.SOA, TTL, soa)

    # -- feeding ----------------------------------------------------------------------------------

    def set_service(self, svc: Obj) -> None:
        key = _meta(svc)
        self._services[key] = svc
        self._touch(key)

    def delete_service(self, svc: Obj) -> None:
        key = _meta(svc)
        self._services.pop(key, None)
        self._touch(key)

    def set_slice(self, eps: Obj) -> None:
        ns, name = _meta(eps)
        owner = str(((eps.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) or "")
        old = self._slices.get((ns, name))
        if old is not None and old[0] != owner:
            self.delete_slice(eps)
        if not owner:
            return
        self._slices[(ns, name)] = (owner, eps)
        self._slices_of.setdefault((ns, owner), set()).add(name)
        self._touch((ns, owner))

    def delete_slice(self, eps: Obj) -> None:
        ns, name = _meta(eps)
        old = self._slices.pop((ns, name), None)
        if old is None:
            return
        names = self._slices_of.get((ns, old[0]), set())
        names.discard(name)
        if not names:
            self._slices_of.pop((ns, old[0]), None)
        self._touch((ns, old[0]))

    def set_pod(self, pod: Obj) -> None:
        key = _meta(pod)
        status = pod.get("status") or {}
        ips = tuple(str(p.get("ip")) for p in status.get("podIPs") or () if p.get("ip"))
        if not ips and status.get("podIP"):
            ips = (str(status["podIP"]),)
        self._forget_pod(key)
        if ips:
            self._pod_ips[key] = ips
            for ip in ips:
                self._pod_ip_count[(key[0], ip)] += 1
        self.generation += 1

    def delete_pod(self, pod: Obj) -> None:
        self._forget_pod(_meta(pod))
        self.generation += 1

    def _forget_pod(self, key: ServiceKey) -> None:
        for ip in self._pod_ips.pop(key, ()):
            self._pod_ip_count[(key[0], ip)] -= 1
            if self._pod_ip_count[(key[0], ip)] <= 0:
                del self._pod_ip_count[(key[0], ip)]

    # -- building ---------------------------------------------------------------------------------

    def _touch(self, key: ServiceKey) -> None:
        """Mark a Service's records stale; they are rebuilt at the next lookup, so a burst of
        events (the first list, a rollout touching many slices) costs one rebuild, not one each."""
        self._dirty.add(key)
        self.generation += 1

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            self._rebuild(key)
        self.serial = (self.serial + 1) & 0xFFFFFFFF
        self._soa = self._make_soa()

    def _rebuild(self, key: ServiceKey) -> None:
        """Replace the records of one Service: work in proportion to its own records only."""
        for name in self._owned.pop(key, {}):
            owners = self._by_name[name]
            del owners[key]
            if not owners:
                del self._by_name[name]
        for name in self._tree.pop(key, ()):
            self._names[name] -= 1
            if self._names[name] <= 0:
                del self._names[name]
        svc = self._services.get(key)
        grouped: dict[str, list[wire.Record]] = {}
        for rec in self._service_records(key, svc) if svc is not None else ():
            grouped.setdefault(rec.name, []).append(rec)
        if grouped:
            self._owned[key] = grouped
            self._tree[key] = tree = self._with_parents(grouped)
            self._names.update(tree)
        for name, records in grouped.items():
            self._by_name.setdefault(name, {})[key] = records

    def _records(self, name: str) -> list[wire.Record]:
        owners = self._by_name.get(name)
        if not owners:
            return []
        if len(owners) == 1:
            return next(iter(owners.values()))
        return [r for records in owners.values() for r in records]

    def _with_parents(self, names: Iterable[str]) -> set[str]:
        """The names inside the domain and all their parents below the apex (the names that exist,
        for telling NODATA from NXDOMAIN); a walk up stops at the first parent already seen."""
        out: set[str] = set()
        for name in names:
            if not name.endswith(self._suffix):
                continue  # reverse names
            while name != self.domain and name not in out:
                out.add(name)
                name = name.partition(".")[2]
        return out

    def _service_records(self, key: ServiceKey, svc: Obj) -> list[wire.Record]:
        ns, name = key
        base = f"{name}.{ns}.svc.{self.domain}".lower()
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").strip(".")
            return [wire.Record(base, wire.CNAME, TTL, target)] if target else []
        if spec.get("clusterIP") == "None":
            return self._headless_records(key, base, publish_not_ready=bool(spec.get("publishNotReadyAddresses")))
        ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip]
        return self._cluster_ip_records(base, ips=ips, ports=spec.get("ports") or ())  # none yet: no records

    def _cluster_ip_records(self, base: str, *, ips: list[str], ports: Iterable[Obj]) -> list[wire.Record]:
        if not ips:
            return []
        out = [r for ip in ips if (r := _ip_record(base, ip)) is not None]
        out += [wire.Record(reverse_name(r.data), wire.PTR, TTL, base) for r in list(out)]
        all_ports: list[tuple[int, str]] = []
        for port in ports:
            number = int(port.get("port") or 0)
            all_ports.append((number, base))
            if port.get("name"):
                proto = str(port.get("protocol") or "TCP").lower()
                out += _srv_records(f"_{port['name']}._{proto}.{base}".lower(), [(number, base)])
        return out + _srv_records(base, all_ports) if all_ports else out

    def _headless_records(self, key: ServiceKey, base: str, *, publish_not_ready: bool) -> list[wire.Record]:
        out: list[wire.Record] = []
        srv: dict[str, list[tuple[int, str]]] = {}
        seen: set[tuple[str, str]] = set()
        for slice_name in sorted(self._slices_of.get(key, ())):
            eps = self._slices[(key[0], slice_name)][1]
            if eps.get("addressType") not in ("IPv4", "IPv6"):
                continue
            ports = [p for p in eps.get("ports") or () if p.get("port")]
            for ep in eps.get("endpoints") or ():
                ready = (ep.get("conditions") or {}).get("ready")
                addresses = ep.get("addresses") or ()
                if not addresses or (ready is False and not publish_not_ready):
                    continue
                ip = str(addresses[0])  # consumers use the first address only
                host = str(ep.get("hostname") or dashed(ip)).lower()
                if (host, ip) in seen:
                    continue
                seen.add((host, ip))
                fqdn = f"{host}.{base}"
                for owner in (base, fqdn):
                    rec = _ip_record(owner, ip)
                    if rec is not None:
                        out.append(rec)
                out.append(wire.Record(reverse_name(ip), wire.PTR, TTL, fqdn))
                for port in ports:
                    number = int(port["port"])
                    srv.setdefault(base, []).append((number, fqdn))
                    if port.get("name"):
                        proto = str(port.get("protocol") or "TCP").lower()
                        srv.setdefault(f"_{port['name']}._{proto}.{base}".lower(), []).append((number, fqdn))
        for owner, targets in srv.items():
            out += _srv_records(owner, targets)
        return out

    # -- answering --------------------------------------------------------------------------------

    def is_cluster_name(self, name: str) -> bool:
        key = name.lower()
        return key == self.domain or key.endswith(self._suffix)

    def lookup(self, name: str, qtype: int) -> Answer | None:
        """The zone's answer, or None if the question is not ours (the caller forwards it)."""
        key = name.lower().rstrip(".")
        if self._dirty:
            self._flush()
        if key != self.domain and not key.endswith(self._suffix):
            if key.endswith(_REVERSE_SUFFIXES) and key in self._by_name:
                found = self._answer(key, qtype)
                return found if found.answers else None
            return None
        if not self.ready:
            return Answer(wire.SERVFAIL)
        if key == self.domain:
            return self._apex(qtype)
        if key == f"ns.dns.{self.domain}" and self.dns_ip:
            return self._select([r for r in [_ip_record(key, self.dns_ip)] if r], qtype)
        if key in self._by_name:
            return self._answer(key, qtype)
        pod = self._pod_record(key)
        if pod is not None:
            return self._select([pod], qtype)
        if key in self._names or self._structural(key):
            return Answer(wire.NOERROR, authority=[self._soa])
        return Answer(wire.NXDOMAIN, authority=[self._soa])

    def _apex(self, qtype: int) -> Answer:
        ns = wire.Record(self.domain, wire.NS, TTL, f"ns.dns.{self.domain}")
        ans = self._select([self._soa, ns], qtype)
        if self.dns_ip and any(r.rtype == wire.NS for r in ans.answers):
            glue = _ip_record(f"ns.dns.{self.domain}", self.dns_ip)
            ans.additional = [glue] if glue else []
        return ans

    def _structural(self, key: str) -> bool:
        """``svc.<domain>``, ``pod.<domain>`` and (unless pods are off) ``<ns>.pod.<domain>`` exist."""
        labels = key[:-len(self._suffix)].split(".")
        if labels[-1] == "svc":
            return len(labels) == 1
        return labels[-1] == "pod" and self.pods != "disabled" and len(labels) <= 2

    def _pod_record(self, key: str) -> wire.Record | None:
        labels = key[:-len(self._suffix)].split(".")
        if self.pods == "disabled" or len(labels) != 3 or labels[2] != "pod":
            return None
        text = labels[0]
        ip = text.replace("-", ".") if text.count("-") == 3 else text.replace("-", ":")
        rec = _ip_record(key, ip)
        if rec is None or dashed(rec.data) != dashed(ip):
            return None
        if self.pods == "verified" and (labels[1], rec.data) not in self._pod_ip_count:
            return None
        return rec

    def _answer(self, key: str, qtype: int) -> Answer:
        rrs = self._records(key)
        ans = self._select(rrs, qtype)
        if not ans.answers and qtype != wire.CNAME:
            cname = [r for r in rrs if r.rtype == wire.CNAME]
            if cname:
                ans = Answer(wire.NOERROR, cname)
        if qtype in (wire.SRV, wire.ANY):
            targets = {r.data.target for r in ans.answers if r.rtype == wire.SRV}
            ans.additional = [r for t in sorted(targets) for r in self._records(t)
                              if r.rtype in (wire.A, wire.AAAA)]
        return ans

    def _select(self, rrs: Iterable[wire.Record], qtype: int) -> Answer:
        chosen = [r for r in rrs if qtype in (r.rtype, wire.ANY)]
        if chosen:
            return Answer(wire.NOERROR, chosen)
        return Answer(wire.NOERROR, authority=[self._soa])
