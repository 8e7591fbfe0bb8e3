"""What every volume plugin gets and gives: the per-pod context in, a host path out.

A plugin is one row of the table in :mod:`kubelet.volumes.manager`, keyed by the volume source's
field name (``emptyDir``, ``configMap``...). ``refreshable`` plugins are re-run by
``VolumeManager.refresh`` so that updates of the objects they project reach the files.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelet.config import KubeletConfig
from kubelet.sources import ObjectSource, TokenSource
from kubelet.volumes import atomic_writer, fs
from kubelet.volumes.errors import VolumeError

DEFAULT_MODE = 0o644  # upstream defaultMode (420)


@dataclass(frozen=True)
class CachedToken:
    token: str
    obtained: float  # time.time() when requested
    ttl: int  # expirationSeconds


@dataclass
class Context:
    config: KubeletConfig
    source: ObjectSource
    tokens: TokenSource | None
    pod: dict[str, Any]
    #: (volume name, file path) -> the token last written there, so refresh reuses it until it ages
    token_cache: dict[tuple[str, str], CachedToken] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"].get("namespace") or "default")

    @property
    def fs_group(self) -> int | None:
        value = ((self.pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def fs_user(self) -> int | None:
        """upstream FsUserFrom: the runAsUser every container shares, if they all share one."""
        spec = self.pod.get("spec") or {}
        default = (spec.get("securityContext") or {}).get("runAsUser")
        users = {(c.get("securityContext") or {}).get("runAsUser", default)
                 for c in [*spec.get("initContainers", []), *spec.get("containers", [])]}
        user = users.pop() if len(users) == 1 else None
        return user if isinstance(user, int) and not isinstance(user, bool) else None

    def volume_dir(self, plugin_dir: str, name: str) -> Path:
        """Upstream layout: ``pods/<uid>/volumes/kubernetes.io~<plugin>/<name>``."""
        return self.config.volumes_dir(self.uid) / f"kubernetes.io~{plugin_dir}" / name


SetUp = Callable[[Context, str, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Plugin:
    field: str  # the volume source's key in the pod spec
    setup: SetUp  # (context, volume name, source) -> host path; idempotent
    refreshable: bool = False


def own_volume_dir(path: Path, *, gid: int | None, mode: int) -> None:
    """A volume's root: its mode, plus group ``gid`` and setgid/rwx for the group with an fsGroup."""
    if gid is not None:
        os.chown(path, -1, gid)
        mode |= 0o2770
    os.chmod(path, mode)


async def write_projection(*, ctx: Context, path: Path, payload: dict[str, atomic_writer.FileProjection],
                           memory: bool) -> str:
    """The shared tail of configMap/secret/downwardAPI/projected: dir (tmpfs if asked), atomic write."""
    gid = ctx.fs_group

    def run() -> str:
        path.mkdir(parents=True, exist_ok=True)
        if memory:
            fs.mount_tmpfs(path)
        own_volume_dir(path, gid=gid, mode=0o1777 if memory else 0o777)
        atomic_writer.write(path, payload, gid=gid)
        return str(path)

    return await asyncio.to_thread(run)


def mode_of(value: Any, default: int) -> int:
    """A file mode from the spec (an int, as the API stores it), else the default."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0o777:
            raise VolumeError(f"invalid file mode {value}: must be between 0 and 0777 (octal)")
        return value
    return default
