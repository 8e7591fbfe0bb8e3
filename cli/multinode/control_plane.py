"""The control plane of a multi-node cluster, on the host: etcd (when asked) and M API servers.

The API servers listen on the bridge's host address (the cluster's own, so port 6443 + i never
clashes with another cluster). The first one runs the controllers (node IPAM divides the cluster's
own pod CIDR) and the scheduler; the others serve the API only, on the same etcd. They all share one
PKI: it is made here, before any server starts, so node credentials can be issued while the servers
are still starting, and copied to each server's dir (CA, admin cert, service-account key).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cli.cluster_cmds import ClusterFiles, Daemon, api_ready
from cli.multinode import procs
from cli.multinode.layout import Cluster, ClusterError, ControlPlaneSpec

SERVER = Daemon("server", b"server")
ETCD = Daemon("etcd", b"etcd")
ETCD_BINARY = "etcd"
READY_TIMEOUT = 30.0


def prepare_pki(cluster: Cluster) -> None:
    """One CA, serving cert (for the bridge address), admin cert and token key for every API server."""
    from apiserver import pki, tokens

    first = Path(cluster.control_planes[0].dir)
    first.mkdir(parents=True, exist_ok=True)
    made = pki.ensure_pki(first, hosts=[cluster.gateway])
    tokens.TokenSigner.ensure(made.dir)
    for plane in cluster.control_planes[1:]:
        shutil.copytree(made.dir, Path(plane.dir) / "pki", dirs_exist_ok=True)


def files(plane: ControlPlaneSpec) -> ClusterFiles:
    return ClusterFiles(Path(plane.dir))


def etcd_argv(cluster: Cluster) -> list[str]:
    assert cluster.etcd is not None
    binary = shutil.which(ETCD_BINARY)
    if binary is None:
        raise ClusterError("--datastore etcd needs the etcd binary (Debian package etcd-server)")
    client = f"http://{cluster.gateway}:{cluster.etcd.client_port}"
    peer = f"http://{cluster.gateway}:{cluster.etcd.peer_port}"
    return [binary, "--name", "etcd", "--data-dir", str(Path(cluster.etcd.dir) / "data"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"etcd={peer}", "--initial-cluster-state", "new",
            "--heartbeat-interval", "50", "--election-timeout", "500", "--logger", "zap", "--log-level", "warn"]


def server_argv(cluster: Cluster, plane: ControlPlaneSpec) -> list[str]:
    argv = [*procs.PINNACE, "server", "--data-dir", plane.dir, "--host", cluster.gateway,
            "--port", str(plane.port), "--tls-san", cluster.gateway, "--cluster-cidr", str(cluster.cluster_cidr)]
    if cluster.etcd is not None:
        argv += ["--datastore", f"etcd://{cluster.gateway}:{cluster.etcd.client_port}"]
    if plane.index > 0:
        argv.append("--no-controllers")  # one controller-manager and scheduler for the cluster
    return argv + cluster.server_flags


def _etcd_healthy(cluster: Cluster) -> bool:
    assert cluster.etcd is not None
    try:
        url = f"http://{cluster.gateway}:{cluster.etcd.client_port}/health"
        with urllib.request.urlopen(url, timeout=1) as response:
            return b'"true"' in response.read()
    except OSError:
        return False


def _wait(check: Callable[[], bool], *, process: subprocess.Popen, daemon: Daemon, directory: Path, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not check():
        if process.poll() is not None:
            raise ClusterError(f"{what} exited ({process.returncode}): {procs.log_tail(daemon, directory)}")
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} not ready within {READY_TIMEOUT:.0f}s; see {daemon.log_file(directory)}")
        time.sleep(0.05)


def start_etcd(cluster: Cluster) -> None:
    if cluster.etcd is None:
        return
    directory = Path(cluster.etcd.dir)
    if ETCD.running_pid(directory) is not None:
        return
    process = procs.spawn(ETCD, directory, argv=etcd_argv(cluster))
    _wait(lambda: _etcd_healthy(cluster), process=process, daemon=ETCD, directory=directory, what="etcd")


def spawn_servers(cluster: Cluster, *, first: bool) -> dict[int, subprocess.Popen]:
    """Start the first API server, or the others, unless running (without waiting). The others start
    once the first serves: API servers starting together on one etcd race to create the
    ``kubernetes`` Service, and the loser exits ("provided IP is already allocated")."""
    started = {}
    for plane in cluster.control_planes[:1] if first else cluster.control_planes[1:]:
        if SERVER.running_pid(Path(plane.dir)) is None:
            started[plane.index] = procs.spawn(SERVER, Path(plane.dir), argv=server_argv(cluster, plane))
    return started


def wait_servers(cluster: Cluster, started: dict[int, subprocess.Popen]) -> None:
    for index, process in started.items():
        plane = cluster.control_planes[index]
        directory = Path(plane.dir)
        _wait(lambda p=plane: files(p).admin_kubeconfig.exists() and api_ready(files(p)), process=process,
              daemon=SERVER, directory=directory, what=f"API server {index} ({cluster.api_url(index)})")


def stop(cluster: Cluster) -> list[str]:
    """API servers, then etcd; what was stopped."""
    stopped = []
    for plane in reversed(cluster.control_planes):
        pid = procs.stop(SERVER, Path(plane.dir))
        if pid is not None:
            stopped.append(f"API server {plane.index} (pid {pid})")
    if cluster.etcd is not None:
        pid = procs.stop(ETCD, Path(cluster.etcd.dir))
        if pid is not None:
            stopped.append(f"etcd (pid {pid})")
    return stopped
