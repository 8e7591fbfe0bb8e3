"""save/load in docker-archive and OCI-layout tars, round-tripped with skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from imgtest_util import build_image, make_tar, need_tool, skopeo, small_tree, store_snapshot

from engine.images import archive
from engine.images.errors import ArchiveError, DigestMismatch, ImageNotFound, UnsafeArchive
from engine.images.store import ImageStore


def _image(store: ImageStore, tmp_path: Path, busybox_root: Path, *names: str):
    return build_image(store, [busybox_root, small_tree(tmp_path / "app", {"app/run": "echo hi\n"})], names=names)


def _save(store: ImageStore, names: list[str], fmt: str) -> bytes:
    out = io.BytesIO()
    archive.save(store, names, out, format=fmt)
    return out.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]


def test_docker_archive_layout(store: ImageStore, tmp_path: Path, busybox_root: Path) -> None:
    image = _image(store, tmp_path, busybox_root, "app:1", "app:2")
    files = _members(_save(store, ["app:1", "app:2"], archive.DOCKER_ARCHIVE))
    manifest = json.loads(files["manifest.json"])
    assert manifest == [
        {
            "Config": f"{image.id[7:]}.json",
            "RepoTags": ["app:1", "app:2"],
            "Layers": [f"{d[7:]}.tar" for d in image.diff_ids],
        }
    ]
    assert json.loads(files["repositories"]) == {"app": {"1": image.diff_ids[-1][7:], "2": image.diff_ids[-1][7:]}}
    for diff_id in image.diff_ids:  # layers are the uncompressed tars the diff_ids name
        assert "sha256:" + hashlib.sha256(files[f"{diff_id[7:]}.tar"]).hexdigest() == diff_id


@pytest.mark.parametrize("fmt", archive.FORMATS)
def test_save_remove_load_round_trip(store: ImageStore, tmp_path: Path, busybox_root: Path, fmt: str) -> None:
    image = _image(store, tmp_path, busybox_root, "round:trip")
    data = _save(store, ["round:trip"], fmt)
    store.remove("round:trip")
    assert store.images() == []
    loaded = archive.load(store, io.BytesIO(data))
    assert [(x.id, x.names) for x in loaded] == [(image.id, ("round:trip",))]
    assert loaded[0].messages() == ["Loaded image: round:trip"]
    again = store.resolve("round:trip")
    if fmt == archive.OCI_ARCHIVE:
        assert again.manifest_digest == image.manifest_digest  # blobs travel unchanged
    assert store.check(deep=True) == []


def test_untagged_save_loads_as_dangling(store: ImageStore, tmp_path: Path, busybox_root: Path) -> None:
    image = _image(store, tmp_path, busybox_root, "dangle:1")
    data = _save(store, [image.id], archive.DOCKER_ARCHIVE)
    assert json.loads(_members(data)["manifest.json"])[0]["RepoTags"] is None
    store.remove(image.id)
    loaded = archive.load(store, io.BytesIO(gzip.compress(data)))  # docker load takes gzip too
    assert loaded[0].messages() == [f"Loaded image ID: {image.id}"]
    assert store.resolve(image.id).repo_tags == []


def test_skopeo_reads_what_we_save(store: ImageStore, tmp_path: Path, busybox_root: Path) -> None:
    need_tool("/usr/bin/skopeo")
    image = _image(store, tmp_path, busybox_root, "localhost/ours:1")
    for fmt in archive.FORMATS:
        path = tmp_path / f"ours-{fmt}.tar"
        archive.save_to_path(store, ["localhost/ours:1"], path, format=fmt)
        info = json.loads(skopeo("inspect", f"{fmt}:{path}").stdout)
        assert len(info["Layers"]) == 2
        config = json.loads(skopeo("inspect", "--config", f"{fmt}:{path}").stdout)
        assert config["rootfs"]["diff_ids"] == image.diff_ids
        if fmt == archive.OCI_ARCHIVE:
            assert info["Digest"] == image.manifest_digest
    # and skopeo can convert ours into its own output, which we load back to the same image
    theirs = tmp_path / "theirs-oci.tar"
    skopeo("copy", f"docker-archive:{tmp_path / 'ours-docker-archive.tar'}", f"oci-archive:{theirs}:localhost/ours:2")
    store.remove(image.id, force=True)
    loaded = archive.load(store, theirs)
    assert loaded[0].names == ("localhost/ours:2",)
    # skopeo rewrites the config into OCI form (a new id), the layers are the same
    assert store.resolve("localhost/ours:2").diff_ids == image.diff_ids


def test_we_load_what_skopeo_writes(store: ImageStore, tmp_path: Path, busybox_root: Path) -> None:
    need_tool("/usr/bin/skopeo")
    image = _image(store, tmp_path, busybox_root, "src:1")
    source = tmp_path / "src.tar"
    archive.save_to_path(store, ["src:1"], source, format=archive.OCI_ARCHIVE)
    store.remove("src:1")
    docker_tar = tmp_path / "skopeo-docker.tar"
    skopeo("copy", f"oci-archive:{source}", f"docker-archive:{docker_tar}:skopeo/made:v1")
    oci_tar = tmp_path / "skopeo-oci.tar"
    skopeo("copy", f"oci-archive:{source}", f"oci-archive:{oci_tar}:v2")
    assert [x.names for x in archive.load(store, docker_tar)] == [("skopeo/made:v1",)]
    assert store.resolve("skopeo/made:v1").id == image.id
    # a bare tag in ref.name needs a repository: given, or the image loads dangling
    assert [x.names for x in archive.load(store, oci_tar, default_name="skopeo/oci")] == [("skopeo/oci:v2",)]
    # skopeo converts our Docker-typed config to OCI form: same layers, new id
    assert store.resolve("skopeo/oci:v2").diff_ids == image.diff_ids
    store.untag("skopeo/oci:v2")
    dangling = archive.load(store, oci_tar)
    assert dangling[0].names == () and dangling[0].messages() == [f"Loaded image ID: {dangling[0].id}"]
    assert store.check(deep=True) == []


def test_hostile_archive_is_refused_and_store_consistent(store: ImageStore, tmp_path: Path, busybox_root: Path) -> None:
    _image(store, tmp_path, busybox_root, "keep:1")
    before = store_snapshot(store)
    evil = make_tar([("file", "manifest.json", "[]"), ("file", "../../escape", "x")])
    with pytest.raises(UnsafeArchive, match="escapes"):
        archive.load(store, io.BytesIO(evil))
    link_out = make_tar([("sym", "manifest.json", "/etc/passwd")])
    with pytest.raises(UnsafeArchive, match="outside the archive"):
        archive.load(store, io.BytesIO(link_out))
    # a docker-archive whose layer tar tries to escape on unpack
    hostile_layer = make_tar([("sym", "x", "/"), ("file", "x/etc/cron", "pwned")])
    diff = "sha256:" + hashlib.sha256(hostile_layer).hexdigest()
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff]}, "os": "linux", "architecture": "amd64"})
    bundle = make_tar(
        [
            ("file", "c.json", config),
            ("file", "l.tar", hostile_layer),
            ("file", "manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["evil:1"], "Layers": ["l.tar"]}])),
        ]
    )
    with pytest.raises(UnsafeArchive, match="through a symlink"):
        archive.load(store, io.BytesIO(bundle))
    assert not (tmp_path / "escape").exists()
    assert store_snapshot(store) == before
    assert store.check(deep=True) == []


def test_bad_archives(store: ImageStore, tmp_path: Path, busybox_root: Path) -> None:
    image = _image(store, tmp_path, busybox_root, "good:1")
    before = store_snapshot(store)
    with pytest.raises(ArchiveError, match="not an image archive"):
        archive.load(store, io.BytesIO(make_tar([("file", "README", "hi")])))
    with pytest.raises(ArchiveError, match="not a valid tar"):
        archive.load(store, io.BytesIO(b"definitely not a tarball" * 30))
    # a layer file that does not match the config's diff_id
    files = _members(_save(store, ["good:1"], archive.DOCKER_ARCHIVE))
    layer_name = f"{image.diff_ids[1][7:]}.tar"
    files[layer_name] = make_tar([("file", "app/run", "tampered\n")])
    store.remove("good:1")
    before = store_snapshot(store)
    tampered = make_tar([("file", name, content) for name, content in files.items()])
    with pytest.raises(DigestMismatch):
        archive.load(store, io.BytesIO(tampered))
    assert store_snapshot(store) == before
    with pytest.raises(ImageNotFound):
        archive.save(store, ["good:1"], io.BytesIO())
    with pytest.raises(ArchiveError, match="unknown archive format"):
        archive.save(store, ["x"], io.BytesIO(), format="zip")
