"""Merge-key extensions in the published documents agree with the server's merge-key table."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from apiserver.openapi import documents
from apiserver.openapi.extensions import annotate
from apiserver.openapi.names import upstream_name
from apiserver.openapi.schemas import ref, ref_name
from apiserver.registry import GROUP_VERSIONS, in_group_version
from machinery.patch.merge_keys import list_rule, retains_keys

CORE = "io.k8s.api.core.v1."
EXTENSIONS = ("x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-patch-merge-key",
              "x-kubernetes-patch-strategy")


def schemas_of(gv: str) -> dict[str, Any]:
    return orjson.loads(documents.document(documents.gv_path(gv)))["components"]["schemas"]


@pytest.fixture(scope="module")
def apps() -> dict[str, Any]:
    return schemas_of("apps/v1")


@pytest.fixture(scope="module")
def core() -> dict[str, Any]:
    return schemas_of("v1")


def test_containers_merge_by_name(apps: dict[str, Any]) -> None:
    containers = apps[CORE + "PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]


def test_container_ports_have_two_apply_keys(apps: dict[str, Any]) -> None:
    ports = apps[CORE + "Container"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]


def test_volumes_merge_and_retain_keys(apps: dict[str, Any]) -> None:
    assert apps[CORE + "PodSpec"]["properties"]["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"


def test_strategy_retains_keys_through_all_of(apps: dict[str, Any]) -> None:
    strategy = apps["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert "$ref" not in strategy
    assert ref_name(strategy) == "io.k8s.api.apps.v1.DeploymentStrategy"


def test_finalizers_are_a_set(core: dict[str, Any]) -> None:
    finalizers = core["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"]
    assert finalizers["x-kubernetes-list-type"] == "set"
    assert "x-kubernetes-patch-merge-key" not in finalizers


def test_kind_limited_rules(core: dict[str, Any]) -> None:
    assert core[CORE + "ServiceSpec"]["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "port"
    assert core[CORE + "NodeSpec"]["properties"]["taints"]["x-kubernetes-list-map-keys"] == ["key", "effect"]


def test_lists_without_rules_stay_atomic(apps: dict[str, Any]) -> None:
    for field in ("args", "command"):
        prop = apps[CORE + "Container"]["properties"][field]
        assert not set(EXTENSIONS) & set(prop)


def _expected(path: tuple[str, ...], kind: str, prop: dict[str, Any]) -> dict[str, Any]:
    if prop.get("type") != "array":
        retained = retains_keys(path) and ref_name(prop) is not None  # only maps retain keys
        return {"x-kubernetes-patch-strategy": "retainKeys"} if retained else {}
    rule = list_rule(path, kind)
    if rule is None:
        return {}
    if rule.key is None:
        return {"x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"}
    return {"x-kubernetes-list-map-keys": list(rule.apply_keys), "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": rule.key,
            "x-kubernetes-patch-strategy": "merge,retainKeys" if retains_keys(path) else "merge"}


@pytest.mark.parametrize("gv", GROUP_VERSIONS)
def test_every_path_agrees_with_the_table(gv: str) -> None:
    """Walk each kind with full paths (independently of the annotator) and compare with the table."""
    comps = schemas_of(gv)
    group, _, version = gv.rpartition("/")
    checked = 0
    for rt in in_group_version(group, version):
        stack = [(upstream_name(rt.model), ())]
        visits = 0
        while stack and visits < 5000:
            name, path = stack.pop()
            visits += 1
            for field, prop in comps[name].get("properties", {}).items():
                full = (*path, field)
                got = {k: prop[k] for k in EXTENSIONS if k in prop}
                assert got == _expected(full, rt.kind, prop), (rt.kind, full)
                checked += 1
                target = ref_name(prop.get("items", {}) if prop.get("type") == "array" else prop)
                if target and len(full) < 12:
                    stack.append((target, full))
    assert checked > 0


def test_kind_limited_rule_applies_to_the_kind_it_names() -> None:
    def fresh() -> dict[str, Any]:
        return {"Root": {"properties": {"spec": ref("Spec")}},
                "Spec": {"properties": {"ports": {"type": "array", "items": {"type": "integer"}}}}}

    for_pod = fresh()
    annotate(for_pod, [("Root", "Pod")])
    assert "x-kubernetes-patch-merge-key" not in for_pod["Spec"]["properties"]["ports"]
    shared = fresh()
    annotate(shared, [("Root", "Pod"), ("Root", "Service")])
    assert shared["Spec"]["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "port"
