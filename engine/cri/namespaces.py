"""A pod's shared namespaces, held open by bind-mounting their nsfs files, as ``ip netns add`` does.

A namespace lives while a process or a mount references it. A pod's network, IPC and UTS
namespaces must outlive any of its containers (and the engine itself, across a restart), so each
one is created by util-linux ``unshare --net=FILE --ipc=FILE --uts=FILE``, which bind-mounts the
new namespaces onto those files and exits; containers then join them by path. The command run
inside sets the pod's hostname and brings ``lo`` up, so nothing else ever has to enter them.
Releasing is a lazy unmount and an unlink: a namespace a container still uses lives on until
that container exits.

Paths: ``<run_dir>/netns/<id>``, ``<run_dir>/ipcns/<id>``, ``<run_dir>/utsns/<id>`` (run_dir is
/run/pinnace by default, a tmpfs, so a reboot forgets them as it forgets the pods).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from engine.cri.errors import InvalidArgument, NamespaceError

DEFAULT_RUN_DIR = "/run/pinnace"
# our kind -> (directory under run_dir, unshare option)
KINDS: dict[str, tuple[str, str]] = {
    "net": ("netns", "--net"),
    "ipc": ("ipcns", "--ipc"),
    "uts": ("utsns", "--uts"),
}
HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62})")
MNT_DETACH = 2
_SETUP_TIMEOUT = 20.0
# run inside the new namespaces: "$0" is the hostname ("" keeps it), "$1" says whether lo exists
_INSIDE = 'if [ -n "$0" ]; then hostname "$0" || exit 1; fi; if [ "$1" = 1 ]; then ip link set lo up || exit 1; fi'

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def ns_path(run_dir: str | os.PathLike[str], kind: str, sandbox_id: str) -> Path:
    return Path(run_dir) / KINDS[kind][0] / sandbox_id


def _umount(path: Path) -> None:
    """Lazy-unmount ``path`` if something is mounted there (blocking syscall)."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise NamespaceError(f"cannot unmount {path}: {os.strerror(err)}")


def release_sync(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Unmount and delete namespace files; missing ones are fine (release is idempotent)."""
    for raw in paths:
        path = Path(raw)
        _umount(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def is_held(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` still has a namespace mounted on it (false after a reboot wiped /run)."""
    try:
        return os.path.ismount(path)
    except OSError:
        return False


async def create(
    *, run_dir: str | os.PathLike[str], sandbox_id: str, kinds: Iterable[str], hostname: str = ""
) -> dict[str, str]:
    """New namespaces of ``kinds`` pinned under ``run_dir``; returns kind -> path.

    ``hostname`` is set in the new UTS namespace (it must be a valid DNS label). On failure every
    file made so far is released before ``NamespaceError`` is raised."""
    wanted = [k for k in KINDS if k in set(kinds)]
    if unknown := set(kinds) - set(KINDS):
        raise InvalidArgument(f"unknown namespace kinds {sorted(unknown)}")
    if hostname and not HOSTNAME_RE.fullmatch(hostname):
        raise InvalidArgument(f"invalid hostname {hostname!r}")
    if hostname and "uts" not in wanted:
        raise InvalidArgument("a hostname needs the sandbox's own UTS namespace")
    if not wanted:
        return {}
    paths = {k: ns_path(run_dir, k, sandbox_id) for k in wanted}
    proc: asyncio.subprocess.Process | None = None
    try:
        await asyncio.to_thread(_touch, paths.values())
        argv = ["unshare", *(f"{KINDS[k][1]}={p}" for k, p in paths.items())]
        argv += ["--", "sh", "-c", _INSIDE, hostname, "1" if "net" in paths else "0"]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise NamespaceError(f"cannot run unshare (util-linux): {exc.strerror}") from None
        try:
            async with asyncio.timeout(_SETUP_TIMEOUT):
                out, _ = await proc.communicate()
        except TimeoutError:
            raise NamespaceError(f"creating the pod's namespaces took over {_SETUP_TIMEOUT:g}s") from None
        if proc.returncode != 0:
            text = out.decode(errors="replace").strip() or f"exit status {proc.returncode}"
            raise NamespaceError(f"cannot create the pod's namespaces: {text}")
    except BaseException:
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
        await asyncio.shield(asyncio.to_thread(release_sync, paths.values()))
        raise
    return {k: str(p) for k, p in paths.items()}


def _touch(paths: Iterable[Path]) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)


async def release(paths: Mapping[str, str] | Iterable[str]) -> None:
    """Unmount and delete the namespace files (values of a kind -> path map, or plain paths)."""
    items = list(paths.values()) if isinstance(paths, Mapping) else list(paths)
    await asyncio.to_thread(release_sync, items)
