"""The image store: references, Docker's rmi/tag semantics, history, garbage collection, safety."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from imgtest_util import add_layer_from_dir, build_image, image_config, small_tree, store_snapshot

from engine.images import mediatypes as mt
from engine.images.errors import DigestMismatch, ImageConflict, ImageNotFound, InvalidReference, StoreError
from engine.images.snapshots import chain_ids
from engine.images.store import ImageStore


def _tree(tmp_path: Path, name: str, **files: str) -> Path:
    return small_tree(tmp_path / name, files or {name: name})


def test_write_and_resolve_every_way(store: ImageStore, tmp_path: Path) -> None:
    image = build_image(store, [_tree(tmp_path, "a"), _tree(tmp_path, "b")], names=["app:1"])
    assert image.repo_tags == ["app:1"]
    assert image.references == ("docker.io/library/app:1",)
    for text in (
        "app:1",
        "docker.io/library/app:1",
        image.id,
        image.id[7:],
        image.id[7:19],
        image.short_id,
        image.manifest_digest,
    ):
        assert store.resolve(text).id == image.id
    assert image.created == "2024-05-01T10:00:00.123456789Z"
    assert image.size == sum(store.snapshots.meta(c)["size"] for c in image.chain_ids)
    assert [p.name for p in store.layer_dirs(image)] == ["fs", "fs"]
    assert store.check(deep=True) == []
    with pytest.raises(ImageNotFound, match="No such image: app:2"):
        store.resolve("app:2")
    with pytest.raises(InvalidReference):
        store.resolve("Not Valid")


def test_store_is_an_oci_layout(store: ImageStore, tmp_path: Path) -> None:
    image = build_image(store, [_tree(tmp_path, "a")], names=["x:1"])
    assert (store.root / "oci-layout").read_text() == '{"imageLayoutVersion":"1.0.0"}'
    assert (store.blobs_dir / image.manifest_digest[7:]).is_file()
    index = json.loads((store.root / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "docker.io/library/x:1",
        "org.opencontainers.image.ref.name": "1",
    }
    assert image.manifest["mediaType"] == mt.DOCKER_MANIFEST


def test_tag_untag_and_dangling(store: ImageStore, tmp_path: Path) -> None:
    first = build_image(store, [_tree(tmp_path, "a")], names=["app:latest"])
    store.tag("app", "localhost:5000/app:v1")
    assert sorted(store.resolve("app").repo_tags) == ["app:latest", "localhost:5000/app:v1"]
    with pytest.raises(InvalidReference, match="digest"):
        store.tag("app", "app@sha256:" + "0" * 64)
    # moving the tag to a new image leaves the old one reachable, not garbage
    second = build_image(store, [_tree(tmp_path, "b")], names=["app:latest"])
    assert store.resolve("app").id == second.id
    assert store.resolve(first.id).repo_tags == ["localhost:5000/app:v1"]
    store.untag("localhost:5000/app:v1")
    dangling = store.resolve(first.id)
    assert dangling.repo_tags == [] and dangling.references == ()
    assert {i.id for i in store.images()} == {first.id, second.id}
    assert store.prune_dangling() == [first.id]
    store.gc()
    assert {i.id for i in store.images()} == {second.id}
    assert not store.has_blob(first.id)
    with pytest.raises(ImageNotFound):
        store.untag("never:seen")


def test_rmi_semantics(store: ImageStore, tmp_path: Path) -> None:
    image = build_image(store, [_tree(tmp_path, "a")], names=["one:1", "one:2", "two:1"])
    assert store.remove("one:1") == [{"Untagged": "one:1"}]
    with pytest.raises(ImageConflict, match=r"unable to delete .* referenced in multiple repositories"):
        store.remove(image.short_id)
    report = store.remove(image.short_id, force=True)
    assert report[:2] == [{"Untagged": "one:2"}, {"Untagged": "two:1"}]
    assert {"Deleted": image.id} in report
    assert {"Deleted": image.chain_ids[0]} in report  # the layer went with it
    assert store.images() == []
    assert list(store.blobs_dir.iterdir()) == [] and store.snapshots.list() == []


def test_rmi_by_last_tag_removes_digest_refs(store: ImageStore, tmp_path: Path) -> None:
    image = build_image(store, [_tree(tmp_path, "a")], names=["r/app:1"])
    store.add_image(image.target, [f"r/app@{image.manifest_digest}"])
    assert store.resolve("r/app:1").repo_digests == [f"r/app@{image.manifest_digest}"]
    assert store.remove(f"r/app@{image.manifest_digest}") == [{"Untagged": f"r/app@{image.manifest_digest}"}]
    store.add_image(image.target, [f"r/app@{image.manifest_digest}"])
    report = store.remove("r/app:1")
    assert {"Untagged": f"r/app@{image.manifest_digest}"} in report and {"Deleted": image.id} in report


def test_rmi_refuses_image_in_use(store: ImageStore, tmp_path: Path) -> None:
    image = build_image(store, [_tree(tmp_path, "a")], names=["busy:1"])
    store.in_use = lambda image_id: "c0ffee" * 10 if image_id == image.id else None
    with pytest.raises(ImageConflict, match="being used by container c0ffeec0ffee"):
        store.remove("busy:1")
    assert store.exists("busy:1")
    store.remove("busy:1", force=True)
    assert not store.exists("busy:1")


def test_shared_layers_are_stored_once(store: ImageStore, tmp_path: Path) -> None:
    base = _tree(tmp_path, "base")
    one = build_image(store, [base, _tree(tmp_path, "one")], names=["one"])
    two = build_image(store, [base, _tree(tmp_path, "two")], names=["two"])
    assert one.chain_ids[0] == two.chain_ids[0]
    assert len(store.snapshots.list()) == 3
    store.remove("one")
    assert store.snapshots.list() == sorted([two.chain_ids[0], two.chain_ids[1]])
    assert store.check(deep=True) == []


def test_history(store: ImageStore, tmp_path: Path) -> None:
    desc, diff_id = add_layer_from_dir(store, _tree(tmp_path, "a"))
    config = image_config([diff_id])
    config["history"] = [
        {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs /"},
        {"created": "2024-01-02T00:00:00Z", "created_by": "ENV A=1", "empty_layer": True},
    ]
    image = store.write_image(config=config, layers=[desc], names=["h:1"])
    rows = store.history("h:1")
    assert [r["CreatedBy"] for r in rows] == ["ENV A=1", "ADD rootfs /"]
    assert rows[0]["Id"] == image.id and rows[0]["Tags"] == ["h:1"] and rows[0]["Size"] == 0
    assert rows[1]["Id"] == "<missing>" and rows[1]["Size"] == store.snapshots.meta(image.chain_ids[0])["size"]
    assert rows[1]["Created"] == 1704067200


def test_gc_keeps_leased_and_container_layers(store: ImageStore, tmp_path: Path) -> None:
    loose = store.put_blob(b"loose")
    leased = store.put_blob(b"leased")
    image = build_image(store, [_tree(tmp_path, "a")], names=["gone"])
    store.remove("gone", prune=False)
    with store.lease() as lease:
        lease.add(leased)
        report = store.gc(keep_chains=image.chain_ids)
        assert store.has_blob(leased)
    assert loose in report.blobs and image.id in report.blobs
    assert store.snapshots.exists(image.chain_ids[0])
    store.gc()
    assert not store.has_blob(leased) and not store.snapshots.exists(image.chain_ids[0])


def test_crash_leftovers_are_invisible_and_collected(store: ImageStore, tmp_path: Path) -> None:
    image = build_image(store, [_tree(tmp_path, "a")], names=["keep"])
    before = store.images()
    # a pull that died: a temp blob, a published but unreferenced blob, a half-unpacked snapshot
    (store.tmp_dir / "deadbeef").write_bytes(b"partial")
    orphan = store.put_blob(b'{"half": "pull"}')
    (store.snapshots.root / ".tmp-0123").mkdir()
    (store.snapshots.root / ".tmp-0123" / "fs").mkdir()
    reopened = ImageStore(store.root)
    assert [i.id for i in reopened.images()] == [i.id for i in before]
    reopened.gc()
    assert list(store.tmp_dir.iterdir()) == []
    assert not store.has_blob(orphan)
    assert not (store.snapshots.root / ".tmp-0123").exists()
    assert store.resolve("keep").id == image.id
    assert store.check(deep=True) == []
    reopened.close()


def test_add_image_refuses_incomplete(store: ImageStore, tmp_path: Path) -> None:
    desc, diff_id = add_layer_from_dir(store, _tree(tmp_path, "a"))
    image = store.write_image(config=image_config([diff_id]), layers=[desc], names=["ok"])
    before = store_snapshot(store)
    store.snapshots.remove(image.chain_ids[0])
    with pytest.raises(StoreError, match=r"snapshot .* missing"):
        store.add_image(image.target, ["other"])
    assert (store.root / "index.json").read_bytes() == before[0]
    assert any("missing" in p for p in store.check())


def test_blob_writer_verifies(store: ImageStore) -> None:
    with store.ingest(expected="sha256:" + "0" * 64, size=3) as w:
        w.write(b"abc")
        with pytest.raises(DigestMismatch, match="digest mismatch"):
            w.commit()
    with store.ingest(size=2) as w, pytest.raises(DigestMismatch, match="more data"):
        w.write(b"abc")
    with pytest.raises(DigestMismatch):
        store.put_blob(b"x", expected="sha256:" + "1" * 64)
    assert list(store.blobs_dir.iterdir()) == [] and list(store.tmp_dir.iterdir()) == []


def test_corrupted_blob_in_store_is_detected(store: ImageStore, tmp_path: Path) -> None:
    image = build_image(store, [_tree(tmp_path, "a")], names=["c"])
    path = store.blob_path(image.layers[0]["digest"])
    os.chmod(path, 0o644)
    path.write_bytes(b"garbage")
    assert any("content hashes to" in p for p in store.check(deep=True))


def test_snapshot_unpack_checks_diff_id(store: ImageStore, tmp_path: Path) -> None:
    desc, _ = add_layer_from_dir(store, _tree(tmp_path, "a"))
    wrong = "sha256:" + "e" * 64
    with pytest.raises(DigestMismatch, match="uncompressed content"):
        store.snapshots.unpack(chain_id=wrong, diff_id=wrong, parent=None, blob=store.blob_path(desc["digest"]))
    assert store.snapshots.list() == []
    assert [p.name for p in store.snapshots.root.iterdir() if p.name.startswith(".tmp")] == []


def test_concurrent_unpacks_of_one_snapshot(store: ImageStore, tmp_path: Path) -> None:
    desc, diff_id = add_layer_from_dir(store, _tree(tmp_path, "a", **{f"f{i}": str(i) for i in range(200)}))
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                store.snapshots.unpack(
                    chain_id=diff_id, diff_id=diff_id, parent=None, blob=store.blob_path(desc["digest"])
                )
            )
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r == results[0] for r in results)
    assert store.snapshots.list() == [diff_id]
    assert len(os.listdir(store.snapshots.fs(diff_id))) == 200


def test_chain_ids() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]
    assert chain_ids([]) == []


def test_gc_spares_scratch_dirs_in_use_and_removes_stale_ones(store: ImageStore) -> None:
    stale = store.tmp_dir / "load-leftover"
    (stale / "nested").mkdir(parents=True)
    with store.scratch_dir() as work:
        (work / "layer.tar").write_bytes(b"in progress")
        store.gc()
        assert (work / "layer.tar").read_bytes() == b"in progress"
        assert not stale.exists()
    assert not work.exists()


def test_add_image_without_names_finds_an_image_stored_under_another_manifest(
        store: ImageStore, tmp_path: Path) -> None:
    image = build_image(store, [_tree(tmp_path, "a")], names=["app:1"])
    # the same config and layers under a second manifest (as `docker load` of a saved image makes)
    manifest = {**image.manifest, "annotations": {"copy": "yes"}}
    body = json.dumps(manifest).encode()
    digest = store.put_blob(body)
    assert digest != image.manifest_digest
    again = store.add_image({"mediaType": manifest["mediaType"], "digest": digest, "size": len(body)})
    assert again.id == image.id
