"""Time-to-app: ``pinnace up`` on a data dir where the cluster ran before, until the demo answers HTTP.

This is the figure minikube publishes as timeToK8s. "Has run before" is made real: the demo
(manifests/demo/, 3 busybox httpd pods) is applied and served, then ``pinnace down --keep-data``
stops everything and removes every pod's containers while the datastore, certificates and images
stay. The clock starts when ``pinnace up`` is launched again and stops when each of the 3 pods
answers HTTP on its pod IP with its own page.

The datastore still holds the previous run's statuses (Node Ready, pods Ready with old IPs), so
"ready" only counts once it is fresh: the Node when its Lease is renewed after the start (the new
kubelet's first heartbeat) and it says Ready; a pod when its status names containers the previous
run did not have. The figure itself is HTTP: a pod counts when its page, served on the IP of that
fresh status, names it, whatever its Ready condition says. Phases printed: each of ``up``'s own
progress lines, the daemons' own milestones from their logs (``bench.pods.logs``), node Ready,
first/all pods said Ready, all answering HTTP, and ``up`` exiting, in the order they happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.pods import logs
from bench.pods.cluster import BenchCluster, BenchError, StampedLine
from bench.pods.timeline import is_ready, parse_time
from e2e.cluster import REPO
from machinery.client import ApiClient, ApiError, Resource, TransportError

PODS = Resource("", "v1", "pods", True)
NODES = Resource("", "v1", "nodes", False)
LEASES = Resource("coordination.k8s.io", "v1", "leases", True)
DEMO = REPO / "manifests" / "demo"
DEMO_NAMESPACE = "demo"
DEMO_REPLICAS = 3
POLL = 0.1  # seconds between looks at the API and the pods


@dataclass
class Phases:
    """Seconds from the start of ``pinnace up`` to each thing the user waits for; NaN: never seen."""

    started: float
    up_lines: list[tuple[float, str]] = field(default_factory=list)
    node_ready: float = math.nan
    pods_ready: dict[str, float] = field(default_factory=dict)
    http: dict[str, float] = field(default_factory=dict)
    up_exited: float = math.nan
    log_marks: list[tuple[str, float]] = field(default_factory=list)  # the daemons' own milestones

    @property
    def app(self) -> float:
        """Start → the last demo pod answered HTTP (the time-to-app figure)."""
        return max(self.http.values()) if len(self.http) >= DEMO_REPLICAS else math.nan


def container_ids(pod: dict[str, Any]) -> set[str]:
    return {c["containerID"] for c in (pod.get("status") or {}).get("containerStatuses") or [] if c.get("containerID")}


def fresh(pod: dict[str, Any], old_ids: set[str]) -> bool:
    """The pod's status names containers the previous run did not have, and an IP."""
    ids = container_ids(pod)
    return bool(ids) and not ids & old_ids and bool((pod.get("status") or {}).get("podIP"))


async def answers(session: aiohttp.ClientSession, pod: dict[str, Any]) -> bool:
    """The pod's page, served on its IP, names the pod (the demo fills its name in)."""
    url = f"http://{pod['status']['podIP']}:8080/"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
            return response.status == 200 and pod["metadata"]["name"] in await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _demo_pods(client: ApiClient) -> list[dict[str, Any]]:
    return (await client.list(PODS, namespace=DEMO_NAMESPACE))["items"]


async def serve_demo(cluster: BenchCluster, client: ApiClient, *, within: float) -> set[str]:
    """Apply the demo and wait until all its pods answer; their container IDs."""
    await cluster.kubectl("apply", "-f", str(DEMO))
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            pods = await _demo_pods(client)
            serving = [p for p in pods if fresh(p, set()) and is_ready(p) and await answers(session, p)]
            if len(serving) >= DEMO_REPLICAS:
                return set().union(*(container_ids(p) for p in pods))
            await asyncio.sleep(0.2)
    raise BenchError(f"the demo did not answer on {DEMO_REPLICAS} pods within {within:.0f}s")


async def _node_fresh(client: ApiClient, since: float) -> bool:
    """Some node's Lease was renewed after ``since`` (MicroTime: sub-second) and the node says Ready."""
    leases = (await client.list(LEASES, namespace="kube-node-lease"))["items"]
    renewed = {lease["metadata"]["name"] for lease in leases
               if parse_time((lease.get("spec") or {}).get("renewTime")) >= since}
    nodes = (await client.list(NODES))["items"]
    return any(n["metadata"]["name"] in renewed and is_ready(n) for n in nodes)


async def _watch_app(cluster: BenchCluster, phases: Phases, old_ids: set[str], *, until: float) -> None:
    """Poll until all demo pods answer HTTP with fresh containers (the API is down at first)."""
    config = await asyncio.to_thread(cluster.client_config)
    async with ApiClient(config, request_timeout=2) as client, aiohttp.ClientSession() as session:
        while len(phases.http) < DEMO_REPLICAS and time.monotonic() < until:
            try:
                now = time.time() - phases.started
                if math.isnan(phases.node_ready) and await _node_fresh(client, phases.started):
                    phases.node_ready = now
                for pod in await _demo_pods(client):
                    name = pod["metadata"]["name"]
                    if not fresh(pod, old_ids):
                        continue
                    if is_ready(pod):
                        phases.pods_ready.setdefault(name, time.time() - phases.started)
                    if name not in phases.http and await answers(session, pod):
                        phases.http[name] = time.time() - phases.started
            except (TransportError, ApiError):
                pass  # the server is not (yet) answering
            await asyncio.sleep(POLL)


def _read_logs(cluster: BenchCluster) -> dict[str, str]:
    texts = {}
    for name in ("server", "agent"):
        try:
            texts[name] = (cluster.data_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            texts[name] = ""
    return texts


async def measure(cluster: BenchCluster, client: ApiClient, *, within: float) -> Phases:
    """Serve the demo, stop the cluster keeping its data, then time ``pinnace up`` to the app answering."""
    old_ids = await serve_demo(cluster, client, within=within)
    await client.close()  # the server is about to stop; the session would hold dead connections
    (await cluster.down(keep_data=True)).check()
    phases = Phases(started=time.time())

    def on_line(line: StampedLine) -> None:
        if line.text.startswith("✓"):
            phases.up_lines.append((line.at - phases.started, line.text))

    watcher = asyncio.create_task(_watch_app(cluster, phases, old_ids, until=time.monotonic() + within))
    try:
        await cluster.up(on_line=on_line)
        phases.up_exited = time.time() - phases.started
        await watcher
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    texts = await asyncio.to_thread(_read_logs, cluster)
    phases.log_marks = [(what, at - phases.started) for what, at in logs.first_marks(texts, since=phases.started)]
    if len(phases.http) < DEMO_REPLICAS:
        raise BenchError(f"after `pinnace up` again, {len(phases.http)} of {DEMO_REPLICAS} demo pods answered "
                         f"HTTP within {within:.0f}s ({len(phases.pods_ready)} said Ready with new containers)")
    return phases
