"""A rate-limited work queue of object keys, the hand-off between informers and reconcilers.

It follows client-go's workqueue contract, which is what makes level-triggered controllers safe:
a key waiting in the queue is held once however often it is added (events coalesce); a key being
processed is never handed to a second worker, and if it is added meanwhile it goes back in the
queue when the worker calls ``done``. Failed keys come back after a per-key exponential back-off
(``add_rate_limited``) until ``forget`` resets them. asyncio only; add* may be called from any
coroutine or sync callback on the loop's thread.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down and has nothing left to hand out."""


class WorkQueue(Generic[K]):
    """Deduplicating FIFO of keys with delayed and back-off re-adds."""

    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 1000.0, name: str = "") -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()        # queued, or to be re-queued when its processing ends
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}  # key -> (due time, handle)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # done() re-queues it
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        """Add once ``delay`` seconds have passed; an earlier pending due time for the key wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def add_rate_limited(self, key: K) -> None:
        """Re-add after this key's back-off, which doubles on each call until ``forget``."""
        self.add_after(key, self.next_delay(key))

    def next_delay(self, key: K) -> float:
        """Count one more failure of ``key`` and return how long it must now wait."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures > 64:  # 2**64 * base is far beyond any cap; avoid float overflow
            return self.max_delay
        return min(self.base_delay * 2 ** failures, self.max_delay)

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure starts from the base delay again."""
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> K:
        """The next key, now marked processing; raises ShutDown once shut down and drained."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were woken but will not take the key: pass it on
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        """Processing of ``key`` finished; if it was added meanwhile, queue it again."""
        if key not in self._processing:
            return
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        """Stop accepting keys; getters drain what is queued, then get ShutDown."""
        self._shutting_down = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def len(self) -> int:
        """Keys waiting to be handed out (not those processing or delayed)."""
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
