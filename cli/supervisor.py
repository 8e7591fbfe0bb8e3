"""The child-process supervisor of ``pinnace server``: the scheduler and the controller-manager.

``pinnace server`` runs the API server itself and each other control-plane part as a child process
(``pinnace scheduler`` / ``pinnace controller-manager`` with the admin kubeconfig), so that a crash or
a hang in one part does not take the others down and each part is the same program one would run
alone. The supervisor restarts a child that dies, with exponential back-off (reset once a child has
stayed up for a while), writes each child's PID to ``<data dir>/<name>.pid`` (tests and operators
find them there), copies each child's stderr/stdout lines to the server's stderr prefixed with
``[name]``, and on shutdown sends SIGTERM, then SIGKILL after a grace period, by PID. Children also
get PR_SET_PDEATHSIG, so they die with the server even if the server is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("pinnace.supervisor")

PR_SET_PDEATHSIG = 1
STABLE_AFTER = 10.0  # seconds a child must stay up before its back-off resets
LINE_LIMIT = 1 << 20  # longest output line passed on whole


@dataclass(frozen=True)
class ChildSpec:
    """One supervised program: its name (log prefix, PID file) and its argv."""

    name: str
    argv: tuple[str, ...]


def control_plane_children(*, kubeconfig: Path, controllers: list[str] | None, verbose: bool = False,
                           controller_flags: tuple[str, ...] = ()) -> list[ChildSpec]:
    """The children ``pinnace server`` runs beside the API server (``controller_flags`` go to the
    controller-manager as they are)."""
    base = (sys.executable, "-m", "cli.main")
    extra = ("-v",) if verbose else ()
    names = ("--controllers", ",".join(controllers)) if controllers else ()
    return [ChildSpec("controller-manager", (*base, "controller-manager", "--kubeconfig", str(kubeconfig),
                                             "--leader-elect", *names, *controller_flags, *extra)),
            ChildSpec("scheduler", (*base, "scheduler", "--kubeconfig", str(kubeconfig), *extra))]


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the kernel sends the child SIGTERM when the server goes, however it goes."""

    def preexec() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the server died before prctl took effect
            os._exit(1)

    return preexec


class _Child:
    """One spec's current process and the loop that keeps it running."""

    def __init__(self, spec: ChildSpec, *, run_dir: Path, min_backoff: float, max_backoff: float) -> None:
        self.spec = spec
        self.pid_file = run_dir / f"{spec.name}.pid"
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.task: asyncio.Task[None] | None = None

    async def keep_running(self) -> None:
        backoff = self.min_backoff
        while True:
            started = time.monotonic()
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *self.spec.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent(os.getpid()), limit=LINE_LIMIT)
            except OSError as exc:
                log.error("cannot start %s: %s; retrying in %.1fs", self.spec.name, exc, backoff)
            else:
                await asyncio.to_thread(self.pid_file.write_text, f"{self.process.pid}\n")
                log.info("started %s (pid %d)", self.spec.name, self.process.pid)
                pump = asyncio.create_task(self._pump(self.process))
                code = await self.process.wait()
                await pump
                if time.monotonic() - started > STABLE_AFTER:
                    backoff = self.min_backoff
                log.warning("%s (pid %d) exited with %s; restarting in %.1fs",
                            self.spec.name, self.process.pid, code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
            self.restarts += 1

    async def _pump(self, process: asyncio.subprocess.Process) -> None:
        """Copy the child's output to our stderr, one prefixed line at a time."""
        assert process.stdout is not None
        prefix = f"[{self.spec.name}] ".encode()
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # a line longer than LINE_LIMIT: pass on what is buffered
                line = await process.stdout.read(LINE_LIMIT) + b"\n"
            if not line:
                return
            sys.stderr.buffer.write(prefix + line)
            sys.stderr.buffer.flush()

    async def stop(self, *, grace: float) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                log.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", self.spec.name, process.pid, grace)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                await process.wait()
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.pid_file.unlink)


class Supervisor:
    """Starts the given children, restarts them when they die, stops them all on ``stop()``."""

    def __init__(self, specs: list[ChildSpec], *, run_dir: Path, grace: float = 5.0, min_backoff: float = 0.5,
                 max_backoff: float = 30.0) -> None:
        if len({s.name for s in specs}) != len(specs):
            raise ValueError("supervised children need distinct names")
        self.grace = grace
        self.children = [_Child(s, run_dir=run_dir, min_backoff=min_backoff, max_backoff=max_backoff)
                         for s in specs]

    async def start(self) -> None:
        for child in self.children:
            child.task = asyncio.create_task(child.keep_running(), name=f"supervise-{child.spec.name}")

    def pids(self) -> dict[str, int | None]:
        """The current PID of each child (None between a death and its restart)."""
        return {c.spec.name: (c.process.pid if c.process is not None and c.process.returncode is None else None)
                for c in self.children}

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop(grace=self.grace) for c in self.children))
