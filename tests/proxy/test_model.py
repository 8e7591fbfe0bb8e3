"""Services and EndpointSlices to the model: endpoint conditions, headless, port matching, bad input."""

from __future__ import annotations

import pytest

from proxy import model
from proxy.model import Endpoint, ModelError


def svc(name: str = "web", **spec: object) -> dict:
    base = {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    return {"metadata": {"namespace": "default", "name": name}, "spec": {**base, **spec}}


def eps(owner: str = "web", *endpoints: dict, port_name: str = "http", port: int = 8080) -> dict:
    return {"metadata": {"namespace": "default", "name": f"{owner}-x", "labels": {model.SERVICE_NAME_LABEL: owner}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": list(endpoints)}


def ep(ip: str, **conditions: bool) -> dict:
    return {"addresses": [ip], "conditions": conditions, "nodeName": "n1"}


def test_ports_and_endpoints_join_by_label_and_port_name() -> None:
    [sp] = model.build([svc()], [eps("web", ep("10.0.0.2"), ep("10.0.0.3", ready=True)), eps("other", ep("10.0.0.9"))])
    assert (sp.key, sp.cluster_ip, sp.port, sp.protocol) == ("default/web/tcp/http", "10.96.0.10", 80, "tcp")
    assert [e.ip for e in sp.endpoints] == ["10.0.0.2", "10.0.0.3"]
    assert {e.port for e in sp.endpoints} == {8080}
    [unmatched] = model.build([svc()], [eps("web", ep("10.0.0.2"), port_name="metrics")])
    assert unmatched.endpoints == ()


def test_ready_first_then_serving_terminating() -> None:
    [sp] = model.build([svc()], [eps("web", ep("10.0.0.2", ready=True), ep("10.0.0.3", ready=False, serving=False),
                                     ep("10.0.0.4", ready=False, serving=True, terminating=True))])
    assert [e.ip for e in sp.usable()] == ["10.0.0.2"]
    [only_terminating] = model.build([svc()], [eps("web", ep("10.0.0.4", ready=False, serving=True, terminating=True),
                                                   ep("10.0.0.5", ready=False, serving=False, terminating=True))])
    assert [e.ip for e in only_terminating.usable()] == ["10.0.0.4"]
    assert only_terminating.usable(node="n2") == ()


def test_headless_external_name_and_unknown_protocols_get_nothing() -> None:
    assert model.build([svc(clusterIP="None")], []) == []
    assert model.build([svc(clusterIP=None, type="ExternalName")], []) == []
    assert model.build([svc(ports=[{"port": 80, "protocol": "ICMP"}])], []) == []


def test_node_port_affinity_and_policies() -> None:
    [sp] = model.build([svc(type="NodePort", sessionAffinity="ClientIP", externalTrafficPolicy="Local",
                            ports=[{"name": "http", "port": 80, "nodePort": 30080}])], [])
    assert (sp.node_port, sp.affinity_timeout, sp.external_local) == (30080, model.DEFAULT_AFFINITY_TIMEOUT, True)
    [plain] = model.build([svc(ports=[{"name": "http", "port": 80, "nodePort": 30080}])], [])
    assert plain.node_port is None  # a ClusterIP service has no node port even if the field is set


def test_duplicate_addresses_across_slices_count_once() -> None:
    [sp] = model.build([svc()], [eps("web", ep("10.0.0.2")), eps("web", ep("10.0.0.2"), ep("10.0.0.3"))])
    assert sp.endpoints == (Endpoint("10.0.0.2", 8080, "n1"), Endpoint("10.0.0.3", 8080, "n1"))


@pytest.mark.parametrize("service", [
    svc(clusterIP="10.96.0.300"), svc(clusterIP="fd00::1"), svc(name="bad name; drop"),
    svc(ports=[{"name": "x y", "port": 80}]), svc(ports=[{"port": 70000}]),
    svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": "1h"}}),
])
def test_bad_services_raise_model_error_and_are_skipped_in_build(service: dict) -> None:
    with pytest.raises(ModelError):
        model.service_ports(service, [])
    assert model.build([service, svc("good")], []) == model.build([svc("good")], [])


def test_bad_endpoint_address_is_rejected() -> None:
    with pytest.raises(ModelError):
        model.service_ports(svc(), [eps("web", ep("10.0.0.2 ; flush ruleset"))])


def test_external_and_load_balancer_ips_ipv4_only() -> None:
    service = svc(type="LoadBalancer", externalIPs=["203.0.113.7", "2001:db8::1"],
                  ports=[{"name": "http", "port": 80, "nodePort": 30090}])
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.2"}, {"hostname": "lb.example"}]}}
    [sp] = model.build([service], [])
    assert sp.external_ips == ("198.51.100.2", "203.0.113.7") and sp.node_port == 30090
    with pytest.raises(ModelError):
        model.service_ports(svc(externalIPs=["1.2.3.4; flush ruleset"]), [])
