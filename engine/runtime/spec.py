"""A minimal OCI runtime-spec ``config.json`` for one process in a prepared root filesystem.

Builds (RUN steps) and, next, containers under conmon both need the same thing from crun/runc: run
these args as this user in this rootfs, isolated the way Docker isolates by default. So this module
is one pure-ish function, ``make_spec``, from a small record of options (``ContainerOptions``) to
the spec dict; it reads only the rootfs's /etc/passwd and /etc/group (to resolve ``user``) and the
calling process's own rlimits. The defaults are Docker's: its capability set, masked and read-only
/proc paths, device allow-list, the usual /proc /dev /sys mounts, and mount/pid/ipc/uts namespaces
plus a network namespace (a new, empty one for ``network="none"``; the host's for ``"host"``; or a
path to an existing one, which is how the CNI-networked containers of the next issue join theirs).
rlimits are copied from our own process so they never exceed what the host allows (on this VM
nofile is capped at 20000 and we lack CAP_SYS_RESOURCE to raise it).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.runtime.errors import SpecError
from engine.runtime.users import resolve_user

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set (moby oci/caps/defaults.go)
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS: tuple[str, ...] = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# (destination, type, source, options): what every container gets, in mount order
DEFAULT_MOUNTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
    ("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
    ("/dev/pts", "devpts", "devpts", ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
    ("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
    ("/sys/fs/cgroup", "cgroup", "cgroup", ("ro", "nosuid", "noexec", "nodev", "relatime")),
    ("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
    ("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
)

# device cgroup rules: (type, major, minor, access); None = wildcard. Docker's default allow-list.
DEFAULT_DEVICE_RULES: tuple[tuple[str, int | None, int | None, str], ...] = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),  # null
    ("c", 1, 5, "rwm"),  # zero
    ("c", 1, 7, "rwm"),  # full
    ("c", 1, 8, "rwm"),  # random
    ("c", 1, 9, "rwm"),  # urandom
    ("c", 5, 0, "rwm"),  # tty
    ("c", 5, 1, "rwm"),  # console
    ("c", 5, 2, "rwm"),  # ptmx
    ("c", 136, None, "rwm"),  # pts
    ("c", 10, 200, "rwm"),  # tun
)

# OCI rlimit name -> resource constant copied from our own process
RLIMITS: dict[str, int] = {
    "RLIMIT_NOFILE": resource.RLIMIT_NOFILE,
    "RLIMIT_NPROC": resource.RLIMIT_NPROC,
}

NAMESPACES: tuple[str, ...] = ("mount", "pid", "ipc", "uts")
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str = "bind"
    source: str = ""
    options: tuple[str, ...] = ("rbind", "rprivate")


@dataclass(frozen=True)
class ContainerOptions:
    """What to run and how; everything else is Docker's default."""

    rootfs: str
    args: Sequence[str]
    env: Sequence[str] = ()
    cwd: str = "/"
    user: str = ""  # Docker form: "", "name", "uid", "name:group", "uid:gid"
    hostname: str = "pinnace"
    network: str = "none"  # "none" (new empty netns), "host", or a path to a netns to join
    readonly_rootfs: bool = False
    terminal: bool = False
    no_new_privileges: bool = True
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES
    mounts: Sequence[Mount] = ()
    cgroups_path: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


def _env(env: Sequence[str], *, home: str, hostname: str) -> list[str]:
    """Docker adds PATH, HOSTNAME and HOME when the image and caller did not set them."""
    out = list(env)
    names = {e.partition("=")[0] for e in out}
    defaults = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": home}
    out += [f"{k}={v}" for k, v in defaults.items() if k not in names]
    return out


def _rlimits() -> list[dict[str, Any]]:
    out = []
    for name, which in RLIMITS.items():
        soft, hard = resource.getrlimit(which)
        out.append(
            {
                "type": name,
                "soft": _UINT64_MAX if soft == resource.RLIM_INFINITY else soft,
                "hard": _UINT64_MAX if hard == resource.RLIM_INFINITY else hard,
            }
        )
    return out


def _namespaces(network: str) -> list[dict[str, str]]:
    spaces = [{"type": t} for t in NAMESPACES]
    if network == "none":
        spaces.append({"type": "network"})
    elif network != "host":
        if not os.path.isabs(network):
            raise SpecError(f"network must be 'none', 'host' or an absolute netns path, not {network!r}")
        spaces.append({"type": "network", "path": network})
    return spaces


def _devices() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for kind, major, minor, access in DEFAULT_DEVICE_RULES:
        rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        if major is not None:
            rule["major"] = major
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def _mounts(extra: Sequence[Mount]) -> list[dict[str, Any]]:
    out = [{"destination": d, "type": t, "source": s, "options": list(o)} for d, t, s, o in DEFAULT_MOUNTS]
    for m in extra:
        if not m.destination.startswith("/"):
            raise SpecError(f"mount destination must be absolute: {m.destination!r}")
        out.append({"destination": m.destination, "type": m.type, "source": m.source, "options": list(m.options)})
    return out


def make_spec(opts: ContainerOptions) -> dict[str, Any]:
    """The ``config.json`` document for ``opts`` (``root.path`` is ``opts.rootfs``, absolute)."""
    if not opts.args:
        raise SpecError("no command to run: args is empty")
    if not os.path.isabs(opts.rootfs) or not os.path.isdir(opts.rootfs):
        raise SpecError(f"rootfs must be an existing absolute directory: {opts.rootfs!r}")
    if not opts.cwd.startswith("/"):
        raise SpecError(f"working directory must be absolute: {opts.cwd!r}")
    user = resolve_user(opts.rootfs, opts.user)
    caps = list(opts.capabilities)
    process: dict[str, Any] = {
        "terminal": opts.terminal,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": list(opts.args),
        "env": _env(opts.env, home=user.home, hostname=opts.hostname),
        "cwd": opts.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []},
        "rlimits": _rlimits(),
        "noNewPrivileges": opts.no_new_privileges,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)
    linux: dict[str, Any] = {
        "namespaces": _namespaces(opts.network),
        "resources": {"devices": _devices()},
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }
    if opts.cgroups_path:
        linux["cgroupsPath"] = opts.cgroups_path
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": opts.rootfs, "readonly": opts.readonly_rootfs},
        "hostname": opts.hostname,
        "mounts": _mounts(opts.mounts),
        "linux": linux,
    }
    if opts.annotations:
        spec["annotations"] = dict(opts.annotations)
    return spec
