"""Containers in the JSON shapes of the Docker Engine API: list rows, inspect, stats, wait.

Pure functions over ``engine.containers.record.Container`` plus what the daemon knows beside it
(the resolved command, the bridge endpoint, exec ids). Field names, defaults and types are what the
docker CLI's templates and the docker SDK's ``Container`` model read (``State.Status``,
``Config.Labels``, ``NetworkSettings.Ports``, ``HostConfig.AutoRemove``...). Docker's
"never" time is ``0001-01-01T00:00:00Z``; memory "unlimited" is reported as the host's memory.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from engine.containers.record import Container, Status
from engine.daemon.network import Endpoint
from engine.daemon.service import docker_extra
from engine.daemon.units import human_duration

ZERO_TIME = "0001-01-01T00:00:00Z"

_HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None,
    "ContainerIDFile": "",
    "LogConfig": {"Type": "json-file", "Config": {}},  # what clients test before reading logs back
    "NetworkMode": "bridge",
    "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "VolumeDriver": "",
    "VolumesFrom": None,
    "CapAdd": None,
    "CapDrop": None,
    "Dns": [],
    "DnsOptions": [],
    "DnsSearch": [],
    "ExtraHosts": None,
    "IpcMode": "private",
    "OomScoreAdj": 0,
    "PidMode": "",
    "Privileged": False,
    "PublishAllPorts": False,
    "ReadonlyRootfs": False,
    "SecurityOpt": None,
    "UTSMode": "",
    "UsernsMode": "",
    "ShmSize": 67108864,
    "Runtime": "crun",
    "CpuShares": 0,
    "Memory": 0,
    "NanoCpus": 0,
    "CgroupParent": "",
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpusetCpus": "",
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "PidsLimit": None,
    "Ulimits": None,
    "Mounts": None,
    "Init": None,
}


def parse_time(text: str) -> float:
    """Seconds since the epoch of one of our RFC 3339 times (0 for empty)."""
    if not text or text.startswith("0001-"):
        return 0.0
    whole, _, rest = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp() + float("0." + (rest or "0"))


def status_text(container: Container, *, now: float) -> str:
    """The list's human ``Status``: "Up 5 seconds", "Exited (0) 2 minutes ago", "Created"."""
    state = container.state
    if state.status is Status.RUNNING:
        return "Up " + human_duration(now - parse_time(state.started_at))
    if state.status is Status.EXITED:
        ended = parse_time(state.finished_at)
        return f"Exited ({state.exit_code if state.exit_code is not None else 0}) {human_duration(now - ended)} ago"
    if state.status is Status.REMOVING:
        return "Removal In Progress"
    return "Created"


def network_mode(container: Container) -> str:
    return (docker_extra(container).get("HostConfig") or {}).get("NetworkMode") or (
        "host" if container.config.network == "host" else "none"
    )


def _port_rows(container: Container, endpoint: Endpoint | None) -> list[dict[str, Any]]:
    if endpoint is None:
        return []
    return [
        {"IP": m.get("hostIP") or "0.0.0.0", "PrivatePort": m["containerPort"], "PublicPort": m["hostPort"],
         "Type": m["protocol"]}
        for m in endpoint.ports
    ]


def _ports_map(container: Container, endpoint: Endpoint | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    exposed = (docker_extra(container).get("Config") or {}).get("ExposedPorts") or {}
    for key in exposed:
        out.setdefault(key if "/" in key else f"{key}/tcp", None)
    for m in endpoint.ports if endpoint else ():
        key = f"{m['containerPort']}/{m['protocol']}"
        out[key] = (out.get(key) or []) + [{"HostIp": m.get("hostIP") or "0.0.0.0", "HostPort": str(m["hostPort"])}]
    return out


def _endpoint_settings(endpoint: Endpoint | None) -> dict[str, Any]:
    ep = endpoint or Endpoint(netns="")
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": None,
        "MacAddress": ep.mac,
        "NetworkID": "pinnace" if endpoint else "",
        "EndpointID": "",
        "Gateway": ep.gateway,
        "IPAddress": ep.ip,
        "IPPrefixLen": ep.prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DriverOpts": None,
        "DNSNames": None,
    }


def mounts(container: Container) -> list[dict[str, Any]]:
    out = [
        {"Type": "bind", "Source": m.source, "Destination": m.destination, "Mode": "ro" if m.readonly else "",
         "RW": not m.readonly, "Propagation": m.propagation}
        for m in container.config.mounts
    ]
    out += [
        {"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": opts, "RW": "ro" not in opts.split(","),
         "Propagation": ""}
        for dest, opts in container.config.tmpfs.items()
    ]
    return out


def command_text(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) if any(c in a for c in " \t\"'") or not a else a for a in args)


def summary(container: Container, *, args: Sequence[str], endpoint: Endpoint | None, now: float) -> dict[str, Any]:
    """One row of ``GET /containers/json``."""
    mode = network_mode(container)
    return {
        "Id": container.id,
        "Names": ["/" + container.name],
        "Image": container.config.image,
        "ImageID": container.state.image_id,
        "Command": command_text(args),
        "Created": int(parse_time(container.state.created_at)),
        "Ports": _port_rows(container, endpoint),
        "Labels": dict(container.config.labels),
        "State": container.state.status.value,
        "Status": status_text(container, now=now),
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": {mode: _endpoint_settings(endpoint)}},
        "Mounts": mounts(container),
    }


def _state(container: Container) -> dict[str, Any]:
    state = container.state
    return {
        "Status": state.status.value if state.status is not Status.REMOVING else "removing",
        "Running": state.status is Status.RUNNING,
        "Paused": False,
        "Restarting": False,
        "OOMKilled": state.oom_killed,
        "Dead": False,
        "Pid": state.pid if state.status is Status.RUNNING else 0,
        "ExitCode": state.exit_code or 0,
        "Error": state.error,
        "StartedAt": state.started_at or ZERO_TIME,
        "FinishedAt": state.finished_at or ZERO_TIME,
    }


def _config(container: Container, *, image_settings: Mapping[str, Any], args: Sequence[str],
            env: Sequence[str]) -> dict[str, Any]:
    cfg = container.config
    sent = docker_extra(container).get("Config") or {}
    entrypoint = list(cfg.entrypoint) if cfg.entrypoint is not None else image_settings.get("Entrypoint")
    cmd = args[len(entrypoint or []):] if args else cfg.command
    return {
        "Hostname": cfg.hostname or container.id[:12],
        "Domainname": "",
        "User": cfg.user if cfg.user is not None else image_settings.get("User", ""),
        "AttachStdin": bool(sent.get("AttachStdin")),
        "AttachStdout": bool(sent.get("AttachStdout")),
        "AttachStderr": bool(sent.get("AttachStderr")),
        "ExposedPorts": sent.get("ExposedPorts"),
        "Tty": cfg.tty,
        "OpenStdin": cfg.stdin,
        "StdinOnce": cfg.stdin_once,
        "Env": list(env),
        "Cmd": list(cmd) if cmd is not None else None,
        "Image": cfg.image,
        "Volumes": None,
        "WorkingDir": cfg.workdir or image_settings.get("WorkingDir", ""),
        "Entrypoint": list(entrypoint) if entrypoint else None,
        "OnBuild": None,
        "Labels": dict(cfg.labels),
        **({"StopSignal": cfg.stop_signal} if cfg.stop_signal else {}),
        **({"StopTimeout": cfg.stop_timeout} if cfg.stop_timeout is not None else {}),
    }


def _network_settings(container: Container, endpoint: Endpoint | None) -> dict[str, Any]:
    ep = _endpoint_settings(endpoint)
    return {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": endpoint.netns if endpoint else "",
        "Ports": _ports_map(container, endpoint),
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": ep["Gateway"],
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": ep["IPAddress"],
        "IPPrefixLen": ep["IPPrefixLen"],
        "IPv6Gateway": "",
        "MacAddress": ep["MacAddress"],
        "Networks": {network_mode(container): ep},
    }


def inspect(
    container: Container,
    *,
    args: Sequence[str],
    env: Sequence[str],
    image_settings: Mapping[str, Any],
    endpoint: Endpoint | None,
    exec_ids: Sequence[str],
    runtime: str,
) -> dict[str, Any]:
    """``GET /containers/{id}/json``."""
    paths = container.paths
    host = {**_HOST_CONFIG_DEFAULTS, "Runtime": runtime, **(docker_extra(container).get("HostConfig") or {})}
    return {
        "Id": container.id,
        "Created": container.state.created_at or ZERO_TIME,
        "Path": args[0] if args else "",
        "Args": list(args[1:]),
        "State": _state(container),
        "Image": container.state.image_id,
        "ResolvConfPath": str(paths.etc / "resolv.conf"),
        "HostnamePath": str(paths.etc / "hostname"),
        "HostsPath": str(paths.etc / "hosts"),
        "LogPath": str(paths.log),
        "Name": "/" + container.name,
        "RestartCount": container.state.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": list(exec_ids) or None,
        "HostConfig": host,
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": str(paths.rootfs), "UpperDir": str(paths.upper),
                                                    "WorkDir": str(paths.work)}},
        "Mounts": mounts(container),
        "Config": _config(container, image_settings=image_settings, args=args, env=env),
        "NetworkSettings": _network_settings(container, endpoint),
    }


def _cpu(sample: Mapping[str, int]) -> dict[str, Any]:
    return {
        "cpu_usage": {
            "total_usage": sample.get("cpu_usage_ns", 0),
            "usage_in_kernelmode": sample.get("cpu_system_ns", 0),
            "usage_in_usermode": sample.get("cpu_user_ns", 0),
        },
        "system_cpu_usage": sample.get("system_ns", 0),
        "online_cpus": sample.get("online_cpus", 0),
        "throttling_data": {"periods": 0, "throttled_periods": sample.get("throttled_periods", 0),
                            "throttled_time": 0},
    }


def stats(
    container: Container,
    *,
    sample: Mapping[str, int],
    previous: Mapping[str, int] | None,
    read: str,
    preread: str,
    host_memory: int,
    networks: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    """One object of ``GET /containers/{id}/stats``; ``sample``/``previous`` are flat counters
    (``cgroups.Stats`` fields plus ``system_ns`` and ``online_cpus``)."""
    cache = sample.get("memory_cache", 0)
    return {
        "read": read,
        "preread": preread,
        "pids_stats": {"current": sample.get("pids_current", 0),
                       **({"limit": sample["pids_limit"]} if sample.get("pids_limit") else {})},
        "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                        "io_queue_recursive": None, "io_service_time_recursive": None,
                        "io_wait_time_recursive": None, "io_merged_recursive": None, "io_time_recursive": None,
                        "sectors_recursive": None},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(sample),
        "precpu_stats": _cpu(previous or {}),
        "memory_stats": {
            "usage": sample.get("memory_usage", 0),
            "max_usage": sample.get("memory_max_usage", 0),
            "stats": {"inactive_file": cache, "total_inactive_file": cache},
            "failcnt": sample.get("oom_kills", 0),
            "limit": sample.get("memory_limit", 0) or host_memory,
        },
        "name": "/" + container.name,
        "id": container.id,
        "networks": {name: dict(counters) for name, counters in networks.items()},
    }
