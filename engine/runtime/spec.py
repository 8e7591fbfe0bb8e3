"""The OCI runtime-spec ``config.json`` for one process in a prepared root filesystem.

Builds (RUN steps) and containers under conmon both need the same thing from crun/runc: run these
args as this user in this rootfs, isolated the way Docker isolates by default. So this module is one
pure-ish function, ``make_spec``, from a record of options (``ContainerOptions``) to the spec dict;
it reads only the rootfs's /etc/passwd and /etc/group (to resolve ``user``) and the calling
process's own rlimits. The defaults are Docker's: its capability set, the default seccomp profile
(``seccomp.default_profile``), no-new-privileges, masked and read-only /proc paths, the device
allow-list, the usual /proc /dev /sys /dev/shm /dev/mqueue mounts and a read-only cgroup mount,
and mount/pid/ipc/uts namespaces plus a network namespace (a new, empty one for ``network="none"``;
the host's for ``"host"``; or a path to an existing one, which is how CNI-networked containers join
theirs). ``namespace_paths`` joins or shares the others the same way (pod sandboxes share IPC/UTS).
Options add resource limits (``resources.Resources``), a user namespace (``idmap.IdMapping``),
``privileged`` (all capabilities the host can grant, no seccomp, no masked paths, all devices, a
writable /sys) and a read-only root. rlimits are copied from our own process and requests above our
hard limits are refused, so they never exceed what the host allows (on this VM nofile is capped at
20000 and we lack CAP_SYS_RESOURCE to raise it).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.runtime import capabilities as caps_mod
from engine.runtime import seccomp as seccomp_mod
from engine.runtime.errors import SpecError
from engine.runtime.idmap import IdMapping, oci_mappings
from engine.runtime.resources import Resources
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
# every rlimit a caller may set (Docker's --ulimit names, without the RLIMIT_ prefix, lower case)
SETTABLE_RLIMITS: dict[str, int] = {
    name.removeprefix("RLIMIT_").lower(): getattr(resource, name)
    for name in dir(resource)
    if name.startswith("RLIMIT_")
}

NAMESPACES: tuple[str, ...] = ("mount", "pid", "ipc", "uts")
JOINABLE_NAMESPACES: tuple[str, ...] = ("pid", "ipc", "uts", "cgroup")
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
    resources: Resources | None = None
    privileged: bool = False
    seccomp: str | Mapping[str, Any] = "default"  # "default", "unconfined" or a profile document
    userns: IdMapping | None = None
    namespace_paths: Mapping[str, str] = field(default_factory=dict)  # type -> netns-like path or "host"
    masked_paths: Sequence[str] | None = None  # None: Docker's (none when privileged)
    readonly_paths: Sequence[str] | None = None
    rlimits: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # "nofile" -> (soft, hard)
    oom_score_adj: int | None = None
    sysctls: Mapping[str, str] = field(default_factory=dict)
    shm_size: int | None = None  # bytes of /dev/shm


def _env(env: Sequence[str], *, home: str, hostname: str) -> list[str]:
    """Docker adds PATH, HOSTNAME and HOME when the image and caller did not set them."""
    out = list(env)
    names = {e.partition("=")[0] for e in out}
    defaults = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": home}
    out += [f"{k}={v}" for k, v in defaults.items() if k not in names]
    return out


def _oci_limit(value: int) -> int:
    return _UINT64_MAX if value == resource.RLIM_INFINITY else value


def _rlimits(requested: Mapping[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """Our own NOFILE/NPROC, then the requested ones; a hard limit above ours is refused."""
    chosen: dict[str, tuple[int, int]] = {}
    for name, which in RLIMITS.items():
        chosen[name] = resource.getrlimit(which)
    for key, (soft, hard) in requested.items():
        short = key.lower().removeprefix("rlimit_")
        if short not in SETTABLE_RLIMITS:
            raise SpecError(f"unknown ulimit {key!r}")
        if soft < 0 or hard < 0 or soft > hard:
            raise SpecError(f"invalid ulimit {short}={soft}:{hard}: soft must not exceed hard")
        _, our_hard = resource.getrlimit(SETTABLE_RLIMITS[short])
        if our_hard != resource.RLIM_INFINITY and hard > our_hard:
            raise SpecError(f"ulimit {short} hard limit {hard} exceeds the host's limit {our_hard}")
        chosen["RLIMIT_" + short.upper()] = (soft, hard)
    return [{"type": n, "soft": _oci_limit(s), "hard": _oci_limit(h)} for n, (s, h) in chosen.items()]


def _namespaces(network: str, paths: Mapping[str, str], *, userns: bool = False) -> list[dict[str, str]]:
    for kind in paths:
        if kind not in JOINABLE_NAMESPACES:
            raise SpecError(f"cannot share or join a {kind!r} namespace (only {', '.join(JOINABLE_NAMESPACES)})")
    spaces: list[dict[str, str]] = []
    for kind in (*NAMESPACES, "cgroup"):
        where = paths.get(kind, "" if kind != "cgroup" else "host")
        if where == "host":
            continue
        if where and not os.path.isabs(where):
            raise SpecError(f"{kind} namespace must be 'host' or an absolute path, not {where!r}")
        spaces.append({"type": kind, "path": where} if where else {"type": kind})
    if network == "none":
        spaces.append({"type": "network"})
    elif network != "host":
        if not os.path.isabs(network):
            raise SpecError(f"network must be 'none', 'host' or an absolute netns path, not {network!r}")
        spaces.append({"type": "network", "path": network})
    if userns:
        spaces.append({"type": "user"})
    return spaces


def _devices(privileged: bool) -> list[dict[str, Any]]:
    if privileged:
        return [{"allow": True, "access": "rwm"}]
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for kind, major, minor, access in DEFAULT_DEVICE_RULES:
        rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        if major is not None:
            rule["major"] = major
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def _default_mounts(opts: ContainerOptions) -> list[dict[str, Any]]:
    """Docker's mounts, adjusted: a writable /sys and cgroup when privileged, /sys bound from the
    host when a user namespace does not own the network namespace (sysfs then refuses to mount),
    and /dev/shm sized as asked."""
    out = []
    for dest, kind, source, options in DEFAULT_MOUNTS:
        opts_list = list(options)
        if dest in ("/sys", "/sys/fs/cgroup") and opts.privileged:
            opts_list = [o for o in opts_list if o != "ro"] + ["rw"]
        if dest == "/sys" and opts.userns is not None and opts.network != "none":
            kind, source, opts_list = "bind", "/sys", ["rbind", "nosuid", "noexec", "nodev", "ro"]
        if dest == "/dev/shm" and opts.shm_size is not None:
            if opts.shm_size <= 0:
                raise SpecError(f"shm size must be positive, not {opts.shm_size}")
            opts_list = [o for o in opts_list if not o.startswith("size=")] + [f"size={opts.shm_size}"]
        out.append({"destination": dest, "type": kind, "source": source, "options": opts_list})
    return out


def _mounts(opts: ContainerOptions) -> list[dict[str, Any]]:
    out = _default_mounts(opts)
    for m in opts.mounts:
        if not m.destination.startswith("/"):
            raise SpecError(f"mount destination must be absolute: {m.destination!r}")
        out.append({"destination": m.destination, "type": m.type, "source": m.source, "options": list(m.options)})
    return out


def _capabilities(opts: ContainerOptions) -> list[str]:
    if opts.privileged:
        return caps_mod.resolve(base=(), privileged=True)
    return list(opts.capabilities)


def _seccomp(opts: ContainerOptions, caps: Sequence[str]) -> dict[str, Any] | None:
    if opts.privileged or opts.seccomp == "unconfined":
        return None
    if opts.seccomp == "default":
        return seccomp_mod.default_profile(caps)
    if isinstance(opts.seccomp, Mapping):
        return dict(opts.seccomp)
    raise SpecError(f"seccomp must be 'default', 'unconfined' or a profile, not {opts.seccomp!r}")


def _linux(opts: ContainerOptions, caps: Sequence[str]) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": _devices(opts.privileged)}
    if opts.resources is not None:
        resources.update(opts.resources.to_oci())
    linux: dict[str, Any] = {
        "namespaces": _namespaces(opts.network, opts.namespace_paths, userns=opts.userns is not None),
        "resources": resources,
        **oci_mappings(opts.userns),
    }
    masked = opts.masked_paths if opts.masked_paths is not None else (() if opts.privileged else MASKED_PATHS)
    readonly = opts.readonly_paths if opts.readonly_paths is not None else (() if opts.privileged else READONLY_PATHS)
    if masked:
        linux["maskedPaths"] = list(masked)
    if readonly:
        linux["readonlyPaths"] = list(readonly)
    profile = _seccomp(opts, caps)
    if profile is not None:
        linux["seccomp"] = profile
    if opts.sysctls:
        linux["sysctl"] = dict(opts.sysctls)
    if opts.cgroups_path:
        linux["cgroupsPath"] = opts.cgroups_path
    return linux


def make_spec(opts: ContainerOptions) -> dict[str, Any]:
    """The ``config.json`` document for ``opts`` (``root.path`` is ``opts.rootfs``, absolute)."""
    if not opts.args:
        raise SpecError("no command to run: args is empty")
    if not os.path.isabs(opts.rootfs) or not os.path.isdir(opts.rootfs):
        raise SpecError(f"rootfs must be an existing absolute directory: {opts.rootfs!r}")
    if not opts.cwd.startswith("/"):
        raise SpecError(f"working directory must be absolute: {opts.cwd!r}")
    user = resolve_user(opts.rootfs, opts.user)
    caps = _capabilities(opts)
    process: dict[str, Any] = {
        "terminal": opts.terminal,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": list(opts.args),
        "env": _env(opts.env, home=user.home, hostname=opts.hostname),
        "cwd": opts.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []},
        "rlimits": _rlimits(opts.rlimits),
        "noNewPrivileges": opts.no_new_privileges and not opts.privileged,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)
    if opts.oom_score_adj is not None:
        if not -1000 <= opts.oom_score_adj <= 1000:
            raise SpecError(f"oom score adjust must be between -1000 and 1000, not {opts.oom_score_adj}")
        process["oomScoreAdj"] = opts.oom_score_adj
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": opts.rootfs, "readonly": opts.readonly_rootfs},
        "hostname": opts.hostname,
        "mounts": _mounts(opts),
        "linux": _linux(opts, caps),
    }
    if opts.annotations:
        spec["annotations"] = dict(opts.annotations)
    return spec
