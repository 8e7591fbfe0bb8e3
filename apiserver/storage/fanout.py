"""In-process pub/sub of committed events: one bounded queue per subscriber, filtered by prefix.

Both the SQLite backend (committed writes → its watchers) and the watch cache (backend events → its
watchers) publish through a :class:`Fanout`. Publishing appends the same :class:`Event` objects to
every matching subscriber (no copies) and wakes each sleeping subscriber once, however many events
arrive in that loop iteration, so a burst costs one task wake-up per watcher, not one per event.

A subscriber that lets ``maxsize`` events pile up is *overflowed*: its queue is dropped (memory
stays bounded) and its next read raises :class:`Overflowed`. What that means is the owner's choice:
the SQLite backend re-reads the gap from its log, the watch cache ends the watcher.
Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from apiserver.storage import interface


class Overflowed(Exception):
    """The subscriber fell more than ``maxsize`` events behind."""


class Subscription:
    """One subscriber's queue; read it with :meth:`next_batch`."""

    __slots__ = ("_queue", "_waiter", "closed", "maxsize", "overflowed", "prefix")

    def __init__(self, prefix: str, *, maxsize: int) -> None:
        self.prefix = prefix
        self.maxsize = maxsize
        self.overflowed = False
        self.closed = False
        self._queue: deque[interface.Event] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def push(self, event: interface.Event) -> None:
        if self.overflowed or self.closed:
            return
        if len(self._queue) >= self.maxsize:
            self.overflowed = True
            self._queue.clear()
        else:
            self._queue.append(event)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_batch(self) -> list[interface.Event] | None:
        """Everything queued (waiting for at least one event); None once closed and drained."""
        while True:
            if self.overflowed:
                raise Overflowed
            if self._queue:
                batch = list(self._queue)
                self._queue.clear()
                return batch
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class Fanout:
    """The set of live subscriptions of one event source."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self, prefix: str, *, maxsize: int) -> Subscription:
        sub = Subscription(prefix, maxsize=maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        sub.close()

    def publish(self, events: Iterable[interface.Event]) -> None:
        events = tuple(events)
        for sub in self._subs:
            prefix = sub.prefix
            for event in events:
                if event.key.startswith(prefix):
                    sub.push(event)

    def close_all(self) -> None:
        """End every current subscription (their readers see the stream end)."""
        subs, self._subs = self._subs, set()
        for sub in subs:
            sub.close()
