"""The log follower's file handling: it reads what a file grows by and follows a rotation."""

from __future__ import annotations

import os
from pathlib import Path

from kubelet.server.logfmt import LogOptions
from kubelet.server.logs import _Follower


def line(text: str) -> bytes:
    return f"2026-01-02T03:04:05Z stdout F {text}\n".encode()


def test_growth_and_rotation(tmp_path: Path):
    path = tmp_path / "0.log"
    follower = _Follower(path=str(path), options=LogOptions())
    assert follower._read() == []  # not there yet
    path.write_bytes(line("a"))
    assert [r.text for r in follower._read()] == [b"a\n"]
    with path.open("ab") as f:
        f.write(line("b") + b"2026-01-02T03:04:05Z stdout F hal")
    assert [r.text for r in follower._read()] == [b"b\n"]
    with path.open("ab") as f:
        f.write(b"f\n" + line("before rotation"))
    os.rename(path, tmp_path / "0.log.1")  # the runtime rotates, then reopens a new file
    path.write_bytes(line("after rotation"))
    assert [r.text for r in follower._read()] == [b"half\n", b"before rotation\n", b"after rotation\n"]
    with path.open("ab") as f:
        f.write(line("c"))
    assert [r.text for r in follower._read()] == [b"c\n"]
    follower.close()
