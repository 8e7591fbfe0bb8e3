"""Real containers through the real docker CLI (/usr/local/bin/docker) and the docker Python SDK,
against ``pinnace engine serve`` on a temp socket and root (crun under conmon).

Also the helpers the other real-container tests share: a busybox image with every applet, and
``leftovers(root)``, which lists what containers could leave behind (conmon processes, mounts,
container dirs, runtime state, network namespaces).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images.pack import pack_dir
from engine.images.store import Image, ImageStore
from tests.engine.daemon.engine_env import BUSYBOX, DOCKER, EngineProcess, free_port, open_store, run

MISSING = [name for name in ("crun", "conmon") if shutil.which(name) is None]
needs_runtime = pytest.mark.skipif(bool(MISSING), reason=f"{' and '.join(MISSING)} not installed")
pytestmark = [needs_runtime, pytest.mark.skipif(not DOCKER.exists(), reason="the docker CLI is not installed")]


# -------------------------------------------------------------------------------- helpers


def busybox_full(store: ImageStore, work: Path, *, names: tuple[str, ...]) -> Image:
    """An image of /bin/busybox with every applet it has (sleep, hostname, id, ps...)."""
    tree = work / "rootfs"
    (tree / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, tree / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, check=True).stdout.decode().split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", tree / "bin" / applet)
    (tree / "etc").mkdir()
    (tree / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (tree / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (tree / "www").mkdir()
    (tree / "www" / "index.html").write_text("hello from pinnace\n")
    buf = io.BytesIO()
    packed = pack_dir(tree, buf)
    store.put_blob(buf.getvalue(), expected=packed.digest)
    layer = {"mediaType": packed.media_type, "digest": packed.digest, "size": packed.size, "diff_id": packed.diff_id}
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [packed.diff_id]},
        "history": [{"created": "2026-01-02T03:04:05Z", "created_by": "busybox"}],
    }
    return store.write_image(config=config, layers=[layer], names=names)


def seed_busybox(engine: EngineProcess, work: Path) -> str:
    with open_store(engine.root) as store:
        return busybox_full(store, work, names=("busybox:latest",)).id


def _conmons(root: Path) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"conmon" and str(root).encode() in b" ".join(argv):
            found.append(int(entry))
    return found


def _listing(path: Path) -> list[str]:
    return sorted(os.listdir(path)) if path.is_dir() else []


def leftovers(root: Path, *, network: bool = True) -> dict[str, list]:
    """Everything containers of the engine at ``root`` may leave behind; all empty when clean.

    With ``network=False`` bridge endpoints are not counted: a running daemon keeps one ready and
    unplugs removed containers in the background, so they are checked once it has stopped."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if line.split()[4].startswith(str(root))]
    found = {
        "conmon": _conmons(root),
        "mounts": [m for m in mounts if network or "/network/netns/" not in m],
        "containers": _listing(root / "containers"),
        "runtime": _listing(root / "crun"),
    }
    if network:
        found["netns"] = _listing(root / "network" / "netns")
        found["endpoints"] = _listing(root / "network" / "endpoints")
    return found


def wait_until(check, *, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def kill_leftover_conmons(root: Path) -> None:
    """Last-resort cleanup: end the conmons (by PID) a failed test left under ``root``."""
    for pid in _conmons(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def bridge_available(engine: EngineProcess) -> bool:
    return (engine.root / "network" / "net.d").is_dir()


# -------------------------------------------------------------------------------- fixtures


def docker(engine: EngineProcess, *args: str, input: bytes | None = None, check: bool = True,
           timeout: float = 60) -> subprocess.CompletedProcess:
    return run([str(DOCKER), *args], env=engine.env, input=input, check=check, timeout=timeout)


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    engine = EngineProcess(tmp_path_factory.mktemp("engine")).start()
    seed_busybox(engine, tmp_path_factory.mktemp("seed"))
    try:
        yield engine
        ids = out(docker(engine, "ps", "-aq", "--no-trunc", check=False)).split()
        if ids:
            docker(engine, "rm", "-f", *ids, check=False)
        engine.stop()  # unplugs the ready endpoint and finishes background unplugging
        assert not any(leftovers(engine.root).values()), leftovers(engine.root)
    finally:
        engine.stop()
        kill_leftover_conmons(engine.root)


# ----------------------------------------------------------------------------------- tests


def test_docker_run_rm_prints_and_leaves_nothing(daemon: EngineProcess):
    result = docker(daemon, "run", "--rm", "busybox", "echo", "hi")
    assert result.stdout == b"hi\n"
    failed = docker(daemon, "run", "--rm", "busybox", "sh", "-c", "echo oops >&2; exit 7", check=False)
    assert failed.returncode == 7 and failed.stderr.endswith(b"oops\n")
    piped = docker(daemon, "run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z", input=b"shout\n")
    assert piped.stdout == b"SHOUT\n"
    assert not any(leftovers(daemon.root, network=False).values())


def test_docker_detached_lifecycle(daemon: EngineProcess):
    port = free_port()
    published = ["-p", f"{port}:80"] if bridge_available(daemon) else ["--network", "host"]
    cmd = ["httpd", "-f", "-h", "/www", "-p", "80" if bridge_available(daemon) else str(port)]
    cid = out(docker(daemon, "run", "-d", "--name", "web", *published, "busybox", *cmd)).strip()
    assert len(cid) == 64
    page = wait_until(lambda: _get(f"http://127.0.0.1:{port}/index.html"), what="the web server")
    assert page == b"hello from pinnace\n"

    listing = out(docker(daemon, "ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Status}} {{.Ports}}"))
    row = next(line for line in listing.splitlines() if line.split()[1] == "web")
    assert row.startswith(cid[:12]) and " Up " in f" {row} "
    if bridge_available(daemon):
        assert f"0.0.0.0:{port}->80/tcp" in row

    state = json.loads(out(docker(daemon, "inspect", "web")))[0]
    assert state["Id"] == cid and state["Name"] == "/web" and state["State"]["Running"] is True
    assert state["Config"]["Cmd"] == cmd and state["State"]["Pid"] > 0

    echoed = out(docker(daemon, "exec", "-i", "web", "sh", "-c", "cat; hostname", input=b"piped in\n")).splitlines()
    assert echoed[0] == "piped in"
    if bridge_available(daemon):
        assert echoed[1] == cid[:12]  # its own UTS namespace, named after the container
    assert docker(daemon, "exec", "web", "sh", "-c", "exit 4", check=False).returncode == 4

    stats = out(docker(daemon, "stats", "--no-stream"))
    header, *rows = stats.splitlines()
    assert header.split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert any(r.split()[:2] == [cid[:12], "web"] for r in rows)

    started = time.monotonic()
    docker(daemon, "stop", "-t", "1", "web")
    assert time.monotonic() - started < 8
    status = out(docker(daemon, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "web")).split()
    assert status[0] == "exited"
    docker(daemon, "rm", "-f", "web")
    assert "web" not in out(docker(daemon, "ps", "-a", "--format", "{{.Names}}")).split()


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read()
    except OSError:
        return None


def test_docker_logs_follow_ends_with_the_container(daemon: EngineProcess):
    script = "for i in 1 2 3 4 5; do echo out $i; echo err $i >&2; sleep 0.1; done"
    docker(daemon, "run", "-d", "--name", "ticker", "busybox", "sh", "-c", script)
    followed = docker(daemon, "logs", "-f", "ticker", timeout=20)
    assert out(followed).splitlines() == [f"out {i}" for i in range(1, 6)]
    assert followed.stderr.decode().splitlines() == [f"err {i}" for i in range(1, 6)]
    tail = docker(daemon, "logs", "--tail", "1", "ticker")
    assert tail.stdout + tail.stderr in (b"err 5\n", b"out 5\n")
    docker(daemon, "rm", "ticker")


def test_docker_rm_force_kills_a_running_container(daemon: EngineProcess):
    docker(daemon, "run", "-d", "--name", "sleeper", "busybox", "sleep", "600")
    conmons = _conmons(daemon.root)
    assert conmons
    docker(daemon, "rm", "-f", "sleeper")
    assert "sleeper" not in out(docker(daemon, "ps", "-a", "--format", "{{.Names}}")).split()
    wait_until(lambda: not _conmons(daemon.root), what="conmon to end")


def test_docker_sdk(daemon: EngineProcess):
    docker_sdk = pytest.importorskip("docker")
    client = docker_sdk.DockerClient(base_url=f"unix://{daemon.socket}")
    try:
        container = client.containers.run("busybox", ["sh", "-c", "echo ready; sleep 600"], detach=True,
                                          name="sdk", labels={"suite": "sdk"})
        wait_until(lambda: container.logs() == b"ready\n", what="the container's output")
        code, output = container.exec_run(["sh", "-c", "echo from exec; exit 3"])
        assert (code, output) == (3, b"from exec\n")
        assert client.containers.get("sdk").status == "running"
        assert [c.name for c in client.containers.list(filters={"label": "suite=sdk"})] == ["sdk"]
        assert client.containers.run("busybox", ["echo", "fg"], remove=True) == b"fg\n"
        container.remove(force=True)
        assert client.containers.list(all=True, filters={"name": "sdk"}) == []
        with pytest.raises(docker_sdk.errors.NotFound):
            client.containers.get("sdk")
    finally:
        client.close()


def test_bridge_endpoints_are_reused_only_when_untouched(daemon: EngineProcess):
    if not bridge_available(daemon):
        pytest.skip("the bridge network is not available on this host")

    def address(*flags: str) -> str:
        shown = out(docker(daemon, "run", "--rm", *flags, "busybox", "ip", "-4", "-o", "addr", "show", "eth0"))
        return shown.split()[3].split("/")[0]

    first = address()
    assert first.startswith("10.89.")
    assert address() == first  # the namespace of a plain container is kept ready for the next one
    assert address("--cap-add", "NET_ADMIN") == first  # ... but one that could have changed it
    assert address() != first  # is unplugged, never handed on
