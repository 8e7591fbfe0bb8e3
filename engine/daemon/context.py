"""What every handler of the daemon shares: the image store, registry clients and a scratch dir.

One ``EngineContext`` per daemon, stored on the aiohttp app under ``CONTEXT``. The container half
(``containers``: the ``ContainerService`` over conmon + crun, its ``events`` and ``execs``) is
present only when the host has a runtime and conmon; container endpoints otherwise answer 503 with
``containers_unavailable``. Registry access
uses one long-lived client (credentials from the daemon's docker ``config.json``), or a short-lived
one when a request brings its own credentials in ``X-Registry-Auth``, so one user's login never
leaks into another's pull.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.daemon.errors import ApiError
from engine.images.auth import Credentials
from engine.images.registry import RegistryClient, RegistryPool
from engine.images.store import ImageStore

if TYPE_CHECKING:
    from engine.daemon.service import ContainerService

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"
ENGINE_VERSION = "0.1.0"


class ContainersUnavailable(ApiError):
    status = 503


def _event_bus() -> Any:
    from engine.daemon.events import EventBus  # events imports this module

    return EventBus()


def _exec_registry() -> Any:
    from engine.daemon.execs import ExecRegistry  # execs imports this module

    return ExecRegistry()


@dataclass
class EngineContext:
    store: ImageStore
    root: Path
    socket_path: Path
    insecure_registries: tuple[str, ...] = ()
    registry_timeout: float = 30.0
    containers: ContainerService | None = None
    containers_unavailable: str = "containers are not available on this daemon"
    events: Any = field(default_factory=_event_bus)  # events.EventBus
    execs: Any = field(default_factory=_exec_registry)  # execs.ExecRegistry
    registries: RegistryPool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.registries = RegistryPool(self.store, insecure=self.insecure_registries, timeout=self.registry_timeout)

    def require_containers(self) -> ContainerService:
        """The container service, or a 503 saying why this daemon has none."""
        if self.containers is None:
            raise ContainersUnavailable(self.containers_unavailable)
        return self.containers

    @property
    def scratch(self) -> Path:
        """The daemon's own temp space (uploads, build contexts): emptied at every start."""
        return self.root / "daemon-tmp"

    def registry(self, credentials: Mapping[str, Credentials] | None = None
                 ) -> contextlib.AbstractAsyncContextManager[RegistryClient]:
        """The shared client, or a private one for a request's own credentials."""
        return self.registries(credentials)

    @contextlib.contextmanager
    def scratch_dir(self, prefix: str) -> Iterator[Path]:
        """A fresh directory under ``scratch``, removed afterwards whatever happens."""
        path = self.scratch / f"{prefix}-{uuid.uuid4().hex}"
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    async def close(self) -> None:
        await self.registries.close()


CONTEXT = web.AppKey("engine_context", EngineContext)


def context_of(request: web.Request) -> EngineContext:
    return request.app[CONTEXT]
