"""KeyIndex answers prefix ranges exactly like filtering a sorted list would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.storage import keyindex

_segment = st.sampled_from(["", "a", "ab", "b", "core", "pods", "x/y", "\u00e9", "\U0001f600"])
_keys = st.lists(st.tuples(_segment, _segment, _segment, _segment).map(lambda p: "/" + "/".join(p)),
                 max_size=40)
_prefixes = st.one_of(st.just(""), st.just("/"), _keys.filter(bool).map(lambda ks: ks[0]),
                      st.tuples(_segment, _segment).map(lambda p: "/" + "/".join(p) + "/"))


def _expected(keys, prefix, start_after, limit):
    found = sorted(k for k in set(keys) if k.startswith(prefix) and (start_after is None or k > start_after))
    return found[:limit] if limit else found


@settings(max_examples=300, deadline=None)
@given(keys=_keys, removed=_keys, prefix=_prefixes, start_after=st.one_of(st.none(), _prefixes),
       limit=st.integers(0, 5))
def test_range_matches_a_filtered_sorted_list(keys, removed, prefix, start_after, limit):
    index = keyindex.KeyIndex(keys[: len(keys) // 2])
    for key in keys[len(keys) // 2:]:
        index.add(key)
    for key in removed:
        index.discard(key)
    remaining = set(keys) - set(removed)
    assert len(index) == len(remaining)
    assert index.range(prefix, start_after=start_after, limit=limit) == \
        _expected(remaining, prefix, start_after, limit)


def test_buckets_are_the_resource_part_of_a_key():
    assert keyindex.bucket_of("/registry/core/pods/ns/a") == "/registry/core/pods/"
    assert keyindex.bucket_of("/registry/core/nodes/n1") == "/registry/core/nodes/"
    assert keyindex.bucket_of("/registry/core/x") == ""


def test_namespace_prefix_does_not_match_a_longer_namespace():
    index = keyindex.KeyIndex(["/registry/core/pods/a/x", "/registry/core/pods/ab/y", "/registry/core/pods/b/z"])
    assert index.range("/registry/core/pods/a/") == ["/registry/core/pods/a/x"]
    assert index.range("/registry/core/pods/a") == ["/registry/core/pods/a/x", "/registry/core/pods/ab/y"]
