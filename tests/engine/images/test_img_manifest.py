"""Manifest/index/config validation and the platform pick."""

from __future__ import annotations

import pytest

from engine.images import manifest as mf
from engine.images import mediatypes as mt
from engine.images.errors import PlatformNotFound, UnsupportedImage


def _d(n: int) -> str:
    return f"sha256:{n:064x}"


def _entry(n: int, os_: str | None, arch: str | None, variant: str = "", **extra: object) -> dict:
    e: dict = {"mediaType": mt.OCI_MANIFEST, "digest": _d(n), "size": 10, **extra}
    if os_ is not None:
        e["platform"] = {"os": os_, "architecture": arch, **({"variant": variant} if variant else {})}
    return e


def test_pick_linux_amd64_among_others() -> None:
    index = {
        "manifests": [_entry(1, "linux", "arm64", "v8"), _entry(2, "linux", "amd64"), _entry(3, "windows", "amd64")]
    }
    assert mf.pick_platform(index)["digest"] == _d(2)
    assert mf.pick_platform(index, "linux/arm64")["digest"] == _d(1)


def test_attestations_never_match() -> None:
    index = {"manifests": [_entry(1, "unknown", "unknown"), _entry(2, "linux", "arm64")]}
    with pytest.raises(PlatformNotFound, match="no matching manifest for linux/amd64"):
        mf.pick_platform(index)


def test_single_unplatformed_entry_is_taken() -> None:
    assert mf.pick_platform({"manifests": [_entry(7, None, None)]})["digest"] == _d(7)
    with pytest.raises(PlatformNotFound):
        mf.pick_platform({"manifests": [_entry(7, None, None), _entry(8, None, None)]})


def test_variantless_entry_preferred() -> None:
    index = {"manifests": [_entry(1, "linux", "amd64", "v3"), _entry(2, "linux", "amd64")]}
    assert mf.pick_platform(index)["digest"] == _d(2)


def test_document_kind() -> None:
    assert mf.document_kind({"manifests": []}) == "index"
    assert mf.document_kind({"layers": [], "config": {}}) == "manifest"
    assert mf.document_kind({}, mt.DOCKER_LIST) == "index"
    with pytest.raises(UnsupportedImage, match="schema 1"):
        mf.document_kind({"schemaVersion": 1, "fsLayers": []})
    with pytest.raises(UnsupportedImage, match="unsupported manifest media type"):
        mf.document_kind({}, "application/vnd.example+json")
    with pytest.raises(mf.BadDocument):
        mf.document_kind({"hello": 1})


def test_check_manifest_and_config() -> None:
    good = {
        "schemaVersion": 2,
        "config": {"digest": _d(1), "size": 2},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": _d(2), "size": 3}],
    }
    assert mf.check_manifest(good) is good
    with pytest.raises(mf.BadDocument, match="invalid digest"):
        mf.check_manifest({**good, "layers": [{"digest": "sha256:zz", "size": 1}]})
    with pytest.raises(mf.BadDocument, match="size"):
        mf.check_manifest({**good, "layers": [{"digest": _d(2), "size": -1}]})
    with pytest.raises(UnsupportedImage, match="layer media type"):
        mf.check_manifest({**good, "layers": [{"mediaType": "application/x-foo", "digest": _d(2), "size": 1}]})
    config = {"rootfs": {"type": "layers", "diff_ids": [_d(5)]}}
    assert mf.check_config(config, layers=1) is config
    with pytest.raises(mf.BadDocument, match="1 diff_ids but the manifest has 2 layers"):
        mf.check_config(config, layers=2)
    with pytest.raises(mf.BadDocument, match="rootfs"):
        mf.check_config({}, layers=0)


def test_load_document_errors() -> None:
    with pytest.raises(mf.BadDocument, match="not valid JSON"):
        mf.load_document(b"{nope", what="x")
    with pytest.raises(mf.BadDocument, match="not a JSON object"):
        mf.load_document(b"[1]", what="x")
    with pytest.raises(mf.BadDocument, match="larger than"):
        mf.load_document(b" " * (mf.MAX_DOCUMENT + 1), what="x")
