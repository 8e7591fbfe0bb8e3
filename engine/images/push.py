"""Pushing an image from the store to a registry (``docker push``).

Blobs first (config and layers), manifests last, so the registry never holds a manifest naming a
blob it lacks. Each blob is skipped if the registry has it (HEAD), mounted from another repository
of the same registry that this image came from (cross-repo mount, no data sent) when possible, and
otherwise uploaded: monolithic (POST then PUT) up to ``chunk_size``, chunked (PATCH with
Content-Range, then PUT) above it. An index is pushed as is when every manifest it lists is
stored; otherwise only the manifest for our platform goes. The pushed digest is recorded as a
repo digest of the image, as Docker does.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yarl

from engine.images import manifest as mf
from engine.images.digest import short_id
from engine.images.errors import DigestMismatch, InvalidReference, RegistryError
from engine.images.pull import Progress, ProgressFn, _noop, run_all
from engine.images.reference import Reference, parse_reference
from engine.images.store import Image, ImageStore
from engine.images.transport import Transport, pull_scope, push_scope

READ_CHUNK = 1 << 20
DEFAULT_CHUNK_SIZE = 32 << 20


@dataclass(frozen=True)
class _Doc:
    digest: str
    media_type: str
    data: bytes
    blobs: tuple[dict[str, Any], ...]  # config + layers (empty for an index)


def _plan(store: ImageStore, image: Image) -> list[_Doc]:
    """Documents to push, children before parents; blocking (reads the store)."""
    manifest_doc = _Doc(
        image.manifest_digest,
        image.manifest.get("mediaType") or image.target["mediaType"],
        store.read_blob(image.manifest_digest),
        (image.manifest["config"], *image.layers),
    )
    if image.target["digest"] == image.manifest_digest:
        return [manifest_doc]
    index = store.document(image.target["digest"])
    children: list[_Doc] = []
    for entry in index.get("manifests", []):
        digest = entry["digest"]
        if not store.has_blob(digest):
            return [manifest_doc]
        doc = store.document(digest)
        if mf.document_kind(doc, entry.get("mediaType")) != "manifest":
            return [manifest_doc]
        blobs = (doc["config"], *doc["layers"])
        if not all(store.has_blob(b["digest"]) for b in blobs):
            return [manifest_doc]
        children.append(
            _Doc(digest, entry.get("mediaType") or doc.get("mediaType", ""), store.read_blob(digest), blobs)
        )
    return [
        *children,
        _Doc(image.target["digest"], image.target["mediaType"], store.read_blob(image.target["digest"]), ()),
    ]


def _with_query(location: str, base: yarl.URL, **params: str) -> yarl.URL:
    """An upload Location (maybe relative, with opaque state) plus query params, never re-encoded."""
    absolute = urllib.parse.urljoin(str(base), location)
    extra = urllib.parse.urlencode(params)
    if extra:
        absolute += ("&" if "?" in absolute else "?") + extra
    return yarl.URL(absolute, encoded=True)


async def _file_chunks(path: Path, *, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(f.seek, offset)
        left = length
        while left is None or left > 0:
            data = await asyncio.to_thread(f.read, READ_CHUNK if left is None else min(READ_CHUNK, left))
            if not data:
                break
            if left is not None:
                left -= len(data)
            yield data
    finally:
        f.close()


class Pusher:
    """One ``push`` call."""

    def __init__(
        self,
        transport: Transport,
        store: ImageStore,
        *,
        semaphore: asyncio.Semaphore,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: ProgressFn | None = None,
    ) -> None:
        self.transport = transport
        self.store = store
        self.semaphore = semaphore
        self.chunk_size = chunk_size
        self.progress = progress or _noop

    async def push(self, source: str, *, dest: str | None = None) -> str:
        """Push the local image ``source`` as ``dest`` (default: ``source``); returns the pushed digest."""
        image = await asyncio.to_thread(self.store.resolve, source)
        ref = parse_reference(dest or source)
        mount_from = self._mount_sources(image, ref)
        scopes = (push_scope(ref), *(pull_scope(Reference(ref.domain, p)) for p in mount_from[:1]))
        with self.store.lease() as lease:
            docs = await asyncio.to_thread(_plan, self.store, image)
            lease.add(*(d.digest for d in docs), *(b["digest"] for d in docs for b in d.blobs))
            if ref.digest is not None and ref.digest != docs[-1].digest:
                raise InvalidReference(f"cannot push {source} as {ref.familiar()}: its digest is {docs[-1].digest}")
            blobs = {b["digest"]: b for d in docs for b in d.blobs}
            await run_all(self._blob(ref, desc, mount_from, scopes) for desc in blobs.values())
            for doc in docs[:-1]:
                await self._put_manifest(ref, doc, doc.digest, scopes)
            top = docs[-1]
            # by digest when one is given (no tag is created), else by tag
            await self._put_manifest(ref, top, ref.digest or ref.tag or "latest", scopes)
        target = {"mediaType": top.media_type, "digest": top.digest, "size": len(top.data)}
        await asyncio.to_thread(self.store.add_image, target, [ref.with_digest(top.digest).key()])
        self.progress(Progress(ref.tag or top.digest, f"digest: {top.digest} size: {len(top.data)}"))
        return top.digest

    @staticmethod
    def _mount_sources(image: Image, ref: Reference) -> list[str]:
        """Other repositories of the same registry this image is known under (mount candidates)."""
        out = []
        for name in image.references:
            other = parse_reference(name)
            if other.domain == ref.domain and other.path != ref.path and other.path not in out:
                out.append(other.path)
        return out

    async def _blob(self, ref: Reference, desc: dict[str, Any], mount_from: list[str], scopes: tuple[str, ...]) -> None:
        digest = desc["digest"]
        sid = short_id(digest)
        async with self.semaphore:
            self.progress(Progress(sid, "Preparing"))
            url = self.transport.url(ref, f"blobs/{digest}")
            async with self.transport.request(
                "HEAD", url, ref=ref, scopes=scopes, what=f"blob {sid}", ok=(200, 404)
            ) as resp:
                exists = resp.status == 200
            if exists:
                self.progress(Progress(sid, "Layer already exists"))
                return
            query = f"?mount={digest}&from={mount_from[0]}" if mount_from else ""
            async with self.transport.request(
                "POST",
                self.transport.url(ref, f"blobs/uploads/{query}"),
                ref=ref,
                scopes=scopes,
                what=f"upload of blob {sid}",
                ok=(201, 202),
            ) as resp:
                if resp.status == 201:
                    self.progress(Progress(sid, f"Mounted from {mount_from[0]}"))
                    return
                location = _with_query(resp.headers.get("Location", ""), resp.url)
            await self._upload(ref, desc, location, scopes)
            self.progress(Progress(sid, "Pushed", desc["size"], desc["size"]))

    async def _upload(self, ref: Reference, desc: dict[str, Any], location: yarl.URL, scopes: tuple[str, ...]) -> None:
        digest, size = desc["digest"], desc["size"]
        sid = short_id(digest)
        path = self.store.blob_path(digest)
        octet = {"Content-Type": "application/octet-stream"}
        if size > self.chunk_size:
            offset = 0
            while offset < size:
                n = min(self.chunk_size, size - offset)
                data = await asyncio.to_thread(_read_range, path, offset, n)
                headers = {**octet, "Content-Range": f"{offset}-{offset + n - 1}", "Content-Length": str(n)}
                async with self.transport.request(
                    "PATCH",
                    location,
                    ref=ref,
                    scopes=scopes,
                    what=f"upload of blob {sid}",
                    headers=headers,
                    body=data,
                    ok=(202,),
                ) as resp:
                    location = _with_query(resp.headers.get("Location", str(location)), resp.url)
                offset += n
                self.progress(Progress(sid, "Pushing", offset, size))
            body: bytes | Callable[[], Any] = b""
            headers = {**octet, "Content-Length": "0"}
        else:
            body = lambda: _file_chunks(path)  # noqa: E731 - a factory, so an auth retry can resend
            headers = {**octet, "Content-Length": str(size)}
        final = _with_query(str(location), location, digest=digest)
        async with self.transport.request(
            "PUT", final, ref=ref, scopes=scopes, what=f"upload of blob {sid}", headers=headers, body=body, ok=(201,)
        ):
            pass

    async def _put_manifest(self, ref: Reference, doc: _Doc, obj: str, scopes: tuple[str, ...]) -> None:
        if not doc.media_type:
            raise RegistryError(f"manifest {doc.digest} has no media type to push it with")
        url = self.transport.url(ref, f"manifests/{obj}")
        async with self.transport.request(
            "PUT",
            url,
            ref=ref,
            scopes=scopes,
            what=f"manifest for {ref.familiar()}",
            headers={"Content-Type": doc.media_type},
            body=doc.data,
            ok=(201,),
        ) as resp:
            announced = resp.headers.get("Docker-Content-Digest", "")
        if announced.startswith("sha256:") and announced != doc.digest:
            raise DigestMismatch(f"registry stored manifest as {announced}, expected {doc.digest}")


def _read_range(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)
