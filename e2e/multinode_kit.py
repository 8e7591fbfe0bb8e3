"""Shared helpers for the ``pinnace cluster`` e2e modules (test_multinode, test_multinode_scenarios).

Both modules make real clusters under a temp ``--root`` with HOME and KUBECONFIG pointed at a temp
dir, drive them with the real kubectl, and must leave nothing behind even when a test fails. What
they share lives here: the :class:`Host` that runs ``pinnace cluster`` and kubectl, PID bookkeeping
that survives PID reuse (a PID plus its start time), polling with a deadline, and small pod builders
on ``pinnace/busybox:1``.

Note on busybox: its ``wget -T`` segfaults (Debian's build has FEATURE_WGET_TIMEOUT off, and getopt32
writes the ``-T`` value through a NULL pointer; mirror/busybox#124). ``wget`` without ``-T`` works;
bound it with ``timeout N wget ...`` instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from e2e.cluster import KUBECTL, REPO

T = TypeVar("T")
MISSING = [t for t in ("crun", "conmon", "ip", "nsenter", "nft", "busybox", "kubectl") if shutil.which(t) is None]
SKIP = pytest.mark.skipif(os.geteuid() != 0 or bool(MISSING),
                          reason=f"needs root and {', '.join(MISSING) or 'nothing more'}")
IMAGE = "pinnace/busybox:1"
HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]
SLEEP = ["sleep", "3600"]


@dataclass
class Host:
    """The test host: where clusters live and the environment every command runs with."""

    root: Path
    env: dict[str, str]
    created: dict[str, float] = field(default_factory=dict)  # cluster → seconds to all nodes Ready
    pids: dict[str, set[int]] = field(default_factory=dict)

    def cluster(self, *argv: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.multinode.commands", *argv, "--root", str(self.root)],
                              env=self.env, cwd=str(REPO), capture_output=True, text=True, timeout=timeout,
                              check=False)

    def kubectl(self, context: str, *argv: str, stdin: str | None = None,
                timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, "--context", context, *argv], env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def kubectl_popen(self, context: str, *argv: str) -> subprocess.Popen[str]:
        """kubectl running in the background (a load loop); the caller waits for or kills it by PID."""
        return subprocess.Popen([KUBECTL, "--context", context, *argv], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def record(self, name: str) -> dict:
        return json.loads((self.root / name / "cluster.json").read_text())

    def create(self, name: str, nodes: int, *extra: str) -> subprocess.CompletedProcess[str]:
        done = self.cluster("create", name, "--nodes", str(nodes), *extra)
        found = re.search(r"Ready in ([0-9.]+)s", done.stdout)
        if found:
            self.created[name] = float(found.group(1))
        return done

    def recorded_pids(self, name: str) -> set[tuple[int, str]]:
        """Every live process the cluster recorded (servers, agents, their parts, route keeper, the pods'),
        as (PID, start time): a PID reused later by another process is not ours."""
        found: set[int] = set()
        directory = self.root / name
        for pid_file in directory.rglob("*.pid"):
            if "containers" in pid_file.parts:
                continue
            try:
                found.add(int(pid_file.read_text().strip()))
            except (OSError, ValueError):
                continue
        for state in directory.glob("n*/engine/containers/*/state.json"):
            try:
                record = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            found |= {p for p in (record.get("pid"), record.get("conmon_pid")) if p}
        return {(pid, started(pid)) for pid in found if alive(pid)}


def make_host(base: Path) -> Host:
    """A Host whose HOME and KUBECONFIG are under ``base`` (the real ~/.kube/config is never touched)."""
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / ".kube" / "config")}
    return Host(root=base / "clusters", env=env)


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def started(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when it is gone)."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def alive(pid: int, start: str | None = None) -> bool:
    """Running (not a zombie), and the same process when its start time is given."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z" and (start is None or fields[19] == start)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def force_delete(host: Host, name: str) -> None:
    """Delete a recorded cluster, then kill whatever of it survived (the last line of clean-up)."""
    if not (host.root / name / "cluster.json").exists():
        return
    pids = host.recorded_pids(name)
    host.cluster("delete", name)
    for pid, start in pids:
        if alive(pid, start):
            os.kill(pid, 9)


def nodes(host: Host, context: str) -> list[dict]:
    done = host.kubectl(context, "get", "nodes", "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["items"]


def is_ready(obj: dict) -> bool:
    """A Node's or Pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def wait(check: Callable[[], T], *, within: float, what: str, every: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy (returned); AssertionError after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f}s")
        time.sleep(every)


def pod(name: str, node: str, command: list[str], *, pull: str = "Never") -> dict:
    """A bare pod pinned to ``node`` (spec.nodeName) running busybox ``command``."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [
                {"name": "c", "image": IMAGE, "imagePullPolicy": pull, "command": command}]}}


def apply(host: Host, context: str, objects: list[dict[str, Any]]) -> None:
    done = host.kubectl(context, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                      "items": objects}))
    assert done.returncode == 0, done.stderr


def run_pods(host: Host, context: str, pods: list[dict]) -> dict[str, str]:
    """Apply pods, wait until they are Ready; their IPs."""
    apply(host, context, pods)
    names = [p["metadata"]["name"] for p in pods]
    waited = host.kubectl(context, "wait", "--for=condition=Ready", "--timeout=90s", *[f"pod/{n}" for n in names])
    assert waited.returncode == 0, waited.stderr + host.kubectl(context, "get", "pods", "-o", "wide").stdout
    listed = json.loads(host.kubectl(context, "get", "pods", "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: p["status"]["podIP"] for p in listed if p["metadata"]["name"] in names}


def pod_ip(host: Host, context: str, name: str) -> str:
    return host.kubectl(context, "get", "pod", name, "-o", "jsonpath={.status.podIP}").stdout.strip()


def fetch_from(host: Host, context: str, pod_name: str, address: str, port: int = 8080) -> str:
    """An HTTP/1.0 GET made with busybox nc inside ``pod_name``: the raw answer (or the error)."""
    done = host.kubectl(context, "exec", pod_name, "--", "sh", "-c",
                        f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 {address} {port}')
    return done.stdout + done.stderr
