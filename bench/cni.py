"""CNI benchmark: our bridge + host-local plugins against the reference ones, in the same run.

``python -m bench.cni`` (root) creates a namespace standing in for the node and moves this process
into it, so both plugin sets run there and the host's own network is never touched. Each round makes
a fresh pod namespace (untimed), then times one plugin process per call, alternating which side goes
first so both see the same machine noise:

- ADD and DEL latency (median, p90), with ipMasq off and on; ours is ``pinnace-bridge`` with
  ``pinnace-host-local`` IPAM (in-process), the peer the reference ``bridge`` executing ``host-local``,
  with the same config fields;
- 50 sequential ADDs (and their DELs), total wall time, mean of two passes (each side once first);
- process start alone (VERSION), the floor under every call.

Ratios are ours/peer (lower is better) next to the issue's target (within 1.5x on ADD and DEL).
Nothing is asserted; exit status 1 means a call failed. The node namespace and every pod namespace
are removed at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cni import install, netns

REFERENCE_DIR = Path("/usr/lib/cni")
TARGET = 1.5


class BenchError(RuntimeError):
    """A plugin call failed or the machine lacks what the benchmark needs."""


@dataclass(frozen=True)
class Side:
    """One plugin set: its executable, CNI_PATH and a config maker."""

    name: str
    executable: Path
    cni_path: str
    conf: Callable[[bool], dict]


@dataclass
class Figures:
    label: str
    ours: list[float]
    peer: list[float]
    target: str = ""

    @staticmethod
    def _p90(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]

    def row(self) -> str:
        ours, peer = statistics.median(self.ours), statistics.median(self.peer)
        return (f"{self.label:<34} {ours:8.1f} {self._p90(self.ours):8.1f} {peer:8.1f} {self._p90(self.peer):8.1f}"
                f" {ours / peer:7.2f}x  {self.target}")


HEADER = f"{'ms':<34} {'ours':>8} {'p90':>8} {'ref':>8} {'p90':>8} {'ratio':>8}  target"


class Bench:
    """The node namespace this process runs in, pod namespaces on demand, and timed plugin calls."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.token = secrets.token_hex(3)
        self.pods: list[str] = []
        self.count = 0

    def pod(self) -> str:
        self.count += 1
        name = f"pn-b{self.token}-{self.count}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.pods.append(name)
        return f"/run/netns/{name}"

    def drop_pod(self, path: str) -> None:
        name = Path(path).name
        subprocess.run(["ip", "netns", "del", name], check=False)
        if name in self.pods:
            self.pods.remove(name)

    def call(self, side: Side, command: str, *, masq: bool, container_id: str, pod: str) -> float:
        """Run one plugin process; its wall time in ms."""
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": pod, "CNI_IFNAME": "eth0",
               "CNI_PATH": side.cni_path, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        stdin = json.dumps(side.conf(masq)).encode()
        start = time.perf_counter()
        result = subprocess.run([str(side.executable)], input=stdin, env=env, capture_output=True, timeout=60)
        elapsed = (time.perf_counter() - start) * 1000
        if result.returncode != 0:
            raise BenchError(f"{side.name} {command} failed: {result.stdout.decode()} {result.stderr.decode()}")
        return elapsed

    def version(self, side: Side) -> float:
        start = time.perf_counter()
        subprocess.run([str(side.executable)], input=b"", env={"CNI_COMMAND": "VERSION"}, capture_output=True,
                       check=True, timeout=30)
        return (time.perf_counter() - start) * 1000


def sides(work: Path, *, python: str | None) -> tuple[Side, Side]:
    bin_dir = work / "bin"
    install.install(str(bin_dir), python=python)

    def conf(ours: bool, subnet: str) -> Callable[[bool], dict]:
        def make(masq: bool) -> dict:
            return {"cniVersion": "1.0.0", "name": "benchnet", "type": "pinnace-bridge" if ours else "bridge",
                    "bridge": "pn-bo0" if ours else "pn-br0", "isGateway": True, "isDefaultGateway": True,
                    "ipMasq": masq, "hairpinMode": True,
                    "ipam": {"type": "pinnace-host-local" if ours else "host-local", "ranges": [[{"subnet": subnet}]],
                             "dataDir": str(work / ("ipam-ours" if ours else "ipam-ref"))}}
        return make

    return (Side("ours", bin_dir / "pinnace-bridge", f"{bin_dir}:{REFERENCE_DIR}", conf(True, "10.90.0.0/16")),
            Side("reference", REFERENCE_DIR / "bridge", str(REFERENCE_DIR), conf(False, "10.91.0.0/16")))


def latency(bench: Bench, *, ours: Side, peer: Side, masq: bool, runs: int) -> tuple[Figures, Figures]:
    label = "ipMasq on" if masq else "ipMasq off"
    add = Figures(f"ADD ({label})", [], [], f"<= {TARGET}x")
    delete = Figures(f"DEL ({label})", [], [], f"<= {TARGET}x")
    for i in range(runs + 1):  # round 0 warms up: bridge, masquerade rules, page cache
        order = (ours, peer) if i % 2 else (peer, ours)
        for side in order:
            pod = bench.pod()
            try:
                added = bench.call(side, "ADD", masq=masq, container_id=f"lat{i}", pod=pod)
                deleted = bench.call(side, "DEL", masq=masq, container_id=f"lat{i}", pod=pod)
            finally:
                bench.drop_pod(pod)
            if i:
                (add.ours if side is ours else add.peer).append(added)
                (delete.ours if side is ours else delete.peer).append(deleted)
    return add, delete


def sequential(bench: Bench, *, ours: Side, peer: Side, count: int, settle: float) -> tuple[Figures, Figures]:
    """Two passes, peer first then ours first, each after a pause: deleting pods leaves the kernel
    freeing namespaces and veths in the background, which would otherwise tax whoever goes next."""
    adds = Figures(f"{count} sequential ADDs (total)", [], [])
    dels = Figures(f"{count} sequential DELs (total)", [], [])
    for side in (peer, ours, ours, peer):
        time.sleep(settle)
        pods = [bench.pod() for _ in range(count)]
        try:
            start = time.perf_counter()
            for i, pod in enumerate(pods):
                bench.call(side, "ADD", masq=False, container_id=f"seq{i}", pod=pod)
            middle = time.perf_counter()
            for i, pod in enumerate(pods):
                bench.call(side, "DEL", masq=False, container_id=f"seq{i}", pod=pod)
            end = time.perf_counter()
        finally:
            for pod in pods:
                bench.drop_pod(pod)
        (adds.ours if side is ours else adds.peer).append((middle - start) * 1000)
        (dels.ours if side is ours else dels.peer).append((end - middle) * 1000)
    return adds, dels


@contextmanager
def node_namespace(bench: Bench) -> Iterator[str]:
    """Create the node namespace and move this process's (only) thread into it; remove it all at the end."""
    name = f"pn-b{bench.token}-node"
    subprocess.run(["ip", "netns", "add", name], check=True)
    home = netns.current()
    fd = netns.open_netns(f"/run/netns/{name}")
    try:
        netns.enter(fd)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        netns.enter(home)
        os.close(fd)
        os.close(home)
        for pod in list(bench.pods):
            bench.drop_pod(f"/run/netns/{pod}")
        subprocess.run(["ip", "netns", "del", name], check=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cni", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed ADD+DEL rounds per side and setting")
    parser.add_argument("--sequential", type=int, default=50, help="pods in the sequential run")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds of pause before each sequential pass")
    parser.add_argument("--python", help="interpreter for our launchers (default: as `pinnace cni install`)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.cni needs root (network namespaces)", file=sys.stderr)
        return 1
    if not (REFERENCE_DIR / "bridge").exists():
        print(f"peer missing: reference plugins in {REFERENCE_DIR} (apt-get install containernetworking-plugins)")
        return 1
    with tempfile.TemporaryDirectory(prefix="pinnace-bench-cni-") as temp:
        work = Path(temp)
        bench = Bench(work)
        ours, peer = sides(work, python=args.python)
        try:
            with node_namespace(bench):
                rows = [Figures("process start (VERSION)", [bench.version(ours) for _ in range(args.runs)],
                                [bench.version(peer) for _ in range(args.runs)])]
                for masq in (False, True):
                    rows += latency(bench, ours=ours, peer=peer, masq=masq, runs=args.runs)
                if args.sequential:
                    rows += sequential(bench, ours=ours, peer=peer, count=args.sequential, settle=args.settle)
        except (BenchError, subprocess.CalledProcessError, OSError) as exc:
            print(f"bench.cni: {exc}", file=sys.stderr)
            return 1
    print(f"CNI ADD/DEL, {args.runs} rounds per side, ours = pinnace-bridge + pinnace-host-local, "
          "ref = reference bridge + host-local")
    print(HEADER)
    for row in rows:
        print(row.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
