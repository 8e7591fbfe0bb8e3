"""Metadata instructions (engine.build.metadata): config edits and Docker's history strings."""

from __future__ import annotations

from typing import Any

import pytest

from engine.build.imageconfig import go_list, nop
from engine.build.lex import LexError
from engine.build.metadata import HANDLERS, MetaStep, check_signal, parse_duration
from engine.build.parser import parse_instruction


def run(
    text: str, config: dict[str, Any] | None = None, env: dict[str, str] | None = None, **kw: Any
) -> tuple[MetaStep, str]:
    """The step after its handler ran, and the history text it returned."""
    step = MetaStep(instr=parse_instruction(text, line=1), config=config or {}, env=env or {}, escape="\\", **kw)
    return step, HANDLERS[step.instr.keyword](step)


def apply(text: str, config: dict[str, Any] | None = None, env: dict[str, str] | None = None, **kw: Any) -> MetaStep:
    return run(text, config, env, **kw)[0]


def test_env_uses_values_from_before_the_line_and_keeps_order() -> None:
    step, history = run('ENV A=new B=$A C="x y"', config={"Env": ["PATH=/bin", "A=old"]}, env={"A": "old"})
    assert step.config["Env"] == ["PATH=/bin", "A=new", "B=old", "C=x y"]
    assert history == "ENV A=new B=old C=x y"
    assert apply("ENV LEGACY some value").config["Env"] == ["LEGACY=some value"]


def test_label_merges() -> None:
    step = apply('LABEL "a b"=1 c=$V', config={"Labels": {"old": "x"}}, env={"V": "v"})
    assert step.config["Labels"] == {"old": "x", "a b": "1", "c": "v"}


def test_cmd_entrypoint_shell_and_interplay() -> None:
    step = apply("CMD echo $HOME", config={"Cmd": ["old"]})
    assert step.config["Cmd"] == ["/bin/sh", "-c", "echo $HOME"]  # no substitution: the shell does it
    assert step.cmd_set
    step = apply('ENTRYPOINT ["/app"]', config={"Cmd": ["inherited"]})
    assert step.config == {"Entrypoint": ["/app"], "Cmd": None}
    step = apply('ENTRYPOINT ["/app"]', config={"Cmd": ["mine"]}, cmd_set=True)
    assert step.config["Cmd"] == ["mine"]
    step = apply("CMD run it", config={"Shell": ["/bin/bash", "-xc"]})
    assert step.config["Cmd"] == ["/bin/bash", "-xc", "run it"]
    assert apply('SHELL ["/bin/ash", "-c"]').config["Shell"] == ["/bin/ash", "-c"]


def test_expose_volume_user_stopsignal() -> None:
    assert apply("EXPOSE 80 53/udp 8000-8002/TCP").config["ExposedPorts"] == {
        "80/tcp": {},
        "53/udp": {},
        "8000/tcp": {},
        "8001/tcp": {},
        "8002/tcp": {},
    }
    with pytest.raises(ValueError, match="invalid port range"):
        apply("EXPOSE 70000")
    assert apply('VOLUME ["/data", "$D"]', env={"D": "/logs"}).config["Volumes"] == {"/data": {}, "/logs": {}}
    assert apply("VOLUME /a /b").config["Volumes"] == {"/a": {}, "/b": {}}
    assert apply("USER ${U:-nobody}").config["User"] == "nobody"
    assert apply("STOPSIGNAL SIGQUIT").config["StopSignal"] == "SIGQUIT"
    for good in ("9", "TERM", "SIGRTMIN+3"):
        check_signal(good)
    for bad in ("SIGNOPE", "0", "999"):
        with pytest.raises(ValueError, match="invalid signal"):
            check_signal(bad)


def test_healthcheck() -> None:
    step = apply("HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD wget -q localhost || exit 1")
    assert step.config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
        "Interval": 30 * 10**9,
        "Timeout": 90 * 10**9,
        "Retries": 3,
    }
    assert apply('HEALTHCHECK CMD ["true"]').config["Healthcheck"] == {"Test": ["CMD", "true"]}
    assert apply("HEALTHCHECK NONE").config["Healthcheck"] == {"Test": ["NONE"]}
    with pytest.raises(ValueError, match="NONE or CMD"):
        apply("HEALTHCHECK curl x")
    assert parse_duration("1h2m3.5s", flag="interval") == (3723 * 10**9 + 5 * 10**8)
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("10 seconds", flag="interval")


def test_onbuild_and_maintainer() -> None:
    step = apply("ONBUILD RUN echo hi")
    assert step.config["OnBuild"] == ["RUN echo hi"]
    with pytest.raises(ValueError, match="isn't allowed"):
        apply("ONBUILD FROM busybox")
    assert apply("MAINTAINER someone <a@b>").author == "someone <a@b>"


def test_history_text_formats() -> None:
    assert go_list(["/bin/sh", "-c", 'echo "hi"']) == '["/bin/sh" "-c" "echo \\"hi\\""]'
    assert nop('CMD ["sh"]') == '/bin/sh -c #(nop)  CMD ["sh"]'


def test_substitution_errors_propagate() -> None:
    with pytest.raises(LexError):
        apply("USER ${U:?needed}")
