"""``pinnace up`` / ``down`` / ``status``: a one-node cluster on this host, run in the background.

``up`` starts two daemons, each a session of its own with its PID in the data dir: ``pinnace
server`` (API server, controllers, scheduler; embedded datastore) and ``pinnace agent`` (engine +
kubelet, state under ``<data dir>/agent``) with a node credential (CN ``system:node:<name>``, O
``system:nodes``) issued from the server's CA. It waits until the Node is Ready, builds the demo
image into the node's engine if missing, and merges a ``pinnace`` context into the user's kubeconfig
as kind does, printing one line per step. Re-running it while the cluster runs changes nothing.

``down`` removes every pod through the CRI (``cli.pod_sweep``), stops the agent and the server by
their PIDs (SIGTERM, then SIGKILL), then runs the clean-up table of ``cli.cleanup``. ``status``
summarises the processes, the API, the nodes and the pods; it exits 1 when the cluster is not running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.agent_cmds import AgentPaths, default_node_ip, default_node_name
from cli.server_cmds import DEFAULT_DATA_DIR

REPO = Path(__file__).resolve().parent.parent
SERVER_READY_TIMEOUT = 30.0
NODE_READY_TIMEOUT = 90.0
STOP_GRACE = 15.0  # seconds a daemon gets between SIGTERM and SIGKILL
DEMO_IMAGE = "pinnace/busybox:1"
DEMO_CONTEXT = REPO / "manifests" / "images" / "busybox"
CONTEXT_NAME = "pinnace"


@dataclass(frozen=True)
class Daemon:
    """One background process of ``up``: the word that marks its command line, its PID and log files."""

    name: str
    marker: bytes

    def pid_file(self, data_dir: Path) -> Path:
        return data_dir / f"{self.name}.pid"

    def log_file(self, data_dir: Path) -> Path:
        return data_dir / f"{self.name}.log"

    def running_pid(self, data_dir: Path) -> int | None:
        """The recorded PID if that process is still ours (its command line names us and the data dir)."""
        try:
            pid = int(self.pid_file(data_dir).read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if self.marker in cmdline.split(b"\0") and str(data_dir).encode() in cmdline else None


SERVER = Daemon("server", b"server")
AGENT = Daemon("agent", b"agent")
DAEMONS = (SERVER, AGENT)  # started in this order, stopped in the reverse one


@dataclass(frozen=True)
class ClusterFiles:
    data_dir: Path

    @property
    def admin_kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def agent_kubeconfig(self) -> Path:
        return self.data_dir / "agent.kubeconfig"

    @property
    def agent(self) -> AgentPaths:
        return AgentPaths(self.data_dir / "agent")

    @property
    def ca(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"


class Progress:
    """One "✓ what (1.2s)" line per finished step, timed from the previous one."""

    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.mark = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        print(f"✓ {what} ({now - self.mark:.1f}s)", file=self.out, flush=True)
        self.mark = now


# ------------------------------------------------------------------------------------ the API


def _admin_context(files: ClusterFiles) -> ssl.SSLContext:
    from apiserver.pki import Pki

    return Pki.at(files.data_dir / "pki").client_ssl_context()


def api_url(files: ClusterFiles) -> str | None:
    try:
        config = yaml.safe_load(files.admin_kubeconfig.read_text())
        return str(config["clusters"][0]["cluster"]["server"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return None


def _get(url: str, *, context: ssl.SSLContext, timeout: float = 3.0) -> Any:
    with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body[:1] == b"{" else body.decode()


def api_ready(files: ClusterFiles) -> bool:
    url = api_url(files)
    if url is None:
        return False
    try:
        return _get(f"{url}/readyz", context=_admin_context(files)) == "ok"
    except (OSError, ValueError, ssl.SSLError):
        return False


def node_ready(node: dict, *, since: float = 0.0) -> bool:
    """Ready=True, reported by a heartbeat at or after ``since`` (epoch seconds; RFC 3339 stamps
    have whole seconds)."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               and _epoch(c.get("lastHeartbeatTime")) >= int(since) for c in conditions)


def _epoch(stamp: object) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _wait(check: Callable[[], bool], *, within: float, failed: Callable[[], str | None]) -> bool:
    """Poll ``check`` until it holds; ``failed`` returns a reason to give up early (a daemon died)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        reason = failed()
        if reason:
            raise RuntimeError(reason)
        time.sleep(0.2)
    return False


# ------------------------------------------------------------------------------------------- up


def configure_up(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="state of the cluster (default %(default)s)")
    p.add_argument("--port", type=int, default=6443, help="API server HTTPS port (default %(default)s)")
    p.add_argument("--kubelet-port", type=int, default=10250, help="the kubelet's HTTPS port (default %(default)s)")
    p.add_argument("--node-ip", help="the node's InternalIP (default: the host's primary IPv4)")
    p.add_argument("--node-name", help="the node's name (default: this host's name)")
    p.add_argument("--no-kubeconfig", action="store_true", help="do not touch the user's kubeconfig")
    p.add_argument("--no-demo-image", action="store_true", help=f"do not build {DEMO_IMAGE}")
    p.add_argument("--timeout", type=float, default=NODE_READY_TIMEOUT,
                   help="seconds to wait for the node to be Ready (default %(default)s)")


def _spawn(daemon: Daemon, data_dir: Path, argv: list[str]) -> subprocess.Popen:
    with open(daemon.log_file(data_dir), "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "cli.main", *argv], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log, start_new_session=True, cwd=str(REPO))
    daemon.pid_file(data_dir).write_text(f"{process.pid}\n")
    return process


def _exited(daemon: Daemon, data_dir: Path, process: subprocess.Popen | None) -> Callable[[], str | None]:
    def reason() -> str | None:
        if process is None or process.poll() is None:
            return None
        lines = daemon.log_file(data_dir).read_text(errors="replace").strip().splitlines()[-1:]
        return f"the {daemon.name} exited ({process.returncode}): {' '.join(lines)}; see {daemon.log_file(data_dir)}"

    return reason


def write_node_kubeconfig(files: ClusterFiles, *, node_name: str, server: str, target: Path | None = None) -> Path:
    """A kubeconfig with a fresh client cert for the node (CN system:node:<name>, O system:nodes);
    written to ``target`` (default: the data dir's ``agent.kubeconfig``)."""
    import base64

    from apiserver.pki import Pki

    cert, key = Pki.at(files.data_dir / "pki").issue_client_cert(f"system:node:{node_name}", ["system:nodes"])
    user = f"system:node:{node_name}"
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": CONTEXT_NAME, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(files.ca.read_bytes()).decode()}}],
        "users": [{"name": user, "user": {"client-certificate-data": base64.b64encode(cert).decode(),
                                          "client-key-data": base64.b64encode(key).decode()}}],
        "contexts": [{"name": CONTEXT_NAME, "context": {"cluster": CONTEXT_NAME, "user": user}}],
        "current-context": CONTEXT_NAME,
    }
    target = target or files.agent_kubeconfig
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)
    return target


def _image_present(socket_path: Path, image: str) -> bool:
    from cli.engine_client import EngineClient, EngineError, quote_name

    try:
        EngineClient(str(socket_path)).json("GET", f"/images/{quote_name(image)}/json")
    except EngineError:
        return False
    return True


def ensure_demo_image(socket_path: Path, *, image: str = DEMO_IMAGE) -> bool:
    """Build the demo's busybox image into the node's engine unless it has it; True if built."""
    if _image_present(socket_path, image):
        return False
    with tempfile.TemporaryDirectory(prefix="pinnace-busybox-") as context:
        shutil.copytree(DEMO_CONTEXT, context, dirs_exist_ok=True, ignore=shutil.ignore_patterns("busybox"))
        prepared = subprocess.run(["sh", str(Path(context) / "prepare.sh"), context], capture_output=True,
                                  text=True, check=False)
        if prepared.returncode != 0:
            raise RuntimeError(prepared.stderr.strip() or "prepare.sh failed")
        done = subprocess.run([sys.executable, "-m", "cli.main", "engine", "build", "--socket", str(socket_path),
                               "-q", "-t", image, context], capture_output=True, text=True, cwd=str(REPO),
                              check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building {image} failed: {done.stderr.strip() or done.stdout.strip()}")
    return True


def _start_server(files: ClusterFiles, args: argparse.Namespace, progress: Progress) -> None:
    if SERVER.running_pid(files.data_dir) is not None:
        return
    # on every address, as k3s: pods reach it through the kubernetes Service (DNAT to the node's IP)
    process = _spawn(SERVER, files.data_dir, ["server", "--data-dir", str(files.data_dir), "--port", str(args.port),
                                              "--host", "0.0.0.0"])
    if not _wait(lambda: files.admin_kubeconfig.exists() and api_ready(files), within=SERVER_READY_TIMEOUT,
                 failed=_exited(SERVER, files.data_dir, process)):
        raise RuntimeError(f"the server did not become ready in {SERVER_READY_TIMEOUT:.0f}s; "
                           f"see {SERVER.log_file(files.data_dir)}")
    progress.done(f"control plane ready at {api_url(files)} (pid {process.pid})")


def _start_agent(files: ClusterFiles, args: argparse.Namespace, progress: Progress, *, wait: bool = True) -> None:
    """Start the node agent (unless running); with ``wait``, until its engine answers."""
    from cli.agent_cmds import socket_answers

    if AGENT.running_pid(files.data_dir) is not None:
        if wait and not _wait(lambda: socket_answers(files.agent.engine_socket), within=60.0,
                              failed=_agent_gone(files)):
            raise RuntimeError(f"the node's engine did not start in 60s; see {AGENT.log_file(files.data_dir)}")
        return
    server = api_url(files) or f"https://127.0.0.1:{args.port}"
    write_node_kubeconfig(files, node_name=args.node_name, server=server)
    paths = files.agent
    process = _spawn(AGENT, files.data_dir, [
        "agent", "--kubeconfig", str(files.agent_kubeconfig), "--data-dir", str(paths.data_dir),
        "--node-name", args.node_name, "--node-ip", args.node_ip, "--kubelet-port", str(args.kubelet_port)])
    if not wait:
        return
    died = _exited(AGENT, files.data_dir, process)
    if not _wait(lambda: socket_answers(paths.engine_socket), within=60.0, failed=died):
        raise RuntimeError(f"the node's engine did not start in 60s; see {AGENT.log_file(files.data_dir)}")
    progress.done(f"node agent started (pid {process.pid}; engine on {paths.engine_socket})")


def _wait_node(files: ClusterFiles, node_name: str, progress: Progress, *, within: float,
               since: float) -> None:
    """Until the Node is Ready by a heartbeat of this run (a stored status from a run before says
    nothing about the kubelet starting now)."""
    url = f"{api_url(files)}/api/v1/nodes/{node_name}"
    context = _admin_context(files)
    process_gone = _agent_gone(files)

    def ready() -> bool:
        try:
            return node_ready(_get(url, context=context), since=since)
        except (OSError, ValueError):
            return False

    if not _wait(ready, within=within, failed=process_gone):
        raise RuntimeError(f"node {node_name} was not Ready within {within:.0f}s (is the kubelet "
                           f"working?); see {AGENT.log_file(files.data_dir)}; the cluster keeps running")
    progress.done(f"node {node_name} Ready")


def _agent_gone(files: ClusterFiles) -> Callable[[], str | None]:
    def reason() -> str | None:
        if AGENT.running_pid(files.data_dir) is None:
            return f"the agent is not running; see {AGENT.log_file(files.data_dir)}"
        return None

    return reason


def run_up(args: argparse.Namespace) -> int:
    from cli import user_kubeconfig

    files = ClusterFiles(Path(args.data_dir).resolve())
    for name, port in (("--port", args.port), ("--kubelet-port", args.kubelet_port)):
        if not 0 < port < 65536:
            raise ValueError(f"{name} {port} is not a TCP port (1-65535)")
    if all(d.running_pid(files.data_dir) is not None for d in DAEMONS):
        print(f"pinnace up: already running ({api_url(files)}); kubeconfig {files.admin_kubeconfig}")
        return 0
    files.agent.check()  # before anything starts
    args.node_name = args.node_name or default_node_name()
    args.node_ip = args.node_ip or default_node_ip()
    files.data_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    started = time.time()
    if files.admin_kubeconfig.exists():  # a cluster that ran before: its node starts beside the server
        _start_agent(files, args, progress, wait=False)
    _start_server(files, args, progress)
    _start_agent(files, args, progress)
    if not args.no_demo_image:
        built = ensure_demo_image(files.agent.engine_socket)
        progress.done(f"image {DEMO_IMAGE} {'built' if built else 'present'}")
    if not args.no_kubeconfig:
        target = user_kubeconfig.user_kubeconfig_path()
        context = user_kubeconfig.merge(target, yaml.safe_load(files.admin_kubeconfig.read_text()))
        progress.done(f"kubectl context {context!r} set in {target}")
    _wait_node(files, args.node_name, progress, within=args.timeout, since=started)
    print(f"pinnace up: cluster ready at {api_url(files)}; admin kubeconfig {files.admin_kubeconfig}")
    return 0


# ----------------------------------------------------------------------------------------- down


def configure_down(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="state of the cluster (default %(default)s)")
    p.add_argument("--keep-data", action="store_true", help="stop everything but keep the data dir")


def stop_pid(pid: int, *, grace: float = STOP_GRACE) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while Path(f"/proc/{pid}").exists():
            _reap(pid)
            time.sleep(0.05)


def _reap(pid: int) -> None:
    """A daemon started by this very process (tests) stays a zombie until waited for."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def run_down(args: argparse.Namespace) -> int:
    from cli import cleanup, pod_sweep, user_kubeconfig

    files = ClusterFiles(Path(args.data_dir).resolve())
    server_url = api_url(files)  # read before the data dir goes
    agent_pid = AGENT.running_pid(files.data_dir)
    if agent_pid is not None:  # first: a running kubelet would recreate the pods removed below
        stop_pid(agent_pid)
        print(f"pinnace down: stopped agent (pid {agent_pid})")
    failures: list[str] = []
    server_pid = SERVER.running_pid(files.data_dir)
    with ThreadPoolExecutor(1) as pool:  # the server stops while the pods go: they do not need it
        server_stopped = pool.submit(stop_pid, server_pid) if server_pid is not None else None
        try:
            for item in pod_sweep.remove_all_pods(files.agent):
                print(f"pinnace down: removed {item}")
        except (OSError, RuntimeError) as exc:
            failures.append(f"removing pods: {exc}")
        except Exception as exc:  # a gRPC error: report it and clean up the rest anyway
            failures.append(f"removing pods: {exc.__class__.__name__}: {exc}")
        if server_stopped is not None:
            server_stopped.result()
            print(f"pinnace down: stopped server (pid {server_pid})")
    if agent_pid is None and server_pid is None:
        print("pinnace down: no cluster process was running")
    user_config = user_kubeconfig.user_kubeconfig_path() if server_url else None
    scope = cleanup.Scope(data_dir=files.data_dir, agent=files.agent, kubeconfig=user_config,
                          context=CONTEXT_NAME, server=server_url)
    steps = tuple(s for s in cleanup.STEPS if not (args.keep_data and s[1] is cleanup.remove_data_dir))
    removed, failed = cleanup.run_all(scope, steps=steps)
    for item in removed:
        print(f"pinnace down: removed {item}")
    for failure in failures + failed:
        print(f"pinnace down: could not remove {failure}", file=sys.stderr)
    return 1 if failures or failed else 0


# --------------------------------------------------------------------------------------- status


def configure_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="state of the cluster (default %(default)s)")


def _agent_children(files: ClusterFiles) -> dict[str, str]:
    found = {}
    for pid_file in sorted(files.agent.data_dir.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        found[pid_file.stem] = f"pid {pid}" + ("" if Path(f"/proc/{pid}").exists() else " (gone)")
    return found


def run_status(args: argparse.Namespace) -> int:
    files = ClusterFiles(Path(args.data_dir).resolve())
    pids = {d.name: d.running_pid(files.data_dir) for d in DAEMONS}
    for name, pid in pids.items():
        print(f"{name:<8} {'running, pid ' + str(pid) if pid else 'not running'}")
    for name, state in _agent_children(files).items():
        print(f"  {name:<8} {state}")
    healthy = pids["server"] is not None and api_ready(files)
    print(f"api      {api_url(files) or '-'} {'ready' if healthy else 'not ready'}")
    if healthy:
        context = _admin_context(files)
        url = api_url(files)
        try:
            nodes = _get(f"{url}/api/v1/nodes", context=context).get("items", [])
            pods = _get(f"{url}/api/v1/pods", context=context).get("items", [])
        except (OSError, ValueError) as exc:
            print(f"api      error: {exc}")
            return 1
        for node in nodes:
            print(f"node     {node['metadata']['name']} {'Ready' if node_ready(node) else 'NotReady'}")
        if not nodes:
            print("node     none registered")
        print(f"pods     {len(pods)}")
    print(f"kubeconfig {files.admin_kubeconfig}")
    return 0 if healthy and all(pids.values()) else 1
