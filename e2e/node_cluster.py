"""One real one-node cluster for an e2e module: ``pinnace up`` on temp dirs, ``pinnace down`` after.

Several e2e modules need the same thing: a whole cluster (server + agent with engine and kubelet)
on this host, reached with the real kubectl, that never touches the user's own kubeconfig or
/var/lib/pinnace and that is gone after the module even when a test fails. ``node_cluster`` is that
bring-up and teardown as a context manager: ``pinnace up --data-dir <tmp> --port <free>
--kubelet-port <free>`` with HOME and KUBECONFIG in a temp dir; on exit ``pinnace down`` (if the
data dir is still there: a test may have run it) and SIGKILL, by PID, of every process the cluster
recorded that is still alive. ``NodeCluster`` carries the handles tests use: run ``pinnace`` or
``kubectl`` in the cluster's environment, read JSON objects, find recorded PIDs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from e2e.cluster import KUBECTL, REPO, free_port

T = TypeVar("T")

KUBELET_PRESENT = importlib.util.find_spec("kubelet.main") is not None
TOOLS = ("crun", "conmon", "ip", "unshare", "nft", "busybox")
MISSING_TOOLS = [t for t in TOOLS if shutil.which(t) is None]
UNSUPPORTED = os.geteuid() != 0 or bool(MISSING_TOOLS)
UNSUPPORTED_REASON = f"needs root and {', '.join(MISSING_TOOLS) or 'nothing more'}"
READY_TIMEOUT = 90.0  # seconds `pinnace up` waits for the node to be Ready


class ClusterError(RuntimeError):
    """The cluster could not be brought up (the ``pinnace up`` output says why)."""


@dataclass
class NodeCluster:
    """A running ``pinnace up`` cluster: its data dir, the environment its commands run in, its ports."""

    data_dir: Path
    env: dict[str, str]
    port: int
    kubelet_port: int
    result: subprocess.CompletedProcess[str] | None = None
    pids: set[int] = field(default_factory=set)

    @property
    def user_kubeconfig(self) -> Path:
        return Path(self.env["KUBECONFIG"])

    @property
    def agent_dir(self) -> Path:
        return self.data_dir / "agent"

    @property
    def engine_socket(self) -> Path:
        return self.agent_dir / "run" / "engine.sock"

    def pinnace(self, *argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *argv], env=self.env, cwd=str(REPO),
                              capture_output=True, text=True, timeout=timeout, check=False)

    def kubectl(self, *argv: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, *argv], env=self.env, input=input, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def kubectl_ok(self, *argv: str, input: str | None = None, timeout: float = 60) -> str:
        """kubectl's stdout; AssertionError with its output when it fails."""
        done = self.kubectl(*argv, input=input, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(argv)} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done.stdout

    def kubectl_popen(self, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen([KUBECTL, *argv], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def get(self, *argv: str) -> dict[str, Any] | None:
        """``kubectl get ... -o json`` as a dict (None when kubectl fails, e.g. the object is gone)."""
        done = self.kubectl("get", *argv, "-o", "json")
        return json.loads(done.stdout) if done.returncode == 0 else None

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl_ok("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                              "items": list(objects)}))

    def kubelet_pid(self) -> int | None:
        """The live kubelet's PID (the agent's supervisor records it in ``<agent dir>/kubelet.pid``)."""
        try:
            pid = int((self.agent_dir / "kubelet.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def neighbours(self) -> list[str]:
        """Data dirs of other ``pinnace agent`` processes on this host.

        Every ``pinnace up`` node takes the first pod range of the default cluster CIDR on the
        shared bridge, so two at once hand out the same pod IPs: a failure that may come from that
        names them."""
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "cli.main" in argv and "agent" in argv and "--data-dir" in argv:
                data_dir = argv[argv.index("--data-dir") + 1]
                if not Path(data_dir).is_relative_to(self.data_dir):
                    found.append(data_dir)
        return sorted(found)

    def recorded_pids(self) -> set[int]:
        """Every PID file of the cluster (server, agent, their children) plus the pods' conmons."""
        found = set()
        for pid_file in [*self.data_dir.glob("*.pid"), *self.agent_dir.glob("*.pid")]:
            try:
                found.add(int(pid_file.read_text().strip()))
            except (OSError, ValueError):
                continue
        for state in (self.agent_dir / "engine" / "containers").glob("*/state.json"):
            try:
                record = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            found |= {p for p in (record.get("pid"), record.get("conmon_pid")) if p}
        return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def wait_for(probe: Callable[[], T], *, within: float, what: str, every: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; AssertionError naming ``what`` and the last value."""
    deadline = time.monotonic() + within
    value = probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f}s; last seen: {value!r}")
        time.sleep(every)
        value = probe()
    return value


@contextlib.contextmanager
def node_cluster(base: Path, *, user_config: dict[str, Any] | None = None,
                 ready_timeout: float = READY_TIMEOUT, require_up: bool = False) -> Iterator[NodeCluster]:
    """``pinnace up`` under ``base`` (data dir, HOME); yields the cluster; always cleans up.

    ``user_config`` is written as the user's kubeconfig first (to check that ``up`` merges into it).
    With ``require_up`` a failed ``up`` raises ClusterError (after the clean-up) instead of yielding
    the cluster for the caller to inspect."""
    home = base / "home"
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / ".kube" / "config")}
    cluster = NodeCluster(data_dir=base / "data", env=env, port=free_port(), kubelet_port=free_port())
    cluster.user_kubeconfig.parent.mkdir(parents=True)
    if user_config is not None:
        cluster.user_kubeconfig.write_text(yaml.safe_dump(user_config))
    try:
        cluster.result = cluster.pinnace("up", "--data-dir", str(cluster.data_dir), "--port", str(cluster.port),
                                         "--kubelet-port", str(cluster.kubelet_port), "--timeout", str(ready_timeout))
        cluster.pids = cluster.recorded_pids()
        if require_up and cluster.result.returncode != 0:
            raise ClusterError(f"pinnace up failed ({cluster.result.returncode}): "
                               f"{cluster.result.stdout}{cluster.result.stderr}")
        yield cluster
    finally:
        tear_down(cluster)


def tear_down(cluster: NodeCluster) -> None:
    """``pinnace down`` if the data dir is still there, then SIGKILL whatever recorded PID survived."""
    cluster.pids |= cluster.recorded_pids()
    if cluster.data_dir.exists():
        cluster.pinnace("down", "--data-dir", str(cluster.data_dir))
    for pid in cluster.pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
