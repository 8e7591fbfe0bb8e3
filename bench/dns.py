"""Cluster DNS benchmark: queries per second and latency of service lookups.

``python -m bench.dns`` starts a real ``pinnace server`` (API server only), creates ``--services``
ClusterIP Services, starts ``pinnace dns`` as its own process on a loopback port (no interface,
forwarding to a dead upstream so nothing leaves the host) and waits until the last Service
resolves. Then a UDP load generator keeps ``--concurrency`` queries in flight for ``--seconds``
per workload and prints queries/s, p50/p99 latency and the DNS process's CPU microseconds per query:

- ``service A, repeated``: ``<svc>.<ns>.svc.cluster.local`` as pods ask it (the answer cache hits);
- ``service A, mixed case``: each query's name in random letter case (as resolvers with 0x20
  randomisation send them), which misses the cache: full decode, lookup, encode;
- ``search-path miss``: ``<svc>.<ns>.svc.cluster.local.svc.cluster.local``, the NXDOMAIN a pod's
  ndots:5 search list produces before the right name.

Nothing is asserted; exit status 1 means a step failed (the message says which).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.loadgen import cpu_seconds, percentile
from e2e.cluster import REPO, Server, free_port
from machinery.client import ApiClient, ApiError, Resource, TransportError
from machinery.kubeconfig import load_kubeconfig
from proxy.dns import wire

SERVICES = Resource("", "v1", "services", True)
NAMESPACE = "default"
CREATE_CONCURRENCY = 32
READY_TIMEOUT = 60.0
#: a query not answered within this is counted lost
QUERY_TIMEOUT = 2.0


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which."""


@dataclass
class Outcome:
    label: str
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    rcodes: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu: float = 0.0

    @property
    def lost(self) -> int:
        return self.sent - len(self.latencies)


class _Load(asyncio.DatagramProtocol):
    """Keeps ``concurrency`` queries in flight; each answer (matched by id) sends the next."""

    def __init__(self, make: Callable[[], bytes], *, concurrency: int, until: float, out: Outcome) -> None:
        self.make, self.concurrency, self.until, self.out = make, concurrency, until, out
        self.pending: dict[int, float] = {}
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None
        self._next_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for _ in range(self.concurrency):
            self._send()

    def _send(self) -> None:
        assert self.transport is not None
        now = time.perf_counter()
        if now >= self.until:
            if not self.pending and not self.done.done():
                self.done.set_result(None)
            return
        self._next_id = (self._next_id + 1) & 0xFFFF
        while self._next_id in self.pending:
            self._next_id = (self._next_id + 1) & 0xFFFF
        self.pending[self._next_id] = now
        self.out.sent += 1
        self.transport.sendto(wire.with_id(self.make(), self._next_id))

    def datagram_received(self, data: bytes, addr: object) -> None:
        started = self.pending.pop(wire.peek_id(data), None)
        if started is None:
            return
        self.out.latencies.append(time.perf_counter() - started)
        rcode = data[3] & 0xF
        self.out.rcodes[rcode] = self.out.rcodes.get(rcode, 0) + 1
        self._send()

    def expire(self) -> None:
        """Forget queries older than the timeout (lost) and refill the window."""
        limit = time.perf_counter() - QUERY_TIMEOUT
        for ident in [i for i, t in self.pending.items() if t < limit]:
            del self.pending[ident]
            self._send()
        if time.perf_counter() >= self.until and not self.pending and not self.done.done():
            self.done.set_result(None)


async def drive(port: int, make: Callable[[], bytes], *, label: str, seconds: float, concurrency: int,
                pid: int) -> Outcome:
    out = Outcome(label)
    loop = asyncio.get_running_loop()
    cpu_before, started = cpu_seconds(pid), time.perf_counter()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Load(make, concurrency=concurrency, until=started + seconds, out=out),
        remote_addr=("127.0.0.1", port))
    try:
        while not proto.done.done():
            await asyncio.wait([proto.done], timeout=0.5)
            proto.expire()
    finally:
        transport.close()
    out.seconds = time.perf_counter() - started
    out.cpu = cpu_seconds(pid) - cpu_before
    return out


def _query(name: str, qtype: int = wire.A) -> bytes:
    return wire.encode(wire.Message(0, wire.RD, [wire.Question(name, qtype)]))


def _mixed_case(name: str) -> str:
    return "".join(c.upper() if random.random() < 0.5 else c for c in name)


def workloads(names: list[str]) -> list[tuple[str, Callable[[], bytes]]]:
    plain = [_query(n) for n in names]
    miss = [_query(f"{n}.svc.cluster.local") for n in names]
    return [("service A, repeated", lambda: random.choice(plain)),
            ("service A, mixed case (cache miss)", lambda: _query(_mixed_case(random.choice(names)))),
            ("search-path miss (NXDOMAIN)", lambda: random.choice(miss))]


async def create_services(client: ApiClient, count: int) -> list[str]:
    names = [f"svc-{i}" for i in range(count)]
    pending = iter(names)

    async def worker() -> None:
        for name in pending:
            await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service",
                                           "metadata": {"name": name, "namespace": NAMESPACE},
                                           "spec": {"ports": [{"name": "http", "port": 80}]}},
                                namespace=NAMESPACE)

    await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))
    return [f"{n}.{NAMESPACE}.svc.cluster.local" for n in names]


def start_dns(kubeconfig: Path, *, port: int, log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # the child keeps it open
    return subprocess.Popen([sys.executable, "-m", "cli.main", "dns", "--kubeconfig", str(kubeconfig),
                             "--address", "127.0.0.1", "--port", str(port), "--no-bind-interface",
                             "--upstream", f"127.0.0.1:{free_port()}"],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle)


async def wait_resolves(port: int, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    out = Outcome("probe")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"pinnace dns exited with {proc.returncode}; log in {log}")
        out = await drive(port, lambda: _query(name), label="probe", seconds=0.05, concurrency=1, pid=proc.pid)
        if out.rcodes.get(wire.NOERROR):
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"{name} did not resolve within {READY_TIMEOUT:.0f}s (rcodes {out.rcodes}); log in {log}")


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def report(outcomes: list[Outcome], *, services: int, concurrency: int) -> None:
    print(f"cluster DNS: {services:,} Services, {concurrency} queries in flight, one client process, "
          f"{os.cpu_count()} CPUs")
    print(f"{'workload':40} {'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'cpu us/query':>13}  rcodes")
    for o in outcomes:
        answered = len(o.latencies)
        rate = answered / o.seconds if o.seconds else float("nan")
        cpu_per = o.cpu / answered * 1e6 if answered else float("nan")
        print(f"{o.label:40} {rate:>10,.0f} {percentile(o.latencies, 50) * 1e3:>8.3f} "
              f"{percentile(o.latencies, 99) * 1e3:>8.3f} {o.lost:>6} {cpu_per:>13.1f}  "
              f"{ {wire_rcode(k): v for k, v in sorted(o.rcodes.items())} }")


def wire_rcode(code: int) -> str:
    return {wire.NOERROR: "NOERROR", wire.NXDOMAIN: "NXDOMAIN", wire.SERVFAIL: "SERVFAIL"}.get(code, str(code))


async def bench(args: argparse.Namespace, work: Path) -> list[Outcome]:
    server = Server(work / "data")
    server.data_dir.mkdir()
    await asyncio.to_thread(server.start, "--no-controllers")
    proc: subprocess.Popen[bytes] | None = None
    try:
        config = await asyncio.to_thread(load_kubeconfig, str(server.kubeconfig))
        async with ApiClient(config, max_connections=CREATE_CONCURRENCY + 4) as client:
            names = await create_services(client, args.services)
        port, log = free_port(), work / "dns.log"
        proc = start_dns(server.kubeconfig, port=port, log=log)
        await wait_resolves(port, names[-1], proc, log)
        return [await drive(port, make, label=label, seconds=args.seconds, concurrency=args.concurrency,
                            pid=proc.pid)
                for label, make in workloads(names)]
    finally:
        await asyncio.to_thread(stop_process, proc)
        await asyncio.to_thread(server.stop)


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
        return value
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dns", description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=_positive(int), default=1000, help="Services to create (default 1000)")
    parser.add_argument("--seconds", type=_positive(float), default=5.0, help="seconds per workload (default 5)")
    parser.add_argument("--concurrency", type=_positive(int), default=32, help="queries in flight (default 32)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pinnace-bench-") as tmp:
        try:
            outcomes = asyncio.run(bench(args, Path(tmp)))
        except (BenchError, RuntimeError, ApiError, TransportError, OSError) as exc:
            print(f"bench.dns: {exc}", file=sys.stderr)
            return 1
    report(outcomes, services=args.services, concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
