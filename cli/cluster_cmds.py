"""``pinnace up`` / ``pinnace down``: a one-node cluster on this host, started in the background.

``up`` starts ``pinnace server`` as a daemon (its PID in the data dir), waits until it answers
``/readyz``, and writes the admin kubeconfig. ``down`` stops exactly that PID and removes the data
dir. Until the node agent exists the cluster is the control plane alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from cli.server_cmds import DEFAULT_DATA_DIR

PID_FILE = "server.pid"
LOG_FILE = "server.log"
READY_TIMEOUT = 30.0


def configure_up(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="state of the cluster (default %(default)s)")
    p.add_argument("--port", type=int, default=6443, help="API server HTTPS port (default %(default)s)")
    p.add_argument("--write-kubeconfig", metavar="PATH", help="also copy the admin kubeconfig here")


def configure_down(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="state of the cluster (default %(default)s)")
    p.add_argument("--keep-data", action="store_true", help="stop the server but keep its data dir")


def _running_pid(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"server" in cmdline and str(data_dir).encode() in cmdline else None


def _ready(url: str, data_dir: Path) -> bool:
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
    try:
        with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=2) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def run_up(args: argparse.Namespace) -> int:
    import subprocess

    data_dir = Path(args.data_dir).resolve()
    url = f"https://127.0.0.1:{args.port}"
    if _running_pid(data_dir) is not None:
        print(f"pinnace up: already running ({url}); kubeconfig {data_dir / 'admin.kubeconfig'}")
        return 0
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / LOG_FILE, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "server", "--data-dir", str(data_dir), "--port", str(args.port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        cwd=str(Path(__file__).resolve().parent.parent))
    (data_dir / PID_FILE).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (data_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"the server exited ({process.returncode}): {' '.join(tail)}")
        if (data_dir / "admin.kubeconfig").exists() and _ready(url, data_dir):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"the server did not become ready in {READY_TIMEOUT:.0f}s; see {data_dir / LOG_FILE}")
    kubeconfig = data_dir / "admin.kubeconfig"
    if args.write_kubeconfig:
        target = Path(args.write_kubeconfig).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kubeconfig, target)
        target.chmod(0o600)
        kubeconfig = target
    print(f"pinnace up: cluster ready at {url} (pid {process.pid})")
    print(f"  export KUBECONFIG={kubeconfig}")
    return 0


def run_down(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    pid = _running_pid(data_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
        print(f"pinnace down: stopped server (pid {pid})")
    else:
        print("pinnace down: no server running")
    if not args.keep_data and data_dir.exists():
        shutil.rmtree(data_dir)
        print(f"pinnace down: removed {data_dir}")
    return 0
