"""The pod worker's one entry to volumes: set up, refresh and tear down a pod's volumes.

Each volume source is handled by the plugin in :data:`PLUGINS` keyed by its field in the pod spec.
Errors surface as :class:`VolumeError` whose text is the upstream FailedMount event message
(``MountVolume.SetUp failed for volume "cfg" : configmap "x" not found``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from kubelet.config import KubeletConfig
from kubelet.sources import ObjectSource, TokenSource
from kubelet.volumes import configmap, downward_api, empty_dir, fs, host_path, projected, secret
from kubelet.volumes.errors import VolumeError
from kubelet.volumes.plugin import CachedToken, Context, Plugin

PLUGINS: dict[str, Plugin] = {p.field: p for p in (
    empty_dir.PLUGIN, host_path.PLUGIN, configmap.PLUGIN, secret.PLUGIN, downward_api.PLUGIN, projected.PLUGIN)}


def plugin_for(volume: dict[str, Any]) -> tuple[Plugin, dict[str, Any]]:
    name = volume.get("name", "")
    for key, spec in volume.items():
        if key in PLUGINS and spec is not None:
            return PLUGINS[key], spec or {}
    kinds = [k for k in volume if k != "name"]
    raise VolumeError(f'volume "{name}": unsupported volume type {", ".join(kinds) or "(none)"}')


def _safe_component(value: str, *, what: str) -> str:
    """Volume names and pod UIDs become path components: one each, never '.', '..' or with '/'."""
    if not value or value in (".", "..") or "/" in value or "\x00" in value:
        raise VolumeError(f"invalid {what} {value!r}")
    return value


class VolumeManager:
    """Per pod: which volumes are set up (name -> host path) and the tokens written into them."""

    def __init__(self, *, config: KubeletConfig, source: ObjectSource, tokens: TokenSource | None) -> None:
        self.config = config
        self.source = source
        self.tokens = tokens
        self._paths: dict[str, dict[str, str]] = {}
        self._tokens: dict[str, dict[tuple[str, str], CachedToken]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _context(self, pod: dict[str, Any]) -> Context:
        uid = _safe_component(str((pod.get("metadata") or {}).get("uid") or ""), what="pod UID")
        return Context(config=self.config, source=self.source, tokens=self.tokens, pod=pod,
                       token_cache=self._tokens.setdefault(uid, {}))

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def _run(self, ctx: Context, volume: dict[str, Any]) -> str:
        name = str(volume.get("name") or "")
        try:
            _safe_component(name, what="volume name")
            plugin, spec = plugin_for(volume)
            return await plugin.setup(ctx, name, spec)
        except VolumeError as exc:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {exc}', volume=name,
                              detail=exc.detail) from exc
        except Exception as exc:  # OSError, the API client's transport errors: still a FailedMount
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {exc}', volume=name,
                              detail=str(exc)) from exc

    async def setup(self, pod: dict[str, Any]) -> dict[str, str]:
        """Volume name -> host path; volumes already set up are not touched again (see refresh).

        The pod's volumes are set up concurrently (their API reads overlap); a failure names the
        first failing volume in spec order, and the others that succeeded stay set up.
        """
        ctx = self._context(pod)
        async with self._lock(ctx.uid):
            done = self._paths.setdefault(ctx.uid, {})
            todo = [v for v in (pod.get("spec") or {}).get("volumes") or [] if str(v.get("name") or "") not in done]
            results = await asyncio.gather(*(self._run(ctx, v) for v in todo), return_exceptions=True)
            failure: BaseException | None = None
            for volume, result in zip(todo, results, strict=True):
                if isinstance(result, BaseException):
                    failure = failure or result
                else:
                    done[str(volume.get("name") or "")] = result
            if failure is not None:
                raise failure
            return dict(done)

    async def refresh(self, pod: dict[str, Any]) -> None:
        """Re-project every set-up configMap/secret/downwardAPI/projected volume; unchanged files stay."""
        ctx = self._context(pod)
        first: VolumeError | None = None
        async with self._lock(ctx.uid):
            done = self._paths.get(ctx.uid, {})
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                name = str(volume.get("name") or "")
                if name not in done:
                    continue
                try:
                    plugin, _spec = plugin_for(volume)
                    if plugin.refreshable:
                        await self._run(ctx, volume)
                except VolumeError as exc:
                    first = first or exc
        if first is not None:
            raise first

    async def teardown(self, pod_uid: str) -> None:
        """Unmount everything under the pod dir (lazily if busy), then remove the dir."""
        _safe_component(pod_uid, what="pod UID")
        pod_dir = self.config.pod_dir(pod_uid)
        async with self._lock(pod_uid):
            await asyncio.to_thread(_teardown, pod_dir)
            self._paths.pop(pod_uid, None)
            self._tokens.pop(pod_uid, None)
        self._locks.pop(pod_uid, None)

    def pod_uids_on_disk(self) -> set[str]:
        try:
            return {e.name for e in os.scandir(self.config.pods_dir) if e.is_dir(follow_symlinks=False)}
        except FileNotFoundError:
            return set()


def _teardown(pod_dir: Path) -> None:
    fs.unmount_all(pod_dir)
    fs.remove_tree(pod_dir)
