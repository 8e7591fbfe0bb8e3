"""Small helpers shared by the storage tests: object and key builders, event collection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from apiserver.storage import interface


def pod_key(namespace: str, name: str) -> str:
    return f"/registry/core/pods/{namespace}/{name}"


def pod(name: str, namespace: str = "default", **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace}, "spec": dict(spec)}


def rv(obj: dict) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def take(stream: AsyncIterator[interface.Event], count: int, *,
               within: float = 5.0) -> list[interface.Event]:
    """The next ``count`` events of ``stream`` (TimeoutError if they do not come)."""
    events: list[interface.Event] = []
    async with asyncio.timeout(within):
        while len(events) < count:
            events.append(await anext(stream))
    return events



async def poll(check: Callable[[], Awaitable[bool]], *, within: float = 5.0, every: float = 0.02) -> None:
    """Wait until ``check()`` holds, for state that offers nothing to wait on (a file's rows)."""
    for _ in range(max(1, int(within / every))):
        if await check():
            return
        await asyncio.sleep(every)
    raise TimeoutError(f"condition not met within {within}s")
