"""The atomic writer's on-disk layout and its update/no-op behaviour, on real files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from kubelet.volumes import atomic_writer as aw
from kubelet.volumes.atomic_writer import FileProjection
from kubelet.volumes.errors import VolumeError

VERSION = re.compile(r"\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}")


def test_layout_modes_and_symlinks(tmp_path: Path) -> None:
    assert aw.write(tmp_path, {"a": FileProjection(b"1", 0o644), "dir/b": FileProjection(b"2", 0o400)})
    version = os.readlink(tmp_path / "..data")
    assert VERSION.fullmatch(version)
    assert os.readlink(tmp_path / "a") == "..data/a"
    assert os.readlink(tmp_path / "dir") == "..data/dir"
    assert (tmp_path / "dir" / "b").read_bytes() == b"2"
    assert (tmp_path / version / "a").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / version / "dir" / "b").stat().st_mode & 0o777 == 0o400
    assert sorted(os.listdir(tmp_path)) == sorted(["..data", version, "a", "dir"])


def test_unchanged_is_not_rewritten_and_update_swaps(tmp_path: Path) -> None:
    aw.write(tmp_path, {"a": FileProjection(b"1", 0o644), "gone": FileProjection(b"x", 0o644)})
    first = os.readlink(tmp_path / "..data")
    assert not aw.write(tmp_path, {"a": FileProjection(b"1", 0o644), "gone": FileProjection(b"x", 0o644)})
    assert os.readlink(tmp_path / "..data") == first
    # a mode change alone is a change
    assert aw.write(tmp_path, {"a": FileProjection(b"1", 0o600), "gone": FileProjection(b"x", 0o644)})
    second = os.readlink(tmp_path / "..data")
    assert second != first and not (tmp_path / first).exists()
    assert aw.write(tmp_path, {"a": FileProjection(b"2", 0o600)})
    assert (tmp_path / "a").read_bytes() == b"2"
    assert not os.path.lexists(tmp_path / "gone")
    assert sorted(os.listdir(tmp_path)) == sorted(["..data", os.readlink(tmp_path / "..data"), "a"])


def test_empty_payload_and_stale_versions(tmp_path: Path) -> None:
    (tmp_path / "..2020_01_01_00_00_00.000000001").mkdir()  # left by an interrupted write
    assert aw.write(tmp_path, {})
    assert os.listdir(tmp_path / "..data") == []
    assert sorted(os.listdir(tmp_path)) == sorted(["..data", os.readlink(tmp_path / "..data")])


@pytest.mark.parametrize("bad", ["/abs", "../up", "a/../../b", "..hidden", ""])
def test_bad_paths(tmp_path: Path, bad: str) -> None:
    with pytest.raises(VolumeError, match="invalid path"):
        aw.write(tmp_path, {bad: FileProjection(b"", 0o644)})
    assert not (tmp_path / "..data").exists()
