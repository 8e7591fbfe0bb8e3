"""From a ``ContainerConfig`` and its image to the runtime's ``ContainerOptions`` (and so the spec).

Docker's merge rules: the command is the entrypoint followed by the cmd, where a request's
entrypoint replaces the image's and then also discards the image's cmd; the request's env entries
override the image's by key; workdir and user fall back to the image's; the stop signal to the
image's ``StopSignal``. Bind sources must exist on the host (we never create them), tmpfs mounts
get Docker's ``noexec,nosuid,nodev`` unless told otherwise, and every container gets its own
``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf`` (written into its directory and bound
read-write, as Docker does). Blocking (reads the image's passwd through the mounted rootfs).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.containers.config import ContainerConfig
from engine.containers.errors import InvalidArgument
from engine.containers.layout import ContainerPaths
from engine.containers.names import parse_signal
from engine.runtime import capabilities
from engine.runtime.idmap import IdMapping
from engine.runtime.spec import DEFAULT_CAPABILITIES, ContainerOptions, Mount

TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev")
HOST_RESOLV_CONF = Path("/etc/resolv.conf")
ETC_FILES = ("hostname", "hosts", "resolv.conf")


def image_settings(image_config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``config`` part of an OCI image config (Env, Cmd, Entrypoint, ...), or empty."""
    return image_config.get("config") or {}


def command(config: ContainerConfig, settings: Mapping[str, Any]) -> list[str]:
    entrypoint = list(config.entrypoint) if config.entrypoint is not None else list(settings.get("Entrypoint") or [])
    if config.command is not None:
        cmd = list(config.command)
    elif config.entrypoint is not None:
        cmd = []
    else:
        cmd = list(settings.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise InvalidArgument("no command specified")
    return args


def merge_env(base: Iterable[str], overrides: Iterable[str]) -> list[str]:
    """``base`` with each ``KEY=value`` of ``overrides`` replacing the same key (or appended)."""
    out: dict[str, str] = {}
    for entry in (*base, *overrides):
        out[entry.partition("=")[0]] = entry
    return list(out.values())


def stop_signal(config: ContainerConfig, settings: Mapping[str, Any]) -> int:
    chosen = config.stop_signal or settings.get("StopSignal")
    if not chosen:
        return int(signal.SIGTERM)
    try:
        return parse_signal(chosen)
    except InvalidArgument:
        return int(signal.SIGTERM)  # a bad StopSignal in an image is not the caller's fault


def hostname(config: ContainerConfig, container_id: str) -> str:
    if config.hostname:
        return config.hostname
    if config.network == "host":
        return socket.gethostname()
    return container_id[:12]


def write_etc_files(paths: ContainerPaths, *, host_name: str, network: str) -> None:
    """The container's own hostname, hosts and resolv.conf (the host's resolvers when networked)."""
    paths.etc.mkdir(parents=True, exist_ok=True)
    (paths.etc / "hostname").write_text(host_name + "\n")
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if network != "host":
        hosts.append(f"127.0.1.1\t{host_name}")
    (paths.etc / "hosts").write_text("\n".join(hosts) + "\n")
    resolv = paths.etc / "resolv.conf"
    if network != "none" and HOST_RESOLV_CONF.is_file():
        shutil.copyfile(HOST_RESOLV_CONF, resolv)
    else:
        resolv.write_text("")
    for name in ETC_FILES:
        os.chmod(paths.etc / name, 0o644)


def mounts(config: ContainerConfig, paths: ContainerPaths) -> list[Mount]:
    """Bind mounts, tmpfs mounts and the per-container /etc files, checked against the host."""
    out = [
        Mount(destination=f"/etc/{name}", source=os.fspath(paths.etc / name), options=("rbind", "rprivate"))
        for name in ETC_FILES
        if not any(m.destination == f"/etc/{name}" for m in config.mounts)
    ]
    for bind in config.mounts:
        if not os.path.exists(bind.source):
            raise InvalidArgument(f"invalid mount config: bind source path does not exist: {bind.source}")
        options = ["rbind", bind.propagation] + (["ro"] if bind.readonly else [])
        out.append(Mount(destination=os.path.normpath(bind.destination), source=bind.source, options=tuple(options)))
    for dest, extra in config.tmpfs.items():
        given = [o for o in extra.split(",") if o]
        overridden = {g.removeprefix("no") for g in given}
        options = [o for o in TMPFS_DEFAULTS if o.removeprefix("no") not in overridden] + given
        out.append(Mount(destination=os.path.normpath(dest), type="tmpfs", source="tmpfs", options=tuple(options)))
    return out


def options(
    *,
    config: ContainerConfig,
    container_id: str,
    image_config: Mapping[str, Any],
    paths: ContainerPaths,
    mapping: IdMapping | None,
    cgroups_path: str,
) -> ContainerOptions:
    """The runtime options for this container (everything ``make_spec`` needs)."""
    settings = image_settings(image_config)
    host_name = hostname(config, container_id)
    write_etc_files(paths, host_name=host_name, network=config.network)
    caps: Sequence[str] = capabilities.resolve(
        base=DEFAULT_CAPABILITIES, add=config.cap_add, drop=config.cap_drop, privileged=config.privileged
    )
    return ContainerOptions(
        rootfs=os.fspath(paths.rootfs),
        args=command(config, settings),
        env=merge_env(settings.get("Env") or [], config.env),
        cwd=config.workdir or settings.get("WorkingDir") or "/",
        user=config.user if config.user is not None else (settings.get("User") or ""),
        hostname=host_name,
        network=config.network,
        readonly_rootfs=config.readonly_rootfs,
        terminal=config.tty,
        capabilities=caps,
        mounts=mounts(config, paths),
        cgroups_path=cgroups_path,
        annotations=dict(config.annotations),
        resources=config.resources,
        privileged=config.privileged,
        seccomp=config.seccomp,
        userns=mapping,
        namespace_paths=dict(config.namespace_paths),
        rlimits=dict(config.ulimits),
        oom_score_adj=config.oom_score_adj,
        sysctls=dict(config.sysctls),
        shm_size=config.shm_size,
    )
