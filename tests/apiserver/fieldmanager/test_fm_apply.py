"""Server-side apply: merging, pruning, conflicts, forcing, shared ownership, list types."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.fieldmanager import ApplyConflict, FieldManagerError, apply, record_update
from apiserver.fieldmanager.fieldsets import has_member

KIND = "Deployment"
GV = "apps/v1"
NGINX = 'k:{"name":"nginx"}'


def deployment(**spec_extra) -> dict:
    return {"apiVersion": GV, "kind": KIND,
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                                           "ports": [{"containerPort": 80}]}]}},
                     **spec_extra}}


def do_apply(live, config, manager="kubectl", *, force=False, now="2024-01-01T00:00:00Z", kind=KIND):
    return apply(live, config, manager=manager, force=force, kind=kind, api_version=GV, now=now)


def entry(obj: dict, manager: str, operation: str = "Apply") -> dict | None:
    for e in obj["metadata"].get("managedFields", []):
        if e["manager"] == manager and e["operation"] == operation:
            return e
    return None


def owns(obj: dict, manager: str, *path: str, operation: str = "Apply") -> bool:
    e = entry(obj, manager, operation)
    return e is not None and has_member(e["fieldsV1"], path)


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


# ---------------------------------------------------------------------------------------------


def test_apply_creates_the_object_and_one_apply_entry():
    config = deployment()
    obj = do_apply(None, config)
    assert obj["spec"]["replicas"] == 2 and containers(obj)[0]["image"] == "nginx:1.25"
    (e,) = obj["metadata"]["managedFields"]
    assert list(e) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]
    assert (e["manager"], e["operation"], e["apiVersion"], e["time"]) == ("kubectl", "Apply", GV,
                                                                          "2024-01-01T00:00:00Z")
    fields = e["fieldsV1"]
    assert "f:name" not in fields["f:metadata"] and "f:apiVersion" not in fields
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"][NGINX]["f:ports"] == {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}


def test_inputs_are_untouched_and_result_shares_nothing():
    live = do_apply(None, deployment())
    config = deployment(replicas=5)
    live_copy, config_copy = copy.deepcopy(live), copy.deepcopy(config)
    out = do_apply(live, config)
    assert live == live_copy and config == config_copy
    out["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    out["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["x"] = 1
    assert live == live_copy and config == config_copy


def test_apply_update_changes_one_field_and_keeps_the_rest():
    live = do_apply(None, deployment())
    live["status"] = {"replicas": 2}  # written by someone else, not in any config
    changed = deployment()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    out = do_apply(live, changed, now="2024-01-02T00:00:00Z")
    assert containers(out)[0]["image"] == "nginx:1.26"
    assert out["status"] == {"replicas": 2} and out["spec"]["replicas"] == 2
    assert entry(out, "kubectl")["time"] == "2024-01-02T00:00:00Z"


def test_reapplying_the_same_config_changes_nothing_not_even_the_time():
    live = do_apply(None, deployment())
    again = do_apply(live, deployment(), now="2030-01-01T00:00:00Z")
    assert again == live


def test_field_dropped_from_config_is_removed():
    live = do_apply(None, deployment(minReadySeconds=5))
    config = deployment()
    del config["metadata"]["labels"]
    out = do_apply(live, config)
    assert "minReadySeconds" not in out["spec"]
    assert "labels" not in out["metadata"]
    assert not owns(out, "kubectl", "f:spec", "f:minReadySeconds")


def test_dropped_field_owned_by_an_updater_stays():
    live = do_apply(None, deployment())
    scaled = copy.deepcopy(live)
    scaled["spec"]["minReadySeconds"] = 9
    record_update(live, scaled, manager="kubectl-edit", kind=KIND, api_version=GV, now="t2")
    config = deployment(minReadySeconds=9)
    shared = do_apply(scaled, config)
    assert owns(shared, "kubectl", "f:spec", "f:minReadySeconds")
    out = do_apply(shared, deployment())
    assert out["spec"]["minReadySeconds"] == 9
    assert owns(out, "kubectl-edit", "f:spec", "f:minReadySeconds", operation="Update")


def test_null_in_config_removes_the_field():
    live = do_apply(None, deployment(minReadySeconds=5))
    out = do_apply(live, deployment(minReadySeconds=None))
    assert "minReadySeconds" not in out["spec"]


def test_conflict_with_an_update_manager_has_upstream_text():
    created = deployment()
    record_update(None, created, manager="kubectl-client-side-apply", kind=KIND, api_version=GV, now="t1")
    with pytest.raises(ApplyConflict) as info:
        do_apply(created, deployment(replicas=3))
    err = info.value
    assert str(err) == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                        "using apps/v1: .spec.replicas")
    assert err.conflicts == [("kubectl-client-side-apply", ".spec.replicas")]
    assert err.causes == [{"type": "FieldManagerConflict",
                           "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                           "field": ".spec.replicas"}]


def test_several_conflicts_are_grouped_by_manager():
    live = do_apply(None, deployment(), manager="a")
    config = deployment(replicas=7)
    config["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    with pytest.raises(ApplyConflict) as info:
        do_apply(live, config, manager="b")
    assert str(info.value) == ('Apply failed with 2 conflicts: conflicts with "a":\n- .spec.replicas\n'
                               '- .spec.template.spec.containers[name="nginx"].image')


def test_same_value_is_no_conflict_and_ownership_is_shared():
    live = do_apply(None, deployment(), manager="a")
    out = do_apply(live, deployment(), manager="b")
    assert owns(out, "a", "f:spec", "f:replicas") and owns(out, "b", "f:spec", "f:replicas")
    # either sharer changing it now conflicts with the other
    with pytest.raises(ApplyConflict) as info:
        do_apply(out, deployment(replicas=4), manager="a")
    assert info.value.conflicts == [("b", ".spec.replicas")]
    # one sharer dropping the field leaves it with the other
    config = deployment()
    del config["spec"]["replicas"]
    dropped = do_apply(out, config, manager="a")
    assert dropped["spec"]["replicas"] == 2
    assert owns(dropped, "b", "f:spec", "f:replicas") and not owns(dropped, "a", "f:spec", "f:replicas")


def test_force_takes_ownership():
    created = deployment()
    record_update(None, created, manager="kubectl-client-side-apply", kind=KIND, api_version=GV, now="t1")
    out = do_apply(created, deployment(replicas=3), force=True)
    assert out["spec"]["replicas"] == 3
    assert owns(out, "kubectl", "f:spec", "f:replicas")
    assert not owns(out, "kubectl-client-side-apply", "f:spec", "f:replicas", operation="Update")
    assert owns(out, "kubectl-client-side-apply", "f:spec", "f:selector", "f:matchLabels", "f:app",
                operation="Update")


def test_keyed_list_items_merge_by_key_and_prune_per_manager():
    base = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    a = {**base, "spec": {"containers": [{"name": "a", "image": "img-a"}]}}
    b = {**base, "spec": {"containers": [{"name": "b", "image": "img-b"}]}}
    obj = do_apply(None, a, manager="A", kind="Pod")
    obj = do_apply(obj, b, manager="B", kind="Pod")
    assert [c["name"] for c in obj["spec"]["containers"]] == ["a", "b"]
    assert owns(obj, "A", "f:spec", "f:containers", 'k:{"name":"a"}')
    assert not owns(obj, "A", "f:spec", "f:containers", 'k:{"name":"b"}')
    # A changes its own container without touching B's
    a2 = {**base, "spec": {"containers": [{"name": "a", "image": "img-a2"}]}}
    obj = do_apply(obj, a2, manager="A", kind="Pod")
    assert obj["spec"]["containers"] == [{"name": "a", "image": "img-a2"}, {"name": "b", "image": "img-b"}]
    # A drops its container: it goes, B's stays
    obj = do_apply(obj, {**base, "spec": {"containers": []}}, manager="A", kind="Pod")
    assert obj["spec"]["containers"] == [{"name": "b", "image": "img-b"}]
    assert entry(obj, "A") is None  # owns nothing any more


def test_dropped_item_takes_its_unowned_defaults_along():
    live = do_apply(None, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}},
                    kind="Pod")
    live["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"  # a server default
    out = do_apply(live, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                          "spec": {"containers": [{"name": "b", "image": "y"}]}}, kind="Pod")
    assert out["spec"]["containers"] == [{"name": "b", "image": "y"}]


def test_configured_order_wins_and_live_only_items_keep_their_place():
    base = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    obj = do_apply(None, {**base, "spec": {"containers": [{"name": "x"}, {"name": "a"}]}}, manager="X",
                   kind="Pod")
    obj = do_apply(obj, {**base, "spec": {"containers": [{"name": "n"}, {"name": "a"}]}}, manager="Y",
                   kind="Pod")
    assert [c["name"] for c in obj["spec"]["containers"]] == ["x", "n", "a"]


def test_set_lists_union_and_prune_by_value():
    cm = {"apiVersion": "v1", "kind": "ConfigMap"}
    obj = do_apply(None, {**cm, "metadata": {"name": "c", "finalizers": ["x/a", "x/b"]}}, manager="A",
                   kind="ConfigMap")
    obj = do_apply(obj, {**cm, "metadata": {"name": "c", "finalizers": ["x/b", "x/c"]}}, manager="B",
                   kind="ConfigMap")
    assert obj["metadata"]["finalizers"] == ["x/a", "x/b", "x/c"]
    obj = do_apply(obj, {**cm, "metadata": {"name": "c"}}, manager="A", kind="ConfigMap")
    assert obj["metadata"]["finalizers"] == ["x/b", "x/c"]  # x/b is still B's
    assert owns(obj, "B", "f:metadata", "f:finalizers", 'v:"x/b"')


def test_atomic_lists_are_replaced_whole_and_conflict_whole():
    def pod(args):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "args": args}]}}
    obj = do_apply(None, pod(["a", "b"]), manager="A", kind="Pod")
    args_path = ("f:spec", "f:containers", 'k:{"name":"c"}', "f:args")
    assert obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:containers"]['k:{"name":"c"}'][
        "f:args"] == {}
    with pytest.raises(ApplyConflict) as info:
        do_apply(obj, pod(["z"]), manager="B", kind="Pod")
    assert info.value.conflicts == [("A", '.spec.containers[name="c"].args')]
    out = do_apply(obj, pod(["z"]), manager="B", kind="Pod", force=True)
    assert out["spec"]["containers"][0]["args"] == ["z"]
    assert owns(out, "B", *args_path) and not owns(out, "A", *args_path)


def test_kubectl_upgrade_from_client_side_apply_is_not_a_conflict():
    manifest = deployment()
    created = copy.deepcopy(manifest)
    created["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": orjson.dumps(manifest).decode() + "\n"}
    record_update(None, created, manager="kubectl-client-side-apply", kind=KIND, api_version=GV, now="t1")
    out = do_apply(created, deployment(replicas=3))
    assert out["spec"]["replicas"] == 3
    # the annotation follows the server-side config, for a later client-side apply
    last = orjson.loads(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3
    # another manager name gets no such leniency
    with pytest.raises(ApplyConflict):
        do_apply(created, deployment(replicas=3), manager="my-tool")


def test_kubectl_upgrade_still_conflicts_on_fields_outside_last_applied():
    created = deployment()
    created["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    record_update(None, created, manager="kubectl-client-side-apply", kind=KIND, api_version=GV, now="t1")
    with pytest.raises(ApplyConflict):
        do_apply(created, deployment(replicas=3))


def test_server_owned_metadata_and_managed_fields_in_config_are_ignored():
    live = do_apply(None, deployment())
    live["metadata"].update(uid="u1", resourceVersion="5", creationTimestamp="t0")
    config = deployment()
    config["metadata"].update(uid="other", resourceVersion="1", managedFields=[{"manager": "evil"}])
    out = do_apply(live, config)
    assert (out["metadata"]["uid"], out["metadata"]["resourceVersion"]) == ("u1", "5")
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == ["kubectl"]


@pytest.mark.parametrize(("config", "message"), [
    ([1, 2], "must be a JSON object"),
    ({"metadata": "x"}, "metadata"),
    ({"spec": {"containers": [{"image": "x"}]}}, "omits key field 'name'"),
    ({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}, "duplicate entries"),
    ({"spec": {"containers": ["a"]}}, "non-map elements"),
    ({"metadata": {"finalizers": [{"a": 1}]}}, "scalar"),
])
def test_bad_configurations_raise_field_manager_error(config, message):
    with pytest.raises(FieldManagerError, match=message):
        do_apply(None, config, kind="Pod")


# ---------------------------------------------------------------------------------------------
# model check: applies (forced or not) and updates on a ConfigMap's data, against a tiny model in
# which each key has a value and a set of owners


_op = st.one_of(
    st.tuples(st.just("apply"), st.sampled_from(["A", "B"]),
              st.dictionaries(st.sampled_from("klmn"), st.sampled_from("12"), max_size=3), st.booleans()),
    st.tuples(st.just("update"), st.sampled_from(["U"]), st.sampled_from("klmn"),
              st.sampled_from(["1", "2", None])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_op, max_size=8))
def test_ownership_follows_the_model(ops):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    data: dict[str, str] = {}
    owners: dict[str, set[tuple[str, str]]] = {}
    for op in ops:
        if op[0] == "apply":
            _, manager, config, force = op
            me = (manager, "Apply")
            conflict = any(k in data and data[k] != v and owners.get(k, set()) - {me}
                           for k, v in config.items())
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": config}
            if conflict and not force:
                with pytest.raises(ApplyConflict):
                    apply(obj, body, manager=manager, force=False, kind="ConfigMap", api_version="v1", now="t")
                continue
            obj = apply(obj, body, manager=manager, force=force, kind="ConfigMap", api_version="v1", now="t")
            for k, v in config.items():
                if k in data and data[k] != v:
                    owners[k] = {me}
                else:
                    owners.setdefault(k, set()).add(me)
                data[k] = v
            for k in [k for k, who in owners.items() if me in who and k not in config]:
                owners[k].discard(me)
                if not owners[k]:
                    data.pop(k, None)
        else:
            _, manager, key, value = op
            me = (manager, "Update")
            new = copy.deepcopy(obj)
            if value is None:
                new.setdefault("data", {}).pop(key, None)
                if key in data:
                    del data[key]
                    owners[key] = set()
            else:
                new.setdefault("data", {})[key] = value
                if data.get(key) != value:
                    owners[key] = {me}
                    data[key] = value
            record_update(obj, new, manager=manager, kind="ConfigMap", api_version="v1", now="t")
            obj = new
        assert (obj.get("data") or {}) == data
        for manager, operation in [("A", "Apply"), ("B", "Apply"), ("U", "Update")]:
            got = {k for k in "klmn" if owns(obj, manager, "f:data", f"f:{k}", operation=operation)}
            assert got == {k for k, who in owners.items() if (manager, operation) in who}, (manager, ops)
