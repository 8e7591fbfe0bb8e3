"""The rule writer: script text for small models, diff transactions, and kernel check-mode validation."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil

import pytest

from proxy import rules
from proxy.model import Endpoint, ServicePort
from proxy.nft import Nft

CONFIG = rules.Config(table="pxunit", node_name="n1", node_ips=("192.168.1.5",), cluster_cidr="10.244.0.0/16")
EPS = (Endpoint("10.244.0.2", 8080, "n1"), Endpoint("10.244.1.2", 8080, "n2"))


def sp(name: str = "web", endpoints: tuple[Endpoint, ...] = EPS, **extra: object) -> ServicePort:
    return ServicePort(namespace="ns", name=name, port_name="http", protocol="tcp", cluster_ip="10.96.0.10",
                       port=80, endpoints=endpoints, **extra)  # type: ignore[arg-type]


def rules_of(rs: rules.Ruleset, prefix: str) -> tuple[str, ...]:
    [name] = [c for c in rs.chains if c.startswith(prefix) and c not in rules.BASE_CHAINS]
    return rs.chains[name][1]


def test_cluster_ip_balances_with_numgen_and_marks_outside_traffic() -> None:
    rs = rules.ruleset([sp()], CONFIG)
    service = rules_of(rs, "service-")
    assert service[0] == ("ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 fib saddr type != local "
                          "jump mark-for-masquerade")
    assert service[1].startswith("numgen random mod 2 vmap { 0 : goto endpoint-")
    assert list(rs.elements["service-ips"]) == ["10.96.0.10 . tcp . 80"]
    assert rs.elements["no-endpoint-services"] == {}
    endpoint = rs.chains[next(c for c in rs.chains if c.endswith("__10.244.0.2/8080"))][1]
    assert endpoint == ("ip saddr 10.244.0.2 jump mark-for-masquerade", "meta l4proto tcp dnat to 10.244.0.2:8080")


def test_no_endpoints_goes_to_reject_and_headless_model_is_empty() -> None:
    rs = rules.ruleset([sp(endpoints=(), node_port=30001)], CONFIG)
    assert rs.elements["no-endpoint-services"] == {"10.96.0.10 . tcp . 80": "goto reject-chain"}
    assert rs.elements["no-endpoint-nodeports"] == {"tcp . 30001": "goto reject-chain"}
    assert rs.chains == rules.BASE_CHAINS
    assert rules.ruleset([], CONFIG).chains == rules.BASE_CHAINS


def test_affinity_sets_carry_the_timeout_and_are_consulted_first() -> None:
    rs = rules.ruleset([sp(affinity_timeout=77)], CONFIG)
    assert len(rs.sets) == 3  # two affinity sets and nodeport-ips
    assert all("timeout 77s" in decl for name, decl in rs.sets.items() if name.startswith("affinity-"))
    service = rules_of(rs, "service-")
    assert [r.split()[1] for r in service[1:3]] == ["saddr", "saddr"] and "@affinity-" in service[1]
    assert service[-1].startswith("numgen")
    # a changed timeout makes new sets (so the kernel never sees a conflicting redefinition)
    assert rs.sets.keys().isdisjoint(rules.ruleset([sp(affinity_timeout=78)], CONFIG).sets.keys() - {"nodeport-ips"})


def test_external_local_uses_local_endpoints_or_drops() -> None:
    rs = rules.ruleset([sp(node_port=30002, external_local=True)], CONFIG)
    local = rules_of(rs, "local-")
    assert "numgen random mod 1" in local[-1] and "10.244.0.2" in local[-1] and "10.244.1.2" not in local[-1]
    assert rules_of(rs, "external-")[0] == "fib saddr type local jump mark-for-masquerade"
    remote_only = rules.ruleset([sp(node_port=30002, external_local=True, endpoints=EPS[1:])], CONFIG)
    assert rules_of(remote_only, "local-") == ("drop",)
    cluster = rules.ruleset([sp(node_port=30002)], CONFIG)
    assert rules_of(cluster, "external-")[0] == "jump mark-for-masquerade"


def test_masquerade_all_and_no_cluster_cidr() -> None:
    masq_all = rules.Config(table="t", masquerade_all=True)
    assert rules_of(rules.ruleset([sp()], masq_all), "service-")[0].endswith("tcp dport 80 jump mark-for-masquerade")
    bare = rules.Config(table="t")
    assert rules_of(rules.ruleset([sp()], bare), "service-")[0].startswith("numgen")


def test_full_script_is_one_idempotent_transaction() -> None:
    script = rules.full_script(rules.ruleset([sp()], CONFIG), existing_chains={"service-OLD-x/y/tcp/z"},
                               existing_sets={"affinity-OLD"})
    lines = script.splitlines()
    assert lines[:2] == ["add table ip pxunit", "flush table ip pxunit"]
    assert lines[-2:] == ["delete chain ip pxunit service-OLD-x/y/tcp/z", "delete set ip pxunit affinity-OLD"]
    assert "delete table" not in script


def test_diff_script_touches_only_what_changed() -> None:
    old = rules.ruleset([sp(), sp("api")], CONFIG)
    assert rules.diff_script(old, rules.ruleset([sp(), sp("api")], CONFIG)) == ""
    one_less = rules.ruleset([sp(), sp("api", endpoints=EPS[:1])], CONFIG)
    script = rules.diff_script(old, one_less)
    assert "ns/web" not in script
    assert "delete chain" in script and "10.244.1.2" in script
    assert not any(line.startswith(("flush table", "add table")) for line in script.splitlines())


def test_config_rejects_bad_values() -> None:
    for bad in ({"table": "x; flush ruleset"}, {"node_ips": ("fe80::1",)}, {"cluster_cidr": "10.0.0.0/40"}):
        with pytest.raises(ValueError):
            rules.Config(**bad)  # type: ignore[arg-type]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")
async def test_generated_scripts_pass_kernel_check_mode() -> None:
    nft = Nft("pxunit-check")
    model = [sp(), sp("np", node_port=30003, affinity_timeout=100, external_local=True),
             sp("empty", endpoints=(), node_port=30004, external_ips=("203.0.113.10",)),
             sp("itp", internal_local=True, external_local=True, node_port=30006, external_ips=("203.0.113.9",)),
             ServicePort(namespace="ns", name="dns", port_name="dns", protocol="udp", cluster_ip="10.96.0.53",
                         port=53, endpoints=EPS), ]
    script = rules.full_script(rules.ruleset(model, CONFIG))
    await nft.apply(script, check_only=True)
    with pytest.raises(Exception, match="nft"):
        await nft.apply(script.replace("numgen random", "numgen bogus"), check_only=True)
    await asyncio.sleep(0)


def test_one_change_at_scale_touches_only_that_service() -> None:
    model = [ServicePort(namespace="ns", name=f"s{i}", port_name="", protocol="tcp",
                         cluster_ip=f"10.96.{i // 250}.{i % 250 + 1}", port=80,
                         endpoints=tuple(Endpoint(f"10.250.{i % 250}.{j + 1}", 80) for j in range(10)))
             for i in range(1000)]
    old = rules.ruleset(model, CONFIG)
    changed = [*model]
    changed[7] = dataclasses.replace(model[7], endpoints=model[7].endpoints[1:])
    script = rules.diff_script(old, rules.ruleset(changed, CONFIG))
    lines = script.splitlines()
    assert lines and all("ns/s7/" in line for line in lines), script
    assert len(lines) <= 5


def test_external_ips_go_through_the_external_chain() -> None:
    rs = rules.ruleset([sp(external_ips=("203.0.113.7",)), sp("none", endpoints=(), external_ips=("203.0.113.8",))],
                       CONFIG)
    assert rs.elements["service-ips"]["203.0.113.7 . tcp . 80"].startswith("goto external-")
    assert rs.elements["no-endpoint-services"]["203.0.113.8 . tcp . 80"] == "goto reject-chain"


def test_internal_traffic_policy_local_limits_only_cluster_ip_traffic() -> None:
    rs = rules.ruleset([sp(node_port=30005, internal_local=True)], CONFIG)
    assert rs.elements["service-ips"]["10.96.0.10 . tcp . 80"].startswith("goto local-")
    local = rules_of(rs, "local-")
    assert "10.244.0.2" in local[-1] and "10.244.1.2" not in local[-1]
    assert "numgen random mod 2" in rules_of(rs, "service-")[-1]  # NodePort traffic (eTP Cluster): every endpoint
    assert rules_of(rs, "external-")[-1].startswith("goto service-")
    nothing_here = rules.ruleset([sp(internal_local=True, endpoints=EPS[1:])], CONFIG)
    assert rules_of(nothing_here, "local-") == ("drop",)
