"""Multi-node cluster benchmark: create-to-Ready time and idle memory per node.

``python -m bench.cluster`` (root) makes clusters of 1, 3 and 5 nodes one after another with
``pinnace cluster create`` (as a user would: a fresh process, no kubeconfig merge) under a temp
``--root``, and for each prints:

- seconds from the command's start to every node Ready (the figure ``create`` reports), next to the
  issue's target (3 nodes in 10 s) and kind's single node (12-17 s, from the issue);
- the wall time of the whole command and of ``delete``;
- after ``--idle`` seconds, the memory of each node's processes (the agent and every part it
  supervises: engine, kubelet, proxy, dns), as PSS (shared pages split between the processes sharing
  them, so the sum is what a node really costs), per node and per part, plus the control plane's.

Then (unless ``--skip-failover``) the node-failure figure of issue 10: a 3-node cluster made with a 10 s
node-monitor grace period and 10 s unreachable tolerations runs a 6-replica Deployment spread over
the nodes; ``pinnace cluster node stop`` kills the second node, and the bench prints the seconds
from the stop to the node's unreachable taint, to its pods' eviction, and to all 6 replicas Running
and Ready on the other nodes (expected: grace + toleration + a little), then how long ``node start``
takes to bring the node back Ready. The clock is read by polling kubectl every 0.2 s.

Nothing is asserted; exit status 1 means a cluster did not come up. Every cluster is deleted at the
end, whatever happened.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli.cluster_cmds import REPO

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
TARGET = {3: 10.0}
KIND_SINGLE_NODE = "12-17"


def _cluster(*argv: str, root: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cli.multinode.commands", *argv, "--root", str(root)],
                          cwd=str(REPO), capture_output=True, text=True, timeout=600, check=False)
    return done, time.monotonic() - start


def pss_kib(pid: int) -> int:
    """Proportional set size of one process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def pids_in(directory: Path) -> dict[str, int]:
    """The processes named by the PID files directly in ``directory`` (name → PID)."""
    found = {}
    for pid_file in sorted(directory.glob("*.pid")):
        try:
            found[pid_file.stem] = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
    return found


def memory(cluster_dir: Path) -> tuple[list[int], dict[str, list[int]], int]:
    """(PSS of each node, PSS of each part across nodes, PSS of the control plane), in KiB."""
    per_node: list[int] = []
    per_part: dict[str, list[int]] = {}
    for node_dir in sorted(cluster_dir.glob("n[0-9]*")):
        total = 0
        for part, pid in pids_in(node_dir).items():
            size = pss_kib(pid)
            per_part.setdefault(part, []).append(size)
            total += size
        per_node.append(total)
    control = sum(pss_kib(pid) for cp in cluster_dir.glob("cp[0-9]*") for pid in pids_in(cp).values())
    control += sum(pss_kib(pid) for pid in pids_in(cluster_dir).values())  # the route keeper
    return per_node, per_part, control


def one_size(nodes: int, *, root: Path, idle: float) -> bool:
    name = f"bench{nodes}"
    done, wall = _cluster("create", name, "--nodes", str(nodes), "--no-kubeconfig", root=root)
    try:
        found = re.search(r"Ready in ([0-9.]+)s", done.stdout)
        if done.returncode != 0 or not found:
            print(f"{nodes} node(s): create failed: {(done.stderr or done.stdout).strip()[-400:]}")
            return False
        ready = float(found.group(1))
        target = f"  (target {TARGET[nodes]:.0f}s: {'met' if ready <= TARGET[nodes] else 'missed'})" \
            if nodes in TARGET else ""
        print(f"{nodes} node(s): all Ready in {ready:5.1f}s, create command {wall:5.1f}s{target}")
        time.sleep(idle)
        per_node, per_part, control = memory(root / name)
        parts = ", ".join(f"{part} {statistics.mean(sizes) / 1024:.1f}" for part, sizes in sorted(per_part.items()))
        print(f"    idle PSS per node: mean {statistics.mean(per_node) / 1024:.1f} MiB "
              f"(max {max(per_node) / 1024:.1f}); per part MiB: {parts}; control plane {control / 1024:.1f} MiB")
        return True
    finally:
        deleted, took = _cluster("delete", name, root=root)
        print(f"    delete {took:.1f}s" + ("" if deleted.returncode == 0 else f" FAILED: {deleted.stderr.strip()}"))


FAILOVER_GRACE = 10  # --node-monitor-grace-period, seconds (issue 10)
FAILOVER_TOLERATION = 10  # --default-unreachable-toleration-seconds
FAILOVER_REPLICAS = 6
FAILOVER_LIMIT = 120.0  # seconds before the bench gives up on a phase
FAILOVER_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
    "spec": {"replicas": FAILOVER_REPLICAS, "selector": {"matchLabels": {"app": "spread"}},
             "template": {"metadata": {"labels": {"app": "spread"}}, "spec": {
                 "terminationGracePeriodSeconds": 1,
                 # ScheduleAnyway: with DoNotSchedule the replacements would wait for the dead node
                 "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                "whenUnsatisfiable": "ScheduleAnyway",
                                                "labelSelector": {"matchLabels": {"app": "spread"}}}],
                 "containers": [{"name": "c", "image": "pinnace/busybox:1", "imagePullPolicy": "IfNotPresent",
                                 "command": ["sleep", "3600"]}]}}}}


def _kubectl(kubeconfig: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *argv], input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


def _get(kubeconfig: Path, *argv: str) -> dict:
    done = _kubectl(kubeconfig, "get", *argv, "-o", "json")
    return json.loads(done.stdout) if done.returncode == 0 else {}


def _ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or ())


def _failover_phases(kubeconfig: Path, node: str, victims: set[str]) -> dict[str, bool]:
    """Which failover milestones hold right now."""
    found = _get(kubeconfig, "node", node)
    pods = _get(kubeconfig, "pods", "-l", "app=spread").get("items") or []
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    elsewhere = [p for p in live if p["spec"].get("nodeName") not in (None, node) and _ready(p)]
    return {
        "unreachable taint": any(t.get("key") == "node.kubernetes.io/unreachable"
                                 for t in (found.get("spec") or {}).get("taints") or ()),
        "pods evicted": not victims & {p["metadata"]["name"] for p in live},
        "all Running elsewhere": len(elsewhere) == FAILOVER_REPLICAS,
    }


def _until(check, *, limit: float) -> float | None:
    """Seconds until ``check()`` holds (None after ``limit``), polling every 0.2 s."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def node_failover(*, root: Path) -> bool:
    """Node stop → its pods Running elsewhere, with 10 s grace and 10 s tolerations; then node start."""
    name = "benchfail"
    done, _ = _cluster("create", name, "--nodes", "3", "--no-kubeconfig",
                       "--node-monitor-grace-period", f"{FAILOVER_GRACE}s",
                       "--default-unreachable-toleration-seconds", str(FAILOVER_TOLERATION), root=root)
    try:
        if done.returncode != 0:
            print(f"failover: create failed: {(done.stderr or done.stdout).strip()[-400:]}")
            return False
        kubeconfig, node = root / name / "kubeconfig", f"{name}-worker2"
        applied = _kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(FAILOVER_DEPLOYMENT))
        rolled = _kubectl(kubeconfig, "rollout", "status", "deployment/spread", "--timeout=90s")
        if applied.returncode or rolled.returncode:
            print(f"failover: the Deployment did not come up: {applied.stderr}{rolled.stderr}".strip())
            return False
        victims = {p["metadata"]["name"] for p in _get(kubeconfig, "pods", "-l", "app=spread")["items"]
                   if p["spec"].get("nodeName") == node}
        stopped, _ = _cluster("node", "stop", name, node, root=root)
        start = time.monotonic()
        if stopped.returncode != 0:
            print(f"failover: node stop failed: {stopped.stderr.strip()}")
            return False
        seen: dict[str, float] = {}

        def all_seen() -> bool:
            for phase, holds in _failover_phases(kubeconfig, node, victims).items():
                if holds and phase not in seen:
                    seen[phase] = time.monotonic() - start
            return len(seen) == 3

        _until(all_seen, limit=FAILOVER_LIMIT)
        phases = ", ".join(f"{phase} {seen[phase]:.1f}s" if phase in seen else f"{phase} not in {FAILOVER_LIMIT:.0f}s"
                           for phase in ("unreachable taint", "pods evicted", "all Running elsewhere"))
        print(f"node stop ({len(victims)} of {FAILOVER_REPLICAS} pods on it; grace {FAILOVER_GRACE}s + "
              f"toleration {FAILOVER_TOLERATION}s): {phases}")
        started, _ = _cluster("node", "start", name, node, root=root)
        back = _until(lambda: _ready(_get(kubeconfig, "node", node)), limit=FAILOVER_LIMIT) \
            if started.returncode == 0 else None
        print("    node start → Ready: " + (f"{back:.1f}s" if back is not None else "not Ready"))
        return "all Running elsewhere" in seen and back is not None
    finally:
        deleted, took = _cluster("delete", name, root=root)
        print(f"    delete {took:.1f}s" + ("" if deleted.returncode == 0 else f" FAILED: {deleted.stderr.strip()}"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,3,5", help="node counts, comma-separated (default %(default)s)")
    p.add_argument("--idle", type=float, default=10.0, help="seconds to let a cluster settle before measuring")
    p.add_argument("--skip-failover", action="store_true", help="do not measure node stop → pods rescheduled")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        p.error(f"--sizes {args.sizes!r}: give node counts like 1,3,5")
    if os.geteuid() != 0:
        print("bench.cluster needs root (network namespaces, bridges)", file=sys.stderr)
        return 1
    print(f"pinnace cluster create, {os.cpu_count()} CPUs; kind's single node takes {KIND_SINGLE_NODE}s")
    with tempfile.TemporaryDirectory(prefix="pinnace-bench-cluster-") as root:
        ok = [one_size(n, root=Path(root), idle=args.idle) for n in sizes]
        if not args.skip_failover:
            ok.append(node_failover(root=Path(root)))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
