"""The metadata-only instructions: each edits the image config section and makes no layer.

``HANDLERS`` is the table (keyword -> function). A handler gets a ``MetaStep`` (the instruction, a
copy of the config section to edit, the variables in scope) and returns the text Docker's legacy
builder puts after ``#(nop)`` in the history (``ENV A=b``, ``CMD ["sh"]``). Errors are ``LexError``
or ``ValueError`` with a one-line message; the executor prefixes the Dockerfile line.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.build.imageconfig import go_list
from engine.build.lex import expand, expand_words, name_values
from engine.build.parser import Instruction, parse_instruction

DEFAULT_SHELL = ["/bin/sh", "-c"]
_PORT_RE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?", re.IGNORECASE)
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
# HEALTHCHECK flag -> config key
_HEALTH_FLAGS = {
    "interval": "Interval",
    "timeout": "Timeout",
    "start-period": "StartPeriod",
    "start-interval": "StartInterval",
}
_ONBUILD_FORBIDDEN = frozenset({"ONBUILD", "FROM", "MAINTAINER"})


@dataclass
class MetaStep:
    instr: Instruction
    config: dict[str, Any]  # edited in place
    env: Mapping[str, str]  # ARG and ENV values for substitution
    escape: str
    cmd_set: bool = False  # CMD given earlier in this stage (ENTRYPOINT then keeps it)
    author: str | None = None

    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def command(self) -> list[str]:
        """The JSON form as is, or the shell form wrapped in the current SHELL."""
        if self.instr.json is not None:
            return list(self.instr.json)
        return [*self.shell(), self.instr.args]


def _env_list_set(items: list[str], *, key: str, value: str) -> list[str]:
    out = [i for i in items if i.partition("=")[0] != key]
    index = next((n for n, i in enumerate(items) if i.partition("=")[0] == key), None)
    if index is None:
        return [*out, f"{key}={value}"]
    out.insert(index, f"{key}={value}")
    return out


def _env(step: MetaStep) -> str:
    pairs = name_values(step.instr.args, keyword="ENV", escape=step.escape)
    items = list(step.config.get("Env") or [])
    shown = []
    for key, raw in pairs:
        value = expand(raw or "", step.env, escape=step.escape)
        items = _env_list_set(items, key=key, value=value)
        shown.append(f"{key}={value}")
    step.config["Env"] = items
    return "ENV " + " ".join(shown)


def _label(step: MetaStep) -> str:
    pairs = name_values(step.instr.args, keyword="LABEL", escape=step.escape)
    labels = dict(step.config.get("Labels") or {})
    shown = []
    for raw_key, raw in pairs:
        key = expand(raw_key, step.env, escape=step.escape)
        value = expand(raw or "", step.env, escape=step.escape)
        labels[key] = value
        shown.append(f"{key}={value}")
    step.config["Labels"] = labels
    return "LABEL " + " ".join(shown)


def _user(step: MetaStep) -> str:
    user = expand(step.instr.args, step.env, escape=step.escape)
    if not user:
        raise ValueError("USER requires a user name or id")
    step.config["User"] = user
    return f"USER {user}"


def _expose(step: MetaStep) -> str:
    ports = expand_words(step.instr.args, step.env, escape=step.escape)
    exposed = dict(step.config.get("ExposedPorts") or {})
    for port in ports:
        match = _PORT_RE.fullmatch(port)
        if match is None:
            raise ValueError(f"invalid containerPort: {port}")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        proto = (match.group(3) or "tcp").lower()
        if not 0 < low <= high <= 65535:
            raise ValueError(f"invalid port range: {port}")
        for p in range(low, high + 1):
            exposed[f"{p}/{proto}"] = {}
    step.config["ExposedPorts"] = exposed
    return "EXPOSE " + " ".join(ports)


def _volume(step: MetaStep) -> str:
    if step.instr.json is not None:
        paths = [expand(p, step.env, escape=step.escape) for p in step.instr.json]
    else:
        paths = expand_words(step.instr.args, step.env, escape=step.escape)
    volumes = dict(step.config.get("Volumes") or {})
    for path in paths:
        if not path.strip():
            raise ValueError("VOLUME specified can not be an empty string")
        volumes[path] = {}
    step.config["Volumes"] = volumes
    return "VOLUME [" + " ".join(paths) + "]"


def _cmd(step: MetaStep) -> str:
    cmd = step.command()
    step.config["Cmd"] = cmd
    step.cmd_set = True
    return f"CMD {go_list(cmd)}"


def _entrypoint(step: MetaStep) -> str:
    entrypoint = step.command()
    step.config["Entrypoint"] = entrypoint
    if not step.cmd_set:
        step.config["Cmd"] = None  # Docker: an ENTRYPOINT drops the inherited CMD
    return f"ENTRYPOINT {go_list(entrypoint)}"


def _shell(step: MetaStep) -> str:
    shell = list(step.instr.json or [])
    if not shell:
        raise ValueError("SHELL requires at least one argument")
    step.config["Shell"] = shell
    return f"SHELL {go_list(shell)}"


def _stopsignal(step: MetaStep) -> str:
    sig = expand(step.instr.args, step.env, escape=step.escape)
    check_signal(sig)
    step.config["StopSignal"] = sig
    return f"STOPSIGNAL {sig}"


def check_signal(sig: str) -> None:
    """Refuse what is neither a signal number nor a known signal name (with or without ``SIG``)."""
    if sig.isdigit():
        if not 0 < int(sig) < signal.NSIG:
            raise ValueError(f"invalid signal: {sig}")
        return
    name = sig.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if name.split("+")[0] not in signal.Signals.__members__ and not name.startswith("SIGRTM"):
        raise ValueError(f"invalid signal: {sig}")


def parse_duration(text: str, *, flag: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds."""
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration for --{flag}: {text!r}")
    return int(total)


def _healthcheck(step: MetaStep) -> str:
    args = step.instr.args
    keyword, _, rest = args.partition(" ")
    if keyword.upper() == "NONE":
        if rest.strip() or step.instr.flags:
            raise ValueError("HEALTHCHECK NONE takes no arguments")
        step.config["Healthcheck"] = {"Test": ["NONE"]}
        return "HEALTHCHECK NONE"
    if keyword.upper() != "CMD" or not rest.strip():
        raise ValueError("HEALTHCHECK requires NONE or CMD followed by a command")
    sub = parse_instruction(f"CMD {rest}", line=step.instr.line)
    test = ["CMD", *sub.json] if sub.json is not None else ["CMD-SHELL", sub.args]
    health: dict[str, Any] = {"Test": test}
    for flag, key in _HEALTH_FLAGS.items():
        if flag in step.instr.flags:
            health[key] = parse_duration(step.instr.flags[flag], flag=flag)
    if "retries" in step.instr.flags:
        retries = step.instr.flags["retries"]
        if not retries.isdigit():
            raise ValueError(f"invalid --retries value: {retries!r}")
        health["Retries"] = int(retries)
    step.config["Healthcheck"] = health
    shown = " ".join(f"{k}={v}" for k, v in health.items() if k != "Test")
    return f"HEALTHCHECK &{{{go_list(test)}{' ' + shown if shown else ''}}}"


def _maintainer(step: MetaStep) -> str:
    step.author = step.instr.args
    return f"MAINTAINER {step.instr.args}"


def _onbuild(step: MetaStep) -> str:
    trigger = parse_instruction(step.instr.args, line=step.instr.line)
    if trigger.keyword in _ONBUILD_FORBIDDEN:
        raise ValueError(f"{trigger.keyword} isn't allowed as an ONBUILD trigger")
    step.config["OnBuild"] = [*(step.config.get("OnBuild") or []), step.instr.args]
    return f"ONBUILD {step.instr.args}"


HANDLERS: dict[str, Callable[[MetaStep], str]] = {
    "ENV": _env,
    "LABEL": _label,
    "USER": _user,
    "EXPOSE": _expose,
    "VOLUME": _volume,
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "SHELL": _shell,
    "STOPSIGNAL": _stopsignal,
    "HEALTHCHECK": _healthcheck,
    "MAINTAINER": _maintainer,
    "ONBUILD": _onbuild,
}
