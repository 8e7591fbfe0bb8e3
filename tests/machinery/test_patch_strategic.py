"""Strategic merge patch: kubectl's real bodies, each directive, and the list rules."""

from __future__ import annotations

import copy

import pytest

from machinery.patch.errors import PatchError
from machinery.patch.strategic import apply_strategic_merge_patch as smp

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def deployment_a() -> dict:
    """d_a.yaml of kubectl-wire.md §6.4, as the server stores it."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d", "tier": "fe"},
                     "annotations": {LAST_APPLIED: "{old}"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [
                    {"name": "a", "image": "nginx:1",
                     "env": [{"name": "FOO", "value": "1"}, {"name": "BAR", "value": "2"}],
                     "ports": [{"containerPort": 80, "protocol": "TCP"},
                               {"containerPort": 443, "protocol": "TCP"}]},
                    {"name": "b", "image": "busybox", "command": ["sleep", "1d"]},
                ]},
            },
        },
    }


#: the patch real kubectl 1.32 sent for d_a.yaml -> d_b.yaml (kubectl-wire.md §6.4)
D_A_TO_D_B = {
    "metadata": {"annotations": {LAST_APPLIED: "{new}"}, "labels": {"tier": None}},
    "spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
             "template": {"spec": {
                 "$setElementOrder/containers": [{"name": "a"}],
                 "containers": [
                     {"$setElementOrder/env": [{"name": "BAR"}],
                      "$setElementOrder/ports": [{"containerPort": 80}],
                      "env": [{"$patch": "delete", "name": "FOO"}], "image": "nginx:2", "name": "a",
                      "ports": [{"$patch": "delete", "containerPort": 443}]},
                     {"$patch": "delete", "name": "b"}]}}},
}


def test_kubectl_apply_d_a_to_d_b() -> None:
    doc = deployment_a()
    out = smp(doc, D_A_TO_D_B, kind="Deployment")
    expected = deployment_a()
    expected["metadata"]["labels"] = {"app": "d"}
    expected["metadata"]["annotations"][LAST_APPLIED] = "{new}"
    expected["spec"]["strategy"] = {"type": "Recreate"}
    expected["spec"]["template"]["spec"]["containers"] = [
        {"name": "a", "image": "nginx:2", "env": [{"name": "BAR", "value": "2"}],
         "ports": [{"containerPort": 80, "protocol": "TCP"}]}]
    assert out == expected
    assert doc == deployment_a()


def test_kubectl_apply_image_change_with_element_order() -> None:
    doc = deployment_a()
    patch = {"metadata": {"annotations": {LAST_APPLIED: "{x}"}},
             "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                                            "containers": [{"image": "nginx:1.26", "name": "a"}]}}}}
    out = smp(doc, patch, kind="Deployment")
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["b", "a"]
    assert containers[1]["image"] == "nginx:1.26"
    assert containers[1]["env"] == doc["spec"]["template"]["spec"]["containers"][0]["env"]
    assert containers[0] == doc["spec"]["template"]["spec"]["containers"][1]


def test_kubectl_set_image_and_rollout_restart() -> None:
    doc = deployment_a()
    out = smp(doc, {"spec": {"template": {"spec": {"containers": [{"image": "nginx:1.27", "name": "a"}]}}}},
              kind="Deployment")
    out = smp(out, {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}}, kind="Deployment")
    template = out["spec"]["template"]
    assert [c["image"] for c in template["spec"]["containers"]] == ["nginx:1.27", "busybox"]
    restarted = {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}
    assert template["metadata"] == {"labels": {"app": "d"}, "annotations": restarted}


def service() -> dict:
    return {"kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.0.0.7",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                               {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}}


def test_service_ports_merge_by_port() -> None:
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090},
                                {"port": 443, "$patch": "delete"},
                                {"port": 53, "name": "dns", "protocol": "UDP"}]}}
    out = smp(service(), patch, kind="Service")
    assert out["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
        {"port": 53, "name": "dns", "protocol": "UDP"}]
    assert out["spec"]["clusterIP"] == "10.0.0.7"


def test_service_apply_element_order() -> None:
    patch = {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}]}}
    out = smp(service(), patch, kind="Service")
    assert [p["port"] for p in out["spec"]["ports"]] == [443, 80]


def test_lists_merge_only_for_kinds_with_the_rule() -> None:
    doc = {"spec": {"ports": [{"port": 80}, {"port": 81}]}}
    out = smp(doc, {"spec": {"ports": [{"port": 82}]}}, kind="Widget")
    assert out["spec"]["ports"] == [{"port": 82}]


def test_list_without_rule_is_replaced() -> None:
    doc = deployment_a()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "command": ["true"]}],
                                            "tolerations": [{"key": "k", "operator": "Exists"}]}}}}
    doc["spec"]["template"]["spec"]["tolerations"] = [{"key": "old"}]
    out = smp(doc, patch, kind="Deployment")
    assert out["spec"]["template"]["spec"]["containers"][1]["command"] == ["true"]
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]


def test_null_deletes_key_in_maps_and_in_merged_items() -> None:
    doc = deployment_a()
    patch = {"spec": {"replicas": None, "missing": None,
                      "template": {"spec": {"containers": [{"name": "b", "command": None}]}}}}
    out = smp(doc, patch, kind="Deployment")
    assert "replicas" not in out["spec"]
    assert "missing" not in out["spec"]
    assert out["spec"]["template"]["spec"]["containers"][1] == {"name": "b", "image": "busybox"}


def test_new_items_are_appended_without_directives_or_nulls() -> None:
    doc = deployment_a()
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "redis", "args": None, "$setElementOrder/env": [{"name": "X"}],
         "env": [{"name": "X", "value": "1"}, {"name": "GONE", "$patch": "delete"}],
         "resources": {"$patch": "replace", "limits": {"cpu": "1"}}}]}}}}
    out = smp(doc, patch, kind="Deployment")
    assert out["spec"]["template"]["spec"]["containers"][-1] == {
        "name": "c", "image": "redis", "env": [{"name": "X", "value": "1"}],
        "resources": {"limits": {"cpu": "1"}}}


def test_map_patch_replace_and_delete_and_merge() -> None:
    doc = deployment_a()
    patch = {"spec": {"selector": {"$patch": "replace", "matchLabels": {"app": "z"}},
                      "strategy": {"$patch": "delete"},
                      "template": {"metadata": {"$patch": "merge", "labels": {"v": "2"}}}}}
    out = smp(doc, patch, kind="Deployment")
    assert out["spec"]["selector"] == {"matchLabels": {"app": "z"}}
    assert "strategy" not in out["spec"]
    assert out["spec"]["template"]["metadata"] == {"labels": {"app": "d", "v": "2"}}


def test_root_directives() -> None:
    assert smp(deployment_a(), {"$patch": "delete"}, kind="Deployment") == {}
    replaced = smp(deployment_a(), {"$patch": "replace", "kind": "X", "gone": None}, kind="Deployment")
    assert replaced == {"kind": "X"}


def test_list_replace_directive_item() -> None:
    doc = deployment_a()
    patch = {"spec": {"template": {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "only", "image": "x", "$setElementOrder/env": [], "ports": None}]}}}}
    out = smp(doc, patch, kind="Deployment")
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "x"}]


def test_retain_keys_drops_unlisted_fields() -> None:
    doc = {"spec": {"strategy": {"type": "Recreate", "extra": 1}}}
    out = smp(doc, {"spec": {"strategy": {"$retainKeys": ["type", "rollingUpdate"], "type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": 1}}}}, kind="Deployment")
    assert out["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}


def test_retain_keys_must_list_every_field_the_patch_sets() -> None:
    with pytest.raises(PatchError, match="rollingUpdate"):
        smp(deployment_a(), {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
            kind="Deployment")
    with pytest.raises(PatchError):
        smp(deployment_a(), {"spec": {"strategy": {"$retainKeys": "type"}}}, kind="Deployment")
    with pytest.raises(PatchError):
        smp(deployment_a(), {"spec": {"strategy": {"$retainKeys": [1]}}}, kind="Deployment")


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    doc = {"metadata": {"finalizers": ["a", "b"]}}
    out = smp(doc, {"metadata": {"finalizers": ["c", "a"]}}, kind="ConfigMap")
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]
    out = smp(out, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zz"]}}, kind="ConfigMap")
    assert out["metadata"]["finalizers"] == ["b", "c"]
    out = smp(out, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "c"]}}, kind="ConfigMap")
    assert "finalizers" not in out["metadata"]


def test_primitive_list_element_order() -> None:
    doc = {"metadata": {"finalizers": ["a", "b", "c"]}}
    out = smp(doc, {"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}, kind="Pod")
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]


@pytest.mark.parametrize(("server", "order", "patch_items", "expected"), [
    (["a", "b", "c"], ["c", "b", "a"], [], ["c", "b", "a"]),
    # a new named item goes before the server-only items it is compared with
    (["a", "b"], ["a", "d"], ["d"], ["a", "d", "b"]),
    # server-only items keep their place relative to named items that were on the server
    (["a", "x", "b"], ["a", "b"], [], ["a", "x", "b"]),
    (["x", "a", "y", "b"], ["b", "a"], [], ["x", "y", "b", "a"]),
    (["a", "b"], ["b", "a"], ["a"], ["b", "a"]),
])
def test_set_element_order_with_server_only_items(server: list[str], order: list[str],
                                                  patch_items: list[str], expected: list[str]) -> None:
    doc = {"spec": {"containers": [{"name": n, "image": "i"} for n in server]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": n} for n in order],
                      "containers": [{"name": n, "image": "new"} for n in patch_items]}}
    out = smp(doc, patch, kind="Pod")
    assert [c["name"] for c in out["spec"]["containers"]] == expected
    assert {c["name"] for c in out["spec"]["containers"] if c["image"] == "new"} == set(patch_items)


def test_status_conditions_by_type_and_owner_references_by_uid() -> None:
    doc = {"metadata": {"ownerReferences": [{"uid": "1", "name": "rs"}]},
           "status": {"conditions": [{"type": "Ready", "status": "False"},
                                     {"type": "Scheduled", "status": "True"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "name": "other"}]},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    out = smp(doc, patch, kind="Pod")
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "Scheduled", "status": "True"}]
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["1", "2"]


def test_merge_into_missing_list_and_non_list() -> None:
    out = smp({"spec": {"containers": "junk"}}, {"spec": {"containers": [{"name": "a", "$patch": "delete"},
                                                                        {"name": "b"}]}}, kind="Pod")
    assert out == {"spec": {"containers": [{"name": "b"}]}}


@pytest.mark.parametrize("patch", [
    {"spec": {"containers": [{"image": "no-name"}]}},
    {"spec": {"containers": ["scalar"]}},
    {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}},
    {"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}},
    {"spec": {"$patch": "bogus"}},
    {"metadata": {"finalizers": [{"x": 1}]}},
    {"spec": {"$setElementOrder/containers": [{"image": "x"}]}},
    {"spec": {"$setElementOrder/containers": "a"}},
    {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
])
def test_bad_patches_raise(patch: dict) -> None:
    doc = {"metadata": {"finalizers": ["f"]}, "spec": {"containers": [{"name": "a"}]}}
    with pytest.raises(PatchError):
        smp(doc, patch, kind="Pod")


def test_rejects_non_objects() -> None:
    with pytest.raises(PatchError):
        smp({}, [], kind="Pod")  # type: ignore[arg-type]
    with pytest.raises(PatchError):
        smp([], {}, kind="Pod")  # type: ignore[arg-type]


def test_inputs_untouched_and_result_independent() -> None:
    doc, patch = deployment_a(), copy.deepcopy(D_A_TO_D_B)
    out = smp(doc, patch, kind="Deployment")
    out["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "NEW"})
    out["metadata"]["labels"]["x"] = "y"
    assert doc == deployment_a()
    assert patch == D_A_TO_D_B
