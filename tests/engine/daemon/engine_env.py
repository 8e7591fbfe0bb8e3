"""Real things the daemon tests run against: a ``docker-registry`` on loopback, an engine daemon
subprocess on a temp socket, and small busybox images packed straight into a store.

Every process is started here and stopped by its own PID; every directory lives under a pytest
temp dir. Shared by tests/engine/daemon and tests/cli/test_engine_cli.py.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.images.pack import pack_dir
from engine.images.store import Image, ImageStore

REPO = Path(__file__).resolve().parents[3]
BUSYBOX = Path("/bin/busybox")
DOCKER = Path("/usr/local/bin/docker")
REGISTRY_BIN = shutil.which("docker-registry")
APPLETS = ("sh", "echo", "cat", "ls", "true", "httpd", "wget", "nc")
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, ready: Any, *, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready in {timeout}s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    """Stop exactly this process: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# ------------------------------------------------------------------------------------ registry


class Registry:
    """Debian's ``docker-registry`` (distribution 2.x) on 127.0.0.1, no auth, storage in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def start(self) -> Registry:
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        (self.root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        log = self.root / "registry.log"
        with open(log, "wb") as out:
            self.process = subprocess.Popen([REGISTRY_BIN, "serve", str(self.root / "config.yml")],
                                            stdout=out, stderr=subprocess.STDOUT)
        _wait("docker-registry", self._answers, process=self.process, log=log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def manifest_digest(self, repo: str, tag: str) -> str:
        request = urllib.request.Request(
            f"http://{self.host}/v2/{repo}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                               "application/vnd.oci.image.manifest.v1+json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.headers["Docker-Content-Digest"]


# -------------------------------------------------------------------------------------- images


def _layer(store: ImageStore, tree: Path) -> dict[str, Any]:
    buf = io.BytesIO()
    packed = pack_dir(tree, buf)
    store.put_blob(buf.getvalue(), expected=packed.digest)
    return {"mediaType": packed.media_type, "digest": packed.digest, "size": packed.size, "diff_id": packed.diff_id}


def busybox_image(store: ImageStore, work: Path, *, names: tuple[str, ...], layers: int = 1,
                  label: str = "test") -> Image:
    """An image of /bin/busybox (plus ``layers - 1`` small layers of files) written into ``store``."""
    trees = []
    base = work / "layer0"
    (base / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, base / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", base / "bin" / applet)
    (base / "etc").mkdir()
    (base / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    trees.append(base)
    for i in range(1, layers):
        tree = work / f"layer{i}"
        (tree / "data").mkdir(parents=True)
        (tree / "data" / f"file{i}.txt").write_text(f"layer {i} of {label}\n" * 1000)
        trees.append(tree)
    descs = [_layer(store, tree) for tree in trees]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"pinnace.test": label}},
        "rootfs": {"type": "layers", "diff_ids": [d["diff_id"] for d in descs]},
        "history": [{"created": "2026-01-02T03:04:05Z", "created_by": f"test layer {i}"} for i in range(layers)],
    }
    return store.write_image(config=config, layers=descs, names=names)


# -------------------------------------------------------------------------------------- daemon


class EngineProcess:
    """``pinnace engine serve`` as a subprocess on a temp socket and root."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.socket = base / "engine.sock"
        self.log = base / "engine.log"
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients: our CLI and the docker CLI both find the daemon through it."""
        return {**os.environ, "PINNACE_ENGINE_SOCKET": str(self.socket), "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_CONFIG": str(self.root.parent / "docker-config")}

    def _answers(self) -> bool:
        conn = _UnixHTTP(str(self.socket))
        try:
            conn.request("GET", "/_ping")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def start(self) -> EngineProcess:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "engine", "serve", "--root", str(self.root),
                 "--socket", str(self.socket)],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            )
        _wait("engine daemon", self._answers, process=self.process, log=self.log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def run(cmd: list[str], *, env: dict[str, str], input: bytes | None = None, timeout: float = 120,
        check: bool = True, cwd: Path = REPO) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, input=input, capture_output=True, timeout=timeout, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    return result


def pinnace(*args: str, env: dict[str, str], input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "cli.main", *args], env=env, input=input, check=check)


@contextlib.contextmanager
def open_store(root: Path) -> Iterator[ImageStore]:
    store = ImageStore(root)
    try:
        yield store
    finally:
        store.close()
