"""Informers: a local, indexed, watch-maintained copy of one resource, with change callbacks.

Controllers, the scheduler and the kubelet read the cluster from these caches instead of asking the
API server, and learn about changes through ``on_add/on_update/on_delete``. As in client-go, the
informer lists (paged) and then watches from the list's resourceVersion with bookmarks; a watch that
ends is resumed from the last resourceVersion seen; a 410 Gone (history compacted) or any other
ERROR event makes it list again and emit only the difference against its cache, so handlers see
each change once. Connection errors are retried with back-off, so components ride out an API server
restart. Cache keys are "namespace/name" (or "name" for cluster-scoped objects).

Handlers run one at a time, in event order, on the informer's task; they should be quick (typically
they put a key into a WorkQueue). Objects handed out are the cached ones: do not mutate them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from machinery.client import ApiClient, ApiError, Gone, Resource, TransportError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]


def object_key(obj: Mapping[str, Any]) -> str:
    """The cache key: "namespace/name", or "name" for a cluster-scoped object."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name", "")
    return f"{ns}/{name}" if ns else name


def namespace_index(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def _rv(obj: Mapping[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


@dataclass(frozen=True)
class EventHandlers:
    """One subscriber's callbacks; each may be a plain function or a coroutine function."""

    on_add: Callable[[Obj], Any] | None = None
    on_update: Callable[[Obj, Obj], Any] | None = None
    on_delete: Callable[[Obj], Any] | None = None


class Store:
    """Objects by key plus secondary indices (index name -> value -> keys)."""

    def __init__(self, indexers: Mapping[str, IndexFunc]) -> None:
        self._indexers = dict(indexers)
        self._items: dict[str, Obj] = {}
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def by_index(self, index_name: str, value: str) -> list[Obj]:
        if index_name not in self._indices:
            raise KeyError(f"no index named {index_name!r}; known: {sorted(self._indices)}")
        return [self._items[k] for k in self._indices[index_name].get(value, ())]

    def upsert(self, obj: Obj) -> Obj | None:
        """Store ``obj``; returns the object it replaced, if any."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        self._index(key, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _values(self, name: str, obj: Obj) -> Iterable[str]:
        try:
            return set(self._indexers[name](obj))
        except Exception:  # a faulty index function must not break the cache
            log.exception("index function %r failed on %s", name, object_key(obj))
            return ()

    def _index(self, key: str, obj: Obj) -> None:
        for name, index in self._indices.items():
            for value in self._values(name, obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, index in self._indices.items():
            for value in self._values(name, obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


class _Backoff:
    """Exponential delay with jitter between failed attempts; reset by a success."""

    def __init__(self, *, initial: float, cap: float) -> None:
        self.initial, self.cap = initial, cap
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    async def sleep(self) -> None:
        delay, self._next = self._next, min(self._next * 2, self.cap)
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))


class Informer:
    """Keeps a Store of ``res`` in step with the API server and tells handlers about changes."""

    page_size = 500
    #: a watch that ends sooner than this without any event counts as a failure (back off)
    min_watch_seconds = 1.0

    def __init__(self, client: ApiClient, res: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None,
                 indexers: Mapping[str, IndexFunc] | None = None,
                 watch_timeout: tuple[int, int] = (300, 600),
                 backoff: tuple[float, float] = (0.2, 30.0)) -> None:
        if namespace is not None and not res.namespaced:
            raise ValueError(f"{res.plural} is cluster-scoped; an informer on it takes no namespace")
        if resync_period is not None and resync_period <= 0:
            raise ValueError("resync_period must be positive")
        self.client = client
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self.store = Store({"namespace": namespace_index, **(indexers or {})})
        self._backoff = _Backoff(initial=backoff[0], cap=backoff[1])
        self._handlers: list[EventHandlers] = []
        self._lock = asyncio.Lock()  # one dispatch at a time: events, resync, handler replay
        self._synced = asyncio.Event()
        self._rv: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    # -- reading the cache ------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self.store.get(key)

    def list(self) -> list[Obj]:
        return self.store.list()

    def by_index(self, index_name: str, value: str) -> list[Obj]:
        return self.store.by_index(index_name, value)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    @property
    def resource_version(self) -> str | None:
        """The last resourceVersion seen (list, event or bookmark)."""
        return self._rv

    async def wait_synced(self) -> None:
        """Wait until the first full list is in the cache and its adds are delivered.

        Bound it with ``asyncio.timeout`` if the API server may be unreachable.
        """
        await self._synced.wait()

    # -- subscribing ------------------------------------------------------------------------------

    def add_handler(self, handlers: EventHandlers | None = None, *,
                    on_add: Callable[[Obj], Any] | None = None,
                    on_update: Callable[[Obj, Obj], Any] | None = None,
                    on_delete: Callable[[Obj], Any] | None = None) -> EventHandlers:
        """Subscribe; a subscriber that joins late first gets on_add for every cached object."""
        h = handlers or EventHandlers(on_add=on_add, on_update=on_update, on_delete=on_delete)
        if len(self.store) == 0:
            self._handlers.append(h)
        else:
            self._spawn(self._replay(h))
        return h

    async def _replay(self, h: EventHandlers) -> None:
        async with self._lock:
            for obj in self.store.list():
                await _call(h.on_add, obj)
            self._handlers.append(h)

    # -- running ----------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.res.plural}")
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """List, then watch, forever (until stop); errors are logged and retried."""
        self._task = self._task or asyncio.current_task()
        if self.resync_period:
            self._spawn(self._resync_loop(self.resync_period))
        need_list = True
        try:
            while not self._stopping:
                try:
                    if need_list:
                        await self._list()
                        need_list = False
                        self._backoff.reset()
                    if await self._watch():
                        self._backoff.reset()
                    else:
                        await self._backoff.sleep()
                except Gone as e:
                    log.info("%s: %s; listing again", self.res.plural, e.message or "resource version gone")
                    if need_list:  # the list itself failed (expired continue token): do not spin
                        await self._backoff.sleep()
                    need_list = True
                except ApiError as e:
                    log.warning("%s: %s; listing again after back-off", self.res.plural, e)
                    need_list = True
                    await self._backoff.sleep()
                except TransportError as e:
                    log.warning("%s: %s; retrying", self.res.plural, e)
                    await self._backoff.sleep()
        finally:
            for task in list(self._side_tasks):
                task.cancel()

    async def _list(self) -> None:
        """List every page, then swap the cache and emit the difference."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.client.list(self.res, namespace=self.namespace,
                                          label_selector=self.label_selector,
                                          field_selector=self.field_selector,
                                          limit=self.page_size, continue_=token)
            items += _with_type(page)
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                break
        async with self._lock:
            await self._replace(items)
            self._rv = meta.get("resourceVersion") or self._rv
            self._synced.set()

    async def _replace(self, items: list[Obj]) -> None:
        fresh = {object_key(obj): obj for obj in items}
        for key in self.store.keys():
            if key not in fresh:
                old = self.store.remove(key)
                if old is not None:
                    await self._emit("on_delete", old)
        for obj in fresh.values():
            old = self.store.upsert(obj)
            if old is None:
                await self._emit("on_add", obj)
            elif _rv(old) != _rv(obj) or (_rv(obj) is None and old != obj):
                await self._emit("on_update", old, obj)

    async def _watch(self) -> bool:
        """Follow one watch stream; False if it ended at once with nothing (counts as a failure)."""
        loop = asyncio.get_running_loop()
        started, seen = loop.time(), 0
        events = self.client.watch(self.res, namespace=self.namespace, resource_version=self._rv,
                                   label_selector=self.label_selector,
                                   field_selector=self.field_selector,
                                   timeout_seconds=random.randint(*self.watch_timeout),
                                   allow_bookmarks=True)
        async with contextlib.aclosing(events):
            async for event in events:
                seen += 1
                await self._apply(event)
        return seen > 0 or loop.time() - started >= self.min_watch_seconds

    async def _apply(self, event: Mapping[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict):
            log.warning("%s: watch event %s without an object", self.res.plural, kind)
            return
        async with self._lock:
            if kind in ("ADDED", "MODIFIED"):
                old = self.store.upsert(obj)
                if old is None:
                    await self._emit("on_add", obj)
                else:
                    await self._emit("on_update", old, obj)
            elif kind == "DELETED":
                self.store.remove(object_key(obj))
                await self._emit("on_delete", obj)  # the final state, as the server reports it
            elif kind != "BOOKMARK":
                log.warning("%s: unknown watch event type %r", self.res.plural, kind)
                return
            self._rv = _rv(obj) or self._rv

    async def _resync_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if not self.has_synced:
                continue
            async with self._lock:
                for obj in self.store.list():
                    await self._emit("on_update", obj, obj)

    async def _emit(self, which: str, *objs: Obj) -> None:
        for h in self._handlers:
            await _call(getattr(h, which), *objs)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)


async def _call(fn: Callable[..., Any] | None, *args: Obj) -> None:
    """Run one handler; its failure is logged, never allowed to stop the informer."""
    if fn is None:
        return
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("informer handler %r failed", fn)


def _with_type(page: Mapping[str, Any]) -> list[Obj]:
    """List items usually omit kind/apiVersion; fill them in so cached objects look like watched ones."""
    items = page.get("items") or []
    kind = str(page.get("kind") or "")
    item_kind = kind[:-4] if kind.endswith("List") else None
    api_version = page.get("apiVersion")
    for obj in items:
        if item_kind and "kind" not in obj:
            obj["kind"] = item_kind
        if api_version and "apiVersion" not in obj:
            obj["apiVersion"] = api_version
    return items
