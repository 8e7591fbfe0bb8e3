"""User-namespace mappings, and idmapped mounts so an image's files look right inside one.

A user-namespaced container maps its uid 0..65535 onto an unprivileged host range (root in the
container is, say, uid 165536 on the host). Image layers are owned by host root, so seen from such
a container they would all belong to ``nobody``: root could not write to /etc. Measured on this
kernel (6.x): overlayfs accepts *idmapped* lower layers, so each read-only layer is bind-mounted
with the container's mapping attached (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount,
about 2 ms per container) and the writable upper dir is chowned to the range's base; copy-ups then
land on disk owned by the unprivileged host uid. The mapping needs a user namespace to point at:
a throwaway ``unshare --user`` helper whose maps we write as root; its namespace lives on in the
mounts after the helper is killed. Kernels without idmapped mounts (older than 5.12, or overlay
refusing idmapped layers) fall back to plain lowers: files then appear as ``nobody`` and only the
upper dir belongs to container root. Blocking; needs CAP_SYS_ADMIN.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runtime.errors import SpecError

DEFAULT_SIZE = 65536
MAX_HOST_ID = 2**32 - 2
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442
_OPEN_TREE_CLONE, _OPEN_TREE_CLOEXEC = 1, 0o2000000
_AT_EMPTY_PATH, _AT_RECURSIVE, _AT_FDCWD = 0x1000, 0x8000, -100
_MOUNT_ATTR_IDMAP = 0x00100000
_MOVE_MOUNT_F_EMPTY_PATH = 4
_HELPER_TIMEOUT = 5.0

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class IdMapping:
    """Container ids ``[0, size)`` appear on the host as ``[host_id, host_id + size)`` (uids and gids)."""

    host_id: int
    size: int = DEFAULT_SIZE
    container_id: int = 0

    def validate(self) -> None:
        if self.host_id <= 0:
            raise SpecError("a user namespace must map container root to an unprivileged host id (> 0)")
        if self.size <= 0 or self.host_id + self.size - 1 > MAX_HOST_ID or self.container_id < 0:
            raise SpecError(f"invalid id mapping {self.host_id}:{self.size}")

    def to_oci(self) -> list[dict[str, int]]:
        return [{"containerID": self.container_id, "hostID": self.host_id, "size": self.size}]

    def to_host(self, container_id: int) -> int:
        """The host id that ``container_id`` is inside the namespace."""
        return self.host_id + container_id - self.container_id

    @classmethod
    def parse(cls, text: str) -> IdMapping:
        """``HOSTID[:SIZE]`` as given on a command line."""
        host, _, size = text.partition(":")
        try:
            mapping = cls(host_id=int(host), size=int(size) if size else DEFAULT_SIZE)
        except ValueError:
            raise SpecError(f"invalid user namespace mapping {text!r}: want HOSTID[:SIZE]") from None
        mapping.validate()
        return mapping


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def userns_fd(mapping: IdMapping) -> int:
    """An O_RDONLY fd of a user namespace with ``mapping`` for uids and gids (caller closes it)."""
    helper = subprocess.Popen(
        ["unshare", "--user", "sleep", "30"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ours = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + _HELPER_TIMEOUT
        while os.readlink(f"/proc/{helper.pid}/ns/user") == ours:
            if helper.poll() is not None or time.monotonic() > deadline:
                raise OSError("the unshare --user helper did not start")
            time.sleep(0.0005)
        line = f"{mapping.container_id} {mapping.host_id} {mapping.size}\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{helper.pid}/{name}", "w") as f:
                f.write(line)
        return os.open(f"/proc/{helper.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        helper.kill()
        helper.wait()


def idmapped_bind(source: str | os.PathLike[str], target: str | os.PathLike[str], *, ns_fd: int) -> None:
    """Bind ``source`` on ``target`` with the ids of the user namespace ``ns_fd`` applied."""
    Path(target).mkdir(parents=True, exist_ok=True)
    tree = _libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, os.fsencode(source), _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC)
    if tree < 0:
        raise _fail(f"open_tree {os.fspath(source)}")
    try:
        attr = _MountAttr(_MOUNT_ATTR_IDMAP, 0, 0, ns_fd)
        if _libc.syscall(_SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
            raise _fail(f"idmapping {os.fspath(source)}")
        moved = _libc.syscall(_SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH)
        if moved < 0:
            raise _fail(f"attaching the idmapped mount on {os.fspath(target)}")
    finally:
        os.close(tree)


def oci_mappings(mapping: IdMapping | None) -> dict[str, Any]:
    """``linux.uidMappings``/``gidMappings`` for ``mapping`` (empty without one)."""
    if mapping is None:
        return {}
    mapping.validate()
    return {"uidMappings": mapping.to_oci(), "gidMappings": mapping.to_oci()}


def chown_tree_root(path: str | os.PathLike[str], mapping: IdMapping) -> None:
    """Hand a fresh (empty) dir to container root, e.g. the overlay upper dir."""
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, mapping.to_host(0), mapping.to_host(0))
