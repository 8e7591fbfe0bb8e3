"""The termination message file: where a container leaves its last words, and reading them back.

As upstream, each container instance gets an empty world-writable file under
``<root>/pods/<uid>/containers/<name>/`` bind-mounted at ``terminationMessagePath``; when it has
ended, the kubelet reads (at most 4096 bytes of) that file into ``lastState.terminated.message``,
or, with ``FallbackToLogsOnError`` and an empty file after a failure, the tail of its log.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

from kubelet.config import KubeletConfig
from kubelet.cri import pb

DEFAULT_PATH = "/dev/termination-log"
MAX_BYTES = 4096
FALLBACK_LINES = 80  # upstream: the last 80 lines of the log, also at most 4096 bytes


def container_dir(config: KubeletConfig, pod_uid: str, name: str) -> Path:
    return config.pod_dir(pod_uid) / "containers" / name


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.chmod(path, 0o666)  # whatever the umask: any container user may write it


async def termination_mount(config: KubeletConfig, pod: dict[str, Any], container: dict[str, Any]) -> pb.Mount | None:
    """A fresh file for this container instance, as the mount at its terminationMessagePath."""
    target = container.get("terminationMessagePath", DEFAULT_PATH)
    if not target:
        return None
    uid = str(pod.get("metadata", {}).get("uid", ""))
    path = container_dir(config, uid, str(container.get("name", ""))) / secrets.token_hex(4)
    await asyncio.to_thread(_create, path)
    return pb.Mount(host_path=str(path), container_path=target)


def _read_tail(path: str, *, lines: int | None) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read() if lines else f.read(MAX_BYTES)
    except OSError:
        return ""
    if lines:
        data = b"".join(data.splitlines(keepends=True)[-lines:])[-MAX_BYTES:]
    return data.decode("utf-8", "replace")


def _log_text(path: str) -> str:
    """The message text of CRI log lines (``<time> <stream> <P|F> <text>``)."""
    out = []
    for line in _read_tail(path, lines=FALLBACK_LINES).splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            out.append(parts[3] + ("\n" if parts[2] == "F" else ""))
    return "".join(out)[-MAX_BYTES:]


async def termination_message(status: pb.ContainerStatus, container: dict[str, Any]) -> str:
    """What an ended container left at its terminationMessagePath (per its policy), as upstream."""
    target = container.get("terminationMessagePath", DEFAULT_PATH)
    host = next((m.host_path for m in status.mounts if m.container_path == target), "")
    message = await asyncio.to_thread(_read_tail, host, lines=None) if host else ""
    fallback = container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
    if not message and fallback and status.exit_code != 0 and status.log_path:
        message = await asyncio.to_thread(_log_text, status.log_path)
    return message
