"""Overlay root filesystems from snapshots: real mounts (the tests run as root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from imgtest_util import (
    add_layer_from_dir,
    add_layer_from_tar,
    build_image,
    image_config,
    make_tar,
    need_tool,
    small_tree,
)

from engine.images import rootfs
from engine.images.errors import MountError
from engine.images.store import ImageStore

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")


@pytest.fixture
def mounts(tmp_path: Path):
    """Targets created by a test; unmounted afterwards whatever happened."""
    made: list[Path] = []

    def target(name: str) -> Path:
        path = tmp_path / name
        made.append(path)
        return path

    yield target
    for path in made:
        rootfs.unmount(path, lazy=True)


def _two_layer_image(store: ImageStore, tmp_path: Path, busybox_root: Path):
    """busybox + etc files, then a layer (in OCI tar form) deleting one file and making /var opaque."""
    base = small_tree(tmp_path / "base", {"etc/keep": "k", "etc/remove-me": "r", "var/old": "o"})
    shutil.copytree(busybox_root, base, symlinks=True, dirs_exist_ok=True)
    top_tar = make_tar(
        [
            ("file", "etc/.wh.remove-me", ""),
            ("dir", "var", None),
            ("file", "var/.wh..wh..opq", ""),
            ("file", "var/new", "n"),
            ("file", "hello", "world"),
        ]
    )
    base_desc, base_diff = add_layer_from_dir(store, base)
    top_desc = add_layer_from_tar(store, top_tar)
    config = image_config([base_diff, top_desc["digest"]])
    return store.write_image(config=config, layers=[base_desc, top_desc], names=["two:layers"])


def test_two_layer_image_with_whiteouts(store: ImageStore, tmp_path: Path, busybox_root: Path, mounts) -> None:
    image = _two_layer_image(store, tmp_path, busybox_root)
    target, upper, work = mounts("rootfs"), tmp_path / "upper", tmp_path / "work"
    rootfs.mount(store, image, target=target, upper=upper, work=work)
    assert rootfs.is_mounted(target)
    assert sorted(os.listdir(target / "etc")) == ["keep", "passwd"]
    assert os.listdir(target / "var") == ["new"]
    assert (target / "hello").read_text() == "world"
    assert os.readlink(target / "bin" / "sh") == "busybox"
    (target / "etc" / "keep").write_text("changed")
    os.unlink(target / "hello")
    # writes land in the upper dir; the shared snapshots are untouched
    assert (upper / "etc" / "keep").read_text() == "changed"
    assert all(
        (d / "etc" / "keep").read_text() == "k" for d in store.layer_dirs(image) if (d / "etc" / "keep").exists()
    )
    assert (store.layer_dirs(image)[1] / "hello").read_text() == "world"
    rootfs.unmount(target)
    assert not rootfs.is_mounted(target)
    rootfs.unmount(target)  # idempotent


def test_read_only_mount_and_new_mount_api(store: ImageStore, tmp_path: Path, busybox_root: Path, mounts) -> None:
    image = build_image(store, [small_tree(tmp_path / "only", {"a": "1"})], names=["one:layer"])
    target = mounts("ro")
    rootfs.mount(store, image, target=target)
    assert (target / "a").read_text() == "1"
    with pytest.raises(OSError, match="Read-only"):
        (target / "b").write_text("x")
    rootfs.unmount(target)
    # many layers through fsopen/lowerdir+ (what long lowerdir strings fall back to)
    trees = [small_tree(tmp_path / f"l{i}", {f"f{i}": str(i)}) for i in range(6)]
    many = build_image(store, trees, names=["many"])
    target2 = mounts("new-api")
    rootfs.mount_overlay(
        rootfs.image_lowers(store, many), target=target2, upper=tmp_path / "u2", work=tmp_path / "w2", new_api=True
    )
    assert sorted(os.listdir(target2)) == [f"f{i}" for i in range(6)]


def test_scratch_image_mounts_empty(store: ImageStore, tmp_path: Path, mounts) -> None:
    image = store.write_image(config=image_config([]), layers=[], names=["scratch-based"])
    target = mounts("scratch")
    with rootfs.mounted(store, image, target=target, upper=tmp_path / "u", work=tmp_path / "w"):
        assert os.listdir(target) == []
    assert not rootfs.is_mounted(target)


def test_failures_leave_nothing_mounted(store: ImageStore, tmp_path: Path, mounts) -> None:
    target = mounts("bad")
    with pytest.raises(MountError, match="cannot mount overlay") as info:
        rootfs.mount_overlay([tmp_path / "does-not-exist"], target=target, upper=tmp_path / "u", work=tmp_path / "w")
    assert "\n" not in str(info.value)
    assert not rootfs.is_mounted(target)
    with pytest.raises(MountError, match="both upper and work"):
        rootfs.mount_overlay([tmp_path], target=target, upper=tmp_path / "u")
    image = build_image(store, [small_tree(tmp_path / "t", {"x": "1"})], names=["t"])
    with (
        pytest.raises(RuntimeError),
        rootfs.mounted(store, image, target=target, upper=tmp_path / "u3", work=tmp_path / "w3"),
    ):
        assert rootfs.is_mounted(target)
        raise RuntimeError("container failed")
    assert not rootfs.is_mounted(target)


def test_runs_a_command_with_crun(store: ImageStore, tmp_path: Path, busybox_root: Path, mounts) -> None:
    need_tool("/usr/bin/crun")
    image = _two_layer_image(store, tmp_path, busybox_root)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    target = mounts("bundle/rootfs")
    rootfs.mount(store, image, target=target, upper=tmp_path / "up", work=tmp_path / "wk")
    subprocess.run(["crun", "spec"], cwd=bundle, check=True, capture_output=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(terminal=False, args=["/bin/sh", "-c", "cat /hello; echo; ls /etc; ls /var"])
    spec["root"] = {"path": "rootfs", "readonly": False}
    (bundle / "config.json").write_text(json.dumps(spec))
    name = f"img-test-{uuid.uuid4().hex[:8]}"
    try:
        out = subprocess.run(["crun", "run", "--bundle", str(bundle), name], capture_output=True, text=True, timeout=30)
    finally:
        subprocess.run(["crun", "delete", "--force", name], capture_output=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["world", "keep", "passwd", "new"]
