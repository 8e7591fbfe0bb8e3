"""What the Docker API adds around ``ContainerManager``: networks, events, auto-remove, wait conditions.

The manager knows containers; Docker clients also expect a container to be plugged into its
network at create and unplugged at remove, ``--rm`` containers to vanish by themselves when they
exit (even if they exit while the daemon is down), ``/events`` to report create/start/die/destroy,
and ``wait`` to honour its three conditions (``not-running``, ``next-exit``, ``removed``). This
service does those on top of the manager; handlers call it for anything that changes a container
and read plain lookups (``get``, ``list``, logs, stats) from the manager directly.

A running container costs one small task here (waiting for its exit), no process and no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from engine.containers import specgen
from engine.containers.errors import Conflict, ContainerError
from engine.containers.manager import ContainerManager
from engine.containers.record import Container, Status
from engine.daemon.createbody import DOCKER_KEY, CreateRequest
from engine.daemon.errors import BadParameter
from engine.daemon.events import EventBus
from engine.daemon.network import Networks
from engine.images.errors import ImageError

log = logging.getLogger(__name__)

ENDPOINT_KEY = "endpoint"  # in extra[DOCKER_KEY]: the key of the container's bridge endpoint
RESOLVED_CACHE = 4096
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
IMPLICIT_NONE_WARNING = "{reason}; the container was created without a network (as --network none)"


def docker_extra(container: Container) -> dict[str, Any]:
    return dict(container.config.extra.get(DOCKER_KEY) or {})


def auto_remove(container: Container) -> bool:
    return bool((docker_extra(container).get("HostConfig") or {}).get("AutoRemove"))


def endpoint_key(container: Container) -> str:
    return str(docker_extra(container).get(ENDPOINT_KEY) or "")


def reusable_network(container: Container) -> bool:
    """Whether the container's network namespace is as it was given: it could not change its
    interfaces, routes, firewall or sysctls, and published no ports."""
    config = container.config
    caps = {c.upper().removeprefix("CAP_") for c in config.cap_add}
    return not (config.privileged or config.ports or config.sysctls or caps & {"NET_ADMIN", "ALL"})


def attributes(container: Container, **extra: str) -> dict[str, str]:
    """Event attributes as dockerd sends them: the labels, the image and the name."""
    return {**dict(container.config.labels), "image": container.config.image, "name": container.name, **extra}


class RemovalInProgress(Conflict):
    """A second remove of a container already being removed (Docker's 409)."""


@dataclass(frozen=True)
class ResolvedProcess:
    settings: dict[str, Any]  # the image's config (Env, Cmd, Entrypoint, WorkingDir...)
    args: list[str]
    env: list[str]


class ContainerService:
    """The daemon's container operations; one per daemon."""

    def __init__(self, manager: ContainerManager, *, networks: Networks, events: EventBus) -> None:
        self.manager = manager
        self.networks = networks
        self.events = events
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._removed: dict[str, _Removal] = {}
        self._changed = asyncio.Condition()
        self._on_remove: list[Callable[[str], None]] = []
        self._resolved: dict[str, ResolvedProcess] = {}
        self._removing: set[str] = set()

    def resolved(self, container: Container) -> ResolvedProcess:
        """The image settings, command and environment the container runs with (cached per id;
        an image removed since falls back to the container's own config)."""
        cached = self._resolved.get(container.id)
        if cached is not None:
            return cached
        try:
            settings = dict(specgen.image_settings(self.manager.store.resolve(container.state.image_id).config))
        except ImageError:
            settings = {}
        try:
            args = specgen.command(container.config, settings)
        except ContainerError:
            args = list(container.config.command or [])
        env = specgen.merge_env(settings.get("Env") or [], container.config.env)
        resolved = ResolvedProcess(settings=settings, args=args, env=env)
        if len(self._resolved) > RESOLVED_CACHE:
            self._resolved.clear()
        self._resolved[container.id] = resolved
        return resolved

    def on_remove(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(container_id)`` after every removal (exec records drop theirs)."""
        self._on_remove.append(callback)

    def image_in_use(self, image_id: str) -> str | None:
        """The image store's ``in_use`` hook; called from store threads, so it retries a lookup
        that raced with the loop changing the container table."""
        for _ in range(5):
            try:
                users = self.manager.image_users(image_id)
            except RuntimeError:
                continue
            return users[0] if users else None
        return None

    # ------------------------------------------------------------------------------ start-up

    async def load(self) -> list[Container]:
        """Take over the containers of a previous daemon: follow running ones, finish ``--rm``."""
        found = await self.manager.load()
        await self.networks.collect({endpoint_key(c) for c in found} - {""})
        for container in found:
            if container.running:
                self._watch(container)
            elif container.state.status is Status.EXITED and auto_remove(container):
                with contextlib.suppress(ContainerError):
                    await self.remove(container.id, force=True)
        return found

    async def close(self) -> None:
        for task in list(self._watchers.values()):
            task.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        self._watchers.clear()
        await self.networks.drain()
        await self.manager.close()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------------------ lifecycle

    async def create(self, request: CreateRequest) -> tuple[Container, list[str]]:
        """Create the container (plugging it into its network first); returns it and warnings."""
        config, warnings = request.config, []
        mode = request.network_mode
        if mode == "bridge" and not self.networks.bridge_available:
            if not request.network_implicit:
                self.networks.require_bridge()
            warnings.append(IMPLICIT_NONE_WARNING.format(reason=self.networks.unavailable_reason))
            mode = "none"
        key = ""
        docker = dict(config.extra.get(DOCKER_KEY) or {})
        docker["HostConfig"] = {**(docker.get("HostConfig") or {}), "NetworkMode": mode}
        if mode == "bridge":
            key, endpoint = await self.networks.acquire(config.ports)
            docker[ENDPOINT_KEY] = key
            config = replace(config, network=endpoint.netns)
        elif request.config.ports:
            warnings.append(f"published ports are discarded when using {mode} network mode")
        config = replace(config, extra={**dict(config.extra), DOCKER_KEY: docker})
        try:
            container = await self.manager.create(config)
        except BaseException:
            if key:
                self.networks.release(key)
            raise
        self.events.publish(action="create", actor_id=container.id, attributes=attributes(container))
        return container, warnings

    async def start(self, ref: str) -> Container:
        before = self.manager.get(ref)
        if before.running:
            return before
        try:
            container = await self.manager.start(ref)
        except ContainerError:
            if auto_remove(before):
                with contextlib.suppress(ContainerError):
                    await self.remove(before.id, force=True)
            raise
        self.events.publish(action="start", actor_id=container.id, attributes=attributes(container))
        self._watch(container)
        await self._notify()
        return container

    def _watch(self, container: Container) -> None:
        if container.id in self._watchers and not self._watchers[container.id].done():
            return
        task = asyncio.ensure_future(self._follow(container))
        self._watchers[container.id] = task
        task.add_done_callback(lambda _t, cid=container.id: self._watchers.pop(cid, None)
                               if self._watchers.get(cid) is _t else None)

    async def _follow(self, container: Container) -> None:
        """Wait for the run to end: events, then ``--rm``."""
        try:
            code = await self.manager.wait(container.id)
            ended = self.manager.get(container.id)
        except ContainerError:
            return  # removed meanwhile
        if ended.state.oom_killed:
            self.events.publish(action="oom", actor_id=ended.id, attributes=attributes(ended))
        self.events.publish(action="die", actor_id=ended.id, attributes=attributes(ended, exitCode=str(code)))
        await self._notify()
        if auto_remove(ended) and ended.state.status is Status.EXITED and ended.id not in self._removing:
            try:
                await self.remove(ended.id, force=True)
            except ContainerError as exc:
                log.warning("auto-remove of container %s failed: %s", ended.id[:12], exc)

    async def stop(self, ref: str, timeout: float | None) -> bool:  # noqa: ASYNC109 (a grace period)
        """Stop the container; False if it was not running (Docker's 304)."""
        container = self.manager.get(ref)
        if not container.running:
            return False
        self.events.publish(action="kill", actor_id=container.id,
                            attributes=attributes(container, signal=str(container.state.stop_signal)))
        stopped = await self.manager.stop(ref, timeout)
        self.events.publish(action="stop", actor_id=stopped.id, attributes=attributes(stopped))
        return True

    async def kill(self, ref: str, signal: str) -> None:
        container = await self.manager.kill(ref, signal or "SIGKILL")
        self.events.publish(action="kill", actor_id=container.id, attributes=attributes(container, signal=signal))

    async def restart(self, ref: str, timeout: float | None) -> None:  # noqa: ASYNC109 (a grace period)
        await self.stop(ref, timeout)
        container = await self.start(ref)
        self.events.publish(action="restart", actor_id=container.id, attributes=attributes(container))

    async def remove(self, ref: str, *, force: bool) -> None:
        container = self.manager.get(ref)
        if container.id in self._removing:
            raise RemovalInProgress(f"removal of container {container.id} is already in progress")
        self._removing.add(container.id)
        try:
            await self._remove(container, force=force)
        finally:
            self._removing.discard(container.id)

    async def _remove(self, container: Container, *, force: bool) -> None:
        if container.running and force:  # stop first, so the exit code and "die" are recorded
            await self.manager.stop(container.id, 0)
            container = self.manager.get(container.id)
        await self.manager.remove(container.id, force=force)
        key = endpoint_key(container)
        if key and reusable_network(container):
            await self.networks.recycle(key)
        elif key:
            self.networks.release(key)  # in the background: the container is gone already
        self._resolved.pop(container.id, None)
        for callback in self._on_remove:
            callback(container.id)
        self.events.publish(action="destroy", actor_id=container.id, attributes=attributes(container))
        gone = self._removed.pop(container.id, None)
        if gone is not None:
            gone.exit_code = container.state.exit_code or 0
            gone.event.set()
        await self._notify()

    # ----------------------------------------------------------------------------------- wait

    async def wait(self, ref: str, condition: str) -> int:
        """The exit code once ``condition`` holds (the container must exist when called)."""
        if condition not in WAIT_CONDITIONS:
            raise BadParameter(f'invalid condition: "{condition}"')
        container = self.manager.get(ref)
        cid = container.id
        if condition == "removed":
            gone = self._removed.setdefault(cid, _Removal())
            await gone.event.wait()
            return gone.exit_code
        if condition == "not-running" and not container.running:
            return container.state.exit_code or 0
        if condition == "next-exit":
            async with self._changed:
                await self._changed.wait_for(lambda: self._status(cid) is not Status.EXITED)
        return await self.manager.wait(cid)

    def _status(self, cid: str) -> Status | None:
        try:
            return self.manager.get(cid).state.status
        except ContainerError:
            return None


@dataclass
class _Removal:
    """Waiters for one container's removal and the exit code it had."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int = 0
