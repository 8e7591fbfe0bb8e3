"""Starting conmon, the per-container shim, and reading back what it reports.

One conmon per container holds the container's stdio, writes its output to a CRI-format log file,
serves an attach socket (``BUNDLE/attach``) and a control fifo (``BUNDLE/ctl``: ``1 H W`` resizes
the terminal, ``2 0 0`` reopens the log), writes an ``oom`` file into its working directory (we run
it in the bundle) when the cgroup reports an OOM kill, and writes the exit status into
``EXIT_DIR/ID`` when the container's process ends (128+N for a signal). It runs ``RUNTIME create``
itself, so no Python process stays behind per container.

conmon double-forks: the process we start writes the daemon's pid to ``--conmon-pidfile`` and
exits at once, so we reap it immediately and the daemon is re-parented to init (which reaps it
when it ends; we do NOT set PR_SET_CHILD_SUBREAPER, since reaping strangers' children with
``waitpid(-1)`` would steal exit statuses from asyncio's own child watcher). The daemon tells us
how ``create`` went on the *sync pipe* (fd number in ``_OCI_SYNCPIPE``): one JSON line,
``{"data": PID}`` on success or ``{"data": -1, "message": "..."}`` with the runtime's error (e.g.
"executable file `x` not found in $PATH"). Async; the pipe read goes to a thread.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine.runtime.errors import OCIRuntimeError
from engine.runtime.oci import runtime_binary

CREATE_TIMEOUT = 60.0  # seconds for the runtime's create (image mounts, cgroups) to report back


class CreateFailed(OCIRuntimeError):
    """The runtime refused to create the container; ``message`` is its own one-line reason."""

    status = 400


@dataclass(frozen=True)
class ConmonConfig:
    """Everything conmon needs for one container (paths are absolute)."""

    container_id: str
    name: str
    bundle: Path
    exit_dir: Path
    log_path: Path
    runtime: str = "crun"
    runtime_root: Path | None = None
    log_size_max: int | None = None  # bytes; conmon starts the file afresh past this
    terminal: bool = False
    stdin: bool = False
    stdin_once: bool = False  # close the container's stdin when the first attached client detaches

    @property
    def pidfile(self) -> Path:
        return self.bundle / "pidfile"

    @property
    def conmon_pidfile(self) -> Path:
        return self.bundle / "conmon.pid"


@dataclass(frozen=True)
class Created:
    pid: int  # the container's init process, seen from the host
    conmon_pid: int


def conmon_binary() -> str:
    found = shutil.which("conmon")
    if found is None:
        raise OCIRuntimeError("conmon not found (is the conmon package installed?)")
    return found


def argv(cfg: ConmonConfig) -> list[str]:
    """The conmon command line, as podman drives it."""
    out = [
        conmon_binary(),
        "--api-version", "1",
        "-c", cfg.container_id,
        "-u", cfg.container_id,
        "-r", runtime_binary(cfg.runtime),
        "-b", os.fspath(cfg.bundle),
        "-p", os.fspath(cfg.pidfile),
        "-n", cfg.name,
        "--exit-dir", os.fspath(cfg.exit_dir),
        "--full-attach",
        "-l", f"k8s-file:{os.fspath(cfg.log_path)}",
        "--log-level", "warning",
        "--syslog",
        "--conmon-pidfile", os.fspath(cfg.conmon_pidfile),
    ]  # fmt: skip
    if cfg.runtime_root is not None:
        out.append(f"--runtime-arg=--root={os.fspath(cfg.runtime_root)}")
    if cfg.log_size_max is not None and cfg.log_size_max > 0:
        out += ["--log-size-max", str(cfg.log_size_max)]
    if cfg.terminal:
        out.append("--terminal")
    if cfg.stdin:
        out.append("--stdin")
        if not cfg.stdin_once:
            out.append("--leave-stdin-open")
    return out


def _read_line(fd: int, timeout: float) -> bytes:
    """One line from the sync pipe, or what arrived before EOF/timeout."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


def _parse_sync(line: bytes) -> tuple[int, str]:
    try:
        doc = orjson.loads(line)
        return int(doc["data"]), str(doc.get("message", ""))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return -1, line.decode(errors="replace")


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


async def create(cfg: ConmonConfig, *, report_within: float = CREATE_TIMEOUT) -> Created:
    """Start conmon for ``cfg`` and wait until the runtime has created the container (not started).

    Raises ``CreateFailed`` with the runtime's message when create fails; conmon has exited then.
    """
    cfg.exit_dir.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv(cfg),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
                env={**os.environ, "_OCI_SYNCPIPE": str(write_fd)},
                cwd=cfg.bundle,
            )
        except OSError as exc:
            raise OCIRuntimeError(f"cannot start conmon: {exc.strerror}") from None
        finally:
            os.close(write_fd)
        _, err = await proc.communicate()  # the first conmon exits as soon as it has forked
        line = await asyncio.to_thread(_read_line, read_fd, report_within)
    finally:
        os.close(read_fd)
    pid, message = _parse_sync(line) if line else (-1, "")
    if pid <= 0:
        reason = message.strip() or err.decode(errors="replace").strip() or "conmon exited without a report"
        raise CreateFailed(" ".join(reason.split()))
    return Created(pid=pid, conmon_pid=_read_pid(cfg.conmon_pidfile))


def read_exit_code(exit_dir: Path, container_id: str) -> int | None:
    """The exit status conmon recorded, or None if it has not (yet)."""
    try:
        text = (exit_dir / container_id).read_text().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def is_conmon_of(pid: int, container_id: str) -> bool:
    """Whether ``pid`` is still the conmon serving ``container_id`` (guards against pid reuse)."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":  # exited, waiting for init to reap it
        return False
    return bool(cmdline) and os.path.basename(cmdline[0]) == b"conmon" and container_id.encode() in cmdline


def send_control(bundle: Path, *, kind: int, height: int = 0, width: int = 0) -> None:
    """Write one message to conmon's control fifo (1 = resize the terminal, 2 = reopen the log)."""
    fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.write(fd, f"{kind} {height} {width}\n".encode())
    finally:
        os.close(fd)
