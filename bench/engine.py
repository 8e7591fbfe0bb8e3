"""Container benchmark: ``pinnace engine run`` beside ``podman run`` and bare conmon + crun.

``python -m bench.engine`` works in a temp dir: it unpacks one busybox root filesystem (every
applet), packs it as the engine's ``busybox`` image, starts a ``pinnace engine serve`` daemon, and
measures, interleaving the contestants round by round so they share the machine's noise:

- run-to-exit of ``true`` with ``--rm``, per network mode (``none``, and ``bridge`` when both
  engines have one): our CLI end to end (a new process per run, as a user types it) against
  ``podman run --rootfs`` on the same tree; and daemon-side, our API driven from this process (the
  docker CLI's calls: create, attach, wait, start) against a bare conmon + crun cycle (conmon runs
  ``crun create``, then ``crun start``, the exit file, ``crun delete``) on the same tree with the
  same OCI spec generator;
- start-detached-to-running (``run -d``: returns once the container runs), the same pairs;
- memory added per running idle container: our daemon's growth plus its conmons, against
  podman's conmons (podman has no daemon) and bare conmons, RSS and PSS;
- 100 containers running at once on our engine (time to start them, all listed as running).

It prints medians and p90s, ratios, and the issue's targets (CLI >= 3x faster than podman with
the same network mode; daemon-side <= 2x conmon + crun; <= 2.5 MB RSS per idle container; 100
running). Our CLI runs with Python's bytecode cache on, as an installed package does. Nothing is
asserted; exit status 1 means a step failed. Everything it starts is stopped by PID and removed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.images import BenchError, engine, pinnace

PODMAN_LIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768")
BUSYBOX = Path("/bin/busybox")
IDLE = ("sleep", "100000")
MEMORY_CONTAINERS = 20
MANY = 100
BARE_CGROUP_PARENT = "pinnace-bench"
EXIT_POLL = 0.0005  # seconds between looks for a bare container's exit file


@dataclass
class Figure:
    label: str
    ours: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)
    peer_name: str = ""
    target: str = ""
    unit: str = "ms"

    def cells(self) -> tuple[str, ...]:
        def stat(values: list[float]) -> tuple[str, str]:
            if not values:
                return "-", "-"
            p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
            return f"{statistics.median(values):.1f}", f"{p90:.1f}"

        ours, peer = stat(self.ours), stat(self.peer)
        ratio = "-"
        if self.ours and self.peer:
            ratio = f"{statistics.median(self.peer) / statistics.median(self.ours):.2f}"
        return (self.label, *ours, *peer, self.peer_name or "-", ratio, self.target)


def report(figures: list[Figure]) -> None:
    header = ("figure", "ours med", "ours p90", "peer med", "peer p90", "peer", "peer/ours", "target")
    rows = [header] + [f.cells() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# ----------------------------------------------------------------------------- the rootfs


def make_rootfs(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, check=True).stdout.decode().split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", path / "bin" / applet)
    (path / "etc").mkdir()
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (path / "etc" / "group").write_text("root:x:0:\n")
    for name in ("proc", "sys", "dev", "tmp"):
        (path / name).mkdir()
    return path


def seed_image(engine_root: Path, rootfs: Path) -> None:
    """``rootfs`` as the image ``busybox:latest`` in the engine's store (before the daemon starts)."""
    from engine.images.pack import pack_dir
    from engine.images.store import ImageStore

    store = ImageStore(engine_root)
    try:
        buf = io.BytesIO()
        packed = pack_dir(rootfs, buf)
        store.put_blob(buf.getvalue(), expected=packed.digest)
        layer = {"mediaType": packed.media_type, "digest": packed.digest, "size": packed.size,
                 "diff_id": packed.diff_id}
        config = {"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": [packed.diff_id]}}
        store.write_image(config=config, layers=[layer], names=("busybox:latest",))
    finally:
        store.close()


# ---------------------------------------------------------------------------------- memory


def _status_kb(pid: int, key: str, path: str = "status") -> int:
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_pss_kb(pids: list[int]) -> tuple[int, int]:
    return (sum(_status_kb(p, "VmRSS:") for p in pids), sum(_status_kb(p, "Pss:", "smaps_rollup") for p in pids))


def conmons_under(marker: str) -> list[int]:
    """PIDs of the conmon processes whose command line mentions ``marker`` (a root dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == b"conmon" and marker.encode() in b" ".join(argv):
                found.append(int(entry))
    return found


# ------------------------------------------------------------------------ bare conmon + crun


class Bare:
    """conmon + crun on ``rootfs`` with a spec from our generator: no engine at all."""

    def __init__(self, work: Path, rootfs: Path) -> None:
        from engine.runtime.spec import ContainerOptions, make_spec

        self.work = work
        self.state = work / "crun"
        self.state.mkdir(parents=True)
        self._make_spec = make_spec
        self._options = ContainerOptions
        self.rootfs = rootfs
        self.running: list[str] = []

    def _bundle(self, cid: str, args: tuple[str, ...]) -> Path:
        bundle = self.work / cid
        bundle.mkdir()
        spec = self._make_spec(self._options(rootfs=str(self.rootfs), args=args, readonly_rootfs=True,
                                             cgroups_path=f"/{BARE_CGROUP_PARENT}/{cid}"))
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle

    def _create(self, cid: str, bundle: Path) -> None:
        read_fd, write_fd = os.pipe()
        argv = ["conmon", "--api-version", "1", "-c", cid, "-u", cid, "-r", shutil.which("crun") or "crun",
                "-b", str(bundle), "-p", str(bundle / "pidfile"), "-n", cid, "--exit-dir", str(bundle / "exit"),
                "--full-attach", "-l", f"k8s-file:{bundle / 'ctr.log'}", "--log-level", "warning",
                "--conmon-pidfile", str(bundle / "conmon.pid"), f"--runtime-arg=--root={self.state}"]
        (bundle / "exit").mkdir()
        try:
            subprocess.run(argv, pass_fds=(write_fd,), env={**os.environ, "_OCI_SYNCPIPE": str(write_fd)},
                           cwd=bundle, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            os.close(write_fd)
            write_fd = -1
            line = b""
            while b"\n" not in line and (chunk := os.read(read_fd, 4096)):
                line += chunk
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        if json.loads(line or b'{"data": -1}').get("data", -1) <= 0:
            raise BenchError(f"bare conmon + crun create failed: {line!r}")

    def _crun(self, *args: str) -> None:
        subprocess.run(["crun", f"--root={self.state}", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def run_to_exit(self) -> float:
        cid = "bare-" + secrets.token_hex(6)
        bundle = self._bundle(cid, ("true",))
        started = time.perf_counter()
        self._create(cid, bundle)
        self._crun("start", cid)
        while not (bundle / "exit" / cid).exists():
            time.sleep(EXIT_POLL)
        self._crun("delete", cid)
        elapsed = time.perf_counter() - started
        shutil.rmtree(bundle)
        return elapsed

    def start_detached(self) -> float:
        cid = "bare-" + secrets.token_hex(6)
        bundle = self._bundle(cid, IDLE)
        started = time.perf_counter()
        self._create(cid, bundle)
        self._crun("start", cid)
        elapsed = time.perf_counter() - started
        self.running.append(cid)
        return elapsed

    def remove_all(self) -> None:
        for cid in self.running:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._crun("delete", "-f", cid)
            shutil.rmtree(self.work / cid, ignore_errors=True)
        self.running.clear()

    def cleanup(self) -> None:
        """Remove what is left: running containers, then the (empty) parent cgroup of ours."""
        self.remove_all()
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if " - cgroup" in line and len(fields) > 4:
                with contextlib.suppress(OSError):
                    os.rmdir(Path(fields[4]) / BARE_CGROUP_PARENT)


# ------------------------------------------------------------------------------------ podman


class Podman:
    def __init__(self, work: Path, rootfs: Path) -> None:
        self.binary = shutil.which("podman")
        self.root = work
        self.rootfs = rootfs
        self.flags = ["--root", str(work / "root"), "--runroot", str(work / "runroot")]

    def _run(self, *args: str) -> float:
        assert self.binary is not None
        started = time.perf_counter()
        result = subprocess.run([self.binary, *self.flags, *args], capture_output=True, timeout=120)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise BenchError(f"podman {args[0]} failed: {result.stderr.decode(errors='replace').strip()[-300:]}")
        return elapsed

    def run_to_exit(self, network: str) -> float:
        return self._run("run", "--rm", "--network", network, *PODMAN_LIMITS, "--rootfs", str(self.rootfs), "true")

    def start_detached(self) -> float:
        return self._run("run", "-d", "--network", "none", *PODMAN_LIMITS, "--rootfs", str(self.rootfs), *IDLE)

    def remove_all(self) -> None:
        if self.binary:
            subprocess.run([self.binary, *self.flags, "rm", "-af", "-t", "0"], capture_output=True, timeout=300)

    def cleanup(self) -> None:
        if self.binary:
            self.remove_all()
            subprocess.run([self.binary, *self.flags, "system", "reset", "--force"], capture_output=True,
                           timeout=120)


# --------------------------------------------------------------------------------------- ours


class Ours:
    def __init__(self, env: dict[str, str], root: Path) -> None:
        from cli.engine_cmds import EngineClient

        self.env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.root = root
        self.client = EngineClient(env["PINNACE_ENGINE_SOCKET"])
        self.client.ping()

    def cli(self, *args: str) -> float:
        started = time.perf_counter()
        result = subprocess.run(pinnace(*args), env=self.env, capture_output=True, timeout=120)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise BenchError(f"pinnace engine {args[0]} failed: {result.stderr.decode(errors='replace').strip()}")
        return elapsed

    def cli_run_to_exit(self, network: str) -> float:
        return self.cli("run", "--rm", "--network", network, "busybox", "true")

    def _create(self, cmd: tuple[str, ...], *, network: str, auto_remove: bool) -> str:
        body = json.dumps({"Image": "busybox", "Cmd": list(cmd), "AttachStdout": auto_remove,
                           "AttachStderr": auto_remove,
                           "HostConfig": {"AutoRemove": auto_remove, "NetworkMode": network}}).encode()
        created = self.client.json("POST", "/containers/create", body=body,
                                   headers={"Content-Type": "application/json"})
        return str(created["Id"])

    def _post(self, path: str) -> None:
        with self.client.request("POST", path) as response:
            response.read()

    def api_run_to_exit(self, network: str) -> float:
        """What the docker CLI asks for a ``run --rm``, timed from this process."""
        from cli.engine_cmds import hijack

        started = time.perf_counter()
        cid = self._create(("true",), network=network, auto_remove=True)
        conn = hijack(self.client, f"/containers/{cid}/attach", query={"stream": "1", "stdout": "1", "stderr": "1"})
        waiter = self.client.request("POST", f"/containers/{cid}/wait", query={"condition": "removed"})
        self._post(f"/containers/{cid}/start")
        while conn.recv():
            pass
        conn.close()
        with waiter:
            waiter.read()
        return time.perf_counter() - started

    def api_start_detached(self) -> float:
        started = time.perf_counter()
        cid = self._create(IDLE, network="none", auto_remove=False)
        self._post(f"/containers/{cid}/start")
        return time.perf_counter() - started

    def running(self) -> int:
        return len(self.client.json("GET", "/containers/json") or [])

    def remove_all(self) -> None:
        ids = [c["Id"] for c in self.client.json("GET", "/containers/json", query={"all": "1"}) or []]
        from concurrent.futures import ThreadPoolExecutor

        def remove(cid: str) -> None:
            with self.client.request("DELETE", f"/containers/{cid}", query={"force": "1"}) as response:
                response.read()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(remove, ids))


def daemon_pid(engine_log_dir: Path) -> int:
    sock = str(engine_log_dir / "engine.sock")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if b"serve" in argv and sock.encode() in argv:
                    return int(entry)
    raise BenchError("cannot find the engine daemon's pid")


# ----------------------------------------------------------------------------------- figures


def rounds(runs: int, timers: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each timer once per round (after one untimed warm-up round), in ms."""
    for timer in timers.values():
        timer()
    out: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(runs):
        for name, timer in timers.items():
            out[name].append(timer() * 1000)
    return out


def run_figures(runs: int, ours: Ours, podman: Podman | None, bare: Bare, networks: list[str]) -> list[Figure]:
    figures = []
    for network in networks:
        timers: dict[str, Callable[[], float]] = {
            "cli": lambda n=network: ours.cli_run_to_exit(n),
            "api": lambda n=network: ours.api_run_to_exit(n),
        }
        if podman is not None:
            timers["podman"] = lambda n=network: podman.run_to_exit(n)
        if network == "none":
            timers["bare"] = bare.run_to_exit
        times = rounds(runs, timers)
        figures.append(Figure(f"run --rm true, CLI, --network {network}", times["cli"], times.get("podman", []),
                              "podman run" if podman else "", "peer/ours >= 3"))
        if network == "none":
            figures.append(Figure("run --rm true, daemon-side (API)", times["api"], times["bare"],
                                  "conmon+crun", "peer/ours >= 0.5"))
        else:
            figures.append(Figure(f"run --rm true, daemon-side, --network {network}", times["api"], [], "", ""))
    timers = {"cli": lambda: ours.cli("run", "-d", "--network", "none", "busybox", *IDLE),
              "api": ours.api_start_detached, "bare": bare.start_detached}
    if podman is not None:
        timers["podman"] = podman.start_detached
    times = rounds(runs, timers)
    figures.append(Figure("run -d to running, CLI", times["cli"], times.get("podman", []),
                          "podman run -d" if podman else "", "-"))
    figures.append(Figure("run -d to running, daemon-side", times["api"], times["bare"], "conmon+crun", "-"))
    ours.remove_all()
    bare.remove_all()
    if podman is not None:
        podman.remove_all()
    return figures


def memory_figures(ours: Ours, daemon: int, podman: Podman | None, bare: Bare) -> list[Figure]:
    """kB added per idle container: (daemon growth + conmons) / N, and the peers' conmons / N."""
    n = MEMORY_CONTAINERS
    before_rss, before_pss = rss_pss_kb([daemon])
    for _ in range(n):
        ours.api_start_detached()
    time.sleep(0.5)
    after_rss, after_pss = rss_pss_kb([daemon])
    shim_rss, shim_pss = rss_pss_kb(conmons_under(str(ours.root)))
    ours_rss = (after_rss - before_rss + shim_rss) / n / 1024
    ours_pss = (after_pss - before_pss + shim_pss) / n / 1024
    ours.remove_all()
    peers: dict[str, tuple[float, float]] = {}
    for _ in range(n):
        bare.start_detached()
    rss, pss = rss_pss_kb(conmons_under(str(bare.state)))
    peers["conmon+crun"] = (rss / n / 1024, pss / n / 1024)
    bare.remove_all()
    if podman is not None:
        for _ in range(n):
            podman.start_detached()
        rss, pss = rss_pss_kb(conmons_under(str(podman.root)))
        peers["podman"] = (rss / n / 1024, pss / n / 1024)
        podman.remove_all()
    figures = []
    for name, (rss, pss) in peers.items():
        figures.append(Figure(f"MB RSS per idle container (engine + shim), N={n}", [ours_rss], [rss], name,
                              "ours <= 2.5 MB", "MB"))
        figures.append(Figure(f"MB PSS per idle container (engine + shim), N={n}", [ours_pss], [pss], name, "-", "MB"))
    return figures


def many_figure(ours: Ours) -> Figure:
    started = time.perf_counter()
    for _ in range(MANY):
        ours.api_start_detached()
    elapsed = time.perf_counter() - started
    running = ours.running()
    ours.remove_all()
    if running != MANY:
        raise BenchError(f"only {running} of {MANY} containers were running at once")
    return Figure(f"seconds to start {MANY} (all {running} running at once)", [elapsed], [], "", f"{MANY} running",
                  "s")


# -------------------------------------------------------------------------------------- main


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="pinnace-bench-engine-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per figure (default %(default)s)")
    parser.add_argument("--skip-many", action="store_true", help="skip the 100-containers figure")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2 (for a p90)")
    missing = [b for b in ("crun", "conmon") if shutil.which(b) is None]
    if missing:
        print(f"bench.engine: {' and '.join(missing)} not installed", file=sys.stderr)
        return 1
    with workspace() as work:
        rootfs = make_rootfs(work / "rootfs")
        seed_image(work / "engine" / "root", rootfs)
        podman = Podman(work / "podman", rootfs) if shutil.which("podman") else None
        if podman is None:
            print("peer missing: podman")
        bare = Bare(work / "bare", rootfs)
        try:
            with engine(work / "engine") as env:
                ours = Ours(env, work / "engine" / "root")
                bridge = (work / "engine" / "root" / "network" / "net.d").is_dir()
                networks = ["none", "bridge"] if bridge else ["none"]
                if not bridge:
                    print("note: our bridge network is unavailable; bridge figures skipped")
                figures = run_figures(args.runs, ours, podman, bare, networks)
                figures += memory_figures(ours, daemon_pid(work / "engine"), podman, bare)
                if not args.skip_many:
                    figures.append(many_figure(ours))
        except BenchError as exc:
            print(f"bench.engine: {exc}", file=sys.stderr)
            return 1
        finally:
            bare.cleanup()
            if podman is not None:
                podman.cleanup()
    print(f"median and p90 of {args.runs} runs each (ms unless the figure says otherwise), contestants interleaved;"
          " ratio = peer/ours (higher is better for us)")
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
