"""Background processes of a cluster: start one detached with a PID file, find it again, stop it.

Every daemon of a cluster (etcd, each API server, each node's agent, the host-gw route keeper) is a
session of its own, so it outlives ``pinnace cluster create``; its PID goes to ``<dir>/<name>.pid``
and its output to ``<dir>/<name>.log``. A PID is trusted only while that process's command line
still names the daemon and its dir (``cli.cluster_cmds.Daemon``, shared with ``pinnace up``), so a
reused PID is never signalled. Stopping is by PID: SIGTERM then SIGKILL (``cli.cluster_cmds.stop_pid``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cli.cluster_cmds import REPO, Daemon, stop_pid

PINNACE = (sys.executable, "-m", "cli.main")


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run in the named network namespace only (mounts stay the host's, so the clean-up of
    ``pinnace down`` sees the node's mounts; nsenter execs, so the PID is the program's own)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


def spawn(daemon: Daemon, directory: Path, *, argv: Sequence[str]) -> subprocess.Popen:
    """Start ``argv`` detached; its PID into ``<dir>/<name>.pid``, its output into ``<dir>/<name>.log``."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(daemon.log_file(directory), "ab") as log:
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, cwd=str(REPO))
    daemon.pid_file(directory).write_text(f"{process.pid}\n")
    return process


def log_tail(daemon: Daemon, directory: Path, *, lines: int = 3) -> str:
    try:
        text = daemon.log_file(directory).read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


def stop(daemon: Daemon, directory: Path, *, grace: float = 10.0) -> int | None:
    """SIGTERM (SIGKILL after ``grace``) the recorded process if it is still ours; its PID, or None."""
    pid = daemon.running_pid(directory)
    if pid is not None:
        stop_pid(pid, grace=grace)
    with contextlib.suppress(FileNotFoundError):
        daemon.pid_file(directory).unlink()
    return pid


def kill_now(pids: Sequence[int], *, within: float = 5.0) -> list[int]:
    """SIGKILL each PID (a machine losing power) and wait until they are dead; those that were alive."""
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + within
    while any(running(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.02)
    return killed


def running(pid: int) -> bool:
    """Alive and not a zombie (a dead daemon whose parent has not reaped it yet is gone for us)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if running(pid) else None
