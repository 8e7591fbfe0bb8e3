"""The shape every Pinnace controller shares: informers feed work queues that async workers drain.

A controller is level-triggered: informer handlers only put keys into a :class:`WorkLoop`'s queue,
and the loop's workers call one reconcile function per key. A reconcile that raises is retried
after a per-key exponential back-off; one that returns a number is looked at again after that many
seconds (for waits that no watched event will end). :class:`Controller` starts its informers, waits
until their caches are filled, and only then starts its loops, so reconcilers never act on a
half-listed cache. Shared write helpers (a compare-and-swap metadata patch, a full paged list) live
here too, because several controllers need them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from apiserver import registry
from apiserver.registry import ResourceType
from machinery.client import ApiClient, ApiError, Conflict, NotFound, Resource, TransportError
from machinery.informer import Informer
from machinery.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Obj = dict[str, Any]
#: reconcile one key; None when done, else seconds after which to look at the key again
Reconcile = Callable[[K], Awaitable[float | None]]
#: from an object's current metadata, the metadata fields to merge-patch (None: nothing to change)
MetadataEdit = Callable[[Mapping[str, Any]], dict[str, Any] | None]


def resource_for(rt: ResourceType) -> Resource:
    """The client-side address of a registry entry."""
    return Resource(group=rt.group, version=rt.version, plural=rt.plural, namespaced=rt.namespaced)


def resource_of_kind(api_version: str, kind: str) -> Resource:
    """The client-side address of a built-in kind, e.g. ``("v1", "Namespace")``."""
    rt = registry.by_kind(api_version, kind)
    if rt is None:
        raise KeyError(f"no resource of kind {kind!r} in {api_version!r} in the registry")
    return resource_for(rt)


def resource_id(rt: ResourceType) -> str:
    """A short unique name of a resource type (``pods``, ``deployments.apps``) for keys and logs."""
    return rt.qualified_name


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def finalizers_of(obj: Mapping[str, Any]) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or ())


class WorkLoop(Generic[K]):
    """One work queue and the N workers reconciling its keys, with rate-limited retries."""

    def __init__(self, name: str, reconcile: Reconcile[K], *, workers: int = 2,
                 base_delay: float = 0.05, max_delay: float = 30.0) -> None:
        if workers < 1:
            raise ValueError(f"{name}: need at least one worker, not {workers}")
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.queue: WorkQueue[K] = WorkQueue(base_delay=base_delay, max_delay=max_delay, name=name)
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K) -> None:
        self.queue.add(key)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"{self.name}-{i}")
                           for i in range(self.workers)]

    async def stop(self) -> None:
        self.queue.shutdown()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                again = await self.reconcile(key)
            except (ApiError, TransportError) as e:
                log.info("%s: %s: %s; retrying", self.name, key, e)
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: reconciling %s failed; retrying", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            finally:
                self.queue.done(key)


class Controller:
    """Informers plus work loops, started and stopped together; one run per instance (a restarted
    informer only reports differences, so a fresh instance is what re-examines everything)."""

    name: ClassVar[str] = "controller"
    #: how long start() waits for caches before starting the workers anyway (with a warning)
    sync_timeout: float = 30.0

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.informers: list[Informer] = []
        self.loops: list[WorkLoop[Any]] = []
        self._synced = asyncio.Event()
        self._used = False

    async def start(self) -> None:
        """Start informers, wait for their first lists, then start the workers."""
        if self._used:
            raise RuntimeError(f"{self.name}: a controller runs once; build a new one to run again")
        self._used = True
        for informer in self.informers:
            informer.start()
        waiting = [asyncio.ensure_future(i.wait_synced()) for i in self.informers]
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=self.sync_timeout)
            for task in pending:
                task.cancel()
            if pending:
                late = [i.res.plural for i in self.informers if not i.has_synced]
                log.warning("%s: caches of %s not synced after %.0fs; starting anyway",
                            self.name, ", ".join(late), self.sync_timeout)
        for loop in self.loops:
            loop.start()
        self._synced.set()
        log.info("%s: started (%d informers)", self.name, len(self.informers))

    async def stop(self) -> None:
        for loop in self.loops:
            await loop.stop()
        await asyncio.gather(*(i.stop() for i in self.informers))
        self._synced.clear()

    async def wait_synced(self) -> None:
        """Wait until the workers run on filled caches."""
        await self._synced.wait()


# --- shared write and read helpers ----------------------------------------------------------------

async def patch_metadata(client: ApiClient, res: Resource, obj: Mapping[str, Any], edit: MetadataEdit, *,
                         attempts: int = 8) -> Obj | None:
    """Merge-patch the metadata fields ``edit`` computes, guarded by resourceVersion.

    On a conflict the object is read again and ``edit`` asked again, so the change is made against
    what is stored, never a stale cache. Returns the patched object, or None when there was nothing
    to change, the object is gone, or it was replaced by another object of the same name.
    """
    md = obj.get("metadata") or {}
    name, namespace, uid = md.get("name", ""), md.get("namespace"), md.get("uid")
    current: Mapping[str, Any] = obj
    for attempt in range(attempts):
        cmd = current.get("metadata") or {}
        if cmd.get("uid") != uid:
            return None
        change = edit(cmd)
        if change is None:
            return None
        body = {"metadata": {**change, "resourceVersion": cmd.get("resourceVersion")}}
        try:
            return await client.patch(res, name, body, namespace=namespace, patch_type="merge")
        except NotFound:
            return None
        except Conflict:
            if attempt == attempts - 1:
                raise  # the worker retries it later, with back-off
            try:
                current = await client.get(res, name, namespace=namespace)
            except NotFound:
                return None
    return None  # only reached with attempts < 1


async def list_all(client: ApiClient, res: Resource, *, namespace: str | None = None,
                   page_size: int = 500) -> list[Obj]:
    """Every item of a (paged) list."""
    items: list[Obj] = []
    token: str | None = None
    while True:
        page = await client.list(res, namespace=namespace, limit=page_size, continue_=token)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or None
        if not token:
            return items
