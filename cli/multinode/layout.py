"""Names, addresses, ports and directories of one multi-node cluster, and its record ``cluster.json``.

Everything a cluster gets on the host derives from its name and one small number, its *index* k
(chosen once, free on this host): the host bridge ``pnc-<hash>`` with 172.28.k.0/24 (host side .1),
node n at .(10+n) in network namespace ``pinnace-<name>-<hash>-<n>``, pod CIDRs from 10.(100+k).0.0/16.
The API servers and etcd listen on the bridge address, which is the cluster's own, so their ports
never clash with another cluster's. ``cluster.json`` records what was made, so ``delete`` removes
exactly that and ``list``/``node`` commands need nothing else. Pure data and file I/O: nothing here
touches the network.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ROOT = "/var/lib/pinnace/clusters"
HOST_NETWORK = ipaddress.IPv4Network("172.28.0.0/16")  # one /24 of it per cluster
CLUSTER_CIDR_FIRST_OCTET = 10
CLUSTER_CIDR_SECOND_BASE = 100  # cluster k gets 10.(100+k).0.0/16
MAX_INDEX = 255 - CLUSTER_CIDR_SECOND_BASE  # both the /24 and the /16 must exist
FIRST_NODE_HOST = 10  # node n has host number 10+n on the bridge subnet
MAX_NODES = 240
API_PORT = 6443  # API server i listens on API_PORT + i
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
KUBELET_PORT = 10250  # each node has its own network namespace, so every kubelet can have it
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
RECORD = "cluster.json"
DATASTORES = ("sqlite", "etcd")


class ClusterError(ValueError):
    """A cluster cannot be made or found as asked (bad name, no free subnet, unknown node...)."""


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def validate_name(name: str) -> str:
    """Cluster names become parts of node names (DNS labels) and of link names: keep them short."""
    if not NAME_RE.match(name or ""):
        raise ClusterError(f"cluster name {name!r}: use 1-32 lowercase letters, digits and '-', "
                           "starting and ending with a letter or digit")
    return name


def node_name(cluster: str, number: int) -> str:
    """kind's names: NAME-worker, NAME-worker2, NAME-worker3, ..."""
    return f"{cluster}-worker" if number == 1 else f"{cluster}-worker{number}"


def host_subnet(index: int) -> ipaddress.IPv4Network:
    return list(HOST_NETWORK.subnets(new_prefix=24))[index]


def cluster_cidr(index: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{CLUSTER_CIDR_FIRST_OCTET}.{CLUSTER_CIDR_SECOND_BASE + index}.0.0/16")


@dataclass
class NodeSpec:
    """One node: its Node name, number (1-based), address, namespace, host-side veth and state dir."""

    name: str
    number: int
    ip: str
    netns: str
    veth: str
    dir: str

    @property
    def path(self) -> Path:
        return Path(self.dir)


@dataclass
class ControlPlaneSpec:
    """One ``pinnace server``: its port on the bridge address and its data dir."""

    index: int
    port: int
    dir: str


@dataclass
class EtcdSpec:
    client_port: int
    peer_port: int
    dir: str


@dataclass
class Cluster:
    """What one cluster is (and, once made, has on this host)."""

    name: str
    root: str
    index: int
    datastore: str = "sqlite"
    control_planes: list[ControlPlaneSpec] = field(default_factory=list)
    etcd: EtcdSpec | None = None
    nodes: list[NodeSpec] = field(default_factory=list)
    created: float = 0.0
    #: extra `pinnace server` flags (failure-test timings: node grace period, toleration seconds)
    server_flags: list[str] = field(default_factory=list)

    # ---- derived names and addresses

    @property
    def dir(self) -> Path:
        return Path(self.root) / self.name

    @property
    def record(self) -> Path:
        return self.dir / RECORD

    @property
    def tag(self) -> str:
        """Distinguishes this cluster's links from any other's (two roots may hold the same name)."""
        return short_hash(str(self.dir))

    @property
    def bridge(self) -> str:
        return f"pnc-{self.tag}"

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return host_subnet(self.index)

    @property
    def gateway(self) -> str:
        """The host's address on the bridge: API servers, etcd and the nodes' default route."""
        return str(self.subnet[1])

    @property
    def cluster_cidr(self) -> ipaddress.IPv4Network:
        return cluster_cidr(self.index)

    @property
    def nft_table(self) -> str:
        """The host's nftables table masquerading the nodes' traffic to the outside."""
        return f"pnc_{self.tag}"

    @property
    def context(self) -> str:
        return f"pinnace-{self.name}"

    @property
    def admin_kubeconfig(self) -> Path:
        """The admin kubeconfig of the first API server (the one kubectl talks to)."""
        return Path(self.control_planes[0].dir) / "admin.kubeconfig"

    @property
    def user_kubeconfig(self) -> Path:
        """The kubeconfig ``cluster kubeconfig`` prints: context ``pinnace-NAME`` only."""
        return self.dir / "kubeconfig"

    def api_url(self, index: int = 0) -> str:
        return f"https://{self.gateway}:{self.control_planes[index].port}"

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes) or "none"
        raise ClusterError(f"cluster {self.name} has no node {name!r} (nodes: {known})")

    def make_node(self, number: int) -> NodeSpec:
        if not 1 <= number <= MAX_NODES:
            raise ClusterError(f"node number {number} is out of range (1-{MAX_NODES})")
        return NodeSpec(name=node_name(self.name, number), number=number, ip=str(self.subnet[FIRST_NODE_HOST + number]),
                        netns=f"pinnace-{self.name}-{self.tag}-{number}", veth=f"pnv{self.tag}-{number}",
                        dir=str(self.dir / f"n{number}"))

    def next_node_number(self) -> int:
        """The lowest number no node has (a removed node's number is reused)."""
        taken = {n.number for n in self.nodes}
        return next(i for i in range(1, MAX_NODES + 2) if i not in taken)

    def server_for(self, node: NodeSpec) -> int:
        """Which API server a node talks to: spread over them."""
        return (node.number - 1) % len(self.control_planes)

    # ---- the record

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Cluster:
        try:
            etcd = EtcdSpec(**doc["etcd"]) if doc.get("etcd") else None
            return cls(name=doc["name"], root=doc["root"], index=int(doc["index"]),
                       datastore=doc.get("datastore", "sqlite"),
                       control_planes=[ControlPlaneSpec(**c) for c in doc.get("control_planes") or []],
                       etcd=etcd, nodes=[NodeSpec(**n) for n in doc.get("nodes") or []],
                       created=float(doc.get("created") or 0.0),
                       server_flags=[str(f) for f in doc.get("server_flags") or []])
        except (KeyError, TypeError, ValueError) as exc:
            raise ClusterError(f"not a cluster record: {exc.__class__.__name__}: {exc}") from None

    def save(self) -> Path:
        """Write ``cluster.json`` atomically (a crash never leaves half a record)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        temp = self.record.with_name(f".{RECORD}.tmp{os.getpid()}")
        temp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        temp.replace(self.record)
        return self.record


def plan(name: str, *, root: str, index: int, nodes: int, datastore: str = "sqlite",
         control_planes: int = 1, server_flags: Iterable[str] = ()) -> Cluster:
    """The layout of a new cluster (nothing is made)."""
    validate_name(name)
    if not 0 <= index <= MAX_INDEX:
        raise ClusterError(f"cluster index {index} is out of range (0-{MAX_INDEX})")
    if not 1 <= nodes <= MAX_NODES:
        raise ClusterError(f"--nodes {nodes}: a cluster has 1-{MAX_NODES} nodes")
    if datastore not in DATASTORES:
        raise ClusterError(f"--datastore {datastore!r}: choose one of {', '.join(DATASTORES)}")
    if control_planes < 1 or (control_planes > 1 and datastore != "etcd"):
        raise ClusterError(f"--control-planes {control_planes}: more than one API server needs --datastore etcd")
    if control_planes > 9:
        raise ClusterError(f"--control-planes {control_planes}: at most 9")
    cluster = Cluster(name=name, root=str(Path(root).resolve()), index=index, datastore=datastore,
                      created=time.time(), server_flags=list(server_flags))
    cluster.control_planes = [ControlPlaneSpec(index=i, port=API_PORT + i, dir=str(cluster.dir / f"cp{i}"))
                              for i in range(control_planes)]
    if datastore == "etcd":
        cluster.etcd = EtcdSpec(client_port=ETCD_CLIENT_PORT, peer_port=ETCD_PEER_PORT, dir=str(cluster.dir / "etcd"))
    cluster.nodes = [cluster.make_node(n) for n in range(1, nodes + 1)]
    return cluster


def free_index(*, taken: Iterable[int], host_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
               ) -> int:
    """The lowest index whose bridge subnet and cluster CIDR overlap nothing on the host or in use."""
    busy = set(taken)
    networks = [n for n in host_networks if n.version == 4 and n.prefixlen > 0]
    for index in range(MAX_INDEX + 1):
        if index in busy:
            continue
        mine = (host_subnet(index), cluster_cidr(index))
        if not any(m.overlaps(n) for m in mine for n in networks):
            return index
    raise ClusterError("no free cluster subnet left on this host (172.28.0.0/16 and 10.100-255.0.0/16 in use)")


def load(root: str, name: str) -> Cluster:
    record = Path(root) / validate_name(name) / RECORD
    try:
        doc = json.loads(record.read_text())
    except FileNotFoundError:
        raise ClusterError(f"no cluster {name!r} under {root}") from None
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot read {record}: {exc}") from None
    if not isinstance(doc, dict):
        raise ClusterError(f"{record} is not a cluster record")
    return Cluster.from_json(doc)


def all_clusters(root: str) -> list[Cluster]:
    """Every readable cluster record under ``root`` (unreadable ones are skipped)."""
    found = []
    directory = Path(root)
    for record in sorted(directory.glob(f"*/{RECORD}")) if directory.is_dir() else []:
        try:
            found.append(load(root, record.parent.name))
        except ClusterError:
            continue
    return found
