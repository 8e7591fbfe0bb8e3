"""Layer unpacking (safety, whiteouts, metadata) and packing, both directions."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from imgtest_util import make_tar, whiteout

from engine.images.errors import ArchiveError, UnsafeArchive, UnsupportedImage
from engine.images.pack import pack_dir
from engine.images.unpack import OVERLAY_OPAQUE_XATTR, unpack_layer


def _unpack(data: bytes, dest: Path):
    dest.mkdir(parents=True, exist_ok=True)
    return unpack_layer(io.BytesIO(data), dest)


def test_diff_id_is_sha256_of_uncompressed(tmp_path: Path) -> None:
    plain = make_tar([("dir", "etc", None), ("file", "etc/hostname", "box\n")])
    for data in (plain, gzip.compress(plain)):
        dest = tmp_path / hashlib.md5(data).hexdigest()
        result = _unpack(data, dest)
        assert result.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
        assert result.size == len(plain)
        assert (dest / "etc" / "hostname").read_text() == "box\n"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("file", "/etc/passwd", "x")], "absolute path"),
        ([("file", "../escape", "x")], "escapes the layer"),
        ([("file", "a/../../escape", "x")], "escapes the layer"),
        ([("sym", "evil", "/etc"), ("file", "evil/passwd", "x")], "through a symlink"),
        ([("sym", "evil", "../../.."), ("file", "evil/x", "x")], "through a symlink"),
        ([("dir", "d", None), ("sym", "d", "/tmp"), ("file", "d/x", "x")], "through a symlink"),
        ([("link", "hard", "/etc/shadow")], "absolute path"),
        ([("link", "hard", "../outside")], "escapes the layer"),
        ([("link", "hard", "not/here")], "hard link target outside the layer"),
        ([("sym", "s", "/etc"), ("link", "hard", "s/passwd")], "through a symlink"),
        ([("file", "a/.wh...", "")], "invalid whiteout"),
    ],
)
def test_hostile_tars_are_refused(tmp_path: Path, entries: list, message: str) -> None:
    outside = tmp_path / "outside"
    with pytest.raises(UnsafeArchive, match=message) as info:
        _unpack(make_tar(entries), tmp_path / "dest")
    assert "\n" not in str(info.value)
    assert not outside.exists()
    assert not (tmp_path / "escape").exists()


def test_symlinks_are_created_not_followed(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _unpack(make_tar([("sym", "bin/sh", "/bin/busybox"), ("sym", "up", "../../../etc")]), dest)
    assert os.readlink(dest / "bin" / "sh") == "/bin/busybox"
    assert os.readlink(dest / "up") == "../../../etc"


def test_hard_links_inside_the_layer(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _unpack(make_tar([("file", "bin/a", "payload"), ("link", "bin/b", "bin/a"), ("link", "c", "./bin/a")]), dest)
    assert os.stat(dest / "bin" / "a").st_ino == os.stat(dest / "bin" / "b").st_ino == os.stat(dest / "c").st_ino


def test_whiteouts_become_overlay_form(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    data = make_tar(
        [
            ("file", "etc/.wh.gone", ""),
            ("file", "var/.wh..wh..opq", ""),
            ("file", "var/kept", "new"),
            ("file", ".wh..wh.plnk", ""),
        ]
    )
    _unpack(data, dest)
    st = os.lstat(dest / "etc" / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "var", OVERLAY_OPAQUE_XATTR) == b"y"
    assert (dest / "var" / "kept").read_text() == "new"
    assert not (dest / ".wh..wh.plnk").exists()
    assert not (dest / "etc" / ".wh.gone").exists()


def test_later_entries_replace_earlier(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _unpack(
        make_tar(
            [
                ("dir", "x", None),
                ("file", "x/y", "1"),
                ("file", "x", "now a file"),
                ("file", "z", "a"),
                ("sym", "z", "x"),
            ]
        ),
        dest,
    )
    assert (dest / "x").read_text() == "now a file"
    assert os.readlink(dest / "z") == "x"


def test_trusted_xattrs_from_the_tar_are_dropped(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        info.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.note": "hi"}
        tf.addfile(info)
    dest = tmp_path / "dest"
    _unpack(buf.getvalue(), dest)
    assert OVERLAY_OPAQUE_XATTR not in os.listxattr(dest / "d")
    assert os.getxattr(dest / "d", "user.note") == b"hi"


def test_bad_streams(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImage, match="zstd"):
        _unpack(b"\x28\xb5\x2f\xfd" + b"\0" * 100, tmp_path / "a")
    with pytest.raises(ArchiveError, match="not a valid tar"):
        _unpack(gzip.compress(make_tar([("file", "f", os.urandom(5000))]))[:2000], tmp_path / "b")
    with pytest.raises(ArchiveError, match="not a valid tar"):
        _unpack(b"this is not a tar file at all" * 40, tmp_path / "c")


def test_pack_then_unpack_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_bytes(b"\x7fELF" + os.urandom(3000))
    os.chown(src / "bin" / "tool", 1000, 1001)
    os.chmod(src / "bin" / "tool", 0o4755)  # after chown, which clears set-uid
    os.link(src / "bin" / "tool", src / "bin" / "tool2")
    os.symlink("tool", src / "bin" / "alias")
    os.mkfifo(src / "fifo")
    (src / "opaque").mkdir()
    (src / "opaque" / "inside").write_text("i")
    os.setxattr(src / "opaque", OVERLAY_OPAQUE_XATTR, b"y")
    os.setxattr(src / "bin" / "tool", "user.mark", b"m")
    whiteout(src / "deleted")
    os.utime(src / "bin" / "tool", (1600000000, 1600000000))
    out = io.BytesIO()
    packed = pack_dir(src, out)
    blob = out.getvalue()
    assert packed.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert packed.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    names = tarfile.open(fileobj=io.BytesIO(blob)).getnames()
    assert ".wh.deleted" in names and "opaque/.wh..wh..opq" in names
    assert pack_dir(src, io.BytesIO()).digest == packed.digest  # deterministic
    dest = tmp_path / "dest"
    result = _unpack(blob, dest)
    assert result.diff_id == packed.diff_id
    st = os.stat(dest / "bin" / "tool")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (0o4755, 1000, 1001, 1600000000)
    assert os.stat(dest / "bin" / "tool2").st_ino == st.st_ino
    assert os.readlink(dest / "bin" / "alias") == "tool"
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)
    assert os.getxattr(dest / "opaque", OVERLAY_OPAQUE_XATTR) == b"y"
    assert os.getxattr(dest / "bin" / "tool", "user.mark") == b"m"
    wst = os.lstat(dest / "deleted")
    assert stat.S_ISCHR(wst.st_mode) and wst.st_rdev == 0
