"""Which pending pod to schedule next: kube-scheduler's three-part scheduling queue.

- *active*: pods ready to try, highest priority first, then first come first served;
- *backoff*: pods that failed recently wait 1s, 2s, 4s... (capped) before going back to active;
- *unschedulable*: pods no node could take; they wait for a cluster change that might help (a node
  added or changed, a pod deleted) and are then moved on through backoff, or retried anyway after
  ``max_unschedulable`` seconds in case an event was missed.

A pod that fails while a cluster change happened during its attempt goes to backoff instead of
unschedulable, so the change is not lost. Keys are "namespace/name"; the queue holds no pod
objects (the scheduler reads the latest one from its informer when it pops a key).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from enum import Enum

log = logging.getLogger(__name__)


class Where(Enum):
    ACTIVE = "active"
    BACKOFF = "backoff"
    UNSCHEDULABLE = "unschedulable"
    IN_FLIGHT = "in-flight"


class SchedulingQueue:
    def __init__(self, *, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_unschedulable: float = 300.0) -> None:
        if not 0 < initial_backoff <= max_backoff:
            raise ValueError("need 0 < initial_backoff <= max_backoff")
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._heap: list[tuple[int, int, str]] = []
        self._seq = itertools.count()
        self._where: dict[str, Where] = {}
        self._entry: dict[str, int] = {}          # key -> seq of its live heap entry
        self._priority: dict[str, int] = {}
        self._attempts: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._popped_cycle: dict[str, int] = {}
        self._move_cycle = 0
        self._wakeup = asyncio.Event()
        self._closed = False

    # -- what the informers report ----------------------------------------------------------------

    def add(self, key: str, *, priority: int = 0) -> None:
        """A pending pod appeared or changed: try it (soon, if it is backing off)."""
        self._priority[key] = priority
        where = self._where.get(key)
        if where in (Where.ACTIVE, Where.BACKOFF, Where.IN_FLIGHT):
            return
        if where is Where.UNSCHEDULABLE:
            self._to_backoff_or_active(key)
            return
        self._activate(key)

    def remove(self, key: str) -> None:
        """The pod went away or got bound by someone else."""
        self._where.pop(key, None)
        self._entry.pop(key, None)
        self._priority.pop(key, None)
        self._attempts.pop(key, None)
        self._failed_at.pop(key, None)
        self._popped_cycle.pop(key, None)
        self._cancel_timer(key)

    def move_all_to_active(self, reason: str = "") -> None:
        """A cluster change might make unschedulable pods fit: retry them (after their back-off)."""
        self._move_cycle += 1
        waiting = [k for k, w in self._where.items() if w is Where.UNSCHEDULABLE]
        if waiting:
            log.debug("%d unschedulable pod(s) moved on %s", len(waiting), reason or "a cluster event")
        for key in waiting:
            self._to_backoff_or_active(key)

    # -- what the scheduling loop reports ---------------------------------------------------------

    async def pop(self) -> str:
        """The next key to try; waits while there is none. Raises asyncio.CancelledError on close."""
        while True:
            while self._heap:
                _, seq, key = heapq.heappop(self._heap)
                if self._entry.get(key) == seq and self._where.get(key) is Where.ACTIVE:
                    del self._entry[key]
                    self._where[key] = Where.IN_FLIGHT
                    self._popped_cycle[key] = self._move_cycle
                    return key
            if self._closed:
                raise asyncio.CancelledError("scheduling queue closed")
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: str) -> None:
        """The pod was placed (or will no longer be scheduled): forget it."""
        self.remove(key)

    def unschedulable(self, key: str) -> None:
        """No node fits: wait for a cluster change (or back off, if one came during the attempt)."""
        if self._where.get(key) is not Where.IN_FLIGHT:
            return
        self._count_failure(key)
        if self._popped_cycle.get(key, -1) < self._move_cycle:
            self._to_backoff_or_active(key)
            return
        self._where[key] = Where.UNSCHEDULABLE
        self._set_timer(key, self.max_unschedulable, self._to_backoff_or_active)

    def retry_later(self, key: str) -> None:
        """A transient error (binding failed...): try again after a back-off."""
        if self._where.get(key) is not Where.IN_FLIGHT:
            return
        self._count_failure(key)
        self._to_backoff_or_active(key)

    def close(self) -> None:
        self._closed = True
        for key in list(self._timers):
            self._cancel_timer(key)
        self._wakeup.set()

    # -- introspection ----------------------------------------------------------------------------

    def where(self, key: str) -> Where | None:
        return self._where.get(key)

    def backoff_for(self, key: str) -> float:
        attempts = self._attempts.get(key, 0)
        if attempts == 0:
            return 0.0
        return min(self.initial_backoff * 2 ** min(attempts - 1, 32), self.max_backoff)

    def __len__(self) -> int:
        return len(self._where)

    # -- moves ------------------------------------------------------------------------------------

    def _count_failure(self, key: str) -> None:
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._failed_at[key] = asyncio.get_running_loop().time()

    def _activate(self, key: str) -> None:
        self._cancel_timer(key)
        seq = next(self._seq)
        self._where[key] = Where.ACTIVE
        self._entry[key] = seq
        heapq.heappush(self._heap, (-self._priority.get(key, 0), seq, key))
        self._wakeup.set()

    def _to_backoff_or_active(self, key: str) -> None:
        if key not in self._where:
            return
        # the back-off runs from the last failure, not from now
        failed_at = self._failed_at.get(key)
        now = asyncio.get_running_loop().time()
        delay = 0.0 if failed_at is None else failed_at + self.backoff_for(key) - now
        if delay <= 0:
            self._activate(key)
            return
        self._where[key] = Where.BACKOFF
        self._set_timer(key, delay, self._backoff_done)

    def _backoff_done(self, key: str) -> None:
        if self._where.get(key) is Where.BACKOFF:
            self._activate(key)

    def _set_timer(self, key: str, delay: float, action: Callable[[str], None]) -> None:
        self._cancel_timer(key)
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            action(key)

        self._timers[key] = loop.call_later(delay, fire)

    def _cancel_timer(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
