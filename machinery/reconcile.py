"""The reconcile framework every Pinnace controller is written with (kopf-like, internal).

A controller declares the resource it reconciles (its *primary*), the other resources whose events
concern it, and one ``reconcile(key)`` coroutine keyed by ``namespace/name``. The framework runs the
loop client-go controllers share::

    API server --list/watch--> shared Informer (one per resource, across all controllers)
        | on_add / on_update / on_delete
        v
    event -> keys:  a primary object -> its own key;
                    a secondary object -> the key of its controller owner of the declared kind
                    (ownerReferences[controller=true]: a Pod event enqueues its ReplicaSet), or
                    whatever keys a custom mapping returns;
                    creations/deletions of owned objects are also *observed* by the owner's
                    Expectations, so a reconcile never acts twice on its own pending writes
        v
    WorkQueue (deduplicated; one worker per key at a time)
        v
    N workers: reconcile(key) ->  None: done (back-off forgotten)
                                  float: look again after that many seconds (waits no event ends)
                                  raises: retried after a per-key exponential back-off
        ^
        counters (reconciles by result, retries, queue adds) for a Prometheus-style /metrics

Reconcilers read only the caches, and must be level-triggered: given the cached state they compute
what to write, whatever events led there. Workers start only once every informer has listed, so a
reconcile never acts on a half-filled cache. A :class:`LeaderElector` on a coordination.k8s.io/v1
Lease lets several controller-managers run with only one acting.

Only machinery/ is imported here (layers point one way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from machinery.client import ApiClient, ApiError, Conflict, NotFound, Resource, TransportError
from machinery.informer import IndexFunc, Informer, Store, namespace_index, object_key
from machinery.resources import LEASES
from machinery.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
#: maps an event's object to the keys to reconcile
KeyMapper = Callable[[Obj], Iterable[str]]

CONTROLLER_UID_INDEX = "controller-uid"


class Runnable(Protocol):
    """What the controller-manager runs: anything started, synced and stopped as a unit."""

    name: ClassVar[str]

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def wait_synced(self) -> None: ...


# --- object helpers --------------------------------------------------------------------------------

def controller_ref(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference marked ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def controller_uid_index(obj: Obj) -> list[str]:
    """Index function: an object is filed under its controller owner's uid."""
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


def owner_key_mapper(kind: str) -> KeyMapper:
    """Keys of the controller owner of ``kind`` (same namespace, as ownerReferences require)."""
    def keys(obj: Obj) -> list[str]:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind:
            return []
        ns = (obj.get("metadata") or {}).get("namespace")
        return [f"{ns}/{ref['name']}" if ns else str(ref["name"])]
    return keys


def make_controller_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The ownerReference a controller puts on what it creates."""
    md = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


# --- metrics ---------------------------------------------------------------------------------------

class Metrics:
    """Plain Prometheus-style counters (name + labels -> value), rendered in the text format.

    Plain counters rather than prometheus_client: controllers are built and rebuilt per run, and a
    process-global registry would refuse the second registration.
    """

    def __init__(self) -> None:
        self._values: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._values[(name, tuple(sorted(labels.items())))] += amount

    def value(self, name: str, **labels: str) -> float:
        return self._values[(name, tuple(sorted(labels.items())))]

    def render(self) -> str:
        """The Prometheus text exposition of every counter."""
        lines: list[str] = []
        for name in sorted({n for n, _ in self._values}):
            lines.append(f"# TYPE {name} counter")
            for (n, labels), value in sorted(self._values.items()):
                if n == name:
                    text = ",".join(f'{k}="{v}"' for k, v in labels)
                    lines.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


# --- expectations ----------------------------------------------------------------------------------

@dataclass
class _Expected:
    creations: int = 0
    deletions: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    """Writes a controller made but has not yet seen in its cache, per owner key.

    Until every expected creation and deletion is observed (or ``ttl`` seconds pass, in case an event
    was lost), the owner's cached view is known to be behind, so it must not create or delete again:
    that is what keeps a ReplicaSet from creating its missing pods twice.
    """

    def __init__(self, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._items: dict[str, _Expected] = {}

    def expect_creations(self, key: str, count: int) -> None:
        item = self._items.setdefault(key, _Expected())
        item.creations += count
        item.since = self._clock()

    def expect_deletions(self, key: str, uids: Iterable[str]) -> None:
        item = self._items.setdefault(key, _Expected())
        item.deletions.update(uids)
        item.since = self._clock()

    def creation_observed(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None and item.creations > 0:
            item.creations -= 1

    def deletion_observed(self, key: str, uid: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item.deletions.discard(uid)

    def satisfied(self, key: str) -> bool:
        item = self._items.get(key)
        if item is None or (item.creations <= 0 and not item.deletions):
            return True
        return self._clock() - item.since > self.ttl

    def forget(self, key: str) -> None:
        self._items.pop(key, None)


# --- shared informers ------------------------------------------------------------------------------

class SharedInformers:
    """One informer per resource for every controller of a manager, started while anyone uses it.

    Index functions are merged while an informer has not started yet (all controllers are built
    before any starts); asking a running informer for an index it lacks is a ValueError.
    """

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._informers: dict[Resource, Informer] = {}
        self._users: Counter[Resource] = Counter()

    def informer(self, res: Resource, *, indexers: Mapping[str, IndexFunc] | None = None) -> Informer:
        wanted = {CONTROLLER_UID_INDEX: controller_uid_index, **(indexers or {})}
        informer = self._informers.get(res)
        if informer is None:
            informer = Informer(self.client, res, indexers=wanted)
            self._informers[res] = informer
            return informer
        have = _index_names(informer.store)
        missing = {name: fn for name, fn in wanted.items() if name not in have}
        if missing:
            if informer.has_synced or self._users[res]:
                raise ValueError(f"informer of {res.plural} already runs without index {sorted(missing)}")
            informer.store = Store({**informer.store._indexers, **missing})  # empty until it starts
        return informer

    def acquire(self, res: Resource) -> Informer:
        """Count one more user of ``res``'s informer and make sure it runs."""
        informer = self.informer(res)
        self._users[res] += 1
        informer.start()
        return informer

    async def release(self, res: Resource) -> None:
        """One user less; the last one stops the informer."""
        self._users[res] -= 1
        if self._users[res] <= 0:
            del self._users[res]
            informer = self._informers.pop(res, None)
            if informer is not None:
                await informer.stop()

    def running(self) -> list[Resource]:
        return list(self._users)


def _index_names(store: Store) -> set[str]:
    return set(store._indexers)


# --- the controller base ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Watch:
    res: Resource
    keys: KeyMapper
    observe: bool  # creations/deletions are expectations of the mapped keys


class Reconciler:
    """Base of a controller: declare watches in ``__init__``, implement ``reconcile(key)``.

    ``self.primary`` is the informer of the reconciled resource; ``self.cache(res)`` any watched one.
    """

    name: ClassVar[str] = "reconciler"
    #: the resource reconciled; its events enqueue the object's own key
    primary_resource: ClassVar[Resource]
    workers: ClassVar[int] = 4
    sync_timeout: ClassVar[float] = 30.0

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None,
                 metrics: Metrics | None = None, base_delay: float = 0.05, max_delay: float = 30.0) -> None:
        self.client = client
        self.shared = informers or SharedInformers(client)
        self.metrics = metrics or Metrics()
        self.expectations = Expectations()
        self.queue: WorkQueue[str] = WorkQueue(base_delay=base_delay, max_delay=max_delay, name=self.name)
        self._watches: list[_Watch] = []
        self._acquired: list[Resource] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._synced = asyncio.Event()
        self._used = False
        self.primary = self.watch(self.primary_resource, keys=lambda obj: [object_key(obj)])

    # -- declaring ----------------------------------------------------------------------------------

    def watch(self, res: Resource, *, keys: KeyMapper | None = None, owner_kind: str | None = None,
              indexers: Mapping[str, IndexFunc] | None = None) -> Informer:
        """Follow ``res``: its events enqueue ``keys(obj)``, or the controller owner of ``owner_kind``
        (whose expectations then observe the creations and deletions)."""
        if (keys is None) == (owner_kind is None):
            raise ValueError("watch: give exactly one of keys= and owner_kind=")
        mapper = keys if keys is not None else owner_key_mapper(str(owner_kind))
        informer = self.shared.informer(res, indexers={"namespace": namespace_index, **(indexers or {})})
        self._watches.append(_Watch(res, mapper, observe=owner_kind is not None))
        return informer

    def cache(self, res: Resource) -> Informer:
        return self.shared.informer(res)

    # -- the loop -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    def enqueue(self, key: str, *, after: float = 0.0) -> None:
        self.metrics.inc("pinnace_workqueue_adds_total", controller=self.name)
        self.queue.add_after(key, after)

    async def start(self) -> None:
        if self._used:
            raise RuntimeError(f"{self.name}: a controller runs once; build a new one to run again")
        self._used = True
        for w in self._watches:
            informer = self.shared.informer(w.res)
            informer.add_handler(on_add=self._on_add(w), on_update=self._on_update(w),
                                 on_delete=self._on_delete(w))
        for res in dict.fromkeys(w.res for w in self._watches):
            self.shared.acquire(res)
            self._acquired.append(res)
        waits = [asyncio.ensure_future(self.shared.informer(r).wait_synced()) for r in self._acquired]
        _, pending = await asyncio.wait(waits, timeout=self.sync_timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%s: caches not synced after %.0fs; starting anyway", self.name, self.sync_timeout)
        self._tasks = [asyncio.create_task(self._work(), name=f"{self.name}-{i}") for i in range(self.workers)]
        self._synced.set()

    async def stop(self) -> None:
        self.queue.shutdown()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        acquired, self._acquired = self._acquired, []
        for res in acquired:
            await self.shared.release(res)
        self._synced.clear()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                again = await self.reconcile(key)
            except (ApiError, TransportError) as e:
                self._failed(key, e, traceback=False)
            except Exception as e:
                self._failed(key, e, traceback=True)
            else:
                self.metrics.inc("pinnace_reconcile_total", controller=self.name, result="success")
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, max(again, 0.0))
            finally:
                self.queue.done(key)

    def _failed(self, key: str, err: Exception, *, traceback: bool) -> None:
        self.metrics.inc("pinnace_reconcile_total", controller=self.name, result="error")
        self.metrics.inc("pinnace_reconcile_retries_total", controller=self.name)
        if traceback:
            log.exception("%s: reconciling %s failed; retrying", self.name, key)
        else:
            log.info("%s: %s: %s; retrying", self.name, key, err)
        self.queue.add_rate_limited(key)

    # -- events -> keys -----------------------------------------------------------------------------

    def _on_add(self, w: _Watch) -> Callable[[Obj], None]:
        def handle(obj: Obj) -> None:
            for key in w.keys(obj):
                if w.observe:
                    self.expectations.creation_observed(key)
                self.enqueue(key)
        return handle

    def _on_update(self, w: _Watch) -> Callable[[Obj, Obj], None]:
        def handle(old: Obj, new: Obj) -> None:
            new_keys = list(w.keys(new))
            for key in dict.fromkeys([*w.keys(old), *new_keys]):
                self.enqueue(key)
            if w.observe and is_deleting(new) and not is_deleting(old):
                for key in new_keys:
                    self.expectations.deletion_observed(key, uid_of(new))
        return handle

    def _on_delete(self, w: _Watch) -> Callable[[Obj], None]:
        def handle(obj: Obj) -> None:
            for key in w.keys(obj):
                if w.observe:
                    self.expectations.deletion_observed(key, uid_of(obj))
                self.enqueue(key)
        return handle


# --- leader election -------------------------------------------------------------------------------

def micro_time(epoch: float) -> str:
    """metav1.MicroTime as Kubernetes writes it."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}_{os.urandom(4).hex()}"


class LeaderElector:
    """Holds a coordination.k8s.io/v1 Lease while leading, as client-go's leaderelection does.

    A lease is free when it has no holder or its ``renewTime + leaseDurationSeconds`` is past (all
    components share one host clock here). Writes are compare-and-swap on resourceVersion, so two
    candidates can never both win. ``run`` calls ``on_start`` on winning and ``on_stop`` when the
    lease could not be renewed within ``renew_deadline``, then competes again.
    """

    def __init__(self, client: ApiClient, *, name: str, namespace: str = "kube-system",
                 identity: str | None = None, lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0) -> None:
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.leading = asyncio.Event()

    async def try_acquire(self) -> bool:
        """One attempt to take or renew the lease; True when this candidate holds it now."""
        now = time.time()
        try:
            lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(now, acquired=now, transitions=0)}
            try:
                await self.client.create(LEASES, body, namespace=self.namespace)
            except ApiError:
                return False
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not _expired(spec, now):
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            acquired = parse_micro_time(spec["acquireTime"]) if spec.get("acquireTime") else now
        else:
            acquired, transitions = now, transitions + 1
        lease["spec"] = self._spec(now, acquired=acquired, transitions=transitions)
        try:
            await self.client.replace(LEASES, lease)
        except (Conflict, NotFound):
            return False
        return True

    def _spec(self, now: float, *, acquired: float, transitions: int) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "acquireTime": micro_time(acquired), "renewTime": micro_time(now),
                "leaseTransitions": transitions}

    async def release(self) -> None:
        """Give the lease up at once (on a clean stop), so a successor need not wait for expiry."""
        with contextlib.suppress(ApiError, TransportError):
            lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            spec.update(holderIdentity=None, leaseDurationSeconds=1, renewTime=micro_time(time.time()))
            await self.client.replace(LEASES, lease)

    async def run(self, *, on_start: Callable[[], Awaitable[None]],
                  on_stop: Callable[[], Awaitable[None]]) -> None:
        """Compete, lead, and compete again after losing, until cancelled (then release)."""
        try:
            while True:
                await self._acquire()
                self.leading.set()
                log.info("leader election %s: %s became the leader", self.name, self.identity)
                await on_start()
                await self._renew()
                self.leading.clear()
                log.warning("leader election %s: %s lost the lease", self.name, self.identity)
                await on_stop()
        finally:
            if self.leading.is_set():
                self.leading.clear()
                await asyncio.shield(self.release())

    async def _acquire(self) -> None:
        while True:
            if await self._attempt():
                return
            await asyncio.sleep(self.retry_period)

    async def _renew(self) -> None:
        """Renew every retry_period; return once renewals fail for renew_deadline seconds."""
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            if await self._attempt():
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > self.renew_deadline:
                return

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire()
        except (ApiError, TransportError) as e:
            log.info("leader election %s: %s", self.name, e)
            return False


def _expired(spec: Mapping[str, Any], now: float) -> bool:
    renewed = spec.get("renewTime")
    if not renewed:
        return True
    try:
        return parse_micro_time(str(renewed)) + float(spec.get("leaseDurationSeconds") or 0) < now
    except ValueError:
        return True
