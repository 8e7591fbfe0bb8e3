"""projected volumes: several sources (serviceAccountToken, configMap, secret, downwardAPI) in one dir.

Written on a tmpfs as upstream. A service-account token is requested through the TokenSource
(TokenRequest bound to the pod) and reused by refresh until it reaches 80% of its lifetime or
24 hours, the upstream kubelet's token manager rule, so refreshing does not rewrite it every time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kubelet.volumes import downward_api, keyed
from kubelet.volumes.atomic_writer import FileProjection
from kubelet.volumes.errors import VolumeError
from kubelet.volumes.plugin import DEFAULT_MODE, CachedToken, Context, Plugin, mode_of, write_projection

PLUGIN_DIR = "projected"
DEFAULT_EXPIRATION = 3600
MAX_TOKEN_AGE = 24 * 3600
REFRESH_FRACTION = 0.8

Source = Callable[[Context, str, dict[str, Any], int], Awaitable[dict[str, FileProjection]]]


async def _config_map(ctx: Context, volume: str, spec: dict[str, Any], mode: int) -> dict[str, FileProjection]:
    data = await keyed.fetch(keyed.CONFIG_MAP, ctx.source, namespace=ctx.namespace, name=spec.get("name") or "",
                             optional=bool(spec.get("optional")))
    return keyed.payload(keyed.CONFIG_MAP, data, spec=spec, default_mode=mode)


async def _secret(ctx: Context, volume: str, spec: dict[str, Any], mode: int) -> dict[str, FileProjection]:
    data = await keyed.fetch(keyed.SECRET, ctx.source, namespace=ctx.namespace, name=spec.get("name") or "",
                             optional=bool(spec.get("optional")))
    return keyed.payload(keyed.SECRET, data, spec=spec, default_mode=mode)


async def _downward(ctx: Context, volume: str, spec: dict[str, Any], mode: int) -> dict[str, FileProjection]:
    return await asyncio.to_thread(downward_api.payload, ctx.pod, spec.get("items") or [], default_mode=mode)


def _fresh(cached: CachedToken | None, ttl: int, now: float) -> bool:
    if cached is None or cached.ttl != ttl:
        return False
    age = now - cached.obtained
    return age < min(REFRESH_FRACTION * cached.ttl, MAX_TOKEN_AGE)


async def _token(ctx: Context, volume: str, spec: dict[str, Any], mode: int) -> dict[str, FileProjection]:
    path = spec.get("path") or ""
    ttl = int(spec.get("expirationSeconds") or DEFAULT_EXPIRATION)
    key = (volume, path)
    cached = ctx.token_cache.get(key)
    now = time.time()
    if not _fresh(cached, ttl, now):
        if ctx.tokens is None:
            raise VolumeError("failed to fetch token: no token source is configured on this kubelet")
        account = (ctx.pod.get("spec") or {}).get("serviceAccountName") or "default"
        audience = spec.get("audience") or ""
        try:
            token = await ctx.tokens.token(namespace=ctx.namespace, service_account=account,
                                           audiences=[audience] if audience else [],
                                           expiration_seconds=ttl, pod=ctx.pod)
        except VolumeError:
            raise
        except Exception as exc:
            raise VolumeError(f"failed to fetch token: {exc}") from exc
        if not token:
            raise VolumeError("failed to fetch token: the API server returned an empty token")
        cached = CachedToken(token, now, ttl)
        ctx.token_cache[key] = cached
    assert cached is not None
    if ctx.fs_group is not None or ctx.fs_user is not None:
        mode = 0o600  # upstream: only the pod's user (and fsGroup) may read a token it shares
    return {path: FileProjection(cached.token.encode(), mode, ctx.fs_user)}


#: projected source field -> how its files are made
SOURCES: dict[str, Source] = {
    "serviceAccountToken": _token,
    "configMap": _config_map,
    "secret": _secret,
    "downwardAPI": _downward,
}


async def setup(ctx: Context, name: str, spec: dict[str, Any]) -> str:
    mode = mode_of(spec.get("defaultMode"), DEFAULT_MODE)
    files: dict[str, FileProjection] = {}
    for source in spec.get("sources") or []:
        kinds = [k for k in source if source.get(k) is not None]
        known = [k for k in kinds if k in SOURCES]
        if not known:
            raise VolumeError(f"projected volume {name!r}: unsupported source {', '.join(kinds) or '(empty)'}")
        for kind in known:
            files.update(await SOURCES[kind](ctx, name, source[kind], mode))
    return await write_projection(ctx=ctx, path=ctx.volume_dir(PLUGIN_DIR, name), payload=files, memory=True)


PLUGIN = Plugin("projected", setup, refreshable=True)
