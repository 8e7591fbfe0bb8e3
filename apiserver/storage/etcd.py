"""The etcd v3 backend: the storage contract on a real etcd, for several API servers at once.

Each contract operation is one etcd request over gRPC (stubs generated from ``etcd_proto``):

* get / list — ``Range`` (linearizable): a prefix is the key range ``[prefix, prefix+1)``, a page is
  ``limit`` keys after ``start_after``, a past state is ``revision=``; a list without a limit is
  read in pages of ``LIST_CHUNK`` at one revision. An object's revision is its ``mod_revision``.
* create / update / delete — one ``Txn`` each, compare-and-swap on the key: create requires
  ``create_revision == 0`` (absent), update and a checked delete ``mod_revision == expected``; on
  a mismatch the same transaction reads the key back, so a conflict costs one round trip and
  reports the current state. The transaction's header revision is the write's revision.
* TTL — a fresh lease per write (``LeaseGrant``) attached to the put, so each expiry is its own
  revision with its own DELETED event (shared leases would delete several keys in one revision,
  which the one-event-per-revision contract does not allow).
* watch — :mod:`etcd_watch` (one etcd watch stream per call, resumed across failures).
* compact — ``Compact``; optional periodic compaction like the SQLite backend's.
* current_revision — a linearizable ``Range`` of one absent key. Calls arriving while one is in
  flight share the next one (started after they arrived), so a burst of consistent reads through
  the watch cache costs a few etcd round trips, not one each.

Errors: etcd's "compacted" / "future revision" become Compacted / FutureRevision, an object over
etcd's request limit InvalidObject, and everything else — etcd down, no leader, timeouts — is
:class:`~apiserver.storage.interface.Unavailable` (HTTP 503); a write whose answer was lost may
have happened, as with any remote store. Values are the JSON bytes of ``codec``, so etcd's own
tools can read them. ``EtcdConfig.prefix`` is prepended to every key on the wire only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc

from apiserver.storage import codec, interface
from apiserver.storage.etcd_channel import EtcdConfig, classify, describe_error, open_channel
from apiserver.storage.etcd_proto import rpc_pb2 as pb
from apiserver.storage.etcd_proto import rpc_pb2_grpc as rpc
from apiserver.storage.etcd_watch import WatchStreams, range_end

log = logging.getLogger(__name__)

#: keys per Range when a list has no limit (bounds the size of one etcd reply)
LIST_CHUNK = 5_000

_Reply = TypeVar("_Reply")
_MOD = pb.Compare.MOD
_CREATE = pb.Compare.CREATE
_EQUAL = pb.Compare.EQUAL
_GREATER = pb.Compare.GREATER


class EtcdStorage:
    """Storage in etcd. See the module docstring."""

    def __init__(self, config: EtcdConfig, *, dial_timeout: float = 5.0, request_timeout: float = 10.0,
                 watch_retry_timeout: float = 60.0, compact_interval: float | None = 300.0,
                 compact_keep: int = 1_000) -> None:
        if not config.endpoints:
            raise ValueError("etcd storage needs at least one endpoint")
        self._config = config
        self._ns = config.prefix
        self._dial_timeout = dial_timeout
        self._request_timeout = request_timeout
        self._watch_retry_timeout = watch_retry_timeout
        self._compact_interval = compact_interval
        self._compact_keep = compact_keep
        self._channel: grpc.aio.Channel | None = None
        self._stubs: tuple[rpc.KVStub, rpc.LeaseStub] | None = None  # set while open
        self._watches: WatchStreams | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._revision = 0  # the newest revision seen (for logs and periodic compaction)
        self._compacted = 0
        self._probe_next: asyncio.Future[int] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._open = False

    def __repr__(self) -> str:
        return f"EtcdStorage({self._config.describe()!r})"

    # ---- lifetime

    async def start(self) -> None:
        """Connect and check etcd answers within ``dial_timeout`` (Unavailable otherwise)."""
        if self._open:
            return
        channel = await open_channel(self._config)
        try:
            status = await self._first_status(channel)
        except BaseException:
            await channel.close()
            raise
        self._channel = channel
        self._stubs = (rpc.KVStub(channel), rpc.LeaseStub(channel))
        self._watches = WatchStreams(channel, namespace=self._ns, retry_timeout=self._watch_retry_timeout)
        self._revision = status.header.revision
        self._open = True
        if self._compact_interval:
            self._tasks.append(asyncio.create_task(self._compact_loop(self._compact_interval),
                                                   name=f"{self!r}:auto-compact"))
        log.info("etcd storage %s (etcd %s) open at revision %d",
                 self._config.describe(), status.version, self._revision)

    async def _first_status(self, channel: grpc.aio.Channel) -> pb.StatusResponse:
        """etcd's Status, retried until ``dial_timeout`` (etcd may still be starting)."""
        stub = rpc.MaintenanceStub(channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._dial_timeout
        problem = f"no answer within {self._dial_timeout:g}s"
        while (remaining := deadline - loop.time()) > 0:
            try:
                return await stub.Status(pb.StatusRequest(), timeout=remaining)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    problem = describe_error(exc)
            await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))
        raise interface.Unavailable(f"cannot reach etcd at {self._config.describe()}: {problem}")

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._stubs = None
        for task in [*self._tasks, self._probe_task]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
        if self._probe_next is not None:
            _fail(self._probe_next, interface.Unavailable(f"{self!r} closed"))
            self._probe_next = None
        assert self._watches is not None and self._channel is not None
        self._watches.close()
        await self._channel.close()
        log.info("etcd storage %s closed at revision %d", self._config.describe(), self._revision)

    def _check_open(self) -> None:
        if not self._open:
            raise interface.Unavailable(f"{self!r} is not open")

    @property
    def _kv(self) -> rpc.KVStub:
        if self._stubs is None:
            raise interface.Unavailable(f"{self!r} is not open")
        return self._stubs[0]

    @property
    def _lease(self) -> rpc.LeaseStub:
        if self._stubs is None:
            raise interface.Unavailable(f"{self!r} is not open")
        return self._stubs[1]

    async def _call(self, method: Callable[..., Awaitable[_Reply]], request: object, *,
                    revision: int = 0) -> _Reply:
        """One unary call; etcd's errors become the contract's (``revision``: what was asked for)."""
        self._check_open()
        try:
            reply = await method(request, timeout=self._request_timeout)
        except grpc.aio.AioRpcError as exc:
            raise await self._error(exc, revision) from None
        self._revision = max(self._revision, reply.header.revision)  # type: ignore[attr-defined]
        return reply

    async def _error(self, exc: grpc.aio.AioRpcError, revision: int) -> interface.StorageError:
        kind = classify(exc)
        if kind == "compacted":
            return interface.Compacted(revision=revision, compacted=await self._compacted_since(revision))
        if kind == "future":
            with contextlib.suppress(interface.StorageError):
                await self.current_revision()
            return interface.FutureRevision(revision=revision, current=self._revision)
        if kind == "too_large":
            return interface.InvalidObject(f"object too large for etcd: {describe_error(exc)}")
        return interface.Unavailable(f"etcd at {self._config.describe()}: {describe_error(exc)}")

    async def _compacted_since(self, revision: int) -> int:
        """etcd's compacted revision: a watch from ``revision`` answers it (Range errors do not)."""
        assert self._channel is not None
        call = rpc.WatchStub(self._channel).Watch()
        try:
            key = (self._ns + "\0").encode()
            await call.write(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=key, start_revision=revision)))
            async with asyncio.timeout(self._request_timeout):
                for _ in range(2):  # "created", then "cancelled" with the compact revision
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        break
                    if response.compact_revision:
                        self._compacted = max(self._compacted, response.compact_revision)
                        break
        except (grpc.aio.AioRpcError, TimeoutError):
            pass
        finally:
            call.cancel()
        return max(self._compacted, revision + 1)

    # ---- keys

    def _wire(self, key: str) -> bytes:
        return (self._ns + key).encode()

    def _decode(self, kv: pb.KeyValue) -> dict:
        try:
            return codec.decode(kv.value, kv.mod_revision)
        except ValueError:
            raise interface.StorageError(f"etcd key {kv.key!r} does not hold a JSON object") from None

    # ---- reads

    async def current_revision(self) -> int:
        self._check_open()
        if self._probe_next is None:
            self._probe_next = asyncio.get_running_loop().create_future()
            if self._probe_task is None or self._probe_task.done():
                self._probe_task = asyncio.create_task(self._probe(), name=f"{self!r}:revision")
        return await asyncio.shield(self._probe_next)

    async def _probe(self) -> None:
        """Answer every waiting current_revision() with one Range started after they all came."""
        while (waiting := self._probe_next) is not None:
            self._probe_next = None
            try:
                reply = await self._call(self._kv.Range, pb.RangeRequest(key=self._wire("\0"), keys_only=True))
            except interface.StorageError as exc:
                _fail(waiting, exc)
            except asyncio.CancelledError:  # closing
                _fail(waiting, interface.Unavailable(f"{self!r} closed"))
                raise
            else:
                waiting.set_result(reply.header.revision)

    async def get(self, key: str) -> dict:
        reply = await self._call(self._kv.Range, pb.RangeRequest(key=self._wire(codec.check_key(key))))
        if not reply.kvs:
            raise interface.KeyNotFound(key)
        return self._decode(reply.kvs[0])

    async def list(self, prefix: str, *, limit: int = 0, start_after: str | None = None,
                   revision: int | None = None) -> interface.ListResult:
        codec.check_prefix(prefix)
        codec.check_limit(limit)
        if start_after is not None:
            codec.check_prefix(start_after)
        if revision is not None:
            codec.check_revision(revision)
            if revision == 0:  # before the first write: nothing, unless history is gone
                if self._compacted:
                    raise interface.Compacted(revision=0, compacted=self._compacted)
                return interface.ListResult([], 0)
        self._check_open()
        wire_prefix = self._wire(prefix)
        start = wire_prefix
        if start_after is not None:
            start = max(start, self._wire(start_after) + b"\0")
        end = range_end(wire_prefix)
        items: list[dict] = []
        keys: list[str] = []
        at = revision or 0
        skip = len(self._ns)
        while True:
            page = min(limit - len(items), LIST_CHUNK) if limit else LIST_CHUNK
            reply = await self._call(self._kv.Range, pb.RangeRequest(
                key=start, range_end=end, limit=page, revision=at), revision=at)
            at = at or reply.header.revision
            for kv in reply.kvs:
                keys.append(kv.key.decode()[skip:])
                items.append(self._decode(kv))
            if not reply.more or (limit and len(items) >= limit):
                break
            start = reply.kvs[-1].key + b"\0"
        more = bool(limit) and reply.more
        return interface.ListResult(items, at, keys[-1] if more else None, keys)

    # ---- writes

    async def create(self, key: str, obj: dict, *, ttl: int | None = None) -> dict:
        wire, value = self._wire(codec.check_key(key)), codec.encode(obj)
        lease = await self._lease_for(ttl)
        reply = await self._call(self._kv.Txn, pb.TxnRequest(
            compare=[pb.Compare(key=wire, target=_CREATE, result=_EQUAL, create_revision=0)],
            success=[pb.RequestOp(request_put=pb.PutRequest(key=wire, value=value, lease=lease))]))
        if not reply.succeeded:
            raise interface.KeyExists(key)
        return codec.decode(value, reply.header.revision)

    async def update(self, key: str, obj: dict, *, expected_revision: int,
                     ttl: int | None = None) -> dict:
        wire, value = self._wire(codec.check_key(key)), codec.encode(obj)
        expected = codec.check_revision(expected_revision, what="expected_revision")
        lease = await self._lease_for(ttl)
        reply = await self._swap(wire, expected, pb.RequestOp(
            request_put=pb.PutRequest(key=wire, value=value, lease=lease)))
        self._raise_unless_swapped(key, expected, reply)
        return codec.decode(value, reply.header.revision)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> dict:
        wire = self._wire(codec.check_key(key))
        remove = pb.DeleteRangeRequest(key=wire, prev_kv=True)
        if expected_revision is None:
            deleted = await self._call(self._kv.DeleteRange, remove)
            if not deleted.deleted:
                raise interface.KeyNotFound(key)
            return codec.decode(deleted.prev_kvs[0].value, deleted.header.revision)
        expected = codec.check_revision(expected_revision, what="expected_revision")
        reply = await self._swap(wire, expected, pb.RequestOp(request_delete_range=remove))
        self._raise_unless_swapped(key, expected, reply)
        return codec.decode(reply.responses[0].response_delete_range.prev_kvs[0].value, reply.header.revision)

    async def _swap(self, wire: bytes, expected: int, op: pb.RequestOp) -> pb.TxnResponse:
        """``op`` if the key's mod_revision is ``expected``, else read the key in the same Txn."""
        compare = [pb.Compare(key=wire, target=_MOD, result=_EQUAL, mod_revision=expected)]
        if expected == 0:  # an absent key has mod_revision 0 too: require presence
            compare.append(pb.Compare(key=wire, target=_CREATE, result=_GREATER, create_revision=0))
        return await self._call(self._kv.Txn, pb.TxnRequest(
            compare=compare, success=[op], failure=[pb.RequestOp(request_range=pb.RangeRequest(key=wire))]))

    def _raise_unless_swapped(self, key: str, expected: int, reply: pb.TxnResponse) -> None:
        if reply.succeeded:
            return
        found = reply.responses[0].response_range.kvs
        if not found:
            raise interface.KeyNotFound(key)
        raise interface.RevisionConflict(key, expected=expected, current=self._decode(found[0]))

    async def _lease_for(self, ttl: object) -> int:
        """A new lease of ``ttl`` seconds (rounded up; etcd may raise it to its minimum), or 0."""
        seconds = codec.check_ttl(ttl)
        if seconds is None:
            return 0
        granted = await self._call(self._lease.LeaseGrant,
                                   pb.LeaseGrantRequest(TTL=max(1, math.ceil(seconds))))
        if granted.error:
            raise interface.Unavailable(f"etcd refused a lease: {granted.error}")
        return granted.ID

    # ---- compaction

    async def compact(self, revision: int) -> None:
        codec.check_revision(revision)
        try:
            await self._kv.Compact(pb.CompactionRequest(revision=revision), timeout=self._request_timeout)
        except grpc.aio.AioRpcError as exc:
            if classify(exc) != "compacted":  # that one: already compacted at least that far
                raise await self._error(exc, revision) from None
        self._compacted = max(self._compacted, revision)
        log.info("compacted etcd %s to revision %d", self._config.describe(), revision)

    async def _compact_loop(self, interval: float) -> None:
        """Every ``interval``, compact to the revision seen one interval ago (keeping compact_keep)."""
        seen = self._revision
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(interface.StorageError):
                await self.current_revision()
            target = min(seen, self._revision - self._compact_keep)
            seen = self._revision
            if target > self._compacted:
                try:
                    await self.compact(target)
                except interface.StorageError as exc:
                    log.warning("periodic compaction to %d failed: %s", target, exc)

    # ---- watch

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[interface.Event]:
        return self._watch(codec.check_prefix(prefix), codec.check_revision(revision))

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[interface.Event]:
        self._check_open()
        assert self._watches is not None
        async for event in self._watches.watch(prefix, revision):
            yield event


def _fail(waiting: asyncio.Future[int], exc: BaseException) -> None:
    """Fail a shared future; marked retrieved, since every caller may have given up already."""
    if not waiting.done():
        waiting.set_exception(exc)
        waiting.exception()
