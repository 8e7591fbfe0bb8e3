"""configMap volumes: the ConfigMap's keys as files, on disk, updated atomically on refresh."""

from __future__ import annotations

from typing import Any

from kubelet.volumes import keyed
from kubelet.volumes.plugin import DEFAULT_MODE, Context, Plugin, mode_of, write_projection

PLUGIN_DIR = "configmap"


async def setup(ctx: Context, name: str, spec: dict[str, Any]) -> str:
    data = await keyed.fetch(keyed.CONFIG_MAP, ctx.source, namespace=ctx.namespace, name=spec.get("name") or "",
                             optional=bool(spec.get("optional")))
    files = keyed.payload(keyed.CONFIG_MAP, data, spec=spec,
                          default_mode=mode_of(spec.get("defaultMode"), DEFAULT_MODE))
    return await write_projection(ctx=ctx, path=ctx.volume_dir(PLUGIN_DIR, name), payload=files, memory=False)


PLUGIN = Plugin("configMap", setup, refreshable=True)
