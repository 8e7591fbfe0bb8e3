"""A throw-away one-node cluster for the pod benchmark, driven through the real commands.

The benchmark measures what a user gets, so the cluster is made by ``pinnace up`` and torn down by
``pinnace down``, both as subprocesses, on a temp data dir with free ports and a private HOME and
KUBECONFIG (the user's ~/.kube/config is never touched). Manifests go through the real
``/usr/bin/kubectl``. Every command runs as an asyncio subprocess so the watches that time the pods
keep reading while kubectl and ``up`` run. ``open_cluster`` always ends with ``pinnace down``, a
SIGKILL of any recorded PID still alive and still naming the temp dir, and a lazy unmount of any
mount ``down`` left under it, so a failed step leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from e2e.cluster import KUBECTL, REPO, free_port
from machinery.kubeconfig import ClusterConfig, load_kubeconfig

UP_TIMEOUT = 180.0
DOWN_TIMEOUT = 120.0


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and where its log is."""


@dataclass(frozen=True)
class Completed:
    """A finished command: its exit status and output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Completed:
        if self.returncode != 0:
            raise BenchError(f"`{' '.join(self.argv)}` exited {self.returncode}: "
                             f"{(self.stderr or self.stdout).strip()[-800:]}")
        return self


@dataclass(frozen=True)
class StampedLine:
    """One line a command printed and when (client wall clock) it was read."""

    at: float
    text: str


async def run_command(argv: list[str], *, env: dict[str, str], stdin: str | None = None,
                      within: float = 120.0) -> Completed:
    """Run a command without blocking the loop; BenchError when it outlives ``within``."""
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=str(REPO), stdin=pipe if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=pipe, stderr=pipe)
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin is not None else None), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchError(f"`{' '.join(argv)}` did not finish within {within:.0f}s") from None
    return Completed(tuple(argv), process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))


async def run_stamped(argv: list[str], *, env: dict[str, str], within: float,
                      on_line: Callable[[StampedLine], None] | None = None) -> tuple[Completed, list[StampedLine]]:
    """Run a command and time each line of its stdout as it arrives (``up`` prints one per step)."""
    process = await asyncio.create_subprocess_exec(*argv, env=env, cwd=str(REPO), stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[StampedLine] = []

    async def read_stdout() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = StampedLine(time.time(), raw.decode(errors="replace").rstrip("\n"))
            lines.append(line)
            if on_line is not None:
                on_line(line)

    async def finish() -> bytes:
        assert process.stderr is not None
        _, err = await asyncio.gather(read_stdout(), process.stderr.read())
        await process.wait()
        return err

    try:
        err = await asyncio.wait_for(finish(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchError(f"`{' '.join(argv)}` did not finish within {within:.0f}s") from None
    done = Completed(tuple(argv), process.returncode or 0, "\n".join(line.text for line in lines),
                     err.decode(errors="replace"))
    return done, lines


@dataclass
class BenchCluster:
    """One cluster's files and ports, and the commands that act on it."""

    work: Path
    port: int = field(default_factory=free_port)
    kubelet_port: int = field(default_factory=free_port)
    pids: set[int] = field(default_factory=set)

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def env(self) -> dict[str, str]:
        home = self.work / "home"
        return {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / ".kube" / "config")}

    def pinnace_argv(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "cli.main", *argv]

    async def up(self, *, on_line: Callable[[StampedLine], None] | None = None) -> tuple[Completed, list[StampedLine]]:
        """``pinnace up`` on this cluster's data dir and ports; each progress line timed as printed."""
        argv = self.pinnace_argv("up", "--data-dir", str(self.data_dir), "--port", str(self.port),
                                 "--kubelet-port", str(self.kubelet_port))
        try:
            done, lines = await run_stamped(argv, env=self.env, within=UP_TIMEOUT, on_line=on_line)
        finally:
            self.pids |= self.recorded_pids()
        return done.check(), lines

    async def down(self, *, keep_data: bool = False) -> Completed:
        self.pids |= self.recorded_pids()
        argv = self.pinnace_argv("down", "--data-dir", str(self.data_dir), *(["--keep-data"] if keep_data else []))
        return await run_command(argv, env=self.env, within=DOWN_TIMEOUT)

    async def kubectl(self, *argv: str, stdin: str | None = None, within: float = 120.0) -> Completed:
        env = {**self.env, "KUBECONFIG": str(self.kubeconfig)}
        return (await run_command([KUBECTL, *argv], env=env, stdin=stdin, within=within)).check()

    def client_config(self) -> ClusterConfig:
        return load_kubeconfig(str(self.kubeconfig))

    def recorded_pids(self) -> set[int]:
        """Every PID file of the cluster (server, agent, their children) and the pods' conmons."""
        found: set[int] = set()
        for pid_file in [*self.data_dir.glob("*.pid"), *(self.data_dir / "agent").glob("*.pid")]:
            with contextlib.suppress(OSError, ValueError):
                found.add(int(pid_file.read_text().strip()))
        for state in (self.data_dir / "agent" / "engine" / "containers").glob("*/state.json"):
            with contextlib.suppress(OSError, ValueError):
                record = json.loads(state.read_text())
                found |= {p for p in (record.get("pid"), record.get("conmon_pid")) if isinstance(p, int) and p > 0}
        return found


def _still_ours(pid: int, work: Path) -> bool:
    """Alive, and its command line names our temp dir: a recorded PID may have been reused since."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return "\nState:\tZ" not in status and str(work).encode() in cmdline


async def _tear_down(cluster: BenchCluster) -> list[str]:
    """``pinnace down``, then SIGKILL what is left; returns the problems seen (never raises)."""
    problems = []
    if cluster.data_dir.exists():
        try:
            done = await cluster.down()
            if done.returncode != 0:
                problems.append(f"pinnace down exited {done.returncode}: {done.stderr.strip()[-400:]}")
        except BenchError as exc:
            problems.append(str(exc))
    for pid in sorted(cluster.pids):
        if _still_ours(pid, cluster.work):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            problems.append(f"pid {pid} outlived pinnace down (killed)")
    from cli.cleanup import mounts_under

    left = await asyncio.to_thread(mounts_under, cluster.work)
    for point in left:  # deepest first; everything under our own temp dir is ours
        with contextlib.suppress(BenchError):
            await run_command(["umount", "-l", str(point)], env=dict(os.environ), within=30)
    if left:
        problems.append(f"pinnace down left {len(left)} mount(s) under {cluster.work}; unmounted them")
    if await asyncio.to_thread(mounts_under, cluster.work):
        problems.append(f"mounts still under {cluster.work}; not removing it")
    else:
        await asyncio.to_thread(shutil.rmtree, cluster.work, ignore_errors=True)
    return problems


@contextlib.asynccontextmanager
async def open_cluster(*, problems: list[str]) -> AsyncIterator[BenchCluster]:
    """A cluster on a fresh temp dir (not yet up); torn down on exit, whatever happened."""
    cluster = BenchCluster(Path(tempfile.mkdtemp(prefix="pinnace-bench-pods-")))
    (cluster.work / "home" / ".kube").mkdir(parents=True)
    try:
        yield cluster
    finally:
        problems.extend(await asyncio.shield(_tear_down(cluster)))
