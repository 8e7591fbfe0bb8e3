"""A pod's resolv.conf (CRI ``DNSConfig``) from its dnsPolicy, as the upstream kubelet builds it.

ClusterFirst (and ClusterFirstWithHostNet) use the cluster DNS servers with the namespace/service/
cluster-domain searches ahead of the host's and ``ndots:5``; ClusterFirst on a host-network pod, and
Default, use the host's resolv.conf; None starts empty. ``spec.dnsConfig`` is then merged in
(servers and searches appended without duplicates, options overriding by name). With no cluster DNS
configured ClusterFirst falls back to the host's, as upstream does.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from kubelet.cri import pb

HOST_RESOLV_CONFS = ("/run/systemd/resolve/resolv.conf", "/etc/resolv.conf")  # skip the 127.0.0.53 stub
MAX_SERVERS = 3
MAX_SEARCHES = 32
CLUSTER_OPTIONS = ("ndots:5",)


def parse_resolv_conf(text: str) -> pb.DNSConfig:
    config = pb.DNSConfig()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            config.servers.append(words[1])
        elif words[0] in ("search", "domain"):
            del config.searches[:]
            config.searches.extend(w.rstrip(".") for w in words[1:])
        elif words[0] == "options":
            config.options.extend(words[1:])
    return config


@functools.cache
def host_dns() -> pb.DNSConfig:
    """The host's resolver settings, read once (a kubelet flag upstream, fixed for its lifetime)."""
    for path in HOST_RESOLV_CONFS:
        if os.path.isfile(path):
            with open(path) as f:
                return parse_resolv_conf(f.read())
    return pb.DNSConfig()


def _policy(pod: dict[str, Any], cluster_dns: tuple[str, ...]) -> str:
    spec = pod.get("spec", {})
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
        return "cluster" if cluster_dns else "host"
    return "none" if policy == "None" else "host"


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _merge_options(base: list[str], extra: list[dict[str, Any]]) -> list[str]:
    options = {o.split(":", 1)[0]: o for o in base}
    for option in extra:
        name = str(option.get("name", ""))
        options[name] = f"{name}:{option['value']}" if option.get("value") is not None else name
    return list(options.values())


def pod_dns(pod: dict[str, Any], *, cluster_dns: tuple[str, ...], cluster_domain: str,
            host: pb.DNSConfig | None = None) -> pb.DNSConfig:
    host = host if host is not None else host_dns()
    policy = _policy(pod, cluster_dns)
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "cluster":
        ns = pod.get("metadata", {}).get("namespace", "default")
        servers = list(cluster_dns)
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain, *host.searches]
        options = list(CLUSTER_OPTIONS)
    elif policy == "host":
        servers, searches, options = list(host.servers), list(host.searches), list(host.options)
    extra = pod.get("spec", {}).get("dnsConfig") or {}
    servers = _unique([*servers, *(extra.get("nameservers") or [])])[:MAX_SERVERS]
    searches = _unique([*searches, *(extra.get("searches") or [])])[:MAX_SEARCHES]
    options = _merge_options(options, extra.get("options") or [])
    return pb.DNSConfig(servers=servers, searches=searches, options=options)
