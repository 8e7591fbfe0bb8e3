"""``.dockerignore``: which files of the build context COPY and ADD may not see, as Docker decides.

Each line is a Go ``filepath.Match`` pattern (``*``, ``?``, ``[...]``, ``\\`` escapes) extended with
``**`` (any number of directories, including none); ``#`` lines are comments; ``!`` makes an
exception that re-includes what earlier lines excluded; the last matching line wins. A pattern that
matches a directory excludes everything below it (a parent match counts), which is how ``node_modules``
or ``build/`` exclude whole trees. Patterns are cleaned like ``filepath.Clean`` with a leading ``/``
dropped, so ``/foo`` and ``foo`` mean the same: relative to the context root.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from engine.build.errors import BuildError

IGNORE_FILE = ".dockerignore"


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a "!" line: re-include
    regex: re.Pattern[str]


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """Translate ``[...]`` starting at ``pattern[i] == '['``; returns (regex, index after ``]``)."""
    j = i + 1
    out = ["["]
    if j < len(pattern) and pattern[j] in "^!":
        out.append("^")
        j += 1
    first = True
    while j < len(pattern) and (pattern[j] != "]" or first):
        ch = pattern[j]
        if ch == "\\" and j + 1 < len(pattern):
            j += 1
            ch = pattern[j]
        out.append(re.escape(ch) if ch != "-" else "-")
        first = False
        j += 1
    if j >= len(pattern):
        raise BuildError(f"{IGNORE_FILE}: syntax error in pattern {pattern!r}: unterminated '['")
    out.append("]")
    return "".join(out), j + 1


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The anchored regex of one cleaned pattern (Docker's patternmatcher translation)."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
            continue
        elif ch == "\\":
            i += 1
            if i < len(pattern):
                out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise BuildError(f"{IGNORE_FILE}: syntax error in pattern {pattern!r}: {exc}") from None


def parse_patterns(text: str) -> list[Pattern]:
    """The patterns of a ``.dockerignore`` file's text."""
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if not line:
            continue
        cleaned = posixpath.normpath(line)
        if cleaned.startswith("//"):
            cleaned = cleaned[1:]
        if len(cleaned) > 1 and cleaned.startswith("/"):
            cleaned = cleaned[1:]
        patterns.append(Pattern(text=cleaned, exclusion=exclusion, regex=compile_pattern(cleaned)))
    return patterns


class IgnoreMatcher:
    """Decides, for a context-relative path (``a/b/c``), whether it is excluded."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns
        self.has_exceptions = any(p.exclusion for p in patterns)

    @classmethod
    def load(cls, context: str | os.PathLike[str]) -> IgnoreMatcher:
        """The matcher of ``context/.dockerignore`` (matches nothing when there is none)."""
        try:
            text = (Path(context) / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, IsADirectoryError):
            return cls([])
        return cls(parse_patterns(text))

    def excluded(self, rel: str) -> bool:
        """True when ``rel`` (or one of its parent directories) is excluded by the last matching line."""
        rel = rel.strip("/")
        if not rel or rel == ".":
            return False
        parent = posixpath.dirname(rel)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # cannot change the outcome
            hit = pattern.regex.match(rel) is not None
            if not hit:
                hit = any(pattern.regex.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def prunable(self, rel_dir: str) -> bool:
        """True when nothing below the excluded directory ``rel_dir`` can be re-included."""
        return not self.has_exceptions and self.excluded(rel_dir)
