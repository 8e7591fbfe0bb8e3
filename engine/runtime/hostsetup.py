"""One-time host preparation the OCI runtime needs before it can start a container.

crun refuses a *hybrid* cgroup layout (v1 hierarchies under /sys/fs/cgroup plus a cgroup2 mount at
/sys/fs/cgroup/unified) while any controller is still bound to the cgroup2 side ("cgroups in hybrid
mode not supported, drop all controllers from cgroupv2"). On this kind of machine that is the
hugetlb controller, which nothing mounted as v1. ``ensure_cgroups`` mounts every such leftover
controller as its own v1 hierarchy, which takes it off cgroup2. It is idempotent (it reads
/proc/self/mountinfo first), does nothing on pure v1 or pure v2 hosts, and is the engine's start-up
step; the builder also calls it before its first RUN. Blocking but quick.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

from engine.runtime.errors import HostSetupError

CGROUP_ROOT = Path("/sys/fs/cgroup")
HYBRID_UNIFIED = CGROUP_ROOT / "unified"
MOUNTINFO = Path("/proc/self/mountinfo")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_lock = threading.Lock()


def _mounts(mountinfo: Path) -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every mount."""
    out = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        out.append((fields[4], fields[sep + 1], set(fields[sep + 3].split(","))))
    return out


def v1_controllers(mountinfo: Path = MOUNTINFO) -> set[str]:
    """Controllers mounted as cgroup v1 hierarchies anywhere."""
    found: set[str] = set()
    for _, fstype, options in _mounts(mountinfo):
        if fstype == "cgroup":
            found |= options
    return found


def leftover_controllers(*, mountinfo: Path = MOUNTINFO, unified: Path = HYBRID_UNIFIED) -> list[str]:
    """Controllers still on the cgroup2 side of a hybrid layout (empty unless hybrid)."""
    mounts = _mounts(mountinfo)
    if not any(point == os.fspath(unified) and fstype == "cgroup2" for point, fstype, _ in mounts):
        return []  # pure v1 or pure v2: crun is happy
    try:
        available = (unified / "cgroup.controllers").read_text().split()
    except OSError as exc:
        raise HostSetupError(f"cannot read {unified}/cgroup.controllers: {exc.strerror}") from None
    mounted = v1_controllers(mountinfo)
    return sorted(c for c in available if c not in mounted)


def _mount_v1(controller: str, root: Path) -> None:
    target = root / controller
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HostSetupError(f"cannot create {target} for the {controller} cgroup controller: {exc.strerror}") from None
    if _libc.mount(b"cgroup", os.fsencode(target), b"cgroup", 0, controller.encode()) != 0:
        err = ctypes.get_errno()
        raise HostSetupError(
            f"cannot mount the {controller} cgroup controller on {target} ({os.strerror(err)}); "
            "crun refuses a hybrid cgroup layout while controllers remain on cgroup v2"
        )


def ensure_cgroups(*, mountinfo: Path = MOUNTINFO, root: Path = CGROUP_ROOT) -> list[str]:
    """Make the cgroup layout acceptable to crun; returns the controllers it mounted (usually none)."""
    with _lock:
        todo = leftover_controllers(mountinfo=mountinfo, unified=root / "unified")
        for controller in todo:
            _mount_v1(controller, root)
        return todo
