"""Dockerfile syntax: lines, continuations, comments, directives, flags, JSON vs shell form, stages.

The parser knows the *shape* of every instruction (``INSTRUCTIONS``: which flags it takes, whether
it has a JSON form, how many arguments at least) but not what they mean; values are expanded at
dispatch time, when the ARG/ENV in scope are known. What it returns is a ``Dockerfile``: the ARGs
before the first FROM and the stages, each a FROM plus its instructions, every one carrying its
1-based line so errors can say ``Dockerfile:3: unknown instruction: FORM``.

As Docker's (legacy builder) parser: directives (``# escape=``, ``# syntax=``) only at the very top;
a line whose first non-blank character is ``#`` is a comment, even inside a continuation; an
escape character at the end of a line (trailing blanks allowed) joins the next line; blank lines
inside a continuation are skipped; keywords are case-insensitive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from engine.build.errors import BuildError, at_line

DEFAULT_ESCAPE = "\\"
_DIRECTIVE_RE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*")
_STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9._-]*")
_FLAG_RE = re.compile(r"--([a-z][a-z0-9-]*)(?:=(.*))?")


@dataclass(frozen=True)
class Shape:
    """What an instruction looks like: allowed ``--flags``, JSON form, minimum argument words."""

    flags: frozenset[str] = frozenset()
    json_form: bool = False
    min_args: int = 1
    buildkit_only_flags: frozenset[str] = frozenset()


INSTRUCTIONS: dict[str, Shape] = {
    "FROM": Shape(flags=frozenset({"platform"})),
    "RUN": Shape(json_form=True, buildkit_only_flags=frozenset({"mount", "network", "security"})),
    "CMD": Shape(json_form=True),
    "ENTRYPOINT": Shape(json_form=True),
    "SHELL": Shape(json_form=True),
    "COPY": Shape(flags=frozenset({"from", "chown", "chmod", "link"}), json_form=True, min_args=2),
    "ADD": Shape(flags=frozenset({"chown", "chmod", "link"}), json_form=True, min_args=2),
    "ENV": Shape(),
    "ARG": Shape(),
    "LABEL": Shape(),
    "WORKDIR": Shape(),
    "USER": Shape(),
    "EXPOSE": Shape(),
    "VOLUME": Shape(json_form=True),
    "STOPSIGNAL": Shape(),
    "HEALTHCHECK": Shape(flags=frozenset({"interval", "timeout", "start-period", "start-interval", "retries"})),
    "ONBUILD": Shape(),
    "MAINTAINER": Shape(),
}


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the text after the keyword and its flags
    flags: dict[str, str]  # --name=value ("" for a bare --name)
    json: list[str] | None  # the JSON-array form, when used
    line: int  # 1-based line of the keyword
    original: str  # the instruction as written, continuations joined

    def __str__(self) -> str:
        return self.original


@dataclass
class Stage:
    index: int
    base: str  # the FROM argument, unexpanded
    name: str | None
    line: int
    platform: str | None = None
    instructions: list[Instruction] = field(default_factory=list)
    source: Instruction | None = None  # the FROM itself


@dataclass
class Dockerfile:
    filename: str
    escape: str
    meta_args: list[Instruction]  # ARGs before the first FROM
    stages: list[Stage]

    def stage_index(self, name: str) -> int | None:
        """The index of the stage called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((s.index for s in self.stages if s.name == lowered), None)


@dataclass(frozen=True)
class _Logical:
    text: str
    line: int


def _directives(lines: list[str], filename: str) -> tuple[dict[str, str], int]:
    """Parser directives at the top of the file, and the index of the first line after them."""
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        match = _DIRECTIVE_RE.fullmatch(lines[i].strip())
        if match is None:
            break
        key = match.group(1).lower()
        if key in found:
            raise at_line(filename, i + 1, f"only one {key} parser directive can be used")
        found[key] = match.group(2)
        i += 1
    escape = found.get("escape", DEFAULT_ESCAPE)
    if escape not in ("\\", "`"):
        raise at_line(filename, 1, f"invalid escape token {escape!r} does not match ^[\\\\`]$")
    return found, i


def _logical_lines(lines: list[str], start: int, escape: str) -> list[_Logical]:
    """Join continuations, drop comments and blank lines; each result remembers its first line."""
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    out: list[_Logical] = []
    parts: list[str] = []
    first = 0
    for i in range(start, len(lines)):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            first = i + 1
            raw = raw.lstrip()
        match = continuation.search(raw)
        if match is not None:
            parts.append(raw[: match.start()])
            continue
        parts.append(raw.rstrip())
        out.append(_Logical("".join(parts), first))
        parts = []
    if parts:
        out.append(_Logical("".join(parts), first))
    return out


def _split_flags(rest: str) -> tuple[dict[str, str], str, list[str]]:
    """Leading ``--name[=value]`` words, the remaining text, and any malformed flag words."""
    flags: dict[str, str] = {}
    bad: list[str] = []
    text = rest.lstrip()
    while text.startswith("--"):
        word, _, text = text.partition(" ")
        word, text = word.strip(), text.lstrip()
        match = _FLAG_RE.fullmatch(word)
        if match is None:
            bad.append(word)
            continue
        flags[match.group(1)] = match.group(2) or ""
    return flags, text, bad


def _json_form(text: str) -> list[str] | None:
    stripped = text.strip()
    if not stripped.startswith("["):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def parse_instruction(text: str, *, line: int, filename: str = "Dockerfile") -> Instruction:
    """One logical line as an ``Instruction``; raises ``BuildError`` naming the line."""
    keyword_raw, _, rest = text.strip().partition(" ")
    if "\t" in keyword_raw:
        keyword_raw, _, more = keyword_raw.partition("\t")
        rest = more + " " + rest
    keyword = keyword_raw.upper()
    shape = INSTRUCTIONS.get(keyword)
    if shape is None:
        raise at_line(filename, line, f"unknown instruction: {keyword_raw}")
    flags, args, bad = _split_flags(rest) if keyword != "ONBUILD" else ({}, rest.strip(), [])
    if bad:
        raise at_line(filename, line, f"{keyword}: malformed flag {bad[0]!r}")
    for name in flags:
        if name in shape.buildkit_only_flags:
            raise at_line(filename, line, f"{keyword} --{name} requires BuildKit, which this builder is not")
        if name not in shape.flags:
            raise at_line(filename, line, f"{keyword}: unknown flag: --{name}")
    json_args = _json_form(args) if shape.json_form else None
    words = json_args if json_args is not None else args.split()
    if len(words) < shape.min_args:
        need = "at least one argument" if shape.min_args == 1 else f"at least {shape.min_args} arguments"
        raise at_line(filename, line, f"{keyword} requires {need}")
    if keyword == "SHELL" and json_args is None:
        raise at_line(filename, line, "SHELL requires the arguments to be in JSON form")
    return Instruction(
        keyword=keyword, args=args.strip(), flags=flags, json=json_args, line=line, original=text.strip()
    )


def _new_stage(instr: Instruction, index: int, filename: str) -> Stage:
    words = instr.args.split()
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise at_line(filename, instr.line, "FROM requires either one argument, or three: FROM <source> [AS <name>]")
    name = None
    if len(words) == 3:
        name = words[2].lower()
        if not _STAGE_NAME_RE.fullmatch(name):
            raise at_line(filename, instr.line, f"invalid name for build stage: {words[2]!r}")
    return Stage(
        index=index, base=words[0], name=name, line=instr.line, platform=instr.flags.get("platform"), source=instr
    )


def parse(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile."""
    lines = text.splitlines()
    directives, start = _directives(lines, filename)
    escape = directives.get("escape", DEFAULT_ESCAPE)
    logical = _logical_lines(lines, start, escape)
    if not logical:
        raise BuildError(f"the Dockerfile ({filename}) cannot be empty")
    meta_args: list[Instruction] = []
    stages: list[Stage] = []
    for item in logical:
        instr = parse_instruction(item.text, line=item.line, filename=filename)
        if instr.keyword == "FROM":
            stage = _new_stage(instr, len(stages), filename)
            if stage.name is not None and any(s.name == stage.name for s in stages):
                raise at_line(filename, instr.line, f"duplicate name for build stage: {stage.name!r}")
            stages.append(stage)
        elif not stages:
            if instr.keyword != "ARG":
                raise at_line(filename, instr.line, f"no build stage in current context: {instr.keyword} before FROM")
            meta_args.append(instr)
        else:
            stages[-1].instructions.append(instr)
    return Dockerfile(filename=filename, escape=escape, meta_args=meta_args, stages=stages)
