"""Registry transfers: ``POST /images/create`` (pull) and ``POST /images/{name}/push``.

Both stream Docker's progress messages. Pull holds back its "Pulling from" line until the registry
has answered with a manifest, as Docker does, so a missing image or an unreachable registry is a
plain HTTP error rather than a half-started stream. Credentials come from the ``X-Registry-Auth``
header (base64url JSON of username/password/serveraddress, as the docker CLI and SDK send it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from engine.daemon.context import context_of
from engine.daemon.errors import BadParameter
from engine.daemon.jsonstream import JsonStream, progress_message, respond
from engine.images.auth import Credentials, normalise_host
from engine.images.errors import ImageNotFound
from engine.images.pull import Progress
from engine.images.reference import Reference, parse_reference
from engine.images.store import ImageStore

AUTH_HEADER = "X-Registry-Auth"


def credentials_from_header(header: str | None, *, default_host: str) -> dict[str, Credentials]:
    """The credentials an ``X-Registry-Auth`` header carries, keyed by registry host ({} if none)."""
    if not header or not header.strip():
        return {}
    text = header.strip()
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise BadParameter(f"invalid {AUTH_HEADER} header: not base64-encoded JSON") from None
    if not isinstance(doc, dict):
        raise BadParameter(f"invalid {AUTH_HEADER} header: not a JSON object")
    username, password = str(doc.get("username") or ""), str(doc.get("password") or "")
    if not username and doc.get("auth"):
        try:
            username, _, password = base64.b64decode(str(doc["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise BadParameter(f"invalid {AUTH_HEADER} header: 'auth' is not base64 of user:password") from None
    if not username and not password:
        return {}
    host = normalise_host(str(doc.get("serveraddress") or default_host))
    return {host: Credentials(username, password)}


def _join(name: str, tag: str) -> str:
    """``fromImage`` + ``tag`` as one reference (the tag may be a digest, as the SDK sends it)."""
    if not tag:
        return name
    return f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"


def _image_id(store: ImageStore, key: str) -> str | None:
    try:
        return store.resolve(key).id
    except ImageNotFound:
        return None


class _PullProgress:
    """Progress of the puller as Docker messages; "Pulling from" waits for the next message."""

    def __init__(self, stream: JsonStream, ref: Reference) -> None:
        self.stream = stream
        self.ref = ref
        self.held: dict[str, Any] | None = None

    def __call__(self, p: Progress) -> None:
        if p.status.startswith("Pulling from"):
            self.held = progress_message(id=self.ref.tag or self.ref.digest, status=p.status)
            return
        if self.held is not None:
            self.stream.emit(self.held)
            self.held = None
        if p.status.startswith("Digest:"):
            self.stream.emit({"status": p.status})
            return
        self.stream.emit(progress_message(id=p.id, status=p.status, current=p.current, total=p.total))


async def pull(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    if request.query.get("fromSrc"):
        raise BadParameter("importing a root filesystem (fromSrc) is not supported")
    name = request.query.get("fromImage", "")
    if not name:
        raise BadParameter("fromImage is required")
    ref = parse_reference(_join(name, request.query.get("tag", "")))
    platform = request.query.get("platform") or None
    creds = credentials_from_header(request.headers.get(AUTH_HEADER), default_host=ref.domain)

    async def work(stream: JsonStream) -> None:
        before = await asyncio.to_thread(_image_id, ctx.store, ref.key())
        report = _PullProgress(stream, ref)
        async with ctx.registry(creds) as client:
            image = await client.pull(str(ref), platform=platform, progress=report)
        if report.held is not None:
            stream.emit(report.held)
        outcome = "Image is up to date for" if before == image.id else "Downloaded newer image for"
        stream.emit({"status": f"Status: {outcome} {ref.familiar()}"})

    return await respond(request, work)


def _tags_of(store: ImageStore, repository: Reference) -> list[str]:
    """Every tag of ``repository`` held locally (``docker push`` without a tag pushes them all)."""
    tags = set()
    for image in store.images():
        for name in image.references:
            ref = parse_reference(name)
            if "@" not in name and ref.repository == repository.repository and ref.tag:
                tags.add(ref.tag)
    return sorted(tags)


def _push_targets(store: ImageStore, name: str, tag: str) -> list[Reference]:
    if tag:
        ref = parse_reference(f"{name}:{tag}")
        if not store.exists(ref.key()):
            raise ImageNotFound(f"An image does not exist locally with the tag: {ref.familiar_repository}")
        return [ref]
    repository = parse_reference(name, default_tag=False)
    if repository.digest is not None:
        raise BadParameter(f"cannot push a digest reference: {name}")
    if repository.tag is not None:
        return _push_targets(store, repository.familiar_repository, repository.tag)
    tags = _tags_of(store, repository)
    if not tags:
        raise ImageNotFound(f"An image does not exist locally with the tag: {repository.familiar_repository}")
    return [repository.with_tag(t) for t in tags]


def _push_progress(stream: JsonStream) -> Callable[[Progress], None]:
    def report(p: Progress) -> None:
        if p.status.startswith("digest:"):
            stream.emit({"status": f"{p.id}: {p.status}"})
        else:
            stream.emit(progress_message(id=p.id, status=p.status, current=p.current, total=p.total))

    return report


async def push(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    name = request.match_info["name"]
    tag = request.query.get("tag", "")
    targets = await asyncio.to_thread(_push_targets, ctx.store, name, tag)
    creds = credentials_from_header(request.headers.get(AUTH_HEADER), default_host=targets[0].domain)

    async def work(stream: JsonStream) -> None:
        stream.emit({"status": f"The push refers to repository [{targets[0].repository}]"})
        async with ctx.registry(creds) as client:
            for ref in targets:
                digest = await client.push(str(ref), progress=_push_progress(stream))
                size = await asyncio.to_thread(ctx.store.blob_size, digest)
                stream.emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": size}})

    return await respond(request, work)
