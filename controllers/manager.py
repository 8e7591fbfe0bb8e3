"""The controller-manager: the table of controllers, run together on one ApiClient.

``pinnace server`` runs it in-process through :class:`ControllerManager` (start/stop around the API
server's lifetime); :func:`run_controllers` is the same for a stand-alone process. Each controller
starts on its own task, so one whose caches are slow to fill never delays the others, and stopping
cancels whatever is still starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from controllers.base import Controller, resource_for, resource_of_kind
from controllers.garbage_collector import GarbageCollector
from controllers.namespace import NamespaceController
from machinery.client import ApiClient

__all__ = ["CONTROLLERS", "ControllerManager", "resource_for", "resource_of_kind", "run_controllers"]

log = logging.getLogger(__name__)

#: controller name -> factory; names follow kube-controller-manager's --controllers spelling
CONTROLLERS: dict[str, Callable[[ApiClient], Controller]] = {
    "namespace": NamespaceController,
    "garbagecollector": GarbageCollector,
}


def select(names: Iterable[str] | None) -> list[str]:
    """The controller names to run (all when None); an unknown name is a ValueError."""
    if names is None:
        return list(CONTROLLERS)
    chosen = list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in CONTROLLERS]
    if unknown:
        raise ValueError(f"unknown controller(s) {', '.join(unknown)}; known: {', '.join(CONTROLLERS)}")
    return chosen


class ControllerManager:
    """Runs the chosen controllers on one client, started and stopped together.

    Each start() builds fresh controllers, so a stopped manager can be started again and then looks
    at every object anew (as a restarted kube-controller-manager does).
    """

    def __init__(self, client: ApiClient, *, names: Iterable[str] | None = None) -> None:
        self.client = client
        self.names = select(names)
        self.controllers: dict[str, Controller] = {}
        self._starting: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Begin starting every controller; returns at once (see wait_synced)."""
        if self.controllers:
            return
        self.controllers = {name: CONTROLLERS[name](self.client) for name in self.names}
        for name, controller in self.controllers.items():
            task = asyncio.create_task(controller.start(), name=f"controller-{name}")
            task.add_done_callback(_start_reporter(name))
            self._starting[name] = task

    async def wait_synced(self) -> None:
        """Wait until every controller's caches are filled and its workers run."""
        if not self.controllers:
            raise RuntimeError("the controller manager is not started")
        await asyncio.gather(*(c.wait_synced() for c in self.controllers.values()))

    async def stop(self) -> None:
        tasks, self._starting = self._starting, {}
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        controllers, self.controllers = self.controllers, {}
        results = await asyncio.gather(*(c.stop() for c in controllers.values()), return_exceptions=True)
        for name, result in zip(controllers, results, strict=True):
            if isinstance(result, Exception):
                log.error("controller %s: stopping failed: %s", name, result)


def _start_reporter(name: str) -> Callable[[asyncio.Task[None]], None]:
    """A done-callback that reports a controller whose start failed (it would otherwise go unseen)."""
    def report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("controller %s failed to start", name, exc_info=task.exception())
    return report


async def run_controllers(client: ApiClient, *, names: Iterable[str] | None = None,
                          stop: asyncio.Event) -> None:
    """Run the chosen controllers (all by default) until ``stop`` is set."""
    manager = ControllerManager(client, names=names)
    await manager.start()
    try:
        await stop.wait()
    finally:
        await manager.stop()
