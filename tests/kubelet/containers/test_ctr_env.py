"""Env resolution: order, precedence, sources, optional refs and upstream's error messages."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.containers import ConfigError
from kubelet.containers.downward import PodAddresses, field_value, resource_value
from kubelet.containers.env import expand_command, resolve_env
from tests.kubelet.containers.kctr_env import FakeSource, make_pod, secret

ALLOC = {"cpu": 4000, "memory": 8 << 30, "ephemeral-storage": 100 << 30}
ADDR = PodAddresses(pod_ips=("10.1.0.5", "fd00::5"), host_ips=("192.168.1.2",))
OBJECTS = {
    ("configmaps", "default", "cfg"): {"data": {"A": "from-cm", "B": "b"}},
    ("secrets", "default", "sec"): secret({"PASSWORD": "s3cret", "A": "from-secret"}),
}


async def resolve(container: dict[str, Any], pod: dict[str, Any] | None = None, **kw: Any) -> dict[str, str]:
    pod = pod or make_pod(container)
    return await resolve_env(pod, container, source=kw.pop("source", FakeSource(OBJECTS)), addresses=ADDR,
                             allocatable=ALLOC, **kw)


async def test_env_from_then_env_with_prefix_and_expansion() -> None:
    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}},
                                          {"secretRef": {"name": "sec"}, "prefix": "S_"}],
                 "env": [{"name": "B", "value": "override-$(A)"}, {"name": "C", "value": "$(S_PASSWORD)!$$(A)"}]}
    env = await resolve(container)
    assert env == {"A": "from-cm", "B": "override-from-cm", "S_PASSWORD": "s3cret", "S_A": "from-secret",
                   "C": "s3cret!$(A)"}
    assert list(env) == ["A", "B", "S_PASSWORD", "S_A", "C"]


async def test_later_env_from_wins_and_env_sees_earlier_env() -> None:
    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}}],
                 "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "$(X)$(Z)"}, {"name": "Z", "value": "z"}]}
    env = await resolve(container)
    assert env["A"] == "from-secret"
    assert env["Y"] == "1$(Z)"  # Z is defined only later


async def test_service_env_fills_gaps_and_feeds_expansion() -> None:
    container = {"name": "c", "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "mine"},
                                      {"name": "URL", "value": "https://$(KUBERNETES_SERVICE_PORT)"}]}
    env = await resolve(container, service_env={"KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                                "KUBERNETES_SERVICE_PORT": "443"})
    assert env == {"KUBERNETES_SERVICE_HOST": "mine", "URL": "https://443", "KUBERNETES_SERVICE_PORT": "443"}


async def test_key_refs() -> None:
    container = {"name": "c", "env": [
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "B"}}},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}},
        {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
        {"name": "NOKEY", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "zz", "optional": True}}},
    ]}
    source = FakeSource(OBJECTS)
    env = await resolve(container, source=source)
    assert env == {"CM": "b", "PW": "s3cret"}
    assert source.reads.count(("secrets", "default", "sec")) == 1  # read once per build


@pytest.mark.parametrize(("env", "env_from", "message"), [
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}], [], 'configmap "x" not found'),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}], [], 'secret "x" not found'),
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}], [],
     "couldn't find key k in ConfigMap default/cfg"),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}], [],
     "couldn't find key k in Secret default/sec"),
    ([], [{"configMapRef": {"name": "missing"}}], 'configmap "missing" not found'),
    ([], [{"secretRef": {"name": "missing"}}], 'secret "missing" not found'),
    ([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}], [], "unsupported fieldPath: spec.bogus"),
    ([{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}], [],
     "unsupported container resource : limits.gpu"),
])
async def test_errors(env: list, env_from: list, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await resolve({"name": "c", "env": env, "envFrom": env_from})
    assert str(caught.value) == message
    assert caught.value.reason == "CreateContainerConfigError"


async def test_optional_env_from_missing_is_skipped() -> None:
    env = await resolve({"name": "c", "envFrom": [{"configMapRef": {"name": "nope", "optional": True}}],
                         "env": [{"name": "E", "value": ""}]})
    assert env == {"E": ""}


POD = make_pod({"name": "c"}, hostname="h")
POD["metadata"]["labels"] = {"b": "2", "a": 'q"uote'}


@pytest.mark.parametrize(("path", "expected"), [
    ("metadata.name", "web"),
    ("metadata.namespace", "default"),
    ("metadata.uid", "u-1"),
    ("metadata.labels['a']", 'q"uote'),
    ("metadata.labels['missing']", ""),
    ("metadata.annotations['note']", "x"),
    ("metadata.labels", 'a="q\\"uote"\nb="2"'),
    ("spec.nodeName", "n1"),
    ("spec.serviceAccountName", "default"),
    ("status.podIP", "10.1.0.5"),
    ("status.podIPs", "10.1.0.5,fd00::5"),
    ("status.hostIP", "192.168.1.2"),
    ("status.hostIPs", "192.168.1.2"),
])
def test_field_refs(path: str, expected: str) -> None:
    assert field_value(POD, path, addresses=ADDR) == expected


RES_CONTAINER = {"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                                            "limits": {"memory": "128Mi"}}}
RES_POD = make_pod(RES_CONTAINER, {"name": "side", "resources": {"limits": {"cpu": "2"}}})


@pytest.mark.parametrize(("ref", "expected"), [
    ({"resource": "requests.cpu"}, "1"),  # 250m rounded up to whole cores
    ({"resource": "requests.cpu", "divisor": "1m"}, "250"),
    ({"resource": "requests.cpu", "divisor": "100m"}, "3"),
    ({"resource": "limits.cpu"}, "4"),  # unset limit: node allocatable
    ({"resource": "limits.memory"}, str(128 << 20)),
    ({"resource": "limits.memory", "divisor": "1Mi"}, "128"),
    ({"resource": "requests.memory", "divisor": "1M"}, "68"),  # 67.1 MB rounded up
    ({"resource": "limits.cpu", "containerName": "side", "divisor": "1m"}, "2000"),
    ({"resource": "requests.ephemeral-storage"}, "0"),
])
def test_resource_refs(ref: dict, expected: str) -> None:
    assert resource_value(RES_POD, RES_CONTAINER, ref=ref, allocatable=ALLOC) == expected


async def test_command_and_args_expanded_against_final_env() -> None:
    container = {"name": "c", "command": ["sh", "-c", "echo $(GREETING) $$(HOME) $(NOPE)"], "args": ["$(GREETING)"],
                 "env": [{"name": "GREETING", "value": "hi"}]}
    env = await resolve(container)
    assert expand_command(container, env) == (["sh", "-c", "echo hi $(HOME) $(NOPE)"], ["hi"])
    assert expand_command({"name": "c"}, env) == ([], [])
