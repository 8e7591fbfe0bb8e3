"""JSON Patch (RFC 6902) and JSON pointer rules."""

from __future__ import annotations

import copy

import pytest

from machinery.patch.errors import PatchError
from machinery.patch.json_patch import apply_json_patch
from machinery.patch.pointer import parse_pointer

DOC = {"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"items": ["a", "b", "c"]}}


def patched(ops: list, doc: dict | None = None) -> dict:
    return apply_json_patch(DOC if doc is None else doc, ops)


@pytest.mark.parametrize(("pointer", "tokens"), [
    ("", []),
    ("/", [""]),
    ("/a/b", ["a", "b"]),
    ("/a~1b/c~0d", ["a/b", "c~d"]),
    ("/~01", ["~1"]),  # ~0 is decoded after ~1, so "~01" is "~1", not "/"
    ("/a//b", ["a", "", "b"]),
])
def test_pointer_tokens(pointer: str, tokens: list[str]) -> None:
    assert parse_pointer(pointer) == tokens


@pytest.mark.parametrize("pointer", ["a", "/a~", "/a~2", 3])
def test_pointer_invalid(pointer: object) -> None:
    with pytest.raises(PatchError):
        parse_pointer(pointer)


def test_add_member_and_replace_existing_member() -> None:
    out = patched([{"op": "add", "path": "/metadata/labels/tier", "value": "fe"},
                   {"op": "add", "path": "/metadata/name", "value": "api"}])
    assert out["metadata"] == {"name": "api", "labels": {"app": "web", "tier": "fe"}}


def test_add_into_array_inserts_and_dash_appends() -> None:
    out = patched([{"op": "add", "path": "/spec/items/1", "value": "x"},
                   {"op": "add", "path": "/spec/items/-", "value": "z"},
                   {"op": "add", "path": "/spec/items/5", "value": "end"}])
    assert out["spec"]["items"] == ["a", "x", "b", "c", "z", "end"]


def test_add_escaped_key() -> None:
    out = patched([{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "w"}])
    assert out["metadata"]["labels"]["app.kubernetes.io/name"] == "w"


def test_add_root_replaces_document() -> None:
    assert patched([{"op": "add", "path": "", "value": {"x": 1}}]) == {"x": 1}


def test_add_null_value_is_kept() -> None:
    assert patched([{"op": "add", "path": "/spec/x", "value": None}])["spec"]["x"] is None


def test_remove_member_and_element() -> None:
    out = patched([{"op": "remove", "path": "/metadata/labels/app"},
                   {"op": "remove", "path": "/spec/items/0"}])
    assert out["metadata"]["labels"] == {}
    assert out["spec"]["items"] == ["b", "c"]


def test_replace_member_and_element() -> None:
    out = patched([{"op": "replace", "path": "/spec/items/2", "value": {"k": [1]}},
                   {"op": "replace", "path": "/metadata", "value": {"name": "n"}}])
    assert out["spec"]["items"] == ["a", "b", {"k": [1]}]
    assert out["metadata"] == {"name": "n"}


def test_move_between_objects_and_within_array() -> None:
    out = patched([{"op": "move", "from": "/metadata/labels", "path": "/spec/labels"},
                   {"op": "move", "from": "/spec/items/0", "path": "/spec/items/2"}])
    assert "labels" not in out["metadata"]
    assert out["spec"]["labels"] == {"app": "web"}
    assert out["spec"]["items"] == ["b", "c", "a"]


def test_move_to_same_place_is_noop() -> None:
    assert patched([{"op": "move", "from": "/spec", "path": "/spec"}]) == DOC


def test_copy_is_independent() -> None:
    out = patched([{"op": "copy", "from": "/metadata/labels", "path": "/spec/sel"},
                   {"op": "add", "path": "/spec/sel/extra", "value": "1"}])
    assert out["spec"]["sel"] == {"app": "web", "extra": "1"}
    assert out["metadata"]["labels"] == {"app": "web"}


def test_test_operation_passes_and_fails() -> None:
    ok = [{"op": "test", "path": "/spec/items", "value": ["a", "b", "c"]}]
    assert patched(ok) == DOC
    with pytest.raises(PatchError, match="test failed"):
        patched([{"op": "test", "path": "/metadata/name", "value": "other"}])


@pytest.mark.parametrize(("actual", "expected", "equal"), [
    (1, 1.0, True),
    (1, True, False),
    (0, False, False),
    ({"a": [1, "x"]}, {"a": [1, "x"]}, True),
    ({"a": 1}, {"a": 1, "b": 2}, False),
    (None, None, True),
    ("1", 1, False),
])
def test_test_uses_json_equality(actual: object, expected: object, equal: bool) -> None:
    ops = [{"op": "test", "path": "/v", "value": expected}]
    if equal:
        assert apply_json_patch({"v": actual}, ops) == {"v": actual}
    else:
        with pytest.raises(PatchError):
            apply_json_patch({"v": actual}, ops)


@pytest.mark.parametrize("ops", [
    [{"op": "remove", "path": "/metadata/missing"}],
    [{"op": "replace", "path": "/nope", "value": 1}],
    [{"op": "add", "path": "/nope/deeper", "value": 1}],
    [{"op": "add", "path": "/spec/items/4", "value": 1}],
    [{"op": "add", "path": "/spec/items/01", "value": 1}],
    [{"op": "add", "path": "/spec/items/x", "value": 1}],
    [{"op": "remove", "path": "/spec/items/-"}],
    [{"op": "remove", "path": "/spec/items/3"}],
    [{"op": "add", "path": "/metadata/name/x", "value": 1}],
    [{"op": "move", "from": "/metadata", "path": "/metadata/labels/m"}],
    [{"op": "copy", "from": "/missing", "path": "/x"}],
    [{"op": "remove", "path": ""}],
    [{"op": "add", "path": "", "value": [1]}],
    [{"op": "frobnicate", "path": "/x"}],
    [{"path": "/x", "value": 1}],
    [{"op": "add", "path": "/x"}],
    [{"op": "move", "path": "/x"}],
    [{"op": "add", "path": 5, "value": 1}],
    ["add"],
])
def test_invalid_operations_raise(ops: list) -> None:
    with pytest.raises(PatchError):
        patched(ops)


def test_rejects_non_list_patch_and_non_object_doc() -> None:
    with pytest.raises(PatchError):
        apply_json_patch(DOC, {"op": "add"})  # type: ignore[arg-type]
    with pytest.raises(PatchError):
        apply_json_patch([], [])  # type: ignore[arg-type]


def test_patch_is_atomic_and_inputs_untouched() -> None:
    doc, before = copy.deepcopy(DOC), copy.deepcopy(DOC)
    value = {"deep": ["v"]}
    ops = [{"op": "add", "path": "/spec/new", "value": value},
           {"op": "remove", "path": "/metadata/labels/app"},
           {"op": "test", "path": "/spec/new/deep/0", "value": "wrong"}]
    with pytest.raises(PatchError, match="operation 2"):
        apply_json_patch(doc, ops)
    assert doc == before
    out = apply_json_patch(doc, ops[:2])
    out["spec"]["new"]["deep"].append("w")
    out["spec"]["items"].append("d")
    assert value == {"deep": ["v"]}
    assert doc == before


def test_kubectl_rollout_undo_body() -> None:
    deployment = {"metadata": {"name": "web", "annotations": {"deployment.kubernetes.io/revision": "3"}},
                  "spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}}
    template = {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                         "ports": [{"containerPort": 80}], "resources": {}}]}}
    ops = [{"op": "replace", "path": "/spec/template", "value": template},
           {"op": "replace", "path": "/metadata/annotations",
            "value": {"deployment.kubernetes.io/revision": "2"}}]
    out = apply_json_patch(deployment, ops)
    assert out["spec"]["template"] == template
    assert out["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "2"}
