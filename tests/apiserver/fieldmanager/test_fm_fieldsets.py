"""Field-set algebra, path element encoding and the two readings of objects (apply / update)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from apiserver.fieldmanager import field_set
from apiserver.fieldmanager.extract import added_fields, diff
from apiserver.fieldmanager.fieldsets import (
    common_members,
    difference,
    element_text,
    has_member,
    members,
    path_text,
    remove_subtrees,
    union,
)

# ---------------------------------------------------------------------------------------------
# helpers: sets built from explicit member paths


def build(paths: set[tuple[str, ...]]) -> dict:
    root: dict = {}
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    return _normalise(root, top=True)


def _normalise(node: dict, *, top: bool = False) -> dict:
    kids = {k: _normalise(v) for k, v in node.items() if k != "."}
    if "." in node and not top:
        return {".": {}, **kids} if kids else {}
    return kids


paths_st = st.sets(st.lists(st.sampled_from(["f:a", "f:b", 'k:{"name":"x"}', 'v:"y"']), min_size=1,
                            max_size=3).map(tuple), max_size=8)


@given(paths_st)
def test_members_round_trip(paths):
    assert set(members(build(paths))) == paths


@given(paths_st, paths_st)
def test_union_difference_match_python_sets(a, b):
    sa, sb = build(a), build(b)
    assert set(members(union(sa, sb))) == a | b
    assert set(members(difference(sa, sb))) == a - b
    assert set(common_members(sa, sb)) == a & b
    for path in a | b:
        assert has_member(union(sa, sb), path)


@given(paths_st, paths_st)
def test_remove_subtrees_drops_everything_below(a, b):
    left = set(members(remove_subtrees(build(a), build(b))))
    assert left == {p for p in a if not any(p[:len(q)] == q for q in b)}


@given(paths_st, paths_st)
def test_operations_do_not_mutate_inputs(a, b):
    sa, sb = build(a), build(b)
    before = (repr(sa), repr(sb))
    union(sa, sb)
    difference(sa, sb)
    remove_subtrees(sa, sb)
    assert (repr(sa), repr(sb)) == before


def test_unchanged_results_are_the_input_itself():
    s = build({("f:a",), ("f:b", "f:c")})
    assert difference(s, build({("f:z",)})) is s
    assert remove_subtrees(s, build({("f:b", "f:q")})) is s
    assert union(s, {}) is s


def test_dropping_the_last_child_of_a_member_leaves_a_leaf():
    s = {"f:labels": {".": {}, "f:a": {}}}
    assert difference(s, {"f:labels": {"f:a": {}}}) == {"f:labels": {}}
    assert difference(s, {"f:labels": {}}) == {"f:labels": {"f:a": {}}}


# ---------------------------------------------------------------------------------------------
# element encoding and display


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]}}


def test_keyed_items_and_two_key_ports_are_encoded_like_upstream():
    fs = field_set(POD, kind="Pod")
    containers = fs["f:spec"]["f:containers"]
    assert list(containers) == ['k:{"name":"nginx"}']
    item = containers['k:{"name":"nginx"}']
    assert item["."] == {} and item["f:image"] == {} and item["f:name"] == {}
    # protocol is a map key with a default: an item that omits it is still named by it
    assert set(item["f:ports"]) == {'k:{"containerPort":80,"protocol":"TCP"}',
                                    'k:{"containerPort":53,"protocol":"UDP"}'}


def test_map_keys_are_sorted_in_elements():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
    assert list(field_set(node, kind="Node")["f:spec"]["f:taints"]) == ['k:{"effect":"NoSchedule","key":"k"}']


def test_set_items_atomic_lists_and_empty_maps():
    obj = {"metadata": {"name": "x", "finalizers": ["a/b", "c"]},
           "spec": {"args": ["x", "y"], "empty": {}, "none": None}}
    fs = field_set(obj, kind="Pod")
    assert fs["f:metadata"] == {"f:finalizers": {'v:"a/b"': {}, 'v:"c"': {}}}
    assert fs["f:spec"] == {"f:args": {}, "f:empty": {}, "f:none": {}}


def test_identity_and_server_fields_are_not_owned():
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "c", "namespace": "d", "uid": "u", "resourceVersion": "3", "generation": 2,
                        "creationTimestamp": "t", "managedFields": [{"manager": "m"}]},
           "data": {"k": "v"}}
    assert field_set(obj, kind="ConfigMap") == {"f:data": {"f:k": {}}}


def test_path_text_matches_upstream_conflict_paths():
    assert path_text(("f:spec", "f:replicas")) == ".spec.replicas"
    assert path_text(("f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image")) == \
        '.spec.containers[name="nginx"].image'
    assert element_text('k:{"containerPort":80,"protocol":"TCP"}') == '[containerPort=80,protocol="TCP"]'
    assert element_text('v:"x"') == '[="x"]'
    assert element_text("i:3") == "[3]"


# ---------------------------------------------------------------------------------------------
# the update reading


def test_added_fields_own_new_maps_and_items_but_not_the_top_level_structs():
    fs = added_fields(POD | {"metadata": {"name": "p", "labels": {"a": "b"}}}, kind="Pod")
    assert fs["f:metadata"] == {"f:labels": {".": {}, "f:a": {}}}
    containers = fs["f:spec"]["f:containers"]
    assert "." in containers and "." in containers['k:{"name":"nginx"}']
    assert "." not in fs["f:spec"]


def test_diff_reports_changed_added_and_removed_items():
    new = {**POD, "spec": {"containers": [
        {"name": "nginx", "image": "nginx:2", "ports": [{"containerPort": 80}]},
        {"name": "side", "image": "busybox"}]}}
    changed, removed = diff(POD, new, kind="Pod")
    containers = changed["f:spec"]["f:containers"]
    assert containers['k:{"name":"nginx"}'] == {"f:image": {}}
    assert containers['k:{"name":"side"}'] == {".": {}, "f:name": {}, "f:image": {}}
    assert removed == {"f:spec": {"f:containers": {'k:{"name":"nginx"}': {"f:ports": {
        'k:{"containerPort":53,"protocol":"UDP"}': {}}}}}}


def test_diff_of_equal_objects_is_empty_and_ignores_server_fields():
    other = {**POD, "metadata": {**POD["metadata"], "resourceVersion": "9", "managedFields": []}}
    assert diff(POD, other, kind="Pod") == ({}, {})
