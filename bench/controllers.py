"""Deployment benchmark: a large Deployment through the whole control plane.

``python -m bench.controllers [--replicas N --nodes M]`` starts a real ``pinnace server`` with its
supervised scheduler and controller-manager, registers M fake Nodes and runs the fake kubelet of the
controller tests in this process (it marks bound pods Running and Ready; it never binds: the real
scheduler does). It then applies a Deployment of N replicas and prints the seconds from apply to all
pods bound and to all ready, then changes the image (RollingUpdate, maxSurge 25%, maxUnavailable
25%) and prints the seconds until the rollout is complete as ``kubectl rollout status`` reads it,
with the largest pod count seen meanwhile. Nothing is asserted; exit status 1 means a step failed or
timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from e2e.cluster import REPO, Server
from machinery.client import ApiClient, ApiError, Resource
from machinery.informer import Informer
from machinery.kubeconfig import load_kubeconfig

PODS = Resource("", "v1", "pods", True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", True)
NAMESPACES = Resource("", "v1", "namespaces", False)
NAMESPACE = "bench"
NAME = "web"
FAKE_KUBELET = REPO / "tests" / "controllers" / "fake_kubelet.py"
POLL = 0.05
Obj = dict[str, Any]


class BenchError(RuntimeError):
    """A step of the benchmark failed or timed out; the message says which."""


def load_fake_kubelet() -> ModuleType:
    """The controller tests' fake kubelet, loaded by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("pinnace_bench_fake_kubelet", FAKE_KUBELET)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load the fake kubelet from {FAKE_KUBELET}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deployment(*, replicas: int, image: str) -> Obj:
    labels = {"app": NAME}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": image, "resources": {
                                      "requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def live(pods: Informer) -> list[Obj]:
    return [p for p in pods.list() if not p["metadata"].get("deletionTimestamp")]


async def wait_for(check: Callable[[], Any], *, within: float, what: str) -> float:
    """Poll ``check`` (sync or async) until true; the monotonic time it first held."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"not within {within:.0f}s: {what}")
        await asyncio.sleep(POLL)


async def control_plane_ready(client: ApiClient) -> None:
    """Wait until the scheduler binds a probe pod, so start-up is not counted in the figures."""
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
             "spec": {"containers": [{"name": "p", "image": "pause"}]}}
    await client.create(PODS, probe, namespace=NAMESPACE)

    async def bound() -> bool:
        pod = await client.get(PODS, "probe", namespace=NAMESPACE)
        return bool(pod["spec"].get("nodeName"))

    await wait_for(bound, within=60, what="the scheduler binding a probe pod")
    await client.delete(PODS, "probe", namespace=NAMESPACE, grace_period_seconds=0)
    await wait_for(lambda: _absent(client, "probe"), within=30, what="the probe pod going away")


async def _absent(client: ApiClient, name: str) -> bool:
    try:
        await client.get(PODS, name, namespace=NAMESPACE)
    except ApiError as e:
        return e.code == 404
    return False


async def rolled_out(client: ApiClient, replicas: int) -> bool:
    d = await client.get(DEPLOYMENTS, NAME, namespace=NAMESPACE)
    st = d.get("status") or {}
    return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and st.get("updatedReplicas", 0) == replicas and st.get("replicas", 0) == replicas
            and st.get("availableReplicas", 0) == replicas)


async def measure(server: Server, *, replicas: int, nodes: int, step_limit: float) -> list[tuple[str, str]]:
    fake = load_fake_kubelet()
    async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=30) as client:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        async with fake.FakeKubelet(client, NAMESPACE, nodes=nodes, ready_after=0.0, bind=False):
            await control_plane_ready(client)
            pods = Informer(client, PODS, namespace=NAMESPACE)
            pods.start()
            await pods.wait_synced()
            try:
                return await _rollouts(client, pods, replicas=replicas, step_limit=step_limit)
            finally:
                await pods.stop()


async def _rollouts(client: ApiClient, pods: Informer, *, replicas: int, step_limit: float) -> list[tuple[str, str]]:
    applied = time.monotonic()
    await client.create(DEPLOYMENTS, deployment(replicas=replicas, image="nginx:1.25"), namespace=NAMESPACE)
    all_bound = await wait_for(lambda: (len(ps := live(pods)) == replicas
                                        and all(p["spec"].get("nodeName") for p in ps)),
                               within=step_limit, what=f"{replicas} pods bound")
    all_ready = await wait_for(lambda: len(ps := live(pods)) == replicas and all(map(is_ready, ps)),
                               within=step_limit, what=f"{replicas} pods ready")
    await wait_for(lambda: rolled_out(client, replicas), within=step_limit, what="the first rollout complete")

    peak = 0

    def new_template_done() -> bool:
        nonlocal peak
        ps = live(pods)
        peak = max(peak, len(ps))
        return len(ps) == replicas and all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in ps)

    changed = time.monotonic()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}}
    await client.patch(DEPLOYMENTS, NAME, patch, namespace=NAMESPACE, patch_type="strategic")

    async def update_done() -> bool:
        return new_template_done() and await rolled_out(client, replicas)

    updated = await wait_for(update_done, within=step_limit, what="the rolling update complete")
    surge = math.ceil(replicas * 0.25)
    return [("apply -> all pods bound", f"{all_bound - applied:.2f} s"),
            ("apply -> all pods ready (fake)", f"{all_ready - applied:.2f} s"),
            ("rolling update (maxSurge 25%) complete", f"{updated - changed:.2f} s"),
            ("peak pods during the update", f"{peak} (limit {replicas + surge})")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.controllers", description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=1000, help="Deployment replicas (default %(default)s)")
    p.add_argument("--nodes", type=int, default=100, help="fake Nodes (default %(default)s)")
    p.add_argument("--timeout", type=float, default=600, help="seconds each step may take (default %(default)s)")
    args = p.parse_args(argv)
    if args.replicas < 1 or args.nodes < 1:
        p.error("--replicas and --nodes must be at least 1")
    if args.replicas > args.nodes * 110:
        p.error(f"{args.replicas} replicas do not fit on {args.nodes} nodes of 110 pods")
    with tempfile.TemporaryDirectory(prefix="pinnace-bench-controllers-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        server = Server(data)
        try:
            server.start(timeout=60)
            print(f"bench/controllers: {args.replicas} replicas on {args.nodes} fake nodes", flush=True)
            rows = asyncio.run(measure(server, replicas=args.replicas, nodes=args.nodes, step_limit=args.timeout))
        except (BenchError, ApiError, RuntimeError) as exc:
            print(f"bench/controllers: {exc}", file=sys.stderr)
            return 1
        finally:
            with contextlib.suppress(Exception):
                server.stop()
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
