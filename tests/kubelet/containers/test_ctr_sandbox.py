"""PodSandboxConfig: identity, hostname, logs, DNS per dnsPolicy, host ports, sysctls, labels."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.containers import ConfigError, pod_fqdn, sandbox_config
from kubelet.containers.dns import parse_resolv_conf
from kubelet.cri import pb
from tests.kubelet.containers.kctr_env import make_config, make_pod

HOST = parse_resolv_conf("# host\nnameserver 192.168.1.1\nnameserver 8.8.8.8\nsearch corp.example lan\n"
                         "options edns0 timeout:2\n")
CONFIG = make_config("/var/lib/k")


def build(pod: dict[str, Any], **overrides: Any) -> pb.PodSandboxConfig:
    config = make_config("/var/lib/k", **overrides) if overrides else CONFIG
    return sandbox_config(pod, config=config, attempt=2, host_dns=HOST)


def test_identity_logs_labels() -> None:
    sandbox = build(make_pod())
    meta = sandbox.metadata
    assert (meta.name, meta.namespace, meta.uid, meta.attempt) == ("web", "default", "u-1", 2)
    assert sandbox.log_directory == "/var/lib/k/logs/default_web_u-1"
    assert dict(sandbox.labels) == {"app": "web", "io.kubernetes.pod.name": "web",
                                    "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": "u-1"}
    assert dict(sandbox.annotations) == {"note": "x"}
    assert sandbox.hostname == "web"


@pytest.mark.parametrize(("name", "spec", "hostname"), [
    ("web", {"hostname": "custom"}, "custom"),
    ("a" * 62 + "-b", {}, "a" * 62),  # cut to 63, trailing '-' dropped
    ("web", {"hostNetwork": True}, ""),  # the node's
])
def test_hostname(name: str, spec: dict, hostname: str) -> None:
    assert build(make_pod(name=name, **spec)).hostname == hostname


def test_hostname_as_fqdn() -> None:
    pod = make_pod(hostname="db-0", subdomain="db", setHostnameAsFQDN=True)
    assert build(pod).hostname == "db-0.db.default.svc.cluster.local"
    assert build(make_pod(hostname="db-0", setHostnameAsFQDN=True)).hostname == "db-0"  # no subdomain
    with pytest.raises(ConfigError, match=r"FQDN .* is too long"):
        build(make_pod(hostname="h" * 40, subdomain="s" * 10, setHostnameAsFQDN=True))


def test_fqdn() -> None:
    assert pod_fqdn(make_pod(hostname="db-0", subdomain="db"), "cluster.local") == "db-0.db.default.svc.cluster.local"
    assert pod_fqdn(make_pod(), "cluster.local") == ""


CLUSTER_SEARCHES = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lan"]


@pytest.mark.parametrize(("spec", "cluster_dns", "servers", "searches", "options"), [
    ({}, ("10.96.0.10",), ["10.96.0.10"], CLUSTER_SEARCHES, ["ndots:5"]),
    ({"dnsPolicy": "ClusterFirst"}, (), ["192.168.1.1", "8.8.8.8"], ["corp.example", "lan"], ["edns0", "timeout:2"]),
    ({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, ("10.96.0.10",), ["192.168.1.1", "8.8.8.8"],
     ["corp.example", "lan"], ["edns0", "timeout:2"]),
    ({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True}, ("10.96.0.10",), ["10.96.0.10"],
     CLUSTER_SEARCHES, ["ndots:5"]),
    ({"dnsPolicy": "Default"}, ("10.96.0.10",), ["192.168.1.1", "8.8.8.8"], ["corp.example", "lan"],
     ["edns0", "timeout:2"]),
    ({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["x.y"],
                                         "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}},
     ("10.96.0.10",), ["1.1.1.1"], ["x.y"], ["ndots:2", "rotate"]),
    ({"dnsConfig": {"nameservers": ["10.96.0.10", "1.1.1.1"], "searches": ["cluster.local", "extra"],
                    "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]}},
     ("10.96.0.10",), ["10.96.0.10", "1.1.1.1"], [*CLUSTER_SEARCHES, "extra"], ["ndots:1", "edns0"]),
])
def test_dns(spec: dict, cluster_dns: tuple, servers: list, searches: list, options: list) -> None:
    dns = build(make_pod(namespace="default", **spec), cluster_dns=cluster_dns).dns_config
    assert (list(dns.servers), list(dns.searches), list(dns.options)) == (servers, searches, options)


def test_dns_limits() -> None:
    pod = make_pod(dnsPolicy="None", dnsConfig={"nameservers": [f"10.0.0.{i}" for i in range(5)]})
    assert len(build(pod).dns_config.servers) == 3


def test_port_mappings_only_host_ports() -> None:
    pod = make_pod({"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 53, "hostPort": 5353,
                                                                     "protocol": "UDP", "hostIP": "127.0.0.1"}]},
                   {"name": "b", "ports": [{"containerPort": 8080, "hostPort": 18080}]})
    got = [(m.protocol, m.container_port, m.host_port, m.host_ip) for m in build(pod).port_mappings]
    assert got == [(pb.UDP, 53, 5353, "127.0.0.1"), (pb.TCP, 8080, 18080, "")]
    with pytest.raises(ConfigError):
        build(make_pod({"name": "a", "ports": [{"containerPort": 1, "hostPort": 2, "protocol": "QUIC"}]}))


def test_linux_part() -> None:
    pod = make_pod(hostNetwork=True, hostPID=True, securityContext={
        "runAsUser": 1000, "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]})
    linux = build(pod).linux
    assert dict(linux.sysctls) == {"net.core.somaxconn": "1024"}
    opts = linux.security_context.namespace_options
    assert (opts.network, opts.pid, opts.ipc) == (pb.NODE, pb.NODE, pb.POD)
    assert linux.security_context.run_as_user.value == 1000
