"""The zone alone, fed plain objects: which names exist, with which records, and what is negative."""

from __future__ import annotations

import time

import pytest
from dns_kit import endpoint, endpoint_slice, service

from proxy.dns import wire
from proxy.dns.zone import TTL, Zone

D = "cluster.local"


def zone(**kw: object) -> Zone:
    z = Zone(domain=D, dns_ip="10.43.0.10", **kw)  # type: ignore[arg-type]
    z.ready = True
    return z


def data(z: Zone, name: str, qtype: int) -> list[object]:
    found = z.lookup(name, qtype)
    assert found is not None and found.rcode == wire.NOERROR, found
    return sorted((r.data for r in found.answers), key=str)


def test_cluster_ip_service_a_srv_ptr() -> None:
    z = zone()
    z.set_service(service("web", "shop", cluster_ip="10.43.1.2",
                          ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 9000}]))
    assert data(z, "web.shop.svc.cluster.local", wire.A) == ["10.43.1.2"]
    assert data(z, "WEB.Shop.svc.cluster.local.", wire.A) == ["10.43.1.2"]  # case-insensitive
    target = "web.shop.svc.cluster.local"
    assert data(z, "_http._tcp.web.shop.svc.cluster.local", wire.SRV) == [wire.Srv(0, 100, 80, target)]
    assert {s.port for s in data(z, "web.shop.svc.cluster.local", wire.SRV)} == {80, 9000}
    assert data(z, "2.1.43.10.in-addr.arpa", wire.PTR) == [target]
    srv = z.lookup("_http._tcp.web.shop.svc.cluster.local", wire.SRV)
    assert srv is not None and [r.data for r in srv.additional] == ["10.43.1.2"]
    assert all(r.ttl == TTL for r in srv.answers)


def test_headless_service_answers_ready_endpoints_and_hostnames() -> None:
    z = zone()
    z.set_service(service("db", "shop", cluster_ip="None"))
    z.set_slice(endpoint_slice("db-1", "shop", svc="db", endpoints=[
        endpoint("10.244.0.5", hostname="db-0"), endpoint("10.244.0.6"),
        endpoint("10.244.0.7", ready=False), endpoint("10.244.0.8", ready=None)]))
    assert data(z, "db.shop.svc.cluster.local", wire.A) == ["10.244.0.5", "10.244.0.6", "10.244.0.8"]
    assert data(z, "db-0.db.shop.svc.cluster.local", wire.A) == ["10.244.0.5"]
    assert data(z, "10-244-0-6.db.shop.svc.cluster.local", wire.A) == ["10.244.0.6"]
    srv = data(z, "_http._tcp.db.shop.svc.cluster.local", wire.SRV)
    assert [(s.port, s.target) for s in srv] == [(8080, "10-244-0-6.db.shop.svc.cluster.local"),
                                                 (8080, "10-244-0-8.db.shop.svc.cluster.local"),
                                                 (8080, "db-0.db.shop.svc.cluster.local")]
    assert data(z, "5.0.244.10.in-addr.arpa", wire.PTR) == ["db-0.db.shop.svc.cluster.local"]
    # publishNotReadyAddresses includes the not-ready one
    z.set_service(service("db", "shop", cluster_ip="None", publishNotReadyAddresses=True))
    assert "10.244.0.7" in data(z, "db.shop.svc.cluster.local", wire.A)


def test_slice_changes_and_deletes_update_records() -> None:
    z = zone()
    z.set_service(service("db", "shop", cluster_ip="None"))
    z.set_slice(endpoint_slice("s1", "shop", svc="db", endpoints=[endpoint("10.244.0.5")]))
    z.set_slice(endpoint_slice("s2", "shop", svc="db", endpoints=[endpoint("10.244.1.5")]))
    assert data(z, "db.shop.svc.cluster.local", wire.A) == ["10.244.0.5", "10.244.1.5"]
    z.set_slice(endpoint_slice("s1", "shop", svc="db", endpoints=[endpoint("10.244.0.9")]))
    assert data(z, "db.shop.svc.cluster.local", wire.A) == ["10.244.0.9", "10.244.1.5"]
    z.delete_slice(endpoint_slice("s2", "shop", svc="db", endpoints=[]))
    assert data(z, "db.shop.svc.cluster.local", wire.A) == ["10.244.0.9"]
    assert z.lookup("10-244-1-5.db.shop.svc.cluster.local", wire.A).rcode == wire.NXDOMAIN  # type: ignore[union-attr]
    z.delete_service(service("db", "shop"))
    gone = z.lookup("db.shop.svc.cluster.local", wire.A)
    assert gone is not None and gone.rcode == wire.NXDOMAIN
    assert z.lookup("9.0.244.10.in-addr.arpa", wire.PTR) is None  # not ours any more: forwarded


def test_negative_answers_carry_the_soa() -> None:
    z = zone()
    z.set_service(service("web", "shop", cluster_ip="10.43.1.2"))
    nx = z.lookup("nope.shop.svc.cluster.local", wire.A)
    assert nx is not None and nx.rcode == wire.NXDOMAIN and not nx.answers
    assert [r.rtype for r in nx.authority] == [wire.SOA] and nx.authority[0].name == D
    assert nx.authority[0].data.minimum == TTL
    for name in ("web.shop.svc.cluster.local", "shop.svc.cluster.local", "svc.cluster.local"):
        nodata = z.lookup(name, wire.AAAA)  # the name exists, without that type
        assert nodata is not None and nodata.rcode == wire.NOERROR and not nodata.answers and nodata.authority
    assert z.lookup("other.svc.cluster.local", wire.A).rcode == wire.NXDOMAIN  # type: ignore[union-attr]
    apex = z.lookup(D, wire.NS)
    assert apex is not None and apex.answers[0].data == "ns.dns.cluster.local"
    assert [r.data for r in apex.additional] == ["10.43.0.10"]


def test_dual_stack_external_name_and_names_outside_the_domain() -> None:
    z = zone()
    z.set_service(service("v6", "a", cluster_ip="10.43.3.3", clusterIPs=["10.43.3.3", "fd00:43::3"]))
    assert data(z, "v6.a.svc.cluster.local", wire.AAAA) == ["fd00:43::3"]
    assert data(z, "v6.a.svc.cluster.local", wire.A) == ["10.43.3.3"]
    z.set_service(service("ext", "a", cluster_ip=None, type="ExternalName", externalName="example.com"))
    assert data(z, "ext.a.svc.cluster.local", wire.A) == ["example.com"]  # the CNAME answers any type
    assert z.lookup("example.com", wire.A) is None
    assert z.lookup("cluster.local.example.com", wire.A) is None


@pytest.mark.parametrize(("mode", "name", "expected"), [
    ("insecure", "10-244-1-7.any.pod.cluster.local", ["10.244.1.7"]),
    ("verified", "10-244-1-7.shop.pod.cluster.local", ["10.244.1.7"]),
    ("verified", "10-244-1-7.other.pod.cluster.local", None),
    ("verified", "10-244-1-8.shop.pod.cluster.local", None),
    ("disabled", "10-244-1-7.shop.pod.cluster.local", None),
    ("insecure", "fd00-244--7.any.pod.cluster.local", None),  # AAAA only
    ("insecure", "300-1-1-1.shop.pod.cluster.local", None),
])
def test_pod_names(mode: str, name: str, expected: list[str] | None) -> None:
    z = zone(pods=mode)
    z.set_pod({"metadata": {"name": "p", "namespace": "shop"}, "status": {"podIP": "10.244.1.7"}})
    found = z.lookup(name, wire.A)
    assert found is not None
    if expected is None:
        assert not found.answers
    else:
        assert [r.data for r in found.answers] == expected


def test_before_sync_cluster_names_fail_and_bad_settings_are_refused() -> None:
    z = Zone(domain=D)
    assert z.lookup("web.shop.svc.cluster.local", wire.A).rcode == wire.SERVFAIL  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="pods mode"):
        Zone(pods="sometimes")
    with pytest.raises(ValueError, match="root"):
        Zone(domain=".")


def test_an_ip_behind_two_headless_services_has_both_ptrs_and_unallocated_services_have_no_names() -> None:
    z = zone()
    for name in ("a", "b"):
        z.set_service(service(name, "shop", cluster_ip="None"))
        z.set_slice(endpoint_slice(f"{name}-1", "shop", svc=name, endpoints=[endpoint("10.244.0.5")]))
    assert data(z, "5.0.244.10.in-addr.arpa", wire.PTR) == ["10-244-0-5.a.shop.svc.cluster.local",
                                                             "10-244-0-5.b.shop.svc.cluster.local"]
    z.delete_service(service("a", "shop"))
    assert data(z, "5.0.244.10.in-addr.arpa", wire.PTR) == ["10-244-0-5.b.shop.svc.cluster.local"]
    z.set_service(service("new", "shop", cluster_ip=""))
    assert z.lookup("new.shop.svc.cluster.local", wire.A).rcode == wire.NXDOMAIN  # type: ignore[union-attr]


def test_updating_a_large_headless_service_costs_in_proportion_to_it() -> None:
    """A slice change rebuilds only its Service; with 4,000 endpoints that stays well under a second
    (removing records one by one from shared lists would be quadratic: tens of seconds)."""
    z = zone()
    z.set_service(service("big", "shop", cluster_ip="None"))
    endpoints = [endpoint(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}") for i in range(4000)]
    started = time.perf_counter()
    for round_ in range(3):
        z.set_slice(endpoint_slice("big-1", "shop", svc="big", endpoints=endpoints[round_:]))
        assert len(data(z, "big.shop.svc.cluster.local", wire.A)) == 4000 - round_
    assert time.perf_counter() - started < 5.0
