"""The documents served under /openapi/v3: the index and one document per group-version.

kubectl fetches the index, then the document of each group-version it touches, at the
``serverRelativeURL`` the index gives (the ``hash`` query lets it cache documents on disk). Each
document holds the operations of that group-version's resources and every component schema they
reach, annotated with the strategic-merge extensions. All documents are built together on first
use and kept as bytes; :func:`awarm` builds them in a worker thread so the event loop never waits.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from apiserver.openapi import extensions, schemas
from apiserver.openapi.names import upstream_name
from apiserver.openapi.paths import resource_paths
from apiserver.registry import GROUP_VERSIONS, in_group_version

OPENAPI_VERSION = "3.0.0"
INFO = {"title": "Kubernetes", "version": "unversioned"}
SECURITY_SCHEMES = {"BearerToken": {"description": "Bearer Token authentication", "in": "header",
                                    "name": "authorization", "type": "apiKey"}}
URL_PREFIX = "/openapi/v3/"


def gv_path(group_version: str) -> str:
    """``v1`` → ``api/v1``; ``apps/v1`` → ``apis/apps/v1`` (the index's keys)."""
    return f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"


def _split(group_version: str) -> tuple[str, str]:
    group, _, version = group_version.rpartition("/")
    return group, version


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def build_document(group_version: str) -> dict[str, Any]:
    """The document of one served group-version, as a fresh dict."""
    group, version = _split(group_version)
    resources = list(in_group_version(group, version))
    paths: dict[str, Any] = {}
    for rt in resources:
        paths.update(resource_paths(rt))
    published = schemas.components()
    roots = [upstream_name(rt.model) for rt in resources]
    names = schemas.reachable([*roots, *schemas.references(paths)], published)
    local = {name: _copy(published[name]) for name in sorted(names)}
    extensions.annotate(local, [(upstream_name(rt.model), rt.kind) for rt in resources])
    return {"components": {"schemas": local, "securitySchemes": SECURITY_SCHEMES},
            "info": INFO, "openapi": OPENAPI_VERSION, "paths": paths}


def content_hash(body: bytes) -> str:
    """What upstream puts in ``?hash=``: the SHA-512 of the document, in uppercase hex."""
    return hashlib.sha512(body).hexdigest().upper()


@dataclass(frozen=True)
class _Built:
    index: dict[str, Any]
    docs: dict[str, bytes]


_lock = threading.Lock()
_built: _Built | None = None


def _build() -> _Built:
    global _built
    with _lock:
        if _built is None:
            docs: dict[str, bytes] = {}
            paths: dict[str, Any] = {}
            for gv in GROUP_VERSIONS:
                key = gv_path(gv)
                body = orjson.dumps(build_document(gv), option=orjson.OPT_SORT_KEYS)
                docs[key] = body
                paths[key] = {"serverRelativeURL": f"{URL_PREFIX}{key}?hash={content_hash(body)}"}
            _built = _Built(index={"paths": paths}, docs=docs)
        return _built


def _normalise(path: str) -> str:
    path = path.strip("/")
    prefix = URL_PREFIX.strip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def index() -> dict[str, Any]:
    """The GET /openapi/v3 answer (shared: do not change it)."""
    return _build().index


def document(path: str) -> bytes | None:
    """The JSON bytes of the document at ``api/v1``, ``apis/apps/v1``...; None if not served."""
    return _build().docs.get(_normalise(path))


def warm() -> None:
    """Build everything now (blocking: about half a second the first time)."""
    _build()


async def awarm() -> None:
    """Build everything in a worker thread; cheap once built."""
    if _built is None:
        await asyncio.to_thread(_build)


async def aindex() -> dict[str, Any]:
    await awarm()
    return index()


async def adocument(path: str) -> bytes | None:
    await awarm()
    return document(path)
