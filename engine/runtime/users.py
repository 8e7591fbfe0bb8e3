"""Docker's ``user[:group]`` strings resolved against a root filesystem's /etc/passwd and /etc/group.

``USER app``, ``--chown app:staff`` and a container's ``User`` mean whatever the *image* says those
names are, so they are looked up in the rootfs (through ``secure_join``: the files may be
symlinks), with Docker's rules: numbers need no entry (a bare uid takes gid 0 and home ``/`` when
passwd does not know it), names must have one; a user found by name also gets the supplementary
groups that list it as a member.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.runtime.errors import SpecError
from engine.runtime.rootpath import secure_join

MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _read_table(root: str | os.PathLike[str], path: str, *, columns: int) -> list[list[str]]:
    """Rows of a colon-separated database file, padded to ``columns``; a missing file is empty."""
    try:
        text = secure_join(root, path).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        rows.append((parts + [""] * columns)[:columns])
    return rows


def _as_id(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    if value > MAX_ID:
        raise SpecError(f"id {text} is out of range (max {MAX_ID})")
    return value


def _row_id(text: str) -> int | None:
    try:
        return _as_id(text)
    except SpecError:
        return None


def resolve_user(root: str | os.PathLike[str] | None, spec: str, *, supplementary: bool = True) -> ExecUser:
    """Resolve ``spec`` (``""``, ``name``, ``uid``, ``name:group``, ``uid:gid``) inside ``root``.

    ``root`` None means no filesystem to consult (``FROM scratch``): only numbers are accepted.
    """
    user_part, _, group_part = (spec or "").partition(":")
    if not user_part and group_part:
        raise SpecError(f"invalid user specification {spec!r}: the user part is empty")
    passwd = _read_table(root, "/etc/passwd", columns=7) if root is not None else []
    uid, gid, home, name = 0, 0, "/", ""
    if user_part:
        number = _as_id(user_part)
        entry = next((r for r in passwd if (r[0] == user_part if number is None else _row_id(r[2]) == number)), None)
        if entry is None:
            if number is None:
                raise SpecError(f"unable to find user {user_part}: no matching entries in passwd file")
            uid = number
        else:
            uid, gid, home, name = _row_id(entry[2]) or 0, _row_id(entry[3]) or 0, entry[5] or "/", entry[0]
    else:
        entry = next((r for r in passwd if _row_id(r[2]) == 0), None)
        if entry is not None:
            home, name = entry[5] or "/", entry[0]
    groups = _read_table(root, "/etc/group", columns=4) if root is not None and (group_part or name) else []
    if group_part:
        number = _as_id(group_part)
        if number is not None:
            gid = number
        else:
            row = next((g for g in groups if g[0] == group_part), None)
            if row is None:
                raise SpecError(f"unable to find group {group_part}: no matching entries in group file")
            gid = _row_id(row[2]) or 0
    extra: list[int] = []
    if supplementary and name:
        for g in groups:
            gid_of = _row_id(g[2])
            if gid_of is not None and gid_of != gid and name in g[3].split(",") and gid_of not in extra:
                extra.append(gid_of)
    return ExecUser(uid=uid, gid=gid, additional_gids=tuple(extra), home=home)
