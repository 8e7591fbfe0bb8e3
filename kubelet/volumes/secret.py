"""secret volumes: the Secret's keys as files on a tmpfs (never on disk), updated atomically."""

from __future__ import annotations

from typing import Any

from kubelet.volumes import keyed
from kubelet.volumes.plugin import DEFAULT_MODE, Context, Plugin, mode_of, write_projection

PLUGIN_DIR = "secret"


async def setup(ctx: Context, name: str, spec: dict[str, Any]) -> str:
    data = await keyed.fetch(keyed.SECRET, ctx.source, namespace=ctx.namespace, name=spec.get("secretName") or "",
                             optional=bool(spec.get("optional")))
    files = keyed.payload(keyed.SECRET, data, spec=spec,
                          default_mode=mode_of(spec.get("defaultMode"), DEFAULT_MODE))
    return await write_projection(ctx=ctx, path=ctx.volume_dir(PLUGIN_DIR, name), payload=files, memory=True)


PLUGIN = Plugin("secret", setup, refreshable=True)
