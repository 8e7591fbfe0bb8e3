"""``GET /events``: the daemon's container events (create, start, die, destroy...) as Docker sends them.

Handlers and the container service ``publish`` events; each ``/events`` request replays the kept
history from ``since`` and then follows new ones until ``until`` or until the client leaves. Only
the last ``HISTORY`` events are kept, as dockerd keeps a bounded log. Messages have both Docker's
current fields (``Type``, ``Action``, ``Actor``, ``scope``, ``timeNano``) and the legacy ones
(``status``, ``id``, ``from``) the older SDKs read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from engine.daemon import params
from engine.daemon.context import context_of
from engine.daemon.errors import BadParameter
from engine.daemon.streams import client_gone

HISTORY = 1024
POLL = 0.5  # seconds between checks that the client is still there


class EventBus:
    """A bounded history of events plus the live subscribers' queues."""

    def __init__(self, history: int = HISTORY) -> None:
        self._history: collections.deque[dict[str, Any]] = collections.deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, *, action: str, actor_id: str, attributes: Mapping[str, str], kind: str = "container") -> None:
        now = time.time_ns()
        event = {
            "status": action,
            "id": actor_id,
            "from": attributes.get("image", ""),
            "Type": kind,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": dict(attributes)},
            "scope": "local",
            "time": now // 1_000_000_000,
            "timeNano": now,
        }
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def history(self) -> list[dict[str, Any]]:
        return list(self._history)

    @contextlib.contextmanager
    def subscribe(self) -> Any:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)


def parse_time(text: str, name: str) -> float | None:
    """Docker's ``since``/``until``: Unix seconds (``1700000000.5``) or RFC 3339."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadParameter(f"invalid value for {name!r}: {text!r} is neither a timestamp nor a date") from None


def _matches_label(event: dict[str, Any], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    attrs = event["Actor"]["Attributes"]
    return key in attrs and (not sep or attrs[key] == value)


def _matches_container(event: dict[str, Any], wanted: str) -> bool:
    actor = event["Actor"]
    return actor["ID"].startswith(wanted) or actor["Attributes"].get("name") == wanted.lstrip("/")


_FILTERS: dict[str, Callable[[dict[str, Any], str], bool]] = {
    "type": lambda e, v: e["Type"] == v,
    "event": lambda e, v: e["Action"] == v or e["Action"].split(":", 1)[0] == v,
    "container": _matches_container,
    "image": lambda e, v: e["Actor"]["Attributes"].get("image") == v,
    "label": _matches_label,
}


def matches(event: dict[str, Any], wanted: dict[str, list[str]]) -> bool:
    """Docker's rule: every filter name must match, by any of its values (labels: all of them)."""
    for key, values in wanted.items():
        test = _FILTERS[key]
        if key == "label":
            if not all(test(event, v) for v in values):
                return False
        elif not any(test(event, v) for v in values):
            return False
    return True


async def events(request: web.Request) -> web.StreamResponse:
    wanted = params.filters(request, allowed=frozenset(_FILTERS))
    since = parse_time(request.query.get("since", ""), "since")
    until = parse_time(request.query.get("until", ""), "until")
    bus = context_of(request).events
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    def wanted_now(event: dict[str, Any]) -> bool:
        ts = event["timeNano"] / 1e9
        return (since is None or ts >= since) and (until is None or ts <= until) and matches(event, wanted)

    with bus.subscribe() as queue:
        try:
            if since is not None:
                for event in bus.history():
                    if wanted_now(event):
                        await response.write(orjson.dumps(event) + b"\n")
            while until is None or time.time() <= until:
                timeout = POLL if until is None else max(0.0, min(POLL, until - time.time()))
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    if client_gone(request):
                        break
                    continue
                if wanted_now(event):
                    await response.write(orjson.dumps(event) + b"\n")
        except ConnectionResetError:
            return response
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
