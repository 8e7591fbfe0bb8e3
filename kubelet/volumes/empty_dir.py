"""emptyDir volumes: a fresh dir for the pod's life; medium Memory puts it on a tmpfs of a bounded size."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from kubelet.volumes import fs, quantity
from kubelet.volumes.errors import VolumeError
from kubelet.volumes.plugin import Context, Plugin, own_volume_dir

PLUGIN_DIR = "empty-dir"


def pod_memory_limit(pod: dict[str, Any]) -> int | None:
    """The pod's memory limit when every container has one: max(sum of containers, largest init)."""
    spec = pod.get("spec") or {}

    def limit(c: dict[str, Any]) -> Any:
        return ((c.get("resources") or {}).get("limits") or {}).get("memory")

    containers = spec.get("containers") or []
    if not containers or any(limit(c) in (None, "") for c in containers):
        return None
    total = sum(quantity.parse(limit(c)) for c in containers)
    inits = [quantity.parse(limit(c)) for c in spec.get("initContainers") or [] if limit(c) not in (None, "")]
    return math.ceil(max([total, *inits]))


def tmpfs_size(spec: dict[str, Any], pod: dict[str, Any]) -> int | None:
    """upstream (SizeMemoryBackedVolumes): min(sizeLimit, pod memory limit), whichever are set."""
    limit = spec.get("sizeLimit")
    sizes = [math.ceil(quantity.parse(limit))] if limit not in (None, "") else []
    pod_limit = pod_memory_limit(pod)
    sizes += [pod_limit] if pod_limit else []
    return min(sizes) if sizes else None


async def setup(ctx: Context, name: str, spec: dict[str, Any]) -> str:
    medium = spec.get("medium") or ""
    if medium not in ("", "Memory"):
        raise VolumeError(f"emptyDir medium {medium!r} is not supported on this node")
    path = ctx.volume_dir(PLUGIN_DIR, name)
    size = tmpfs_size(spec, ctx.pod) if medium == "Memory" else None
    gid = ctx.fs_group

    def run() -> str:
        path.mkdir(parents=True, exist_ok=True)
        if medium == "Memory":
            fs.mount_tmpfs(path, size=size)
        own_volume_dir(path, gid=gid, mode=0o777 if medium == "" else 0o1777)
        return str(path)

    return await asyncio.to_thread(run)


PLUGIN = Plugin("emptyDir", setup)
