"""Pod start latency: ``kubectl apply`` of an N-replica Deployment until every pod is Running and Ready.

The Deployment is what the issue names: ``pinnace/busybox:1`` (present on the node,
``IfNotPresent``) running httpd, with an httpGet readiness probe every second, so "Ready" means
the app answers. Its namespace (and the default ServiceAccount pods need) is made before the clock
starts. A watch opened before the apply times each pod's milestones (``bench.pods.timeline``);
when all are Ready the API's own timestamps are read, the engine's log splits the kubelet's step
(``bench.pods.logs``), and the CPU each process spent meanwhile is noted (``bench.pods.cpu``).
The Deployment is then deleted and the benchmark waits for the namespace to hold no pod before the
next size, so sizes do not overlap; that clean-up is timed as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.pods import cpu, logs
from bench.pods.cluster import BenchCluster, BenchError
from bench.pods.timeline import PodTimeline, PodTracker
from machinery.client import ApiClient, NotFound, Resource, TransportError

PODS = Resource("", "v1", "pods", True)
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", True)
NAMESPACE = "bench-pods"
DEPLOYMENT = "start"
IMAGE = "pinnace/busybox:1"
#: the page httpd serves is written first, so the probe's GET / answers 200 once httpd listens
SERVE = "echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"


def namespace_manifest(namespace: str = NAMESPACE) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def deployment_manifest(*, replicas: int, namespace: str = NAMESPACE, name: str = DEPLOYMENT) -> str:
    """The measured Deployment, as YAML for ``kubectl apply -f -``."""
    labels = {"app": name}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "web", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", SERVE], "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}}}]}}},
    }
    return yaml.safe_dump(deployment, sort_keys=False)


async def prepare_namespace(cluster: BenchCluster, client: ApiClient, *, within: float) -> None:
    """Make the namespace and wait for its default ServiceAccount, which pods need to be admitted.

    Done before the clock starts: a namespace made in the same apply would time the
    serviceaccount controller too, which is not pod start.
    """
    await cluster.kubectl("apply", "-f", "-", stdin=namespace_manifest())
    deadline = time.monotonic() + within
    while True:
        try:
            await client.get(SERVICE_ACCOUNTS, "default", namespace=NAMESPACE)
            return
        except NotFound:
            if time.monotonic() > deadline:
                raise BenchError(f"no default ServiceAccount in {NAMESPACE} after {within:.0f}s") from None
            await asyncio.sleep(0.1)


@dataclass
class SizeResult:
    """One size's run: when the apply started and returned, and every pod's timeline."""

    replicas: int
    apply_started: float
    apply_returned: float
    pods: list[PodTimeline] = field(default_factory=list)
    cleanup_seconds: float = float("nan")
    cpu: dict[str, float] = field(default_factory=dict)  # process name → CPU seconds, apply → all Ready

    @property
    def total(self) -> float:
        """apply started → the last pod seen Ready."""
        return max((p.ready for p in self.pods), default=float("nan")) - self.apply_started


async def _follow(client: ApiClient, tracker: PodTracker, *, namespace: str, resource_version: str,
                  expected: int) -> None:
    rv = resource_version
    while tracker.ready_count < expected:
        events = client.watch(PODS, namespace=namespace, resource_version=rv, timeout_seconds=300)
        async with contextlib.aclosing(events):
            async for event in events:
                tracker.observe(event, time.time())
                rv = (event.get("object") or {}).get("metadata", {}).get("resourceVersion") or rv
                if tracker.ready_count >= expected:
                    break


async def start_pods(cluster: BenchCluster, client: ApiClient, *, replicas: int, within: float) -> SizeResult:
    """Apply the Deployment and wait until ``replicas`` pods are Ready; BenchError past ``within``."""
    listed = await client.list(PODS, namespace=NAMESPACE)
    if listed.get("items"):
        raise BenchError(f"namespace {NAMESPACE} still has {len(listed['items'])} pods before the run")
    tracker = PodTracker()
    watcher = asyncio.create_task(_follow(client, tracker, namespace=NAMESPACE, expected=replicas,
                                          resource_version=listed["metadata"]["resourceVersion"]))
    try:
        cpu_before = await asyncio.to_thread(cpu.snapshot, cluster.data_dir)
        started = time.time()
        await cluster.kubectl("apply", "-f", "-", stdin=deployment_manifest(replicas=replicas))
        result = SizeResult(replicas, apply_started=started, apply_returned=time.time())
        try:
            await asyncio.wait_for(asyncio.shield(watcher), within)
        except TimeoutError:
            pending = tracker.pending()
            raise BenchError(f"{replicas} replicas: {tracker.ready_count} Ready after {within:.0f}s "
                             f"({len(pending)} seen not Ready, e.g. {pending[:3]})") from None
        result.cpu = cpu.spent(cpu_before, await asyncio.to_thread(cpu.snapshot, cluster.data_dir))
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, TransportError):
            await watcher
    final = {p["metadata"]["name"]: p for p in (await client.list(PODS, namespace=NAMESPACE))["items"]}
    log_text = await asyncio.to_thread(_read, cluster.data_dir / "agent.log")
    marks = logs.pod_marks(log_text, namespace=NAMESPACE, since=started - 1)
    for name, line in tracker.pods.items():
        if name in final:
            line.record_api(final[name])
        if name in marks:
            line.sandbox_ready, line.container_created = marks[name].sandbox_ready, marks[name].container_created
    result.pods = [p for p in tracker.pods.values() if p.name not in tracker.deleted]
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


async def remove_pods(cluster: BenchCluster, client: ApiClient, *, within: float) -> float:
    """Delete the Deployment and wait until its namespace has no pod; the seconds that took."""
    started = time.monotonic()
    await cluster.kubectl("delete", "deployment", DEPLOYMENT, "-n", NAMESPACE, "--wait=true")
    while True:
        left = len((await client.list(PODS, namespace=NAMESPACE))["items"])
        if not left:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise BenchError(f"{left} pods still in {NAMESPACE} {within:.0f}s after deleting the Deployment")
        await asyncio.sleep(0.2)
