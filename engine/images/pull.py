"""Pulling an image from a registry into the store (``docker pull``).

Order matters for safety: resolve the manifest (picking our platform from an index), fetch the
config, then download every layer (each blob exactly once even when several pulls want it: the
download is shared through ``store.inflight``) and unpack it into its snapshot as soon as it lands,
and only then reference the image. Everything is digest-checked: manifests against the digest
asked for or announced, blobs against their descriptor, unpacked layers against the config's
diff_ids. On any failure the blobs and snapshots this pull created are deleted again (unless
another operation holds them), so the store is as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.images import manifest as mf
from engine.images import mediatypes as mt
from engine.images.digest import sha256_of, short_id
from engine.images.errors import DigestMismatch
from engine.images.reference import Reference, parse_reference
from engine.images.snapshots import chain_ids
from engine.images.store import Image, ImageStore
from engine.images.transport import Transport, pull_scope, read_limited

WRITE_CHUNK = 1 << 20


@dataclass(frozen=True)
class Progress:
    """One progress line, as ``docker pull/push`` print them (id is a short digest or a name)."""

    id: str
    status: str
    current: int = 0
    total: int = 0


ProgressFn = Callable[[Progress], None]


def _noop(_: Progress) -> None:
    return None


async def fetch_manifest(
    transport: Transport, ref: Reference, obj: str
) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """GET ``manifests/<obj>``: (descriptor, raw bytes, validated document), digest-checked."""
    url = transport.url(ref, f"manifests/{obj}")
    what = f"manifest for {ref.familiar()}"
    async with transport.request(
        "GET", url, ref=ref, scopes=(pull_scope(ref),), what=what, headers={"Accept": mt.MANIFEST_ACCEPT}
    ) as resp:
        body = await read_limited(resp, mf.MAX_DOCUMENT, what=what)
        content_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
        announced = resp.headers.get("Docker-Content-Digest", "")
    digest = sha256_of(body)
    if obj.startswith("sha256:") and digest != obj:
        raise DigestMismatch(f"{what}: digest mismatch: asked for {obj}, content is {digest}")
    if announced.startswith("sha256:") and announced != digest:
        raise DigestMismatch(f"{what}: registry announced {announced}, content is {digest}")
    doc = mf.load_document(body, what=what)
    known = content_type if content_type in mt.INDEX_TYPES | mt.MANIFEST_TYPES | mt.SCHEMA1_TYPES else None
    kind = mf.document_kind(doc, known)
    if kind == "index":
        mf.check_index(doc)
    else:
        mf.check_manifest(doc)
    media = known or doc.get("mediaType") or (mt.OCI_INDEX if kind == "index" else mt.OCI_MANIFEST)
    return {"mediaType": media, "digest": digest, "size": len(body)}, body, doc


async def fetch_blob_bytes(transport: Transport, ref: Reference, desc: dict[str, Any]) -> bytes:
    """A small blob (a config) held in memory and digest-checked."""
    what = f"blob {short_id(desc['digest'])} of {ref.familiar()}"
    url = transport.url(ref, f"blobs/{desc['digest']}")
    async with transport.request("GET", url, ref=ref, scopes=(pull_scope(ref),), what=what) as resp:
        data = await read_limited(resp, max(desc["size"], mf.MAX_DOCUMENT), what=what)
    if sha256_of(data) != desc["digest"]:
        raise DigestMismatch(f"{what}: digest mismatch: content is {sha256_of(data)}")
    return data


class Puller:
    """One ``pull`` call: shares the transport, the store and a download semaphore."""

    def __init__(
        self,
        transport: Transport,
        store: ImageStore,
        *,
        semaphore: asyncio.Semaphore,
        progress: ProgressFn | None = None,
    ) -> None:
        self.transport = transport
        self.store = store
        self.semaphore = semaphore
        self.progress = progress or _noop

    async def pull(self, text: str, *, platform: str | None = None) -> Image:
        ref = parse_reference(text)
        store = self.store
        created: list[str] = []
        with store.lease() as lease:
            try:
                return await self._pull(ref, platform or store.platform, lease, created)
            except BaseException:
                lease.release()
                if created:
                    await asyncio.shield(asyncio.to_thread(store.gc, candidates=created))
                raise

    async def _pull(self, ref: Reference, platform: str, lease: Any, created: list[str]) -> Image:
        store = self.store
        self.progress(Progress(ref.familiar(), f"Pulling from {ref.familiar_repository}"))
        target, body, doc = await fetch_manifest(self.transport, ref, ref.remote_object)
        documents = [(target["digest"], body)]
        lease.add(target["digest"])
        manifest, media = doc, target["mediaType"]
        for _ in range(4):  # an index may (rarely) nest another index
            if mf.document_kind(manifest, media) == "manifest":
                break
            chosen = mf.pick_platform(manifest, platform)
            lease.add(chosen["digest"])
            child, child_body, manifest = await fetch_manifest(self.transport, ref, chosen["digest"])
            media = child["mediaType"]
            documents.append((chosen["digest"], child_body))
        else:
            raise mf.BadDocument(f"image index {target['digest']} nests too deeply")
        config_desc = manifest["config"]
        lease.add(config_desc["digest"])
        if store.has_blob(config_desc["digest"]):
            config_bytes = await asyncio.to_thread(store.read_blob, config_desc["digest"])
        else:
            config_bytes = await fetch_blob_bytes(self.transport, ref, config_desc)
        documents.append((config_desc["digest"], config_bytes))
        config = mf.check_config(mf.load_document(config_bytes, what="image config"), layers=len(manifest["layers"]))
        diff_ids = config["rootfs"]["diff_ids"]
        chains = chain_ids(diff_ids)
        layers = manifest["layers"]
        lease.add(*(layer["digest"] for layer in layers), *chains)
        created.extend(d for d, _ in documents if not store.has_blob(d))
        created.extend(layer["digest"] for layer in layers if not store.has_blob(layer["digest"]))
        created.extend(c for c in chains if not store.snapshots.exists(c))
        async with asyncio.TaskGroup() as group:
            for i, layer in enumerate(layers):
                group.create_task(self._layer(ref, layer, diff_ids[i], chains[i], chains[i - 1] if i else None))
        for digest, data in documents:
            await asyncio.to_thread(store.put_blob, data, expected=digest)
        names = [ref.key()] if ref.digest else [ref.key(), ref.with_digest(target["digest"]).key()]
        image = await asyncio.to_thread(store.add_image, target, names)
        self.progress(Progress(ref.familiar(), f"Digest: {target['digest']}"))
        return image

    async def _layer(self, ref: Reference, desc: dict[str, Any], diff_id: str, chain: str, parent: str | None) -> None:
        store = self.store
        sid = short_id(desc["digest"])
        if store.has_blob(desc["digest"]) and store.snapshots.exists(chain):
            self.progress(Progress(sid, "Already exists"))
            return
        self.progress(Progress(sid, "Pulling fs layer"))
        await self._ensure_blob(ref, desc)
        if not store.snapshots.exists(chain):
            self.progress(Progress(sid, "Extracting", 0, desc["size"]))
            await asyncio.to_thread(
                store.snapshots.unpack, chain_id=chain, diff_id=diff_id, parent=parent, blob=store.blob_path(desc["digest"])
            )
        self.progress(Progress(sid, "Pull complete"))

    async def _ensure_blob(self, ref: Reference, desc: dict[str, Any]) -> None:
        """Download a blob unless present; concurrent callers for one digest share one download."""
        digest = desc["digest"]
        if self.store.has_blob(digest):
            return
        inflight = self.store.inflight
        task = inflight.get(digest)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._download(ref, desc))
            inflight[digest] = task

            def _done(t: asyncio.Task[None]) -> None:
                inflight.pop(digest, None)
                if not t.cancelled():
                    t.exception()  # mark retrieved: waiters may all have gone

            task.add_done_callback(_done)
        await asyncio.shield(task)

    async def _download(self, ref: Reference, desc: dict[str, Any]) -> None:
        digest, total = desc["digest"], desc["size"]
        sid = short_id(digest)
        what = f"blob {sid} of {ref.familiar()}"
        async with self.semaphore:
            url = self.transport.url(ref, f"blobs/{digest}")
            async with self.transport.request("GET", url, ref=ref, scopes=(pull_scope(ref),), what=what) as resp:
                writer = await asyncio.to_thread(self.store.ingest, expected=digest, size=total, what=what)
                pending: asyncio.Future[None] | None = None
                try:
                    buf = bytearray()
                    async for chunk in resp.content.iter_chunked(WRITE_CHUNK):
                        buf += chunk
                        if len(buf) >= WRITE_CHUNK:
                            if pending is not None:
                                await pending
                            pending = asyncio.ensure_future(asyncio.to_thread(writer.write, bytes(buf)))
                            self.progress(Progress(sid, "Downloading", writer.size + len(buf), total))
                            buf.clear()
                    if pending is not None:
                        await pending
                    if buf:
                        await asyncio.to_thread(writer.write, bytes(buf))
                    await asyncio.to_thread(writer.commit)
                except BaseException:
                    if pending is not None:
                        with contextlib.suppress(BaseException):
                            await asyncio.wait([pending])
                    writer.abort()
                    raise
        self.progress(Progress(sid, "Download complete", total, total))
