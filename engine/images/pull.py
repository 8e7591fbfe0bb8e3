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
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from engine.images import manifest as mf
from engine.images import mediatypes as mt
from engine.images.digest import sha256_of, short_id
from engine.images.errors import DigestMismatch, ImageError
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


def _leaf(group: BaseExceptionGroup) -> BaseException:
    """The exception to report from a task group: the first image error, else the first error."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return next((e for e in leaves if isinstance(e, ImageError)), leaves[0])


async def run_all(coros: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run coroutines concurrently; the first failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)
    except BaseExceptionGroup as eg:
        raise _leaf(eg) from None


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


@dataclass
class _Download:
    """A blob download shared by every pull that needs it (``store.inflight[digest]``)."""

    task: asyncio.Task[None]
    waiters: int = 0


async def finish_before_cancel(func: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run blocking ``func`` in a thread; if cancelled meanwhile, wait for the thread, then re-raise.

    A thread cannot be stopped, so the caller's clean-up must not start before it is done.
    """
    task = asyncio.ensure_future(asyncio.to_thread(func, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


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
        if config_desc["size"] > mf.MAX_DOCUMENT:
            raise mf.BadDocument(f"image config of {ref.familiar()} is larger than {mf.MAX_DOCUMENT} bytes")
        if not store.has_blob(config_desc["digest"]):
            created.append(config_desc["digest"])
            await self._ensure_blob(ref, config_desc)  # shared with concurrent pulls, like layers
        config_bytes = await asyncio.to_thread(store.read_blob, config_desc["digest"])
        config = mf.check_config(mf.load_document(config_bytes, what="image config"), layers=len(manifest["layers"]))
        diff_ids = config["rootfs"]["diff_ids"]
        chains = chain_ids(diff_ids)
        layers = manifest["layers"]
        lease.add(*(layer["digest"] for layer in layers), *chains)
        created.extend(d for d, _ in documents if not store.has_blob(d))
        created.extend(layer["digest"] for layer in layers if not store.has_blob(layer["digest"]))
        created.extend(c for c in chains if not store.snapshots.exists(c))
        await run_all(
            self._layer(ref, layer, diff_ids[i], chains[i], chains[i - 1] if i else None)
            for i, layer in enumerate(layers)
        )
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
            await finish_before_cancel(
                store.snapshots.unpack,
                chain_id=chain,
                diff_id=diff_id,
                parent=parent,
                blob=store.blob_path(desc["digest"]),
            )
        self.progress(Progress(sid, "Pull complete"))

    async def _ensure_blob(self, ref: Reference, desc: dict[str, Any]) -> None:
        """Download a blob unless present; concurrent callers for one digest share one download,
        which is cancelled (and its temp file removed) only when its last waiter gives up."""
        digest = desc["digest"]
        if self.store.has_blob(digest):
            return
        inflight: dict[str, _Download] = self.store.inflight
        entry = inflight.get(digest)
        if entry is None:
            entry = _Download(asyncio.get_running_loop().create_task(self._download(ref, desc)))
            inflight[digest] = entry

            def _done(t: asyncio.Task[None]) -> None:
                inflight.pop(digest, None)
                if not t.cancelled():
                    t.exception()  # mark retrieved: waiters may all have gone

            entry.task.add_done_callback(_done)
        entry.waiters += 1
        try:
            await asyncio.shield(entry.task)
        except asyncio.CancelledError:
            if entry.waiters == 1 and not entry.task.done():
                entry.task.cancel()
                await asyncio.wait([entry.task])
            raise
        finally:
            entry.waiters -= 1

    async def _download(self, ref: Reference, desc: dict[str, Any]) -> None:
        digest, total = desc["digest"], desc["size"]
        sid = short_id(digest)
        what = f"blob {sid} of {ref.familiar()}"
        async with self.semaphore:
            url = self.transport.url(ref, f"blobs/{digest}")
            async with self.transport.request("GET", url, ref=ref, scopes=(pull_scope(ref),), what=what) as resp:
                # creating the temp file is a quick metadata op; a thread hop here could leak it on cancel
                writer = self.store.ingest(expected=digest, size=total, what=what)
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
                        await finish_before_cancel(writer.write, data=bytes(buf))
                    await finish_before_cancel(writer.commit)
                except BaseException:
                    if pending is not None:
                        with contextlib.suppress(BaseException):
                            await asyncio.wait([pending])
                    writer.abort()
                    raise
        self.progress(Progress(sid, "Download complete", total, total))
