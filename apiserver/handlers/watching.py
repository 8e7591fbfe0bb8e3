"""WATCH: a chunked HTTP stream of newline-delimited ``{"type", "object"}`` events.

One task pumps storage events into a local queue while the response loop writes them, so the loop
can wake up for bookmarks and the deadline without cancelling the storage iterator. Selector
watches turn MODIFIED into ADDED or DELETED when an object moves into or out of the selection, as
Kubernetes does. Plain JSON frames are encoded once per event and shared by all watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import Any

import orjson
from aiohttp import web

from apiserver import codec, errors, tables
from apiserver.handlers import listing
from apiserver.registry import ResourceType
from apiserver.storage import interface as st
from apiserver.store import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1800.0
BOOKMARK_INTERVAL = 30.0
_QUEUE_SIZE = 1024
_END = object()

_frames: OrderedDict[tuple[int, str, str], bytes] = OrderedDict()
_FRAME_CACHE = 4096


def _frame(event_type: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": event_type, "object": obj}) + b"\n"


def _shared_frame(event: st.Event) -> bytes:
    """The encoded frame of a storage event, memoised: 100 watchers cost one encoding."""
    key = (event.revision, event.key, event.type)
    frame = _frames.get(key)
    if frame is None:
        frame = _frame(event.type, event.obj)
        _frames[key] = frame
        if len(_frames) > _FRAME_CACHE:
            _frames.popitem(last=False)
    return frame


def _expired(revision: int, compacted: int) -> bytes:
    status = errors.gone(f"too old resource version: {revision} ({compacted})").status()
    return _frame("ERROR", status)


def _transform(event: st.Event, selectors: listing.Selectors) -> str | None:
    """The event type this watcher sees, or None to drop the event."""
    if selectors.empty:
        return event.type
    if event.type == "MODIFIED":
        now = selectors.matches(event.obj)
        before = event.prev is not None and selectors.matches(event.prev)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        return "DELETED" if before else None
    return event.type if selectors.matches(event.obj) else None


def _start_revision(query) -> int | None:
    rv = query.get("resourceVersion", "")
    if rv in ("", "0"):
        return None
    try:
        return int(rv)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{rv}"') from None


def _timeout(query) -> float:
    value = query.get("timeoutSeconds")
    if not value:
        return DEFAULT_TIMEOUT
    try:
        return max(0.0, float(value))
    except ValueError:
        raise errors.bad_request(f'invalid value for timeoutSeconds: "{value}"') from None


class _Writer:
    """Frames for one watcher: plain JSON, or one-row Tables for ``kubectl get -w``."""

    def __init__(self, rt: ResourceType, *, table: bool) -> None:
        self.rt = rt
        self.table = table
        self.sent_columns = False

    def encode(self, event_type: str, obj: dict[str, Any], event: st.Event | None = None) -> bytes:
        if not self.table:
            if event is not None and event_type == event.type:
                return _shared_frame(event)
            return _frame(event_type, obj)
        body = tables.row_table(self.rt.printer, obj)
        if self.sent_columns:
            body.pop("columnDefinitions", None)
        self.sent_columns = True
        return _frame(event_type, body)

    def bookmark(self, revision: int, *, initial_end: bool = False) -> bytes:
        md: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _frame("BOOKMARK", {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": md})


async def serve(request: web.Request, store: ObjectStore, rt: ResourceType, namespace: str | None,
                selectors: listing.Selectors) -> web.StreamResponse:
    query = request.query
    start = _start_revision(query)
    deadline = asyncio.get_running_loop().time() + _timeout(query)
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    send_initial = query.get("sendInitialEvents") == "true" or start is None
    table = codec.wants_table(request.headers.get("Accept"))
    writer = _Writer(rt, table=table)

    response = web.StreamResponse(headers={"Content-Type": codec.JSON, "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    if send_initial:
        page = await listing.list_objects(store, rt, namespace, selectors)
        for obj in page.items:
            await response.write(writer.encode("ADDED", obj))
        if start is not None and start > page.revision:
            page.revision = start
        start = page.revision
        if query.get("sendInitialEvents") == "true" and bookmarks:
            await response.write(writer.bookmark(start, initial_end=True))
    assert start is not None

    queue: asyncio.Queue[Any] = asyncio.Queue(_QUEUE_SIZE)
    pump = asyncio.create_task(_pump(store, rt, namespace, start, queue))
    last = start
    try:
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(queue.get(), min(remaining, BOOKMARK_INTERVAL))
            except TimeoutError:
                if bookmarks and remaining > BOOKMARK_INTERVAL:
                    await response.write(writer.bookmark(last))
                continue
            if item is _END:
                break
            if isinstance(item, bytes):
                await response.write(item)
                break
            event: st.Event = item
            last = event.revision
            event_type = _transform(event, selectors)
            if event_type is not None:
                await response.write(writer.encode(event_type, event.obj, event))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response


async def _pump(store: ObjectStore, rt: ResourceType, namespace: str | None, start: int,
                queue: asyncio.Queue[Any]) -> None:
    try:
        async for event in store.watch(rt, namespace, start):
            await queue.put(event)
    except st.WatchOverflow:
        log.info("watch of %s fell behind; ending its stream", rt.plural)
    except st.Compacted as exc:
        await queue.put(_expired(exc.revision, exc.compacted))
        return
    except st.StorageError as exc:
        log.warning("watch of %s ended: %s", rt.plural, exc)
    await queue.put(_END)
