"""Shared test data for the proxy tests: the pods of the node fixture and small model builders."""

from __future__ import annotations

from netkit import NODE_IP, SERVER_PORT, Node

from proxy import rules
from proxy.model import Endpoint, ServicePort

BACKENDS = {"a": 11, "b": 12, "c": 13}
CLIENT = ("client", 20)
CLUSTER_CIDR = "10.244.0.0/16"



def config(*, table: str, node_name: str = "n1") -> rules.Config:
    return rules.Config(table=table, node_name=node_name, node_ips=(NODE_IP,), cluster_cidr=CLUSTER_CIDR)


def backend_port(node: Node, labels: list[str], *, nodes: dict[str, str] | None = None) -> tuple[Endpoint, ...]:
    """Endpoints for the named backend pods (all on node n1 unless ``nodes`` says otherwise)."""
    nodes = nodes or {}
    return tuple(Endpoint(ip=node.pods[label], port=SERVER_PORT, node=nodes.get(label, "n1")) for label in labels)


def service(name: str, cluster_ip: str, endpoints: tuple[Endpoint, ...], **extra: object) -> ServicePort:
    return ServicePort(namespace="default", name=name, port_name="http", protocol="tcp", cluster_ip=cluster_ip,
                       port=80, endpoints=endpoints, **extra)  # type: ignore[arg-type]
