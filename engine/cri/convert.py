"""Engine records as CRI messages: sandboxes, containers, their statuses and stats.

Pure functions (no I/O) so the servicer stays a list of calls. Times: the engine keeps RFC 3339
strings with nanoseconds, the CRI wants integer nanoseconds. Container states and exit reasons
come from tables: an exited container's reason is ``OOMKilled`` when the kernel killed it for
memory (the CRI requires that word), else ``Completed`` for exit 0 and ``Error`` otherwise.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from engine.containers.record import Container, Status
from engine.cri.container_config import CriInfo, resources_message
from engine.cri.proto import api_pb2 as pb
from engine.cri.sandboxes import READY, Sandbox
from engine.runtime.cgroups import Stats

CONTAINER_STATES: dict[Status, int] = {
    Status.CREATED: pb.CONTAINER_CREATED,
    Status.RUNNING: pb.CONTAINER_RUNNING,
    Status.EXITED: pb.CONTAINER_EXITED,
    Status.REMOVING: pb.CONTAINER_UNKNOWN,
}
# CRI ContainerState filter value -> engine status
STATE_FILTER: dict[int, Status] = {v: k for k, v in CONTAINER_STATES.items() if v != pb.CONTAINER_UNKNOWN}
SANDBOX_STATES: dict[str, int] = {READY: pb.SANDBOX_READY}
_ISO = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d|)")


def iso_to_ns(text: str) -> int:
    """``2026-01-02T03:04:05.123456789Z`` -> nanoseconds since the epoch (0 for "" or garbage)."""
    match = _ISO.fullmatch(text)
    if match is None:
        return 0
    whole, fraction, zone = match.groups()
    try:
        seconds = datetime.fromisoformat(whole + ("+00:00" if zone in ("", "Z") else zone))
    except ValueError:
        return 0
    return int(seconds.timestamp()) * 1_000_000_000 + int(((fraction or "") + "000000000")[:9])


def exit_reason(container: Container) -> str:
    state = container.state
    if state.status is not Status.EXITED:
        return ""
    if state.oom_killed:
        return "OOMKilled"
    return "Completed" if state.exit_code == 0 else "Error"


def sandbox_state(sandbox: Sandbox) -> int:
    return SANDBOX_STATES.get(sandbox.state, pb.SANDBOX_NOTREADY)


def sandbox_message(sandbox: Sandbox) -> pb.PodSandbox:
    return pb.PodSandbox(
        id=sandbox.id,
        metadata=sandbox.metadata,
        state=sandbox_state(sandbox),
        created_at=sandbox.created_at,
        labels=sandbox.config.labels,
        annotations=sandbox.config.annotations,
        runtime_handler=sandbox.runtime_handler,
    )


def sandbox_status(sandbox: Sandbox) -> pb.PodSandboxStatus:
    ips = [] if sandbox.host_network else sandbox.ips
    options = pb.NamespaceOption(
        network=pb.NODE if sandbox.host_network else pb.POD,
        pid=pb.NODE if sandbox.host_pid else pb.CONTAINER,
        ipc=pb.NODE if sandbox.host_ipc else pb.POD,
    )
    return pb.PodSandboxStatus(
        id=sandbox.id,
        metadata=sandbox.metadata,
        state=sandbox_state(sandbox),
        created_at=sandbox.created_at,
        network=pb.PodSandboxNetworkStatus(
            ip=ips[0] if ips else "", additional_ips=[pb.PodIP(ip=ip) for ip in ips[1:]]
        ),
        linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=options)),
        labels=sandbox.config.labels,
        annotations=sandbox.config.annotations,
        runtime_handler=sandbox.runtime_handler,
    )


def container_message(container: Container, info: CriInfo, *, image_ref: str) -> pb.Container:
    return pb.Container(
        id=container.id,
        pod_sandbox_id=info.sandbox_id,
        metadata=pb.ContainerMetadata(name=info.name, attempt=info.attempt),
        image=info.image_spec,
        image_ref=image_ref,
        state=CONTAINER_STATES[container.state.status],
        created_at=iso_to_ns(container.state.created_at),
        labels=info.labels,
        annotations=info.annotations,
        image_id=container.state.image_id,
    )


def container_status(container: Container, info: CriInfo, *, image_ref: str) -> pb.ContainerStatus:
    state = container.state
    exited = state.status is Status.EXITED
    return pb.ContainerStatus(
        id=container.id,
        metadata=pb.ContainerMetadata(name=info.name, attempt=info.attempt),
        state=CONTAINER_STATES[state.status],
        created_at=iso_to_ns(state.created_at),
        started_at=iso_to_ns(state.started_at),
        finished_at=iso_to_ns(state.finished_at) if exited else 0,
        exit_code=(state.exit_code or 0) if exited else 0,
        image=info.image_spec,
        image_ref=image_ref,
        reason=exit_reason(container),
        message=state.error,
        labels=info.labels,
        annotations=info.annotations,
        mounts=info.mount_messages,
        log_path=info.log_path,
        resources=pb.ContainerResources(
            linux=resources_message(container.config.resources, oom_score_adj=container.config.oom_score_adj)
        ),
        image_id=state.image_id,
    )


def _u64(value: int) -> pb.UInt64Value:
    return pb.UInt64Value(value=max(0, int(value)))


def stats_message(
    container: Container,
    info: CriInfo,
    stats: Stats,
    *,
    nano_cores: int | None,
    writable: tuple[int, int] | None,
    mountpoint: str,
) -> pb.ContainerStats:
    """CRI stats from one cgroup sample (``nano_cores`` needs an earlier sample; None: unknown)."""
    now = time.time_ns()
    cpu = pb.CpuUsage(timestamp=now, usage_core_nano_seconds=_u64(stats.cpu_usage_ns))
    if nano_cores is not None:
        cpu.usage_nano_cores.CopyFrom(_u64(nano_cores))
    memory = pb.MemoryUsage(
        timestamp=now,
        working_set_bytes=_u64(stats.working_set),
        usage_bytes=_u64(stats.memory_usage),
    )
    if stats.memory_limit:
        memory.available_bytes.CopyFrom(_u64(stats.memory_limit - stats.working_set))
    out = pb.ContainerStats(
        attributes=pb.ContainerAttributes(
            id=container.id,
            metadata=pb.ContainerMetadata(name=info.name, attempt=info.attempt),
            labels=info.labels,
            annotations=info.annotations,
        ),
        cpu=cpu,
        memory=memory,
    )
    if writable is not None:
        out.writable_layer.CopyFrom(
            pb.FilesystemUsage(
                timestamp=now,
                fs_id=pb.FilesystemIdentifier(mountpoint=mountpoint),
                used_bytes=_u64(writable[0]),
                inodes_used=_u64(writable[1]),
            )
        )
    return out


class CpuRates:
    """``usage_nano_cores`` needs two samples: remember each container's last one."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}  # id -> (monotonic ns, cpu ns)

    def rate(self, container_id: str, cpu_ns: int) -> int | None:
        now = time.monotonic_ns()
        previous = self._last.get(container_id)
        self._last[container_id] = (now, cpu_ns)
        if previous is None or now <= previous[0] or cpu_ns < previous[1]:
            return None
        return (cpu_ns - previous[1]) * 1_000_000_000 // (now - previous[0])

    def forget(self, container_id: str) -> None:
        self._last.pop(container_id, None)
