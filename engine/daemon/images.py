"""Image endpoints that only touch the local store: list, inspect, history, tag, remove, prune.

Each handler parses Docker's parameters, runs the blocking store call in a thread and answers in
Docker's shape (``shapes``). ``images/json`` filters are a table of predicates, one per filter name
Docker documents for it.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable
from typing import Any

from aiohttp import web

from engine.build.cache import BuildCache
from engine.daemon import params, shapes
from engine.daemon.context import context_of
from engine.daemon.errors import BadParameter
from engine.daemon.replies import json_response
from engine.images.errors import ImageError, StoreError
from engine.images.reference import parse_reference
from engine.images.store import Image, ImageStore, parse_created


def _name(request: web.Request) -> str:
    return request.match_info["name"]


# ------------------------------------------------------------------------------------------ list


def _name_matches(name: str, pattern: str) -> bool:
    """Docker's ``reference`` filter: a glob over the familiar ``repo:tag`` (or ``repo@digest``)
    or over the bare repository."""
    repo = name.split("@", 1)[0]
    if "@" not in name:
        repo = repo.rsplit(":", 1)[0]
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(repo, pattern)


def _matches_reference(image: Image, pattern: str) -> bool:
    return any(_name_matches(tag, pattern) for tag in image.repo_tags)


def _has_label(image: Image, wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    labels = shapes.labels(image) or {}
    return key in labels and (not sep or labels[key] == value)


Predicate = Callable[[Image, list[str], ImageStore], bool]


def _created_of(store: ImageStore, name: str) -> int:
    return parse_created(store.resolve(name).created)


_LIST_FILTERS: dict[str, Predicate] = {
    "reference": lambda img, vals, _: any(_matches_reference(img, v) for v in vals),
    "dangling": lambda img, vals, _: (not img.repo_tags) == params.one_bool(vals, "dangling"),
    "label": lambda img, vals, _: all(_has_label(img, v) for v in vals),
    "before": lambda img, vals, st: all(parse_created(img.created) < _created_of(st, v) for v in vals),
    "since": lambda img, vals, st: all(parse_created(img.created) > _created_of(st, v) for v in vals),
}


def _list(store: ImageStore, wanted: dict[str, list[str]]) -> list[dict[str, Any]]:
    rows = []
    patterns = wanted.get("reference", [])
    for image in store.images():
        if not all(_LIST_FILTERS[key](image, values, store) for key, values in wanted.items()):
            continue
        row = shapes.summary(image)
        if patterns:  # as Docker: only the names that matched are shown
            for field in ("RepoTags", "RepoDigests"):
                row[field] = [n for n in row[field] if any(_name_matches(n, p) for p in patterns)]
        rows.append(row)
    return rows


async def list_images(request: web.Request) -> web.Response:
    wanted = params.filters(request, allowed=frozenset(_LIST_FILTERS))
    if "filter" in request.query:  # API < 1.41: a reference given on its own
        wanted.setdefault("reference", []).append(request.query["filter"])
    return json_response(await asyncio.to_thread(_list, context_of(request).store, wanted))


# ------------------------------------------------------------------------------- inspect/history


def _inspect(store: ImageStore, name: str) -> dict[str, Any]:
    image = store.resolve(name)
    try:
        dirs = [str(d) for d in store.layer_dirs(image)]
    except StoreError:
        dirs = None
    return shapes.inspect(image, layer_dirs=dirs)


async def inspect_image(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(_inspect, context_of(request).store, _name(request)))


async def image_history(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(context_of(request).store.history, _name(request)))


# ------------------------------------------------------------------------------------ tag/remove


async def tag_image(request: web.Request) -> web.Response:
    repo = request.query.get("repo", "")
    if not repo:
        raise BadParameter("repository name (repo) is required")
    tag = request.query.get("tag", "")
    target = f"{repo}:{tag}" if tag else repo
    parse_reference(target)  # a bad name is a 400 before the store is touched
    await asyncio.to_thread(context_of(request).store.tag, _name(request), target)
    return web.Response(status=201)


async def remove_image(request: web.Request) -> web.Response:
    force = params.flag(request, "force")
    prune = not params.flag(request, "noprune")
    store = context_of(request).store
    report = await asyncio.to_thread(lambda: store.remove(_name(request), force=force, prune=prune))
    return json_response(report)


# ----------------------------------------------------------------------------------------- prune

_PRUNE_FILTERS = frozenset({"dangling", "label"})


def _prune(store: ImageStore, *, dangling_only: bool, label: list[str]) -> dict[str, Any]:
    deleted: list[dict[str, str]] = []
    if dangling_only and not label:
        deleted.extend({"Deleted": image_id} for image_id in store.prune_dangling())
    else:
        for image in store.images():
            if dangling_only and image.repo_tags:
                continue
            if label and not all(_has_label(image, v) for v in label):
                continue
            if store.in_use is not None and store.in_use(image.id):
                continue
            try:
                deleted.extend(store.remove(image.id, force=True, prune=False))
            except ImageError:
                continue  # removed meanwhile or in use: prune is best effort, as in Docker
    report = store.gc()
    BuildCache(store).prune()  # cache entries whose layers gc just removed
    deleted.extend({"Deleted": chain} for chain in report.snapshots)
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": report.bytes_freed}


async def prune_images(request: web.Request) -> web.Response:
    wanted = params.filters(request, allowed=_PRUNE_FILTERS)
    dangling_only = params.one_bool(wanted["dangling"], "dangling") if "dangling" in wanted else True
    store = context_of(request).store
    result = await asyncio.to_thread(lambda: _prune(store, dangling_only=dangling_only, label=wanted.get("label", [])))
    return json_response(result)
