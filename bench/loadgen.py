"""The benchmarks' load generator: aiohttp client pools on uvloop, optionally split over processes.

It lives apart from any server under test (servers are subprocesses) so figures measure the server,
not a shared event loop. On a 2-core machine the Python client is itself a bottleneck, so requests
are pre-encoded, bodies are read but not parsed, and a load can be split over several client
processes that start together at a barrier. The watch side runs in its own process too, so the
writer and the 100 stream readers do not queue behind each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import queue as queue_mod
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
CHILD_TIMEOUT = 600.0  # seconds a split load or a watch process may take before it is given up on
ERROR_SNIPPET = 300  # characters of an error answer kept for the report


class BenchError(RuntimeError):
    """A benchmark step could not run: the message names the request and the answer."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect; plain data so it can be handed to child processes."""

    base_url: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.base_url.startswith("https://"):
            return True  # aiohttp's default; unused for plain HTTP
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True)
class Call:
    """One pre-encoded request."""

    method: str
    path: str
    body: bytes | None = None


@dataclass
class LoadResult:
    """Counts and the wall-clock window of one load; ``rate`` is successful requests per second."""

    ok: int = 0
    errors: int = 0
    started: float = 0.0
    ended: float = 0.0
    first_error: str | None = None
    processes: int = 1

    @property
    def elapsed(self) -> float:
        return self.ended - self.started

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    @classmethod
    def combine(cls, parts: Sequence[LoadResult]) -> LoadResult:
        """Parts that ran at the same time: their window is first start to last end."""
        errors = [p.first_error for p in parts if p.first_error]
        return cls(ok=sum(p.ok for p in parts), errors=sum(p.errors for p in parts),
                   started=min(p.started for p in parts), ended=max(p.ended for p in parts),
                   first_error=errors[0] if errors else None, processes=len(parts))


def describe_error(call: Call, *, status: int | str, body: bytes | str) -> str:
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    return f"{call.method} {call.path} -> {status} {text[:ERROR_SNIPPET]}"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (Linux /proc); NaN if unreadable.

    Divided by the requests served, it is the server's cost per request whatever the load generator
    managed, so a client-bound figure does not hide a server improvement.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    try:
        while pending:
            current = pending.pop()
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; utime, stime are fields 14, 15
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    pending.extend(int(c) for c in (task / "children").read_text().split())
    except (OSError, ValueError, IndexError):
        return math.nan
    return total


def open_session(endpoint: Endpoint, *, limit: int) -> aiohttp.ClientSession:
    """A keep-alive pool of at most ``limit`` connections (0: unlimited, for watch streams)."""
    connector = aiohttp.TCPConnector(limit=limit, ssl=endpoint.ssl_context())
    return aiohttp.ClientSession(base_url=endpoint.base_url, connector=connector, auto_decompress=False,
                                 timeout=aiohttp.ClientTimeout(total=None, sock_read=120))


class Client:
    """A small pool for set-up steps and timed single requests."""

    def __init__(self, endpoint: Endpoint, *, limit: int = 4) -> None:
        self.endpoint = endpoint
        self.session = open_session(endpoint, limit=limit)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.session.close()

    async def call(self, call: Call, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        async with self.session.request(call.method, call.path, data=call.body,
                                        headers=headers or JSON_HEADERS) as response:
            return response.status, await response.read()

    async def expect(self, call: Call, headers: dict[str, str] | None = None) -> bytes:
        """The answer's body, or BenchError naming the request and the answer."""
        try:
            status, body = await self.call(call, headers)
        except aiohttp.ClientError as exc:
            raise BenchError(describe_error(call, status=type(exc).__name__, body=str(exc))) from exc
        if not 200 <= status < 300:
            raise BenchError(describe_error(call, status=status, body=body))
        return body

    async def timed(self, call: Call, *, repeat: int, headers: dict[str, str]) -> tuple[list[float], bytes]:
        """Seconds from send to the last byte of the answer, ``repeat`` times, and the last body."""
        durations, body = [], b""
        for _ in range(repeat):
            began = time.monotonic()
            body = await self.expect(call, headers)
            durations.append(time.monotonic() - began)
        return durations, body


async def _drive(endpoint: Endpoint, calls: Sequence[Call], *, concurrency: int, warmup: Call | None,
                 gate: Callable[[], Any] | None = None) -> LoadResult:
    """``concurrency`` workers share one iterator over the calls, each on its own connection."""
    result = LoadResult()
    pending: Iterator[Call] = iter(calls)
    async with open_session(endpoint, limit=concurrency) as session:

        async def send(call: Call) -> None:
            try:
                async with session.request(call.method, call.path, data=call.body,
                                           headers=JSON_HEADERS) as response:
                    body = await response.read()
                    status = response.status
            except aiohttp.ClientError as exc:
                status, body = type(exc).__name__, str(exc).encode()
            if isinstance(status, int) and 200 <= status < 300:
                result.ok += 1
                return
            result.errors += 1
            result.first_error = result.first_error or describe_error(call, status=status, body=body)

        async def worker() -> None:
            for call in pending:
                await send(call)

        if warmup is not None:  # open the pool's connections (TLS handshakes) before the clock starts
            await asyncio.gather(*(send(warmup) for _ in range(concurrency)))
            if result.errors:
                raise BenchError(f"warm-up failed: {result.first_error}")
            result.ok = 0
        if gate is not None:
            await gate()
        result.started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.ended = time.monotonic()
    return result


def _drive_child(endpoint: Endpoint, calls: Sequence[Call], concurrency: int, warmup: Call | None,
                 barrier: Any, out: Any) -> None:
    import uvloop

    async def gate() -> None:
        await asyncio.to_thread(barrier.wait, CHILD_TIMEOUT)

    try:
        out.put(uvloop.run(_drive(endpoint, calls, concurrency=concurrency, warmup=warmup, gate=gate)))
    except Exception as exc:  # reported to the parent, which raises BenchError
        out.put(f"{type(exc).__name__}: {exc}")


def _stop(processes: Sequence[mp.process.BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def _drive_split(endpoint: Endpoint, calls: Sequence[Call], *, concurrency: int, procs: int,
                 warmup: Call | None) -> LoadResult:
    context = mp.get_context("spawn")
    barrier, out = context.Barrier(procs), context.Queue()
    share = max(1, concurrency // procs)
    processes = [context.Process(target=_drive_child, args=(endpoint, list(calls[i::procs]), share, warmup,
                                                              barrier, out), daemon=True)
                 for i in range(procs)]
    try:
        for process in processes:
            process.start()
        parts = []
        for _ in processes:
            try:
                part = out.get(timeout=CHILD_TIMEOUT)
            except queue_mod.Empty as exc:
                raise BenchError(f"a load process gave no result within {CHILD_TIMEOUT:.0f}s") from exc
            if isinstance(part, str):
                raise BenchError(f"a load process failed: {part}")
            parts.append(part)
        return LoadResult.combine(parts)
    finally:
        _stop(processes)


async def run_load(endpoint: Endpoint, calls: Sequence[Call], *, concurrency: int, procs: int = 1,
                   warmup: Call | None = None) -> LoadResult:
    """Send every call with ``concurrency`` connections in total, over ``procs`` client processes."""
    if concurrency < 1 or procs < 1:
        raise ValueError(f"concurrency ({concurrency}) and procs ({procs}) must be at least 1")
    if procs == 1 or concurrency < procs:
        return await _drive(endpoint, calls, concurrency=concurrency, warmup=warmup)
    return await asyncio.to_thread(_drive_split, endpoint, calls, concurrency=concurrency, procs=procs,
                                   warmup=warmup)


# --- watch: N stream readers in a child process, a steady writer in the caller -----------------

@dataclass
class WatchOutcome:
    """What the readers saw: per watcher, the receive time of each object index (NaN if missing)."""

    received: list[list[float]] = field(default_factory=list)
    sent_to_event: list[float] = field(default_factory=list)  # receive time minus the embedded send time
    first_error: str | None = None
    reader_cpu: float = 0.0  # CPU seconds the readers spent once connected, to tell a client-bound latency


def object_index(name: str, prefix: str) -> int | None:
    if not name.startswith(prefix):
        return None
    suffix = name[len(prefix):]
    return int(suffix) if suffix.isdigit() else None


async def _read_stream(session: aiohttp.ClientSession, path: str, *, prefix: str, received: list[float],
                       sent_to_event: list[float], connected: asyncio.Event, complete: Callable[[], None]) -> None:
    missing = len(received)
    async with session.get(path, headers={"Accept": "application/json"}) as response:
        if response.status != 200:
            raise BenchError(f"GET {path} -> {response.status} {(await response.text())[:ERROR_SNIPPET]}")
        connected.set()
        async for line in response.content:
            now = time.monotonic()
            if not line.strip():
                continue
            event = orjson.loads(line)
            if event.get("type") != "ADDED":
                continue
            obj = event.get("object") or {}
            index = object_index((obj.get("metadata") or {}).get("name", ""), prefix)
            if index is None or index >= len(received) or not math.isnan(received[index]):
                continue
            received[index] = now
            with contextlib.suppress(KeyError, TypeError, ValueError):
                sent_to_event.append(now - float(obj["data"]["sent"]))
            missing -= 1
            if missing == 0:
                complete()
                return
    raise BenchError(f"watch stream {path} ended with {missing} events missing")


async def _wait_connected(connected: Sequence[asyncio.Event], readers: Sequence[asyncio.Task], *,
                          within: float) -> int:
    """Until every stream has its answer headers, one reader fails, or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(e.is_set() for e in connected) or any(r.done() for r in readers):
            break
        await asyncio.sleep(0.02)
    return sum(e.is_set() for e in connected)


async def _watch_all(endpoint: Endpoint, path: str, *, watchers: int, expected: int, prefix: str,
                     ready: Callable[[int, str | None], None], stop: Any) -> WatchOutcome:
    outcome = WatchOutcome(received=[[math.nan] * expected for _ in range(watchers)])
    connected = [asyncio.Event() for _ in range(watchers)]
    remaining = watchers
    done = asyncio.Event()

    def complete() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            done.set()

    async def watch_stop() -> None:
        # a multiprocessing Event cannot be awaited; a thread blocked on it would outlive the loop
        while not stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        done.set()

    async with open_session(endpoint, limit=0) as session:
        tasks = [asyncio.create_task(_read_stream(session, path, prefix=prefix, received=outcome.received[w],
                                                  sent_to_event=outcome.sent_to_event, connected=connected[w],
                                                  complete=complete))
                 for w in range(watchers)]
        stopper = asyncio.create_task(watch_stop())
        opened = await _wait_connected(connected, tasks, within=30)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        ready(opened, str(failed[0].exception()) if failed else None)
        cpu_at_ready = time.process_time()
        await done.wait()
        for task in [*tasks, stopper]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)]
    outcome.first_error = str(errors[0]) if errors else None
    outcome.reader_cpu = time.process_time() - cpu_at_ready
    return outcome


def _watch_child(endpoint: Endpoint, path: str, watchers: int, expected: int, prefix: str, stop: Any,
                 out: Any) -> None:
    import uvloop

    try:
        outcome = uvloop.run(_watch_all(endpoint, path, watchers=watchers, expected=expected, prefix=prefix,
                                        ready=lambda n, err: out.put(("ready", n, err)), stop=stop))
        out.put(("done", outcome))
    except Exception as exc:
        out.put(("failed", f"{type(exc).__name__}: {exc}"))


class WatchProcess:
    """``watchers`` streams on ``path`` in one child process, expecting objects ``<prefix>000000``..."""

    def __init__(self, endpoint: Endpoint, path: str, *, watchers: int, expected: int, prefix: str) -> None:
        context = mp.get_context("spawn")
        self.stop_event, self.out = context.Event(), context.Queue()
        self.process = context.Process(target=_watch_child, daemon=True,
                                       args=(endpoint, path, watchers, expected, prefix, self.stop_event, self.out))

    def _next(self, timeout: float) -> tuple:
        try:
            return self.out.get(timeout=timeout)
        except queue_mod.Empty as exc:
            raise BenchError(f"the watch process said nothing within {timeout:.0f}s") from exc

    async def start(self) -> int:
        """Starts the readers; returns how many streams are open once all are (or 30 s passed)."""
        self.process.start()
        message = await asyncio.to_thread(self._next, 60)
        if message[0] == "failed":
            raise BenchError(f"watch process failed: {message[1]}")
        if message[2]:
            raise BenchError(f"watch failed to start: {message[2]}")
        return message[1]

    async def finish(self, *, grace: float) -> WatchOutcome:
        """The outcome once every event arrived, or what arrived within ``grace`` seconds."""
        try:
            try:
                message = await asyncio.to_thread(self._next, grace)
            except BenchError:
                self.stop_event.set()
                message = await asyncio.to_thread(self._next, 60)
            if message[0] != "done":
                raise BenchError(f"watch process failed: {message[1]}")
            return message[1]
        finally:
            self.close()

    def close(self) -> None:
        self.stop_event.set()
        _stop([self.process] if self.process.pid is not None else [])


async def write_steady(client: Client, path: str, *, count: int, rate: float,
                       body: Callable[[int, float], bytes]) -> tuple[list[float], LoadResult]:
    """POSTs ``count`` objects at ``rate``/s on schedule (not waiting for answers); ack time per index."""
    acks = [math.nan] * count
    result = LoadResult(started=time.monotonic())

    async def post(index: int) -> None:
        call = Call("POST", path, body(index, time.monotonic()))
        try:
            status, answer = await client.call(call)
        except aiohttp.ClientError as exc:
            status, answer = type(exc).__name__, str(exc).encode()
        if isinstance(status, int) and 200 <= status < 300:
            acks[index] = time.monotonic()
            result.ok += 1
        else:
            result.errors += 1
            result.first_error = result.first_error or describe_error(call, status=status, body=answer)

    tasks = []
    for index in range(count):
        delay = result.started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(index)))
    await asyncio.gather(*tasks)
    result.ended = time.monotonic()
    return acks, result
