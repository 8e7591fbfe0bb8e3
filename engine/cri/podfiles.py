"""The files a pod's containers see as /etc/resolv.conf, /etc/hostname and /etc/hosts.

A sandbox owns one copy of each (in its state dir) and every container of the pod bind-mounts them,
so all containers agree on the pod's name resolution, as with containerd and CRI-O. resolv.conf
comes from the sandbox's ``DNSConfig`` (servers, search domains, options); a pod without any DNS
config gets the host's file, as a runtime's default. A host-network pod gets the host's hosts file;
other pods get localhost lines plus their own IP and hostname. All functions here are blocking
(small file writes): call them from a thread.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from engine.cri.errors import InvalidArgument

HOST_RESOLV_CONF = "/etc/resolv.conf"
HOST_HOSTS = "/etc/hosts"
MAX_SEARCHES = 32  # what glibc and Kubernetes accept
LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)


def _check_words(values: Sequence[str], *, what: str) -> None:
    for value in values:
        if not value or any(c.isspace() for c in value):
            raise InvalidArgument(f"invalid DNS {what} {value!r}: empty or has whitespace")


def resolv_conf(*, servers: Sequence[str], searches: Sequence[str], options: Sequence[str]) -> str:
    """The text of a resolv.conf for this DNS config."""
    for server in servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"invalid DNS server {server!r}: not an IP address") from None
    _check_words(searches, what="search domain")
    _check_words(options, what="option")
    if len(searches) > MAX_SEARCHES:
        raise InvalidArgument(f"too many DNS search domains ({len(searches)} > {MAX_SEARCHES})")
    lines = []
    if searches:
        lines.append("search " + " ".join(searches))
    lines += [f"nameserver {s}" for s in servers]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(*, hostname: str, ips: Sequence[str]) -> str:
    lines = list(LOCALHOST_LINES)
    if hostname:
        lines += [f"{ip}\t{hostname}" for ip in ips]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_resolv_conf(
    path: Path, *, servers: Sequence[str], searches: Sequence[str], options: Sequence[str]
) -> None:
    if not (servers or searches or options):
        if os.path.exists(HOST_RESOLV_CONF):
            shutil.copyfile(HOST_RESOLV_CONF, path)
            return
    _write(path, resolv_conf(servers=servers, searches=searches, options=options))


def write_hostname(path: Path, hostname: str) -> None:
    _write(path, f"{hostname}\n")


def write_hosts(path: Path, *, hostname: str, ips: Sequence[str], host_network: bool) -> None:
    if host_network and os.path.exists(HOST_HOSTS):
        shutil.copyfile(HOST_HOSTS, path)
        return
    _write(path, hosts_file(hostname=hostname, ips=ips))
