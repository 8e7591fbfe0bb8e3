"""Running OCI runtimes (crun by default, runc selectable): one container to completion, or verbs.

``run``: ``crun run --bundle DIR ID`` in the foreground: the container's stdout and stderr are the
runtime's, here one pipe we read as the process runs (``on_output`` sees each chunk, for build
logs), and the runtime's exit status is the container's. ``run`` rather than ``create``+``start``
because with ``create`` the pipe would stay open for the container's whole life. Whatever happens
(failure, the caller cancelled or timed out) the container is killed and ``delete -f``'d before we
return, so no state is left under the runtime's root.

Containers that must outlive us are created by conmon (``engine.runtime.conmon``); for those this
module has the short verbs: ``state``, ``start``, ``kill``, ``delete`` and the generic ``call``,
each one runtime invocation with ``--root`` set to the engine's own state directory when given.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.runtime.errors import OCIRuntimeError

# runtime name -> binary; any other value must be a path to an OCI-compatible binary
RUNTIMES: dict[str, str] = {"crun": "crun", "runc": "runc"}
CONTAINER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
OUTPUT_CAP = 16 << 20  # bytes of output kept in RunResult (all of it still goes to on_output)
_CHUNK = 64 << 10


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    output: bytes  # stdout and stderr interleaved, as the process wrote them (capped)


def runtime_binary(runtime: str) -> str:
    """The executable for ``runtime`` (``crun``, ``runc`` or a path); raises if it is not installed."""
    name = RUNTIMES.get(runtime, runtime)
    found = shutil.which(name)
    if found is None:
        raise OCIRuntimeError(f"OCI runtime {runtime!r} not found (is the {name} package installed?)")
    return found


def write_bundle(bundle: str | os.PathLike[str], spec: dict[str, Any]) -> Path:
    """Write ``config.json`` into the bundle directory (created if needed); returns its path."""
    path = Path(bundle)
    path.mkdir(parents=True, exist_ok=True)
    config = path / "config.json"
    config.write_bytes(orjson.dumps(spec, option=orjson.OPT_INDENT_2))
    return config


def _global_args(binary: str, state_root: str | os.PathLike[str] | None) -> list[str]:
    return [binary] if state_root is None else [binary, "--root", os.fspath(state_root)]


async def _quiet(*argv: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await proc.wait()


async def delete(*, container_id: str, runtime: str = "crun", state_root: str | os.PathLike[str] | None = None) -> None:
    """Kill and remove ``container_id`` if the runtime still knows it (no error if it does not)."""
    base = _global_args(runtime_binary(runtime), state_root)
    await _quiet(*base, "kill", container_id, "KILL")
    await _quiet(*base, "delete", "-f", container_id)


async def _pump(stream: asyncio.StreamReader, *, sink: bytearray, on_output: Callable[[bytes], None] | None) -> None:
    while chunk := await stream.read(_CHUNK):
        if len(sink) < OUTPUT_CAP:
            sink += chunk[: OUTPUT_CAP - len(sink)]
        if on_output is not None:
            on_output(chunk)


async def run(
    *,
    bundle: str | os.PathLike[str],
    container_id: str,
    runtime: str = "crun",
    state_root: str | os.PathLike[str] | None = None,
    on_output: Callable[[bytes], None] | None = None,
) -> RunResult:
    """Run the bundle's process to completion and return its exit code and output.

    For a deadline wrap the call in ``asyncio.timeout``: cancellation kills and deletes the container.
    """
    if not CONTAINER_ID_RE.fullmatch(container_id):
        raise OCIRuntimeError(f"invalid container id {container_id!r}")
    if not (Path(bundle) / "config.json").is_file():
        raise OCIRuntimeError(f"bundle {os.fspath(bundle)} has no config.json")
    argv = [*_global_args(runtime_binary(runtime), state_root), "run", "--bundle", os.fspath(bundle), container_id]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
    except OSError as exc:
        raise OCIRuntimeError(f"cannot start {runtime}: {exc.strerror}") from None
    output = bytearray()
    finished = False
    try:
        assert proc.stdout is not None
        await _pump(proc.stdout, sink=output, on_output=on_output)
        code = await proc.wait()
        finished = True
    finally:
        if not finished:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(_cleanup(proc, container_id=container_id, runtime=runtime, state_root=state_root))
    if code != 0:  # the runtime may have failed half-way through creating it
        await delete(container_id=container_id, runtime=runtime, state_root=state_root)
    return RunResult(exit_code=code, output=bytes(output))


async def _cleanup(
    proc: asyncio.subprocess.Process,
    *,
    container_id: str,
    runtime: str,
    state_root: str | os.PathLike[str] | None,
) -> None:
    await delete(container_id=container_id, runtime=runtime, state_root=state_root)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


# ------------------------------------------------------------------ verbs on a long-lived container


@dataclass(frozen=True)
class CallResult:
    code: int
    stdout: bytes
    stderr: bytes

    @property
    def message(self) -> str:
        """The runtime's complaint, one line (crun/runc print ``Error: ...`` or a bare message)."""
        text = self.stderr.decode(errors="replace").strip() or self.stdout.decode(errors="replace").strip()
        return " ".join(text.split()) or f"exit status {self.code}"


async def call(*argv: str) -> CallResult:
    """Run a short runtime command and collect its output (for state/start/kill/delete)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise OCIRuntimeError(f"cannot run {argv[0]}: {exc.strerror}") from None
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return CallResult(proc.returncode, out, err)


def base_argv(*, runtime: str, state_root: str | os.PathLike[str] | None) -> list[str]:
    """``[binary]`` or ``[binary, --root, DIR]``: the prefix of every runtime command."""
    return _global_args(runtime_binary(runtime), state_root)


async def state(
    *, container_id: str, runtime: str = "crun", state_root: str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """The runtime's ``state`` document (status created/running/stopped, pid), or None if unknown."""
    result = await call(*base_argv(runtime=runtime, state_root=state_root), "state", container_id)
    if result.code != 0:
        return None
    try:
        doc = orjson.loads(result.stdout)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


async def start(*, container_id: str, runtime: str = "crun", state_root: str | os.PathLike[str] | None = None) -> None:
    """Let a created container's process exec its command."""
    result = await call(*base_argv(runtime=runtime, state_root=state_root), "start", container_id)
    if result.code != 0:
        raise OCIRuntimeError(f"cannot start container {container_id}: {result.message}")


async def kill(
    *,
    container_id: str,
    signal: int,
    runtime: str = "crun",
    state_root: str | os.PathLike[str] | None = None,
    all_processes: bool = False,
) -> bool:
    """Send ``signal`` to the container's init (or every process); False if it is not running."""
    argv = [*base_argv(runtime=runtime, state_root=state_root), "kill"]
    if all_processes:
        argv.append("--all")
    result = await call(*argv, container_id, str(signal))
    return result.code == 0
