"""The persisted state of one container and its atomic writes.

``State`` is the mutable half (``config.json`` holds the immutable ``ContainerConfig``): the status
(created -> running -> exited, back to running on a restart), the host pids of the container's init
and of its conmon, when it started and finished, the exit code and whether the kernel OOM-killed it.
``Container`` ties both halves to an id and its paths; it is what the manager hands out (a snapshot:
ask the manager again for fresh state). Writes go to a temp file then ``rename`` so a crash never
leaves half a file; they are tiny and synchronous (a few hundred bytes, no fsync: after a host crash
the containers are gone anyway).
"""

from __future__ import annotations

import enum
import os
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from engine.containers.config import ContainerConfig
from engine.containers.layout import ContainerPaths


class Status(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    REMOVING = "removing"


def now_iso() -> str:
    """RFC 3339 UTC with nanosecond digits, the form Docker and the CRI print."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


@dataclass
class State:
    status: Status = Status.CREATED
    pid: int = 0  # the container's init on the host; 0 when not running
    conmon_pid: int = 0
    created_at: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""  # why the last start failed or how the engine lost track of it
    restart_count: int = 0
    image_id: str = ""
    userns_host_id: int = 0  # base of the host id range when user-namespaced (0: none)
    runtime: str = "crun"
    stop_signal: int = 15
    cgroups_path: str = ""  # relative to each cgroup hierarchy's root

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> State:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in doc.items() if k in known}
        kw["status"] = Status(kw.get("status", "created"))
        return cls(**kw)


@dataclass(frozen=True)
class Container:
    """A snapshot of one container: id, config, state and where its files are."""

    id: str
    config: ContainerConfig
    state: State
    paths: ContainerPaths

    @property
    def name(self) -> str:
        return self.config.name or ""

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state.status is Status.RUNNING


def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    doc = orjson.loads(path.read_bytes())
    if not isinstance(doc, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return doc
