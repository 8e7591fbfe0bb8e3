"""Image benchmark: a registry pull and Dockerfile builds, side by side with skopeo and podman.

``python -m bench.images`` works in a temp dir: it starts Debian's ``docker-registry`` on loopback
and a ``pinnace engine serve`` daemon, makes a 3-layer image here (busybox, 4 MB of incompressible
data, 500 small files), pushes it, and then times, alternating ours and the peer's runs so both see
the same machine noise:

- pull, cold: ``pinnace engine pull`` (the image and its layers removed before every run, so each
  run downloads, verifies and unpacks) against ``skopeo copy docker://... oci:DIR`` into a fresh dir;
- build of the busybox image (``manifests/images/busybox``), cold (``--no-cache``) and cached (an
  unchanged rebuild), against ``podman build`` (or ``buildah bud``) with the same flags and no
  network, in a private podman storage dir.

Medians are printed with the ratio ours/peer and the issue's targets (pull within 1.5x of skopeo;
cached build faster than podman). A missing peer prints "peer missing: NAME"; a missing builder or
Dockerfile skips the build rows with a note. Nothing is asserted; exit status 1 means a step failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUSYBOX_CONTEXT = REPO / "manifests" / "images" / "busybox"
PODMAN_LIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768")
START_TIMEOUT = 30.0
DATA_BYTES = 4 << 20
SMALL_FILES = 500


class BenchError(RuntimeError):
    """A step failed; the message says which and why."""


@dataclass(frozen=True)
class Row:
    label: str
    ours: float
    peer: float | None
    peer_name: str
    target: str

    def ratio(self) -> str:
        return f"{self.ours / self.peer:.2f}x" if self.peer else "-"


# ------------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until(what: str, ready: Callable[[], bool], process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode}: {log.read_text()[-1500:]}")
        if ready():
            return
        time.sleep(0.05)
    raise BenchError(f"{what} did not start within {START_TIMEOUT}s")


@contextlib.contextmanager
def registry(work: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1; yields ``host:port``."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise BenchError("docker-registry is not installed (apt-get install docker-registry)")
    host = f"127.0.0.1:{_free_port()}"
    config = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
              "storage": {"filesystem": {"rootdirectory": str(work / "data")}}, "http": {"addr": host}}
    work.mkdir(parents=True)
    (work / "config.yml").write_text(json.dumps(config))
    log = work / "registry.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, "serve", str(work / "config.yml")], stdout=out, stderr=subprocess.STDOUT)

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    try:
        _wait_until("docker-registry", answers, process, log)
        yield host
    finally:
        _stop(process)


@contextlib.contextmanager
def engine(work: Path) -> Iterator[dict[str, str]]:
    """``pinnace engine serve`` on a temp socket and root; yields the clients' environment."""
    sock = work / "engine.sock"
    log = work / "engine.log"
    work.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "engine", "serve", "--root", str(work / "root"), "--socket", str(sock)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )
    env = {**os.environ, "PINNACE_ENGINE_SOCKET": str(sock)}
    try:
        _wait_until("engine daemon", lambda: _ok([sys.executable, "-m", "cli.main", "engine", "images", "-q"], env),
                    process, log)
        yield env
    finally:
        _stop(process)


def _ok(cmd: list[str], env: dict[str, str]) -> bool:
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True).returncode == 0


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> float:
    """Run ``cmd``; its wall time in seconds (a failure is a ``BenchError`` naming the command)."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, timeout=600)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()[-3:]
        raise BenchError(f"{' '.join(cmd[:4])} ... failed ({result.returncode}): {' | '.join(detail)}")
    return elapsed


def pinnace(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", "engine", *args]


# ---------------------------------------------------------------------------------- the image


def make_image(store_root: Path, work: Path, name: str) -> None:
    """Write the 3-layer test image into a store (before the daemon opens it)."""
    from engine.images.pack import pack_dir
    from engine.images.store import ImageStore

    rng = random.Random(4)
    trees = [work / f"layer{i}" for i in range(3)]
    (trees[0] / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", trees[0] / "bin" / "busybox")
    os.symlink("busybox", trees[0] / "bin" / "sh")
    (trees[1] / "data").mkdir(parents=True)
    (trees[1] / "data" / "blob.bin").write_bytes(rng.randbytes(DATA_BYTES))
    (trees[2] / "data" / "small").mkdir(parents=True)
    for i in range(SMALL_FILES):
        (trees[2] / "data" / "small" / f"f{i:04d}.txt").write_text(f"file {i}\n" * rng.randint(1, 200))
    store = ImageStore(store_root)
    try:
        layers, diff_ids = [], []
        for tree in trees:
            buf = io.BytesIO()
            packed = pack_dir(tree, buf)
            store.put_blob(buf.getvalue(), expected=packed.digest)
            layers.append({"mediaType": packed.media_type, "digest": packed.digest, "size": packed.size})
            diff_ids.append(packed.diff_id)
        config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "history": [{"created_by": f"bench layer {i}"} for i in range(3)]}
        store.write_image(config=config, layers=layers, names=[name])
    finally:
        store.close()


# -------------------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class PeerStorage:
    """A private containers/storage dir for skopeo and podman/buildah, removed at the end."""

    root: Path
    runroot: Path

    @property
    def flags(self) -> list[str]:
        return ["--root", str(self.root), "--runroot", str(self.runroot)]

    @property
    def transport(self) -> str:
        return f"containers-storage:[overlay@{self.root}+{self.runroot}]"

    def remove_image(self, name: str) -> None:
        tool = shutil.which("podman") or shutil.which("buildah")
        if tool:
            subprocess.run([tool, *self.flags, "rmi", "-f", name], capture_output=True, timeout=120)

    def cleanup(self) -> None:
        if podman := shutil.which("podman"):
            subprocess.run([podman, *self.flags, "system", "reset", "--force"], capture_output=True, timeout=120)
        elif buildah := shutil.which("buildah"):
            subprocess.run([buildah, *self.flags, "rmi", "-a", "-f"], capture_output=True, timeout=120)


def interleaved(runs: int, timers: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Median seconds of each timer over ``runs`` rounds, one run of every timer per round."""
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(runs):
        for name, timer in timers.items():
            times[name].append(timer())
    return {name: statistics.median(values) for name, values in times.items()}


def api_pull(env: dict[str, str], remote: str) -> float:
    """One pull through the daemon's API from this process (no client start-up in the figure)."""
    from cli.engine_cmds import EngineClient, EngineError, split_repo_tag

    repo, tag = split_repo_tag(remote)
    started = time.perf_counter()
    try:
        for _ in EngineClient(env["PINNACE_ENGINE_SOCKET"]).stream(
            "POST", "/images/create", query={"fromImage": repo, "tag": tag}
        ):
            pass
    except EngineError as exc:
        raise BenchError(f"pull through the API failed: {exc}") from None
    return time.perf_counter() - started


def bench_pull(*, runs: int, env: dict[str, str], remote: str, work: Path, peers: PeerStorage) -> list[Row]:
    skopeo = shutil.which("skopeo")

    def ours_api() -> float:
        run(pinnace("rmi", remote), env)  # also collects its blobs and snapshots: the next pull is cold
        return api_pull(env, remote)

    def ours_cli() -> float:
        run(pinnace("rmi", remote), env)
        return run(pinnace("pull", remote), env)

    def skopeo_oci() -> float:
        dest = work / "skopeo-dest"
        shutil.rmtree(dest, ignore_errors=True)
        return run([str(skopeo), "copy", "--quiet", "--src-tls-verify=false", f"docker://{remote}", f"oci:{dest}:x"])

    def skopeo_storage() -> float:
        peers.remove_image("bench/three:1")
        return run([str(skopeo), "copy", "--quiet", "--src-tls-verify=false", f"docker://{remote}",
                    f"{peers.transport}bench/three:1"])

    timers: dict[str, Callable[[], float]] = {"api": ours_api, "cli": ours_cli}
    if skopeo is None:
        print("peer missing: skopeo")
    else:
        timers["oci"] = skopeo_oci
        if shutil.which("podman") or shutil.which("buildah"):
            timers["storage"] = skopeo_storage
    t = interleaved(runs, timers)
    rows = [
        Row("pull 3 layers, cold (engine API)", t["api"], t.get("oci"), "skopeo copy to oci:", "<= 1.5x skopeo"),
        Row("pull 3 layers, cold (pinnace CLI)", t["cli"], t.get("oci"), "skopeo copy to oci:", "<= 1.5x skopeo"),
    ]
    if "storage" in t:
        rows.append(Row("pull 3 layers, cold (engine API)", t["api"], t["storage"],
                        "skopeo copy to containers-storage: (unpacks too)", "<= 1.5x skopeo"))
    return rows


def _build_peer(peers: PeerStorage) -> tuple[str, list[str]] | None:
    """(name, command up to the build flags) of podman, else buildah, else None."""
    if podman := shutil.which("podman"):
        return "podman build", [podman, *peers.flags, "build", *PODMAN_LIMITS, "--network", "none", "-q"]
    if buildah := shutil.which("buildah"):
        return "buildah bud", [buildah, *peers.flags, "bud", *PODMAN_LIMITS, "--network", "none", "-q"]
    print("peer missing: podman")
    return None


def bench_build(*, runs: int, env: dict[str, str], work: Path, peers: PeerStorage) -> list[Row]:
    try:
        from engine.build import build  # noqa: F401
    except ImportError:
        print("build: skipped (the builder, engine.build.build, is not available)")
        return []
    if not (BUSYBOX_CONTEXT / "Dockerfile").is_file():
        print(f"build: skipped ({BUSYBOX_CONTEXT}/Dockerfile does not exist)")
        return []
    context_dir = work / "busybox-context"  # the Dockerfile's context plus the binary prepare.sh copies
    shutil.copytree(BUSYBOX_CONTEXT, context_dir)
    shutil.copy2("/bin/busybox", context_dir / "busybox")
    context = str(context_dir)
    peer = _build_peer(peers)
    tag = "bench/busybox:latest"

    def timers(*flags: str) -> dict[str, Callable[[], float]]:
        ours = pinnace("build", *flags, "-q", "-t", tag, context)
        out: dict[str, Callable[[], float]] = {"ours": lambda: run(ours, env)}
        if peer is not None:
            out["peer"] = lambda: run([*peer[1], *flags, "-t", tag, context])
        return out

    t_cold = interleaved(runs, timers("--no-cache"))
    interleaved(1, timers())  # warm both caches once
    t_cached = interleaved(runs, timers())
    name = peer[0] if peer else ""
    return [
        Row("build busybox, cold (--no-cache)", t_cold["ours"], t_cold.get("peer"), name, "(none)"),
        Row("build busybox, cached rebuild", t_cached["ours"], t_cached.get("peer"), name, "< 1x podman"),
    ]


def report(rows: list[Row]) -> None:
    header = ("operation", "pinnace s", "peer s", "peer", "ratio", "target")
    table = [header] + [
        (r.label, f"{r.ours:.3f}", f"{r.peer:.3f}" if r.peer else "-", r.peer_name or "-", r.ratio(), r.target)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.images", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (default %(default)s)")
    parser.add_argument("--skip-build", action="store_true", help="only the pull figures")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="pinnace-bench-images-"))
    peers = PeerStorage(work / "peer-root", work / "peer-runroot")
    try:
        with registry(work / "registry") as host:
            remote = f"{host}/bench/three:1"
            make_image(work / "engine" / "root", work / "layers", remote)
            with engine(work / "engine") as env:
                run(pinnace("push", remote), env)
                rows = bench_pull(runs=args.runs, env=env, remote=remote, work=work, peers=peers)
                if not args.skip_build:
                    rows += bench_build(runs=args.runs, env=env, work=work, peers=peers)
        print(f"median of {args.runs} runs each, ours and peers interleaved")
        report(rows)
        return 0
    except BenchError as exc:
        print(f"bench.images: {exc}", file=sys.stderr)
        return 1
    finally:
        peers.cleanup()
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
