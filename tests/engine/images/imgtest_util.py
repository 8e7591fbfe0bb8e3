"""Helpers for the image tests: offline test images, hand-made tars, a real docker-registry process,
and a counting / authenticating / stalling HTTP proxy in front of it."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from engine.images import mediatypes as mt
from engine.images.pack import pack_dir
from engine.images.store import Image, ImageStore

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "ls", "cat", "echo", "true", "test")


def need_tool(path: str) -> None:
    """Skip the calling test, naming the tool, when a real-thing dependency is not installed."""
    if shutil.which(path) is None and not os.path.exists(path):
        pytest.skip(f"{path} is not installed")


def busybox_tree(root: Path) -> Path:
    """A minimal root filesystem: busybox-static as /bin/busybox plus applet symlinks."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return root


def small_tree(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    root.mkdir(parents=True, exist_ok=True)
    return root


def whiteout(path: Path) -> None:
    """An overlay-form whiteout (0:0 character device), as a build step's upper dir holds them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))


class _BlobSink:
    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def write(self, data: bytes) -> int:
        self.writer.write(data)
        return len(data)

    def flush(self) -> None:
        return None


def add_layer_from_dir(store: ImageStore, tree: Path, *, compress: bool = True) -> tuple[dict[str, Any], str]:
    """Pack ``tree`` into a layer blob in ``store``: (descriptor, diff_id)."""
    with store.ingest() as writer:
        packed = pack_dir(tree, _BlobSink(writer), compress=compress)
        writer.commit()
    return {"mediaType": packed.media_type, "digest": packed.digest, "size": packed.size}, packed.diff_id


def add_layer_from_tar(store: ImageStore, data: bytes) -> dict[str, Any]:
    digest = store.put_blob(data)
    return {"mediaType": mt.OCI_LAYER, "digest": digest, "size": len(data)}


def image_config(diff_ids: list[str], *, cmd: list[str] | None = None, label: str = "") -> dict[str, Any]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T10:00:00.123456789Z",
        "config": {"Cmd": cmd or ["/bin/sh"], "Labels": {"test": label} if label else None},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}", "created": "2024-05-01T10:00:00Z"} for i in range(len(diff_ids))],
    }


def build_image(
    store: ImageStore, trees: Iterable[Path], *, names: Iterable[str] = (), label: str = "", flavour: str = "docker"
) -> Image:
    layers, diff_ids = [], []
    for tree in trees:
        desc, diff_id = add_layer_from_dir(store, tree)
        layers.append(desc)
        diff_ids.append(diff_id)
    return store.write_image(config=image_config(diff_ids, label=label), layers=layers, names=names, flavour=flavour)


def make_tar(entries: list[tuple[str, str, Any]], *, gzip: bool = False) -> bytes:
    """A tar from (type, name, arg): ("file", name, content), ("dir", name, None),
    ("sym", name, target), ("link", name, target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gzip else "w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, arg in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "file":
                data = arg.encode() if isinstance(arg, str) else arg
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, arg
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, arg
            else:
                raise ValueError(kind)
            tf.addfile(info)
    return buf.getvalue()


def store_snapshot(store: ImageStore) -> tuple[bytes, frozenset[str], frozenset[str], frozenset[str]]:
    """Everything observable in a store, to compare before/after a failed operation."""
    return (
        (store.root / "index.json").read_bytes(),
        frozenset(p.name for p in store.blobs_dir.iterdir()),
        frozenset(store.snapshots.list()),
        frozenset(p.name for p in store.tmp_dir.iterdir()),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RegistryProcess:
    """Debian's docker-registry on loopback, storage in a temp dir; stopped by PID."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "storage"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = workdir / "registry.log"
        self.config = workdir / "config.yml"
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RegistryProcess:
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(self.config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()

    def blob_data_path(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"


def unique_repo(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass
class ProxyAuth:
    scheme: str  # "bearer" or "basic"
    username: str = "alice"
    password: str = "s3cret"


class GateProxy:
    """An HTTP proxy in front of the registry that counts requests and can demand auth or stall.

    ``requests`` counts (method, path) pairs; ``token_scopes`` records the scopes asked for;
    paths containing any ``stall`` substring hang until the client gives up.
    """

    def __init__(self, upstream: str, *, auth: ProxyAuth | None = None, stall: Iterable[str] = ()) -> None:
        self.upstream = upstream
        self.auth = auth
        self.stall = tuple(stall)
        self.requests: Counter[tuple[str, str]] = Counter()
        self.token_scopes: list[list[str]] = []
        self._tokens: set[str] = set()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> GateProxy:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("GET", "/token", self._token)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession(auto_decompress=False)
        return self

    async def stop(self) -> None:
        self._release.set()  # let stalled handlers finish so shutdown does not wait for them
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def count(self, method: str, fragment: str) -> int:
        return sum(n for (m, p), n in self.requests.items() if m == method and fragment in p)

    def _basic_ok(self, header: str) -> bool:
        assert self.auth is not None
        expected = base64.b64encode(f"{self.auth.username}:{self.auth.password}".encode()).decode()
        return header == f"Basic {expected}"

    async def _token(self, request: web.Request) -> web.Response:
        self.token_scopes.append(request.query.getall("scope", []))
        if not self._basic_ok(request.headers.get("Authorization", "")):
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        token = uuid.uuid4().hex
        self._tokens.add(token)
        return web.json_response({"token": token, "expires_in": 300})

    def _challenge(self) -> web.Response:
        assert self.auth is not None
        if self.auth.scheme == "bearer":
            header = f'Bearer realm="http://{self.host}/token",service="gate"'
        else:
            header = 'Basic realm="gate"'
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        return web.Response(status=401, body=body, headers={"WWW-Authenticate": header})

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.requests[(request.method, request.path)] += 1
        if any(s in request.path for s in self.stall):
            await self._release.wait()
            return web.Response(status=503)
        if self.auth is not None and request.path.startswith("/v2/"):
            header = request.headers.get("Authorization", "")
            ok = (
                header.removeprefix("Bearer ") in self._tokens
                if self.auth.scheme == "bearer"
                else self._basic_ok(header)
            )
            if not ok:
                return self._challenge()
        assert self._session is not None
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "authorization", "content-length")
        }
        headers["Host"] = self.host
        url = f"http://{self.upstream}{request.rel_url}"
        async with self._session.request(request.method, url, headers=headers, data=body, allow_redirects=False) as up:
            payload = await up.read()
            out_headers = {
                k: v
                for k, v in up.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            return web.Response(status=up.status, body=payload, headers=out_headers)


def skopeo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout, check=True)
