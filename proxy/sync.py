"""Keeping the kernel in step with the API: informers feed a debounced sync, each sync one nft transaction.

``Programmer`` owns what was last applied. Its first sync (and any sync after a failed one) rewrites
the whole table and deletes chains and sets a previous run left that are no longer wanted, so a
restarted proxy converges to the same table without duplicates; later syncs apply only the
difference, which keeps one change at 10,000 endpoints cheap. ``ServiceProxy`` watches Services and
EndpointSlices through informers and coalesces bursts of events into one sync; every ``full_resync``
seconds without changes it rewrites the whole table, undoing edits made to it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from machinery.client import ApiClient
from machinery.informer import Informer
from machinery.resources import ENDPOINTSLICES as ENDPOINT_SLICES
from machinery.resources import SERVICES
from proxy import model, rules
from proxy.nft import Nft, NftError

log = logging.getLogger(__name__)



class Programmer:
    """Turns a model into kernel state through ``nft``; remembers the last ruleset it applied."""

    def __init__(self, nft: Nft, config: rules.Config) -> None:
        self.nft = nft
        self.config = config
        self.applied: rules.Ruleset | None = None
        self.syncs = 0

    async def sync(self, ports: list[model.ServicePort]) -> str:
        """Program ``ports``; returns "full", "diff" or "noop" (what kind of transaction ran)."""
        wanted = rules.ruleset(ports, self.config)
        if self.applied is None:
            chains, sets = await self.nft.objects()
            kind, script = "full", rules.full_script(wanted, existing_chains=chains, existing_sets=sets)
        else:
            script = rules.diff_script(self.applied, wanted)
            kind = "diff" if script else "noop"
        if script:
            try:
                await self.nft.apply(script)
            except NftError:
                self.applied = None  # unknown kernel state: next sync rewrites everything
                raise
        self.applied = wanted
        self.syncs += 1
        return kind

    async def cleanup(self) -> bool:
        self.applied = None
        return await self.nft.delete_table()


class ServiceProxy:
    """Informers on Services and EndpointSlices driving a Programmer; ``start``/``stop`` bracket it."""

    def __init__(self, client: ApiClient, programmer: Programmer, *, min_interval: float = 0.1,
                 retry_interval: float = 2.0, full_resync: float | None = 900.0,
                 services: Informer | None = None, slices: Informer | None = None) -> None:
        """``services``/``slices``: informers shared with another part of the process (then the caller
        starts and stops them); by default the proxy makes and owns its own."""
        self.programmer = programmer
        self.min_interval = min_interval
        self.full_resync = full_resync
        self.retry_interval = retry_interval
        self.services = services if services is not None else Informer(client, SERVICES)
        self.slices = slices if slices is not None else Informer(client, ENDPOINT_SLICES)
        self._owned = [inf for inf, given in ((self.services, services), (self.slices, slices)) if given is None]
        self._dirty = asyncio.Event()
        self._synced = asyncio.Event()  # set after each successful sync
        self._task: asyncio.Task[None] | None = None
        for informer in (self.services, self.slices):
            informer.add_handler(on_add=self._changed, on_update=self._changed, on_delete=self._changed)

    def _changed(self, *_objs: Any) -> None:
        self._dirty.set()
        self._synced.clear()

    async def start(self) -> None:
        """Start watching; returns once the caches are filled (bound it with ``asyncio.timeout``)."""
        for informer in self._owned:
            informer.start()
        await self.services.wait_synced()
        await self.slices.wait_synced()
        self._dirty.set()
        self._task = asyncio.create_task(self._loop(), name="proxy-sync")

    async def wait_synced(self) -> None:
        """Wait until every change seen so far is in the kernel."""
        await self._synced.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for informer in self._owned:
            await informer.stop()

    def model(self) -> list[model.ServicePort]:
        return model.build(self.services.list(), self.slices.list())

    async def _loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.full_resync):
                    await self._dirty.wait()
            except TimeoutError:  # now and then rewrite everything, repairing changes made behind our back
                self.programmer.applied = None
                self._dirty.set()
            await asyncio.sleep(self.min_interval)  # let a burst of events land first
            self._dirty.clear()
            started = time.perf_counter()
            try:
                kind = await self.programmer.sync(self.model())
            except Exception as exc:  # nft refused, or a bug: log, retry, never let the loop die
                log.error("sync failed, retrying in %.0fs: %s", self.retry_interval, exc,
                          exc_info=not isinstance(exc, NftError))
                await asyncio.sleep(self.retry_interval)
                self._dirty.set()
                continue
            log.debug("%s sync in %.1f ms", kind, (time.perf_counter() - started) * 1000)
            if not self._dirty.is_set():
                self._synced.set()
