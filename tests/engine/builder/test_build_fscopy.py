"""COPY/ADD file semantics (engine.build.fscopy) on plain directories standing in for a rootfs."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from engine.build.context import SourceTree
from engine.build.errors import BuildError
from engine.build.fscopy import CopyOptions, copy_sources, is_archive


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "dir/sub").mkdir(parents=True)
    (root / "file.txt").write_text("file")
    (root / "dir/a").write_text("a")
    (root / "dir/sub/b").write_text("b")
    (root / "dir/link").symlink_to("a")
    os.chmod(root / "dir/a", 0o750)
    os.utime(root / "dir/a", (1_000_000, 1_000_000))
    return root


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "existing").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "escape").symlink_to("/")  # a hostile image: /escape -> /
    return root


def copy(ctx: Path, rootfs: Path, sources: list[str], dest: str, **kw: object) -> None:
    tree = SourceTree(ctx, label="build context")
    options = CopyOptions(**kw)  # type: ignore[arg-type]
    copy_sources(
        tree=tree,
        sources=tree.resolve(sources, keyword="COPY"),
        root=rootfs,
        dest=dest,
        options=options,
        scratch=ctx.parent,
    )


def test_file_to_path_and_into_dirs(ctx: Path, rootfs: Path) -> None:
    copy(ctx, rootfs, ["file.txt"], "/new/name")
    assert (rootfs / "new/name").read_text() == "file"
    copy(ctx, rootfs, ["file.txt"], "/existing")  # an existing directory: copied into it
    assert (rootfs / "existing/file.txt").read_text() == "file"
    copy(ctx, rootfs, ["file.txt"], "/slash/")
    assert (rootfs / "slash/file.txt").is_file()


def test_dir_copies_contents_with_modes_times_links_and_root_owner(ctx: Path, rootfs: Path) -> None:
    os.chown(ctx / "dir/a", 1234, 1234)
    copy(ctx, rootfs, ["dir"], "/app")
    assert sorted(p.name for p in (rootfs / "app").iterdir()) == ["a", "link", "sub"]
    st = os.stat(rootfs / "app/a")
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, int(st.st_mtime)) == (0o750, 0, 0, 1_000_000)
    assert os.readlink(rootfs / "app/link") == "a"
    assert (rootfs / "app/sub/b").read_text() == "b"


def test_chown_and_chmod(ctx: Path, rootfs: Path) -> None:
    copy(ctx, rootfs, ["dir"], "/owned/", owner=(1000, 1001), chmod=0o640)
    for rel in ("", "a", "sub", "sub/b"):
        st = os.stat(rootfs / "owned" / rel)
        assert (st.st_uid, st.st_gid) == (1000, 1001)
    assert os.stat(rootfs / "owned/sub/b").st_mode & 0o7777 == 0o640


def test_several_sources_need_a_directory_destination(ctx: Path, rootfs: Path) -> None:
    with pytest.raises(BuildError, match="must be a directory and end with a /"):
        copy(ctx, rootfs, ["file.txt", "dir"], "/x")
    copy(ctx, rootfs, ["file.txt", "dir"], "/x/")
    assert sorted(p.name for p in (rootfs / "x").iterdir()) == ["a", "file.txt", "link", "sub"]


def test_destination_symlinks_stay_inside_the_rootfs(ctx: Path, rootfs: Path, tmp_path: Path) -> None:
    copy(ctx, rootfs, ["file.txt"], "/escape/tmp/planted")
    assert (rootfs / "tmp/planted").read_text() == "file"
    assert not Path("/tmp/planted").exists()
    (rootfs / "existing/victim").symlink_to(str(tmp_path / "host-file"))
    copy(ctx, rootfs, ["file.txt"], "/existing/victim")  # replaces the link, never writes through it
    assert not (tmp_path / "host-file").exists()
    assert (rootfs / "existing/victim").read_text() == "file"


def _tar(path: Path, *, gz: bool) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        info = tarfile.TarInfo("pkg/hello.txt")
        data = b"from tar"
        info.size, info.uid, info.gid, info.mode = len(data), 77, 88, 0o600
        tf.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("gz", [True, False])
def test_add_unpacks_local_archives_keeping_owners(ctx: Path, rootfs: Path, gz: bool) -> None:
    _tar(ctx / "pkg.tar", gz=gz)
    assert is_archive(ctx / "pkg.tar")
    assert not is_archive(ctx / "file.txt")
    copy(ctx, rootfs, ["pkg.tar"], "/opt", unpack_archives=True)
    st = os.stat(rootfs / "opt/pkg/hello.txt")
    assert (rootfs / "opt/pkg/hello.txt").read_bytes() == b"from tar"
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (77, 88, 0o600)
    copy(ctx, rootfs, ["pkg.tar"], "/plain/")  # COPY never unpacks
    assert is_archive(rootfs / "plain/pkg.tar")


def test_add_refuses_a_hostile_archive(ctx: Path, rootfs: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../evil")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    (ctx / "evil.tar").write_bytes(buf.getvalue())
    with pytest.raises(BuildError, match="ADD failed"):
        copy(ctx, rootfs, ["evil.tar"], "/opt", unpack_archives=True)
    assert not (rootfs.parent / "evil").exists()
