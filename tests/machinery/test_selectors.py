"""Label and field selectors: parsing, validation, matching, canonical text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.selectors import FieldSelector, LabelSelector, SelectorError

# --- label selector parsing and canonical text -----------------------------------------------------


@pytest.mark.parametrize(("text", "canonical"), [
    ("app=web", "app=web"),
    ("app==web", "app==web"),
    ("app!=web", "app!=web"),
    ("  app = web ,tier in ( fe, be,fe )", "app=web,tier in (be,fe)"),
    ("tier notin (x)", "tier notin (x)"),
    ("gpu", "gpu"),
    ("!gpu", "!gpu"),
    ("z=1,a=2,m", "a=2,m,z=1"),
    ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
    ("a=", "a="),
    ("a=,b=c", "a=,b=c"),
    ("a in (,x)", "a in (,x)"),
    ("a in (x,)", "a in (,x)"),
    ("a>5,b<-2", "a>5,b<-2"),
    ("in=notin", "in=notin"),
    ("a in (in, notin)", "a in (in,notin)"),
    ("", ""),
    ("   ", ""),
])
def test_parse_canonical(text: str, canonical: str) -> None:
    selector = LabelSelector.parse(text)
    assert str(selector) == canonical
    assert LabelSelector.parse(canonical) == selector


@pytest.mark.parametrize(("text", "fragment"), [
    ("a,", "end of string"),
    (",a", "label key"),
    ("a=b c", "'c'"),
    ("a b", "'b'"),
    ("!a=b", "'='"),
    ("!", "label key"),
    ("a in x", "'('"),
    ("a in (x", "end of string"),
    ("a in (x y)", "'y'"),
    ("a in ()", "non-empty"),
    ("a notin ()", "non-empty"),
    ("a=(b)", "'('"),
    ("a>x", "integer"),
    ("a>", "integer"),
    ("a=b=c", "'='"),
    ("a==b,", "end of string"),
    ("-a=b", "'-a'"),
    ("a-=b", "'a-'"),
    ("/a", "prefix"),
    ("a/", "name part must be non-empty"),
    ("A.B/c", "'A.B'"),
    ("a/b/c", "one '/'"),
    ("x" * 64, "63"),
    ("a=" + "v" * 64, "63"),
    ("a=-v", "'-v'"),
    ("a in (ok,-bad)", "'-bad'"),
    ("a=b/c", "'b/c'"),
])
def test_parse_errors_name_the_bad_part(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as info:
        LabelSelector.parse(text)
    assert fragment in str(info.value)


def test_parse_accepts_long_prefix_and_max_name() -> None:
    key = "a" * 60 + ".example.com/" + "n" * 63
    assert LabelSelector.parse(f"{key}={'v' * 63}").matches({key: "v" * 63})
    with pytest.raises(SelectorError):
        LabelSelector.parse("a" * 254 + "/n")


def test_parse_rejects_non_string() -> None:
    with pytest.raises(SelectorError):
        LabelSelector.parse(None)  # type: ignore[arg-type]


# --- label matching ------------------------------------------------------------------------------

LABELS = {"app": "web", "tier": "fe", "n": "7", "empty": ""}


@pytest.mark.parametrize(("text", "expected"), [
    ("app=web", True), ("app==web", True), ("app=api", False), ("missing=x", False),
    ("app!=api", True), ("app!=web", False), ("missing!=x", True),
    ("tier in (fe,be)", True), ("tier in (be)", False), ("missing in (x)", False),
    ("tier notin (be)", True), ("tier notin (fe)", False), ("missing notin (x)", True),
    ("app", True), ("missing", False), ("!missing", True), ("!app", False),
    ("empty=", True), ("missing=", False), ("empty", True),
    ("n>6", True), ("n>7", False), ("n<8", True), ("app>1", False), ("missing<9", False),
    ("app=web,tier=fe", True), ("app=web,tier=be", False),
    ("", True),
])
def test_matches(text: str, expected: bool) -> None:
    assert LabelSelector.parse(text).matches(LABELS) is expected


def test_matches_none_labels() -> None:
    assert LabelSelector.parse("").matches(None)
    assert LabelSelector.parse("!a").matches(None)
    assert not LabelSelector.parse("a").matches(None)
    assert LabelSelector.parse("a!=b").matches({})


# --- API form ------------------------------------------------------------------------------------


def test_from_dict_none_matches_nothing_and_empty_matches_everything() -> None:
    nothing = LabelSelector.from_dict(None)
    assert not nothing.matches({}) and not nothing.matches({"a": "b"})
    assert not nothing.empty and nothing.nothing
    everything = LabelSelector.from_dict({})
    assert everything.empty and everything.matches({}) and everything.matches({"a": "b"})
    assert LabelSelector.from_dict({"matchLabels": {}, "matchExpressions": []}).empty
    assert LabelSelector.from_dict({"matchLabels": None}).empty


def test_from_dict_combines_match_labels_and_expressions() -> None:
    selector = LabelSelector.from_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                             {"key": "env", "operator": "NotIn", "values": ["dev"]},
                             {"key": "gpu", "operator": "Exists"},
                             {"key": "old", "operator": "DoesNotExist", "values": []}]})
    assert str(selector) == "app=web,env notin (dev),gpu,!old,tier in (be,fe)"
    assert selector.matches({"app": "web", "tier": "be", "gpu": ""})
    assert not selector.matches({"app": "web", "tier": "be", "gpu": "", "old": "1"})
    assert not selector.matches({"app": "web", "tier": "be", "gpu": "", "env": "dev"})
    assert not selector.matches({"app": "web", "tier": "qa", "gpu": ""})
    assert selector.equality_requirements() == {"app": "web"}


def test_scale_status_selector_text() -> None:
    assert str(LabelSelector.from_dict({"matchLabels": {"app": "web"}})) == "app=web"
    assert str(LabelSelector.from_dict({"matchLabels": {"b": "2", "a": "1"}})) == "a=1,b=2"


@pytest.mark.parametrize(("selector", "fragment"), [
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, "not a valid"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "non-empty"),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "non-empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "no values"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "key"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}, "list"),
    ({"matchExpressions": ["a"]}, "object"),
    ({"matchExpressions": {"key": "a"}}, "list"),
    ({"matchLabels": {"bad key": "x"}}, "'bad key'"),
    ({"matchLabels": {"a": "bad value"}}, "'bad value'"),
    ({"matchLabels": {"a": 1}}, "string"),
    ({"matchLabels": ["a"]}, "matchLabels"),
    ("app=web", "object"),
])
def test_from_dict_errors(selector: object, fragment: str) -> None:
    with pytest.raises(SelectorError) as info:
        LabelSelector.from_dict(selector)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_equality_requirements() -> None:
    assert LabelSelector.parse("a=1,b==2,c in (3),d in (4,5),e!=6,f,g notin (7)").equality_requirements() == {
        "a": "1", "b": "2", "c": "3"}


# --- field selectors -----------------------------------------------------------------------------

POD_FIELDS = {"metadata.name": "web-1", "metadata.namespace": "default", "spec.nodeName": "n1",
              "status.phase": "Running"}


@pytest.mark.parametrize(("text", "expected"), [
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name!=web-1", False),
    ("metadata.name=web-2", False),
    ("spec.nodeName=n1,status.phase!=Failed", True),
    ("spec.nodeName=n1,status.phase=Failed", False),
    ("spec.hostname=", True),  # a missing field compares as ""
    ("spec.hostname!=", False),
    ("spec.nodeName!=", True),
    ("", True),
    (",,metadata.name=web-1,", True),
])
def test_field_matches(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text).matches(POD_FIELDS) is expected


def test_field_escapes_round_trip() -> None:
    selector = FieldSelector.parse(r"a=x\,y\=z\\w,b!=\\")
    assert [(r.field, r.value, r.equal) for r in selector.requirements] == [("a", "x,y=z\\w", True),
                                                                          ("b", "\\", False)]
    assert str(selector) == r"a=x\,y\=z\\w,b!=\\"
    assert FieldSelector.parse(str(selector)) == selector
    assert selector.matches({"a": "x,y=z\\w", "b": "c"})


@pytest.mark.parametrize(("text", "fragment"), [
    ("metadata.name", "expected field=value"),
    ("=x", "missing field name"),
    (r"a=b\n", r"'\n'"),
    ("a=b\\", "lone"),
    ("a=b=c", "unescaped '='"),
    (r"a\=b=c", "unescaped '='"),
])
def test_field_errors(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as info:
        FieldSelector.parse(text)
    assert fragment in str(info.value)


def test_field_names_and_exact() -> None:
    selector = FieldSelector.parse(
        "involvedObject.name=web,involvedObject.namespace==default,involvedObject.kind!=Pod")
    assert selector.fields() == {"involvedObject.name", "involvedObject.namespace", "involvedObject.kind"}
    assert selector.exact("involvedObject.name") == "web"
    assert selector.exact("involvedObject.namespace") == "default"
    assert selector.exact("involvedObject.kind") is None
    assert selector.exact("metadata.name") is None
    assert not selector.empty and FieldSelector.parse("").empty
    assert str(selector) == ("involvedObject.name=web,involvedObject.namespace=default,"
                             "involvedObject.kind!=Pod")


# --- properties and speed ------------------------------------------------------------------------

NAME = st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?", fullmatch=True)
LABEL_MAPS = st.dictionaries(NAME, NAME, max_size=4)


@st.composite
def requirements(draw: st.DrawFn) -> str:
    key = draw(NAME)
    kind = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!"]))
    if kind in ("in", "notin"):
        return f"{key} {kind} ({','.join(draw(st.lists(NAME, min_size=1, max_size=3)))})"
    if kind == "exists":
        return key
    if kind == "!":
        return f"!{key}"
    return f"{key}{kind}{draw(NAME)}"


@settings(max_examples=150, deadline=None)
@given(st.lists(requirements(), max_size=4), LABEL_MAPS)
def test_canonical_text_round_trips_and_selects_the_same(parts: list[str], labels: dict[str, str]) -> None:
    selector = LabelSelector.parse(",".join(parts))
    again = LabelSelector.parse(str(selector))
    assert again == selector
    assert again.matches(labels) == selector.matches(labels)
    assert selector.matches(labels) == all(LabelSelector.parse(p).matches(labels) for p in parts)


@settings(max_examples=100, deadline=None)
@given(LABEL_MAPS, LABEL_MAPS)
def test_match_labels_selects_supersets(wanted: dict[str, str], labels: dict[str, str]) -> None:
    selector = LabelSelector.from_dict({"matchLabels": wanted})
    assert selector.matches(labels) == all(labels.get(k) == v for k, v in wanted.items())
    assert selector.matches({**labels, **wanted})
    assert selector.equality_requirements() == wanted


def test_matching_ten_thousand_objects() -> None:
    selector = LabelSelector.parse("app=web,tier in (fe,be),!canary")
    objects = [{"app": "web" if i % 2 else "api", "tier": "fe", "pod-template-hash": str(i)}
               for i in range(10_000)]
    hits = sum(1 for labels in objects if selector.matches(labels))
    assert hits == 5_000
