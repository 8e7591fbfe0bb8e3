"""Kubernetes' ``$(VAR)`` references in env values, command and args.

The rules are upstream's: ``$(NAME)`` becomes the variable's value when it is defined and stays as
written when not; ``$$`` is an escaped ``$``; a ``$`` before anything else, or an unclosed ``$(``,
is kept literally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """Look a name up in each context in turn; unknown names stay ``$(NAME)``."""

    def lookup(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"$({name})"

    return lookup


def _read_name(rest: str) -> tuple[str, bool, int]:
    """(text, is a variable name, characters consumed after the ``$``)."""
    if rest[0] == "$":
        return "$", False, 1
    if rest[0] == "(":
        close = rest.find(")", 1)
        if close >= 0:
            return rest[1:close], True, close + 1
        return "$(", False, 1
    return "$" + rest[0], False, 1


def expand(text: str, mapping: Callable[[str], str]) -> str:
    out: list[str] = []
    checkpoint = cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_name, advance = _read_name(text[cursor + 1:])
            out.append(mapping(read) if is_name else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)
