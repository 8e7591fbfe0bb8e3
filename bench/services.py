"""Service proxy benchmark: rule programming at 1,000 Services x 10 endpoints, and the data path cost.

``python -m bench.services [--services N --endpoints M --seconds S] [--api]`` (root) builds a
throw-away node network namespace (bridge, two pods; the test kit of tests/proxy) and programs a
table there, so the host's own rules are never touched. It prints:

- programming: a cold full sync of N services x M (fake) endpoints (one nft transaction), one
  incremental change at that size (an endpoint removed from one service), and a restart's full
  resync of the unchanged table; with ``--api`` also the same through a real ``pinnace server``: the
  seconds from the first Service create to the kernel holding all of them (the proxy's informers and
  debounced syncs running meanwhile), and from one EndpointSlice patch to the kernel holding it;
- data path: requests/s to a small HTTP server in a pod, directly to the pod IP and through a
  ClusterIP (the big table loaded), with keep-alive connections and with a new connection per
  request (every request then passes the NAT rules), from the host (the issue's set-up; the ratio
  ClusterIP/direct is the rules' cost, target >= 0.9) and from another pod on the bridge.

For comparison, the Kubernetes blog post "NFTables mode for kube-proxy" (2025-02-28) and KEP-3866
report that in nftables mode the time to apply one change stays roughly flat as the number of
services grows (iptables mode rewrites everything); compare the incremental figure here, not the
cold one. Nothing is asserted; exit status 1 means a step failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from e2e.cluster import REPO, Server
from proxy import rules
from proxy.model import Endpoint, ServicePort
from proxy.nft import Nft
from proxy.sync import Programmer

TARGET_RATIO = 0.9
DIRECT_PORT, SERVICE_PORT = 8081, 8082  # the same server program on two ports (see _topology)
SERVER = """
import asyncio, sys
import uvloop
BODY = b"ok"
RESP = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n" + BODY
class P(asyncio.Protocol):
    def connection_made(self, t): self.t = t; self.buf = b""
    def data_received(self, d):
        self.buf += d
        while b"\\r\\n\\r\\n" in self.buf:
            head, self.buf = self.buf.split(b"\\r\\n\\r\\n", 1)
            self.t.write(RESP)
            if b"Connection: close" in head: self.t.close(); return
async def main():
    srv = await asyncio.get_running_loop().create_server(P, "0.0.0.0", int(sys.argv[1]), reuse_address=True,
                                                         backlog=4096)
    print("ready", flush=True)
    await srv.serve_forever()
uvloop.run(main())
"""
CLIENT = """
import asyncio, sys, time
import uvloop
host, port, seconds, conc = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
keep = sys.argv[5] == "1"
REQ = b"GET / HTTP/1.1\\r\\nHost: x\\r\\n" + (b"" if keep else b"Connection: close\\r\\n") + b"\\r\\n"
RESP_LEN = len(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
done = errors = 0
async def worker(stop):
    global done, errors
    while time.monotonic() < stop:
        try:
            r, w = await asyncio.open_connection(host, port)
            while time.monotonic() < stop:
                w.write(REQ)
                await r.readexactly(RESP_LEN)
                done += 1
                if not keep:
                    break
            w.close()
        except OSError:
            errors += 1
async def main():
    stop = time.monotonic() + seconds
    await asyncio.gather(*(worker(stop) for _ in range(conc)))
    print(done / seconds, errors)
uvloop.run(main())
"""


def _netkit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("proxy_netkit", REPO / "tests" / "proxy" / "netkit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def fake_model(services: int, endpoints: int) -> list[ServicePort]:
    """N services on 10.96.x.y, each with M endpoints on 10.250.x.y (never answered: programming only)."""
    model = []
    for i in range(services):
        eps = tuple(Endpoint(ip=f"10.250.{(i * endpoints + j) // 250}.{(i * endpoints + j) % 250 + 1}", port=8080,
                             node="n1") for j in range(endpoints))
        model.append(ServicePort(namespace="bench", name=f"svc-{i}", port_name="http", protocol="tcp",
                                 cluster_ip=f"10.96.{i // 250}.{i % 250 + 1}", port=80,
                                 node_port=30000 + i if i < 2000 else None, endpoints=eps))
    return model


async def _timed(coro: Any) -> float:
    started = time.perf_counter()
    await coro
    return time.perf_counter() - started


async def programming(node: Any, *, node_ip: str, services: int,
                      endpoints: int) -> tuple[dict[str, str], Programmer, list[ServicePort]]:
    table = f"pxbench-{secrets.token_hex(3)}"
    config = rules.Config(table=table, node_name="n1", node_ips=(node_ip,), cluster_cidr="10.244.0.0/16")
    prog = Programmer(Nft(table, netns=node.netns), config)
    model = fake_model(services, endpoints)
    started = time.perf_counter()
    rules.full_script(rules.ruleset(model, config))
    render = time.perf_counter() - started
    full = await _timed(prog.sync(model))
    changed = list(model)
    first = changed[0]
    changed[0] = dataclasses.replace(first, endpoints=first.endpoints[1:])
    incremental = await _timed(prog.sync(changed))
    restarted = Programmer(Nft(table, netns=node.netns), config)
    resync = await _timed(restarted.sync(changed))
    size = f"{services} x {endpoints}"
    return {f"render script ({size}, no nft)": f"{render * 1000:.0f} ms",
            f"cold full sync ({size})": f"{full * 1000:.0f} ms",
            "incremental change (1 endpoint removed)": f"{incremental * 1000:.1f} ms",
            "restart: full resync of same table": f"{resync * 1000:.0f} ms"}, restarted, changed


async def through_api(node: Any, *, node_ip: str, services: int, endpoints: int) -> dict[str, str]:
    from machinery.client import ApiClient, Resource
    from machinery.kubeconfig import load_kubeconfig
    from proxy.sync import ServiceProxy

    svc_res = Resource("", "v1", "services", True)
    slice_res = Resource("discovery.k8s.io", "v1", "endpointslices", True)
    ns_res = Resource("", "v1", "namespaces", False)
    with tempfile.TemporaryDirectory(prefix="pinnace-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        server = Server(data).start("--no-controllers")
        try:
            async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=30) as client:
                table = f"pxbapi-{secrets.token_hex(3)}"
                config = rules.Config(table=table, node_name="n1", node_ips=(node_ip,))
                prog = Programmer(Nft(table, netns=node.netns), config)
                proxy = ServiceProxy(client, prog)
                await proxy.start()
                try:
                    await client.create(ns_res, {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "bench"}})
                    sem = asyncio.Semaphore(32)

                    async def make(i: int) -> None:
                        async with sem:
                            await client.create(svc_res, {
                                "apiVersion": "v1", "kind": "Service",
                                "metadata": {"name": f"s{i}", "namespace": "bench"},
                                "spec": {"ports": [{"name": "http", "port": 80}]}}, namespace="bench")
                            await client.create(slice_res, _slice(i, endpoints), namespace="bench")

                    started = time.perf_counter()
                    await asyncio.gather(*(make(i) for i in range(services)))
                    created = time.perf_counter() - started
                    await _poll(lambda: _programmed(prog, services, endpoints), interval=0.01)
                    total = time.perf_counter() - started
                    started = time.perf_counter()
                    fewer = _slice(0, endpoints - 1)["endpoints"]
                    await client.patch(slice_res, "s0-1", {"endpoints": fewer}, namespace="bench")
                    await _poll(lambda: _programmed(prog, services, endpoints, first=endpoints - 1),
                                interval=0.002)
                    change = time.perf_counter() - started
                finally:
                    await proxy.stop()
                    await prog.cleanup()
        finally:
            server.stop()
    return {f"API: {services} Services+EndpointSlices created": f"{created:.1f} s",
            "API: first create -> all in nftables": f"{total:.1f} s",
            "API: one EndpointSlice update -> nftables": f"{change * 1000:.0f} ms"}


async def _poll(predicate: Callable[[], bool], *, interval: float, limit: float = 600.0) -> None:
    for _ in range(int(limit / interval)):
        if predicate():
            return
        await asyncio.sleep(interval)
    raise RuntimeError(f"the proxy did not program the change within {limit:.0f}s")


def _slice(i: int, endpoints: int) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"s{i}-1", "namespace": "bench", "labels": {"kubernetes.io/service-name": f"s{i}"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"10.250.{(i * 10 + j) // 250}.{(i * 10 + j) % 250 + 1}"],
                           "conditions": {"ready": True}} for j in range(endpoints)]}


def _programmed(prog: Programmer, services: int, endpoints: int, *, first: int | None = None) -> bool:
    rs = prog.applied
    if rs is None or len(rs.elements["service-ips"]) < services:
        return False
    if first is None:
        return True
    chain = next((c for c in rs.chains if c.startswith("service-") and c.endswith("-bench/s0/tcp/http")), None)
    return chain is not None and f"mod {first} " in rs.chains[chain][1][-1]


def _load(node: Any, *, where: str, host: str, port: int, seconds: float, keep: bool) -> tuple[float, int]:
    result = subprocess.run(["ip", "netns", "exec", f"pxt{node.token}-{where}", sys.executable, "-c", CLIENT,
                             host, str(port), str(seconds), "16", "1" if keep else "0"],
                            capture_output=True, text=True, timeout=seconds + 60, check=True)
    rate, errors = result.stdout.split()
    return float(rate), int(errors)


CLIENTS = {"node": "host client", "client": "pod client"}


def datapath(node: Any, *, cluster_ip: str, seconds: float, rounds: int) -> dict[str, str]:
    """Median req/s over ``rounds`` runs per target, alternating which target goes first.

    The host client (the issue's set-up) takes the same routed path either way, so its ratio is the
    rules' cost; a pod client reaches the pod IP over the bridge (switched) but the ClusterIP through
    the node (routed), so its ratio also prices that detour, as in any kube-proxy cluster.
    """
    out = {}
    targets = {"direct": (node.pods["a"], DIRECT_PORT), "ClusterIP": (cluster_ip, 80)}
    for where, who in CLIENTS.items():
        for keep, label in ((True, "keep-alive"), (False, "new conn/request")):
            rates: dict[str, list[float]] = {name: [] for name in targets}
            errors = 0
            for i in range(rounds):
                for name in (list(targets) if i % 2 == 0 else list(reversed(targets))):
                    host, port = targets[name]
                    rate, failed = _load(node, where=where, host=host, port=port, seconds=seconds, keep=keep)
                    rates[name].append(rate)
                    errors += failed
            direct, service = statistics.median(rates["direct"]), statistics.median(rates["ClusterIP"])
            tag = f"{who}, {label}"
            out[f"{tag}: pod IP / ClusterIP"] = f"{direct:,.0f} / {service:,.0f} req/s"
            out[f"{tag}: ratio (target >= {TARGET_RATIO})"] = f"{service / direct:.2f}"
            if errors:
                out[f"{tag}: connection errors"] = str(errors)
    return out


def _topology(kit: ModuleType) -> Any:
    """The node namespace with pod "a" and pod "client".

    Pod "a" runs the server twice: on DIRECT_PORT for direct requests and on SERVICE_PORT as the
    ClusterIP's endpoint. With one port, runs with a new connection per request leave the server's
    TIME_WAIT sockets in the very (client, server) port space the next run reuses, so whichever
    target ran second got SYN retransmits; separate ports keep the two figures independent.
    """
    node = kit.Node()
    try:
        node.setup()
        node.add_pod("a", 11)
        node.add_pod("client", 20)
        for port in (DIRECT_PORT, SERVICE_PORT):
            proc = subprocess.Popen(["ip", "netns", "exec", f"pxt{node.token}-a", sys.executable, "-c", SERVER,
                                     str(port)], stdout=subprocess.PIPE, text=True)
            node.servers.append(proc)
            if proc.stdout is None or proc.stdout.readline().strip() != "ready":
                raise RuntimeError("the benchmark's HTTP server did not start")
    except BaseException:
        node.close()
        raise
    return node


async def run(args: argparse.Namespace) -> dict[str, str]:
    kit = _netkit()
    node = await asyncio.to_thread(_topology, kit)
    figures: dict[str, str] = {}
    try:
        found, prog, model = await programming(node, node_ip=kit.NODE_IP, services=args.services,
                                                endpoints=args.endpoints)
        figures.update(found)
        real = ServicePort(namespace="bench", name="real", port_name="http", protocol="tcp",
                           cluster_ip="10.97.0.1", port=80, endpoints=(Endpoint(node.pods["a"], SERVICE_PORT, "n1"),))
        await prog.sync([*model, real])
        figures.update(await asyncio.to_thread(datapath, node, cluster_ip=real.cluster_ip, seconds=args.seconds,
                                               rounds=args.rounds))
        await prog.cleanup()
        if args.api:
            figures.update(await through_api(node, node_ip=kit.NODE_IP, services=args.services,
                                             endpoints=args.endpoints))
    finally:
        await asyncio.to_thread(node.close)
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.services", description=__doc__.split("\n\n")[0])
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("--seconds", type=float, default=3.0, help="duration of each data path run")
    p.add_argument("--rounds", type=int, default=3, help="data path runs per target (median)")
    p.add_argument("--api", action="store_true", help="also time programming through a real pinnace server")
    args = p.parse_args(argv)
    print(f"bench/services: {args.services} services x {args.endpoints} endpoints", flush=True)
    try:
        figures = asyncio.run(run(args))
    except (OSError, RuntimeError, AssertionError, subprocess.CalledProcessError) as exc:
        print(f"bench/services: {exc}", file=sys.stderr)
        return 1
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
