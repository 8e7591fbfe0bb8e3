"""Dockerfile syntax (engine.build.parser): lines, continuations, directives, forms, stages, errors."""

from __future__ import annotations

import pytest

from engine.build.errors import BuildError
from engine.build.parser import parse, parse_instruction


def test_continuations_comments_and_blank_lines() -> None:
    df = parse(
        "FROM busybox\n"
        "RUN echo a \\\n"
        "   # a comment inside the continuation\n"
        "\n"
        "  b \\  \n"
        "c\n"
        "  # trailing comment\n"
        'CMD ["sh"]\n'
    )
    run, cmd = df.stages[0].instructions
    assert run.keyword == "RUN" and run.line == 2
    assert run.args == "echo a   b c"
    assert run.json is None
    assert cmd.json == ["sh"] and cmd.line == 8


def test_keywords_are_case_insensitive_and_hash_inside_args_is_kept() -> None:
    df = parse("from busybox\nrun echo hi # not a comment\n")
    instr = df.stages[0].instructions[0]
    assert instr.keyword == "RUN"
    assert instr.args == "echo hi # not a comment"


def test_escape_directive() -> None:
    df = parse("# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo done\n")
    assert df.escape == "`"
    assert df.stages[0].instructions[0].args == "dir c:\\   && echo done"


def test_directive_only_at_top() -> None:
    df = parse("FROM busybox\n# escape=`\nRUN echo \\\n x\n")
    assert df.escape == "\\"
    assert df.stages[0].instructions[0].args == "echo  x"


def test_invalid_escape_directive() -> None:
    with pytest.raises(BuildError, match="invalid escape token"):
        parse("# escape=x\nFROM busybox\n")


def test_json_and_shell_forms() -> None:
    assert parse_instruction('CMD ["a", "b c"]', line=1).json == ["a", "b c"]
    assert parse_instruction("CMD [not json", line=1).json is None
    assert parse_instruction('ENV X=["a"]', line=1).json is None  # ENV has no JSON form
    assert parse_instruction('COPY ["a b", "/c/"]', line=1).json == ["a b", "/c/"]


def test_flags() -> None:
    instr = parse_instruction("COPY --from=build --chown=1:2 /a /b", line=3)
    assert instr.flags == {"from": "build", "chown": "1:2"}
    assert instr.args == "/a /b"
    with pytest.raises(BuildError, match=r"^Dockerfile:3: COPY: unknown flag: --nope$"):
        parse_instruction("COPY --nope=1 a b", line=3)
    with pytest.raises(BuildError, match="requires BuildKit"):
        parse_instruction("RUN --mount=type=cache,target=/x make", line=1)


def test_stages_and_meta_args() -> None:
    df = parse("ARG V=1\nFROM busybox:$V AS Build\nRUN true\nFROM scratch\nCOPY --from=build /x /x\n")
    assert [a.args for a in df.meta_args] == ["V=1"]
    assert [(s.index, s.base, s.name, s.line) for s in df.stages] == [
        (0, "busybox:$V", "build", 2),
        (1, "scratch", None, 4),
    ]
    assert df.stage_index("BUILD") == 0
    assert df.stage_index("other") is None
    assert len(df.stages[0].instructions) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM busybox\nRUN true\nFORM x\n", r"^Dockerfile:3: unknown instruction: FORM$"),
        ("FROM busybox\n\nRUN true\n  bogus thing\n", r"^Dockerfile:4: unknown instruction: bogus$"),
        ("RUN true\nFROM busybox\n", r"^Dockerfile:1: no build stage in current context"),
        ("FROM a b\n", r"^Dockerfile:1: FROM requires either one argument, or three"),
        ("FROM a AS x\nFROM b AS X\n", r"^Dockerfile:2: duplicate name for build stage"),
        ("FROM a AS 1x\n", r"^Dockerfile:1: invalid name for build stage"),
        ("FROM busybox\nCOPY onlyone\n", r"^Dockerfile:2: COPY requires at least 2 arguments$"),
        ("FROM busybox\nUSER\n", r"^Dockerfile:2: USER requires at least one argument$"),
        ("FROM busybox\nSHELL /bin/sh -c\n", r"^Dockerfile:2: SHELL requires the arguments to be in JSON form$"),
        ("# only a comment\n\n", r"cannot be empty"),
    ],
)
def test_syntax_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        parse(text)


def test_filename_in_errors() -> None:
    with pytest.raises(BuildError, match=r"^build/Dockerfile\.dev:1: unknown instruction: NOPE$"):
        parse("NOPE x\n", filename="build/Dockerfile.dev")
