"""Running an extra process in a running container: ``crun exec`` with a process.json.

Exec sessions do not go through conmon: the runtime's ``exec`` (not detached) stays our child for
the process's life and exits with its status, so the session owns one short-lived ``crun`` process
and needs no shim (an engine restart ends the session's streams, as in Docker, but not the
container). Without a TTY the process's stdin/stdout/stderr are pipes to us; with one, the runtime
hands us the pty master over a ``--console-socket`` (SCM_RIGHTS) and stdout and stderr are one
stream. The process document starts from the container's own (capabilities, rlimits, seccomp via
the container, no-new-privileges) with the caller's args, env, user and cwd.

When the runtime cannot start the process it exits 255 and says why on stderr; those messages are
recognised (``EXEC_FAILURES``) and turned into Docker's wording and exit codes (127 not found, 126
cannot execute) so callers can tell "the command failed" from "there was no command".
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import tempfile
import termios
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.containers.stdio import Chunk, ChunkQueue, FdReader, pump_stream, write_fd
from engine.runtime.users import ExecUser

OUTPUT_CAP = 16 << 20  # bytes kept per stream by ``collect``
CONSOLE_TIMEOUT = 10.0  # seconds for the runtime to hand over the pty master
RUNTIME_FAILED = 255
NOT_FOUND = 'exec: "{0}": executable file not found in $PATH'
# runtime message (crun's, then runc's) -> (exit code, Docker's message template)
EXEC_FAILURES: tuple[tuple[re.Pattern[str], int, str], ...] = (
    (re.compile(r"executable file `(.*?)` not found in \$PATH"), 127, NOT_FOUND),
    (re.compile(r'exec: "(.*?)": executable file not found in \$PATH'), 127, NOT_FOUND),
    (re.compile(r"open executable: (.*)"), 126, "exec failed: cannot execute the command: {0}"),
    (re.compile(r'exec: "(.*?)": permission denied'), 126, "exec failed: cannot execute {0}: permission denied"),
)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes  # with a TTY, everything the process wrote
    stderr: bytes
    error: str = ""  # set when the runtime could not start the command at all

    @property
    def output(self) -> bytes:
        return self.stdout + self.stderr


def explain(text: str) -> tuple[int, str] | None:
    """(exit code, Docker's message) if ``text`` is the runtime failing to exec a command."""
    text = text.replace('\\"', '"')  # runc logs its message as a quoted logfmt value
    for pattern, code, template in EXEC_FAILURES:
        match = pattern.search(text)
        if match:
            return code, template.format(*match.groups())
    return None


def runtime_failure(code: int, stderr: bytes) -> tuple[int, str] | None:
    """(exit code, message) if the runtime failed to start the process, else None."""
    if code != RUNTIME_FAILED:
        return None
    return explain(stderr.decode(errors="replace"))


def process_doc(
    base: Mapping[str, Any],
    *,
    args: Sequence[str],
    env: Sequence[str] = (),
    user: ExecUser | None = None,
    cwd: str | None = None,
    tty: bool = False,
) -> dict[str, Any]:
    """The container's process document with this exec's args, env (merged by key), user and cwd."""
    doc = dict(base)
    doc["args"] = list(args)
    merged = {e.partition("=")[0]: e for e in (*base.get("env", ()), *env)}
    doc["env"] = list(merged.values())
    if user is not None:
        doc["user"] = {"uid": user.uid, "gid": user.gid}
        if user.additional_gids:
            doc["user"]["additionalGids"] = list(user.additional_gids)
    if cwd:
        doc["cwd"] = cwd
    doc["terminal"] = tty
    doc.pop("consoleSize", None)
    return doc


def _set_winsize(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _receive_master(listener: socket.socket) -> int:
    """Accept the runtime's connection on the console socket and take the pty master it sends."""
    listener.settimeout(CONSOLE_TIMEOUT)
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(CONSOLE_TIMEOUT)
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise OSError("the runtime sent no terminal")
    return fds[0]


class ExecSession:
    """One exec'd process: a ``StdioSession`` plus ``wait()`` for its exit code."""

    def __init__(self, proc: asyncio.subprocess.Process, *, process_file: Path, tty: bool) -> None:
        self._proc = proc
        self._process_file = process_file
        self.tty = tty
        self.master_fd: int | None = None
        self._queue = ChunkQueue(1 if tty else 2)
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: FdReader | None = None
        self._stderr_tail = bytearray()  # runtime errors arrive on stderr (the tty case: only there)
        self.error = ""
        self.exit_code: int | None = None

    @classmethod
    async def start(
        cls,
        *,
        base_argv: Sequence[str],
        container_id: str,
        process: Mapping[str, Any],
        work_dir: Path,
        stdin: bool = False,
        size: tuple[int, int] | None = None,
    ) -> ExecSession:
        """Start the process; ``base_argv`` is the runtime binary and its global options."""
        tty = bool(process.get("terminal"))
        process_file = work_dir / f"exec-{secrets.token_hex(8)}.json"
        process_file.write_bytes(orjson.dumps(process))
        argv = [*base_argv, "exec", "--process", os.fspath(process_file)]
        console_dir = tempfile.mkdtemp(prefix="pinnace-tty-") if tty else None
        listener: socket.socket | None = None
        try:
            if console_dir is not None:
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                listener.bind(os.path.join(console_dir, "s"))
                listener.listen(1)
                argv += ["--console-socket", os.path.join(console_dir, "s")]
            argv.append(container_id)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin and not tty else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL if tty else asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            session = cls(proc, process_file=process_file, tty=tty)
            if listener is not None:
                try:
                    session.master_fd = await asyncio.to_thread(_receive_master, listener)
                except OSError:
                    await session.close()
                    raise
                if size is not None:
                    _set_winsize(session.master_fd, *size)
            session._begin()
            return session
        except BaseException:
            process_file.unlink(missing_ok=True)
            raise
        finally:
            if listener is not None:
                listener.close()
            if console_dir is not None:
                shutil.rmtree(console_dir, ignore_errors=True)

    def _begin(self) -> None:
        assert self._proc.stderr is not None
        self._tasks.append(asyncio.create_task(self._pump_stderr(self._proc.stderr)))
        if self.master_fd is not None:
            self._reader = FdReader(self.master_fd, name="stdout", into=self._queue)
        else:
            assert self._proc.stdout is not None
            self._tasks.append(asyncio.create_task(pump_stream(self._proc.stdout, name="stdout", into=self._queue)))

    async def _pump_stderr(self, reader: asyncio.StreamReader) -> None:
        """stderr goes to the caller (non-tty) and a short tail is kept to recognise runtime errors."""
        try:
            while chunk := await reader.read(64 << 10):
                self._stderr_tail = (self._stderr_tail + chunk)[-4096:]
                if not self.tty:
                    self._queue.put(("stderr", chunk))
        finally:
            if not self.tty:
                self._queue.finish()

    @property
    def pid(self) -> int:
        """The runtime's ``exec`` process (our child), not the process inside the container."""
        return self._proc.pid

    async def read(self) -> Chunk | None:
        return await self._queue.get()

    async def write(self, data: bytes) -> None:
        if self.master_fd is not None:
            await write_fd(self.master_fd, data)
        elif self._proc.stdin is not None:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master_fd is not None:
            await write_fd(self.master_fd, b"\x04")  # ^D: end of input on a terminal
        elif self._proc.stdin is not None:
            self._proc.stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self._proc.stdin.wait_closed()

    async def resize(self, *, height: int, width: int) -> None:
        if self.master_fd is not None:
            _set_winsize(self.master_fd, height, width)

    async def wait(self) -> int:
        """The process's exit code (127/126 with ``error`` set when it could not be started)."""
        if self.exit_code is None:
            code = await self._proc.wait()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            failure = runtime_failure(code, bytes(self._stderr_tail))
            if failure is not None:
                code, self.error = failure
            self.exit_code = code
            self._process_file.unlink(missing_ok=True)
        return self.exit_code

    async def close(self) -> None:
        """End the session: kill the runtime's exec (and so the process's stdio) if still running."""
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await self._proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._reader is not None:
            self._reader.stop()
        if self.master_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.master_fd)
            self.master_fd = None
        self._process_file.unlink(missing_ok=True)


async def collect(session: ExecSession, *, stdin: bytes | None = None) -> ExecResult:
    """Feed ``stdin``, gather the output (capped per stream) and the exit code."""
    out = {"stdout": bytearray(), "stderr": bytearray()}
    try:
        if stdin is not None:
            await session.write(stdin)
            await session.close_stdin()
        while (chunk := await session.read()) is not None:
            name, data = chunk
            buf = out[name]
            if len(buf) < OUTPUT_CAP:
                buf += data[: OUTPUT_CAP - len(buf)]
        code = await session.wait()
    finally:
        await session.close()
    return ExecResult(exit_code=code, stdout=bytes(out["stdout"]), stderr=bytes(out["stderr"]), error=session.error)

