"""Feeding the zone: informers on Services and EndpointSlices (and Pods) whose events update it.

Kept apart from ``zone`` so the zone stays pure (tests feed it objects directly) and from ``main``
so tests and the benchmark can run a real, API-fed zone in process.
"""

from __future__ import annotations

import asyncio

from machinery.client import ApiClient
from machinery.informer import Informer
from machinery.resources import ENDPOINTSLICES, PODS, SERVICES
from proxy.dns.zone import Zone


class ZoneFeeder:
    """Keeps ``zone`` in step with the API; the zone turns ready once every informer has listed."""

    def __init__(self, client: ApiClient, zone: Zone) -> None:
        self.zone = zone
        self.informers = [Informer(client, SERVICES), Informer(client, ENDPOINTSLICES)]
        handlers = [(zone.set_service, zone.delete_service), (zone.set_slice, zone.delete_slice)]
        if zone.pods == "verified":
            self.informers.append(Informer(client, PODS))
            handlers.append((zone.set_pod, zone.delete_pod))
        for informer, (on_set, on_delete) in zip(self.informers, handlers, strict=True):
            informer.add_handler(on_add=on_set, on_update=lambda _old, new, f=on_set: f(new), on_delete=on_delete)

        self._synced: asyncio.Task[None] | None = None

    def start(self) -> None:
        for informer in self.informers:
            informer.start()
        self._synced = asyncio.get_running_loop().create_task(self._mark_ready())

    async def _mark_ready(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self.informers))
        self.zone.ready = True
        self.zone.generation += 1

    async def wait_synced(self) -> None:
        """Wait for the zone to be ready (bound it with ``asyncio.timeout``; it keeps waiting)."""
        if self._synced is None:
            raise RuntimeError("ZoneFeeder.start() first")
        await asyncio.shield(self._synced)

    async def stop(self) -> None:
        if self._synced is not None:
            self._synced.cancel()
        for informer in self.informers:
            await informer.stop()
