"""Watches of the etcd backend: one etcd watch stream per call, resumed across etcd failures.

A watch asks etcd for every change under the prefix from ``revision`` itself (not ``revision + 1``:
etcd must still hold ``revision`` for the contract's "Compacted if older than the kept history",
so etcd answers compacted exactly when the contract says so) and drops the events at ``revision``;
with ``prev_kv``, DELETED events carry the last state and MODIFIED ones the previous state. When the stream breaks
(etcd restarted, the member went away, the connection dropped) it is opened again from the last
event delivered (whose events are dropped again), so the consumer sees each event exactly once and in order, as long
as etcd still has that history; if it does not (compacted meanwhile) the watch ends with
:class:`~apiserver.storage.interface.Compacted` and the consumer re-lists. A store that went back in
time (a different etcd behind the same address) is reported the same way. Retries back off up to a
second and give up with :class:`~apiserver.storage.interface.Unavailable` after ``retry_timeout``
seconds without a working stream.

etcd's progress notifications are not requested: etcd before 3.4.24 may send one ahead of events a
watcher has not received yet, and resuming from it would skip them; the last event's revision is
always a safe resume point. etcd never splits one revision's events over two responses (no
``fragment``), so resuming between responses cannot lose part of a revision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from apiserver.storage import codec, interface
from apiserver.storage.etcd_channel import classify, describe_error
from apiserver.storage.etcd_proto import rpc_pb2 as pb
from apiserver.storage.etcd_proto import rpc_pb2_grpc as rpc

log = logging.getLogger(__name__)

_DELETE = pb.Event.DELETE


class WatchStreams:
    """The open watch calls of one etcd storage, so that closing it ends them all."""

    def __init__(self, channel: grpc.aio.Channel, *, namespace: str, retry_timeout: float,
                 max_backoff: float = 1.0) -> None:
        self._stub = rpc.WatchStub(channel)
        self._namespace = namespace
        self._retry_timeout = retry_timeout
        self._max_backoff = max_backoff
        self._calls: set[grpc.aio.StreamStreamCall] = set()
        self._closed = False

    def close(self) -> None:
        self._closed = True
        for call in list(self._calls):
            call.cancel()
        self._calls.clear()

    async def watch(self, prefix: str, revision: int) -> AsyncIterator[interface.Event]:
        """Events under ``prefix`` after ``revision``; see the module docstring."""
        key = (self._namespace + prefix).encode() or b"\0"
        sent = revision
        failing_since: float | None = None
        backoff = 0.1
        while not self._closed:
            floor = sent  # this stream re-sends the events at ``sent``: skip them
            call = self._stub.Watch()
            self._calls.add(call)
            problem = "stream ended"
            try:
                await call.write(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                    key=key, range_end=range_end(key), start_revision=max(sent, 1), prev_kv=True)))
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        break
                    if response.compact_revision:
                        raise interface.Compacted(revision=sent, compacted=response.compact_revision)
                    if response.canceled:
                        problem = f"cancelled by etcd: {response.cancel_reason or 'no reason given'}"
                        break
                    if response.created:
                        if response.header.revision < sent:
                            raise interface.Compacted(revision=sent, compacted=response.header.revision)
                        failing_since, backoff = None, 0.1
                    for event in response.events:
                        if event.kv.mod_revision > floor:
                            yield self._convert(event, sent)
                            sent = event.kv.mod_revision
            except grpc.aio.AioRpcError as exc:
                if classify(exc) == "compacted":
                    raise interface.Compacted(revision=sent, compacted=sent + 1) from None
                problem = describe_error(exc)
            except asyncio.CancelledError:
                if self._closed and not _being_cancelled():
                    return
                raise
            finally:
                self._calls.discard(call)
                call.cancel()
            if self._closed:
                return
            now = time.monotonic()
            failing_since = failing_since if failing_since is not None else now
            if now - failing_since > self._retry_timeout:
                raise interface.Unavailable(f"etcd watch of {prefix} failed for {now - failing_since:.1f}s: {problem}")
            log.info("etcd watch of %s interrupted after revision %d (%s); resuming", prefix, sent, problem)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _convert(self, event: pb.Event, after: int) -> interface.Event:
        kv = event.kv
        key = kv.key.decode()[len(self._namespace):]
        has_prev = event.HasField("prev_kv")
        prev = codec.decode(event.prev_kv.value, event.prev_kv.mod_revision) if has_prev else None
        if event.type == _DELETE:
            if not has_prev:  # its last state was compacted away: the watcher must re-list
                raise interface.Compacted(revision=after, compacted=kv.mod_revision)
            obj = codec.decode(event.prev_kv.value, kv.mod_revision)
            return interface.Event("DELETED", key, obj, kv.mod_revision, prev)
        obj = codec.decode(kv.value, kv.mod_revision)
        if kv.create_revision == kv.mod_revision:
            return interface.Event("ADDED", key, obj, kv.mod_revision)
        return interface.Event("MODIFIED", key, obj, kv.mod_revision, prev)


def range_end(prefix: bytes) -> bytes:
    """The end of etcd's key range of everything starting with ``prefix`` (b"\\0": no end)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\0"
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
