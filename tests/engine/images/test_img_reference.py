"""Reference parsing and normalisation, checked against Docker's documented behaviour."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.images.errors import InvalidReference
from engine.images.reference import parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "key", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/busybox:2", "docker.io/library/busybox:2", "busybox:2"),
        ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
        ("localhost:5000/x:1", "localhost:5000/x:1", "localhost:5000/x:1"),
        ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000/a/b/c:latest", "127.0.0.1:5000/a/b/c:latest"),
        ("quay.io/org/img:t", "quay.io/org/img:t", "quay.io/org/img:t"),
        ("library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox:1@{DIGEST}"),
    ],
)
def test_normalises_like_docker(text: str, key: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert ref.key() == key
    assert ref.familiar() == familiar


def test_parts() -> None:
    ref = parse_reference(f"localhost:5000/team/app:v2@{DIGEST}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "v2", DIGEST)
    assert ref.repository == "localhost:5000/team/app"
    assert ref.remote_object == DIGEST
    assert parse_reference("x:7").remote_object == "7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("BusyBox", "must be lowercase"),
        ("a" * 64, "64-byte hexadecimal"),
        ("x:", "invalid reference format"),
        ("/x", "invalid reference format"),
        ("x//y", "invalid reference format"),
        ("", "empty"),
        ("x@sha256:abc", "invalid reference format"),
        ("x@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("x:" + "t" * 129, "invalid reference format"),
        ("a/" * 130 + "b", "more than 255"),
    ],
)
def test_refuses_bad_references(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message) as info:
        parse_reference(text)
    assert "\n" not in str(info.value)


def test_with_tag_and_digest() -> None:
    ref = parse_reference("busybox")
    assert ref.with_tag("1").key() == "docker.io/library/busybox:1"
    assert ref.with_digest(DIGEST).key() == f"docker.io/library/busybox@{DIGEST}"
    with pytest.raises(InvalidReference):
        ref.with_tag("bad tag")


_component = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,5})?", fullmatch=True)
_domain = st.sampled_from(["", "localhost:5000/", "registry.example.com/", "127.0.0.1:1234/", "docker.io/"])
_tag = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))


@given(_domain, st.lists(_component, min_size=1, max_size=3), _tag)
def test_normal_form_is_a_fixed_point(domain: str, path: list[str], tag: str | None) -> None:
    text = domain + "/".join(path) + (f":{tag}" if tag else "")
    ref = parse_reference(text)
    again = parse_reference(str(ref))
    assert again == ref
    # Docker Hub namespaces never look like a host ("0.0/x"): only then is the short form unambiguous
    assume(ref.domain != "docker.io" or not any(c in ref.path.split("/")[0] for c in ".:"))
    assert parse_reference(ref.familiar()) == ref
