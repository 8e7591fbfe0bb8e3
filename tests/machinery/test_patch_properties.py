"""Property tests tying the three patch formats to their defining laws."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.patch.json_patch import apply_json_patch
from machinery.patch.merge_patch import apply_merge_patch
from machinery.patch.strategic import apply_strategic_merge_patch

# Keys that name no list rule in merge_keys, so strategic patches on them behave like merge patches.
KEYS = st.sampled_from(["a", "b", "c", "d", "x~y", "p/q", ""])
SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=4)
JSON = st.recursive(SCALARS,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                    max_leaves=12)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=4)
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(OBJECTS)
def test_merge_patch_of_empty_object_is_identity(doc: dict) -> None:
    assert apply_merge_patch(doc, {}) == doc
    assert apply_strategic_merge_patch(doc, {}, kind="Widget") == doc


@SETTINGS
@given(OBJECTS, OBJECTS)
def test_merge_patch_is_idempotent(doc: dict, patch: dict) -> None:
    once = apply_merge_patch(doc, patch)
    assert apply_merge_patch(once, patch) == once


# patches whose lists hold no maps: there the two formats agree (SMP strips nulls inside lists' maps)
FLAT_LISTS = st.recursive(
    SCALARS, lambda inner: st.lists(SCALARS, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12)


@SETTINGS
@given(OBJECTS, st.dictionaries(KEYS, FLAT_LISTS, max_size=4))
def test_strategic_without_rules_equals_merge_patch(doc: dict, patch: dict) -> None:
    before = copy.deepcopy((doc, patch))
    assert apply_strategic_merge_patch(doc, patch, kind="Widget") == apply_merge_patch(doc, patch)
    assert (doc, patch) == before


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


@SETTINGS
@given(OBJECTS, KEYS, JSON)
def test_json_patch_test_after_add_passes(doc: dict, key: str, value: object) -> None:
    before = copy.deepcopy(doc)
    ops = [{"op": "add", "path": _pointer(key), "value": value},
           {"op": "test", "path": _pointer(key), "value": value}]
    out = apply_json_patch(doc, ops)
    assert out[key] == value
    assert doc == before


@SETTINGS
@given(OBJECTS, KEYS)
def test_json_patch_add_then_remove_restores(doc: dict, key: str) -> None:
    if key in doc:
        return
    ops = [{"op": "add", "path": _pointer(key), "value": {"n": [1]}}, {"op": "remove", "path": _pointer(key)}]
    assert apply_json_patch(doc, ops) == doc


# --- SMP: a patch that is a subset of the document leaves the document unchanged ------------------

NAMES = st.text("abcdefgh", min_size=1, max_size=3)
VALUES = st.text("xyz019", max_size=3)


@st.composite
def pods(draw: st.DrawFn) -> dict:
    def unique(strategy: st.SearchStrategy, key: str) -> st.SearchStrategy:
        return st.lists(strategy, max_size=3, unique_by=lambda item: item[key])

    env = st.fixed_dictionaries({"name": NAMES, "value": VALUES})
    port = st.fixed_dictionaries({"containerPort": st.integers(1, 9)}, optional={"protocol": st.just("TCP")})
    container = st.fixed_dictionaries(
        {"name": NAMES, "image": VALUES},
        optional={"env": unique(env, "name"), "ports": unique(port, "containerPort"),
                  "args": st.lists(VALUES, max_size=3)})
    return draw(st.fixed_dictionaries(
        {"kind": st.just("Pod"), "metadata": st.fixed_dictionaries(
            {"name": NAMES},
            optional={"labels": st.dictionaries(NAMES, VALUES, max_size=3),
                      "finalizers": st.lists(NAMES, max_size=3, unique=True)})},
        optional={"spec": st.fixed_dictionaries({"containers": unique(container, "name")},
                                                optional={"nodeName": NAMES})}))


#: list fields whose items merge by this key (None: a set of scalars)
MERGED = {"containers": "name", "env": "name", "ports": "containerPort", "finalizers": None}


def subset(draw: st.DrawFn, value: object, field: str | None = None) -> object:
    """A random part of ``value`` that, applied as a patch, changes nothing."""
    if isinstance(value, dict):
        keep = draw(st.lists(st.sampled_from(sorted(value)), unique=True)) if value else []
        key = MERGED.get(field or "")
        part = {k: subset(draw, value[k], k) for k in keep}
        if key is not None:
            part[key] = value[key]
        return part
    if isinstance(value, list) and field in MERGED:
        chosen = [item for item in value if draw(st.booleans())]
        return [subset(draw, item, field) for item in chosen]
    return copy.deepcopy(value)


@SETTINGS
@given(pods(), st.data())
def test_strategic_patch_with_a_subset_of_the_document_is_identity(doc: dict, data: st.DataObject) -> None:
    patch = subset(data.draw, doc)
    assert apply_strategic_merge_patch(doc, patch, kind="Pod") == doc


@SETTINGS
@given(pods(), st.data())
def test_strategic_element_order_of_current_order_is_identity(doc: dict, data: st.DataObject) -> None:
    containers = doc.get("spec", {}).get("containers", [])
    patch = {"spec": {"$setElementOrder/containers": [{"name": c["name"]} for c in containers]}}
    out = apply_strategic_merge_patch(doc, patch, kind="Pod")
    assert out.get("spec", {}).get("containers", []) == containers
    names = [{"name": c["name"]} for c in containers[::-1]]
    reversed_order = {"spec": {"$setElementOrder/containers": names}}
    out = apply_strategic_merge_patch(doc, reversed_order, kind="Pod")
    assert out.get("spec", {}).get("containers", []) == containers[::-1]
