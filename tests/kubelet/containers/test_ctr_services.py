"""Service link variables as upstream's envvars tests spell them."""

from __future__ import annotations

from typing import Any

from kubelet.containers import service_env


def svc(name: str, namespace: str, ip: str, *ports: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"clusterIP": ip, "ports": list(ports)}}


SERVICES = [
    svc("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"}),
    svc("my-svc", "app", "10.0.0.11", {"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}),
    svc("headless", "app", "None", {"port": 80}),
    svc("other", "elsewhere", "10.0.0.12", {"port": 8080}),
    svc("kubernetes", "app", "10.0.0.13", {"port": 1}),  # not the master one: a normal service of "app"
]


def test_own_namespace_and_master_services() -> None:
    env = service_env(SERVICES, namespace="app")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.0.0.13"  # as upstream: a same-named own service wins
    assert service_env(SERVICES[::-1], namespace="app")["KUBERNETES_SERVICE_HOST"] == "10.0.0.13"
    env = service_env(SERVICES[:-1], namespace="app")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
    assert {k: v for k, v in env.items() if k.startswith("MY_SVC")} == {
        "MY_SVC_SERVICE_HOST": "10.0.0.11", "MY_SVC_SERVICE_PORT": "80", "MY_SVC_SERVICE_PORT_DNS": "53",
        "MY_SVC_PORT": "tcp://10.0.0.11:80",
        "MY_SVC_PORT_80_TCP": "tcp://10.0.0.11:80", "MY_SVC_PORT_80_TCP_PROTO": "tcp",
        "MY_SVC_PORT_80_TCP_PORT": "80", "MY_SVC_PORT_80_TCP_ADDR": "10.0.0.11",
        "MY_SVC_PORT_53_UDP": "udp://10.0.0.11:53", "MY_SVC_PORT_53_UDP_PROTO": "udp",
        "MY_SVC_PORT_53_UDP_PORT": "53", "MY_SVC_PORT_53_UDP_ADDR": "10.0.0.11"}
    assert not any(k.startswith(("HEADLESS", "OTHER")) for k in env)


def test_links_disabled_keeps_master_services() -> None:
    env = service_env(SERVICES, namespace="app", enable_service_links=False)
    assert {k.split("_")[0] for k in env} == {"KUBERNETES"}
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
