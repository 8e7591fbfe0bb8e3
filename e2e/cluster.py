"""Test helpers: a real ``pinnace server`` process and the real kubectl pointed at it."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KUBECTL = "/usr/bin/kubectl"
SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A ``pinnace server`` subprocess on a loopback port with its own data dir; ``datastore`` is
    its ``--datastore`` (None: the server's default, embedded SQLite)."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen | None = None
    datastore: str | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    def start(self, *extra: str, timeout: float = 30.0) -> Server:
        self.port = self.port or free_port()
        log = open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab")
        store = ["--datastore", self.datastore] if self.datastore else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "server", "--data-dir", str(self.data_dir),
             "--port", str(self.port), *store, *extra],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log in {log.name}")
            if self.kubeconfig.exists() and self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready within {timeout}s; log in {log.name}")

    def _ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body: bytes | dict | None = None, *,
                content_type: str | None = "application/json", accept: str | None = None,
                credentials: bool = True) -> tuple[int, dict]:
        """One HTTPS request with the admin certificate (or none); the JSON answer."""
        pki = self.data_dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        if credentials:
            ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content_type else {}
        if accept:
            headers["Accept"] = accept
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        return response.status, json.loads(payload) if payload else {}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class Kubectl:
    """Runs a real kubectl binary with a private HOME (so its discovery cache starts empty)."""

    kubeconfig: Path
    home: Path
    binary: str = KUBECTL

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        env = {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run([self.binary, *args], input=input, capture_output=True, text=True, env=env,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def __call__(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).stdout

    def popen(self, *args: str) -> subprocess.Popen:
        env = {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}
        return subprocess.Popen([self.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)


def kubectl_missing() -> bool:
    return shutil.which(KUBECTL) is None
