"""JSON Pointer (RFC 6901) parsing, for JSON Patch paths.

A pointer is ``""`` (the whole document) or a sequence of ``/``-prefixed reference tokens in which
``~1`` stands for ``/`` and ``~0`` for ``~``. Any other use of ``~`` is malformed.
"""

from __future__ import annotations

import re

from machinery.patch.errors import PatchError

_BAD_ESCAPE = re.compile(r"~(?![01])")


def parse_pointer(pointer: object) -> list[str]:
    """The unescaped reference tokens of ``pointer``; ``[]`` for the whole document."""
    if not isinstance(pointer, str):
        raise PatchError(f"JSON pointer must be a string, got {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} must start with '/'")
    if _BAD_ESCAPE.search(pointer):
        raise PatchError(f"JSON pointer {pointer!r} has a '~' not followed by '0' or '1'")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def array_index(token: str, *, length: int, allow_end: bool, pointer: str) -> int:
    """The list position named by ``token``; ``allow_end`` admits ``-`` and ``length`` (for add)."""
    if token == "-":
        if allow_end:
            return length
        raise PatchError(f"path {pointer!r}: '-' names no existing element")
    if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"path {pointer!r}: {token!r} is not a valid array index")
    index = int(token)
    limit = length if allow_end else length - 1
    if index > limit:
        raise PatchError(f"path {pointer!r}: index {index} is out of range (length {length})")
    return index
