"""JSON Merge Patch (RFC 7386)."""

from __future__ import annotations

import copy

import pytest

from machinery.patch.errors import PatchError
from machinery.patch.merge_patch import apply_merge_patch


@pytest.mark.parametrize(("doc", "patch", "expected"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),  # lists are replaced, never merged
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ({"a": "x"}, {"a": {"b": 1}}, {"a": {"b": 1}}),  # a scalar target becomes an object
    ({"a": {"b": 1}}, {"a": {"b": [None, {"c": None}]}}, {"a": {"b": [None, {"c": None}]}}),
    ({"n": 1}, {"missing": None}, {"n": 1}),
])
def test_rfc_rules(doc: dict, patch: dict, expected: dict) -> None:
    assert apply_merge_patch(doc, patch) == expected


def test_kubectl_scale_body() -> None:
    scale = {"kind": "Scale", "spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=web"}}
    out = apply_merge_patch(scale, {"spec": {"replicas": 3}})
    assert out["spec"] == {"replicas": 3}
    assert out["status"] == scale["status"]


def test_kubectl_label_removal_body() -> None:
    obj = {"metadata": {"labels": {"app": "web", "tier": "fe"}, "name": "x"}}
    out = apply_merge_patch(obj, {"metadata": {"labels": {"tier": None, "env": "prod"}}})
    assert out["metadata"]["labels"] == {"app": "web", "env": "prod"}


def test_inputs_untouched_and_result_independent() -> None:
    doc = {"a": {"b": [1, 2]}, "c": {"d": 1}}
    patch = {"a": {"x": {"y": [3]}}, "c": None}
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = apply_merge_patch(doc, patch)
    out["a"]["b"].append(9)
    out["a"]["x"]["y"].append(9)
    assert doc == doc_before
    assert patch == patch_before


@pytest.mark.parametrize(("doc", "patch"), [({"a": 1}, [1]), ({"a": 1}, "x"), ([], {})])
def test_non_objects_rejected(doc: object, patch: object) -> None:
    with pytest.raises(PatchError):
        apply_merge_patch(doc, patch)  # type: ignore[arg-type]
