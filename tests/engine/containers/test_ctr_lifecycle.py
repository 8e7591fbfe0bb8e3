"""Real containers through ContainerManager: run to exit, detached work, exec, attach, stop, errors."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from engine.containers.config import BindMount, ContainerConfig
from engine.containers.errors import Conflict, InvalidArgument, NotFound, NotRunning
from engine.containers.manager import ContainerManager
from engine.containers.record import Status
from engine.images.store import ImageStore
from engine.runtime.resources import Resources
from tests.engine.containers import ctr_env

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; echo started; while :; do sleep 0.05; done"]


async def run(manager: ContainerManager, *cmd: str, **kw: object) -> tuple[int, bytes]:
    """Create, start, wait; the exit code and everything the container printed."""
    c = await manager.create(ContainerConfig(image="busybox", command=list(cmd), **kw))  # type: ignore[arg-type]
    await manager.start(c.id)
    code = await manager.wait(c.id)
    out = b"".join([line.data async for line in manager.logs(c.id)])
    return code, out


async def wait_for_log(manager: ContainerManager, ref: str, text: bytes, *, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        async for line in manager.logs(ref, follow=True):
            if text in line.data:
                return
    raise AssertionError(f"{text!r} never appeared in the log of {ref}")


async def test_run_to_exit(manager: ContainerManager) -> None:
    c = await manager.create(ContainerConfig(image="busybox", command=["echo", "hi"], name="hello"))
    assert c.state.status is Status.CREATED and c.name == "hello"
    await manager.start("hello")
    assert await manager.wait(c.id) == 0
    lines = [line async for line in manager.logs(c.id)]
    assert [(x.stream, x.data) for x in lines] == [("stdout", b"hi\n")]
    done = manager.get(c.id[:8])
    assert done.state.status is Status.EXITED and done.state.exit_code == 0 and not done.state.oom_killed
    assert done.state.started_at and done.state.finished_at >= done.state.started_at
    code, out = await run(manager, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert code == 3 and b"out\n" in out and b"err\n" in out


async def test_detached_logs_follow_exec_stop_rm(manager: ContainerManager) -> None:
    c = await manager.create(ContainerConfig(image="busybox", command=SLEEPER, name="web"))
    await manager.start(c.id)
    await wait_for_log(manager, "web", b"started")
    assert [x.id for x in manager.list()] == [c.id]
    result = await manager.exec("web", ["sh", "-c", "echo $X from $(pwd) as $(id -u); echo e >&2; exit 7"],
                                env=["X=exec"], workdir="/tmp", user="app")  # fmt: skip
    assert (result.exit_code, result.stdout, result.stderr) == (7, b"exec from /tmp as 1000\n", b"e\n")
    piped = await manager.exec("web", ["cat"], stdin=b"through stdin")
    assert piped.stdout == b"through stdin"
    tty = await manager.exec("web", ["sh", "-c", "tty; echo fine"], tty=True)
    assert tty.exit_code == 0 and b"/dev/pts/" in tty.stdout and b"fine" in tty.stdout
    with pytest.raises(InvalidArgument, match="executable file not found"):
        await manager.exec("web", ["nosuchcmd"])
    with pytest.raises(Conflict, match="running"):
        await manager.remove("web")
    started = time.monotonic()
    stopped = await manager.stop("web", timeout=5)
    assert stopped.state.status is Status.EXITED and stopped.state.exit_code == 0  # the TERM trap ran
    assert time.monotonic() - started < 3
    with pytest.raises(NotRunning):
        await manager.exec("web", ["true"])
    await manager.remove("web")
    with pytest.raises(NotFound):
        manager.get("web")
    assert ctr_env.leftovers(manager.root, cgroup_parent=manager.cgroup_parent) == []


async def test_stop_signal_grace_and_kill(manager: ContainerManager) -> None:
    stubborn = await manager.create(ContainerConfig(image="busybox", command=["sleep", "100"]))
    await manager.start(stubborn.id)
    started = time.monotonic()
    result = await manager.stop(stubborn.id, timeout=0.3)  # PID 1 without a handler ignores TERM
    assert result.state.exit_code == 137 and 0.3 <= time.monotonic() - started < 5
    # the image's StopSignal (SIGUSR1) is what stop sends first
    trapper = "trap 'exit 42' USR1; echo up; while :; do sleep 0.05; done"
    polite = await manager.create(ContainerConfig(image="stopper", command=["sh", "-c", trapper]))
    await manager.start(polite.id)
    await wait_for_log(manager, polite.id, b"up")
    assert (await manager.stop(polite.id, timeout=5)).state.exit_code == 42
    # kill with a named signal, then start the exited container again
    await manager.start(polite.id)
    await wait_for_log(manager, polite.id, b"up")
    await manager.kill(polite.id, "USR1")
    assert await manager.wait(polite.id) == 42
    assert manager.get(polite.id).state.restart_count == 1
    with pytest.raises(NotRunning):
        await manager.kill(polite.id, "TERM")


async def test_streaming_exec_attach_stats_top(manager: ContainerManager) -> None:
    c = await manager.create(
        ContainerConfig(image="busybox", command=["sh", "-c", "echo ready; while read l; do echo got:$l; done"],
                        stdin=True, resources=Resources(memory=64 << 20, pids_limit=50))
    )  # fmt: skip
    await manager.start(c.id)
    await wait_for_log(manager, c.id, b"ready")
    attach = await manager.attach(c.id)
    try:
        await attach.write(b"ping\n")
        assert await asyncio.wait_for(attach.read(), 5) == ("stdout", b"got:ping\n")
    finally:
        await attach.close()
    session = await manager.exec_stream(c.id, ["sh", "-c", "read a; echo out:$a; echo err:$a >&2"], stdin=True)
    try:
        await session.write(b"xyz\n")
        chunks = []
        while (chunk := await asyncio.wait_for(session.read(), 5)) is not None:
            chunks.append(chunk)
        assert await session.wait() == 0
    finally:
        await session.close()
    assert sorted(chunks) == [("stderr", b"err:xyz\n"), ("stdout", b"out:xyz\n")]
    stats = await manager.stats(c.id)
    assert stats.memory_limit == 64 << 20 and stats.pids_limit == 50 and stats.pids_current >= 1
    assert stats.memory_usage > 0 and stats.cpu_usage_ns > 0
    titles, rows = await manager.top(c.id)
    assert "PID" in titles and any("while read" in row[-1] or "sh -c" in row[-1] for row in rows)
    assert all(int(row[titles.index("PID")]) != os.getpid() for row in rows)
    await manager.stop(c.id, timeout=0)
    assert (await manager.stats(c.id)).memory_usage == 0


async def test_bind_mounts_and_names(manager: ContainerManager, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host")
    code, out = await run(
        manager, "sh", "-c", "cat /data/in.txt; echo x > /data/out.txt; echo y > /ro/z || echo ro-refused",
        mounts=[BindMount.parse(f"{shared}:/data"), BindMount.parse(f"{shared}:/ro:ro")],
    )
    assert code == 0 and b"from host" in out and b"ro-refused" in out
    assert (shared / "out.txt").read_text() == "x\n"
    await manager.create(ContainerConfig(image="busybox", command=["true"], name="taken"))
    with pytest.raises(Conflict, match='"/taken" is already in use'):
        await manager.create(ContainerConfig(image="busybox", command=["true"], name="taken"))
    racing = await asyncio.gather(
        *(manager.create(ContainerConfig(image="busybox", command=["true"], name="race")) for _ in range(3)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in racing) == ["Conflict", "Conflict", "Container"]
    assert manager.get("/race").name == "race"


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        (ContainerConfig(image="nosuchimage:1"), NotFound, "No such image"),
        (ContainerConfig(image="busybox", command=["nosuchcmd"]), InvalidArgument, "executable file not found"),
        (ContainerConfig(image="busybox", command=["true"], mounts=[BindMount("/no/such/dir", "/x")]),
         InvalidArgument, "bind source path does not exist"),
        (ContainerConfig(image="busybox", command=["true"], mounts=[BindMount("relative", "/x")]),
         InvalidArgument, "absolute"),
        (ContainerConfig(image="busybox", command=["true"], resources=Resources(memory=100)),
         InvalidArgument, "minimum memory"),
        (ContainerConfig(image="busybox", command=["true"], resources=Resources(pids_limit=5, cpus=64)),
         InvalidArgument, "CPUs"),
        (ContainerConfig(image="busybox", command=["true"], user="ghost"), InvalidArgument, "unable to find user"),
        (ContainerConfig(image="busybox", command=["true"], ulimits={"nofile": (10**6, 10**6)}),
         InvalidArgument, "exceeds the host's limit"),
    ],
)  # fmt: skip
async def test_bad_input_leaves_nothing(
    manager: ContainerManager, config: ContainerConfig, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        await manager.create(config)
    assert "\n" not in str(caught.value)
    assert manager.list(all=True) == []
    assert ctr_env.leftovers(manager.root, cgroup_parent=manager.cgroup_parent) == []


async def test_tty_container_attach_and_resize(manager: ContainerManager) -> None:
    c = await manager.create(ContainerConfig(image="busybox", command=["sh"], tty=True, stdin=True))
    await manager.start(c.id)
    attach = await manager.attach(c.id)
    try:
        await manager.resize(c.id, height=33, width=101)
        await attach.write(b"stty size; tty; echo the-end\n")
        seen = b""
        async with asyncio.timeout(5):
            while b"\nthe-end\r\n" not in seen:  # the output line, not the terminal's echo of the command
                chunk = await attach.read()
                assert chunk is not None and chunk[0] == "stdout"  # a terminal has one stream
                seen += chunk[1]
        assert b"33 101\r\n" in seen and b"/dev/pts/0" in seen
        await attach.write(b"exit 5\n")
        assert await asyncio.wait_for(manager.wait(c.id), 5) == 5
    finally:
        await attach.close()
    with pytest.raises(NotRunning):
        await manager.resize(c.id, height=1, width=1)


@pytest.mark.skipif(shutil.which("runc") is None, reason="needs runc installed")
async def test_runc_is_selectable(engine_root: Path, store: ImageStore, cgroup_parent: str) -> None:
    root = engine_root.parent / "runc-engine"
    manager = ContainerManager(root, store, runtime="runc", cgroup_parent=cgroup_parent)
    try:
        code, out = await run(manager, "sh", "-c", "echo via runc; exit 4")
        assert (code, out) == (4, b"via runc\n")
        with pytest.raises(InvalidArgument, match="executable file not found"):
            await manager.create(ContainerConfig(image="busybox", command=["nosuchcmd"]))
        for c in manager.list(all=True):
            await manager.remove(c.id)
        assert ctr_env.leftovers(root, cgroup_parent=cgroup_parent) == []
    finally:
        await manager.close()
        ctr_env.scrub(root, cgroup_parent=cgroup_parent)


async def test_log_rotation_by_size_and_live_update(manager: ContainerManager) -> None:
    script = "for i in $(seq 1 300); do echo line $i; done; sleep 0.3; echo after; sleep 100"
    c = await manager.create(ContainerConfig(image="busybox", command=["sh", "-c", script], log_size_max=2000))
    await manager.start(c.id)
    await wait_for_log(manager, c.id, b"after")  # the follower carried on across conmon's rotations
    size = (await asyncio.to_thread(c.paths.log.stat)).st_size
    assert 0 < size <= 2000
    tail = [line.data async for line in manager.logs(c.id)]
    assert tail[-1] == b"after\n" and b"line 1\n" not in tail  # older output was rotated away
    await manager.update(c.id, Resources(memory=96 << 20, pids_limit=30))
    stats = await manager.stats(c.id)
    assert (stats.memory_limit, stats.pids_limit) == (96 << 20, 30)
    assert manager.get(c.id).config.resources.pids_limit == 30
    with pytest.raises(InvalidArgument):
        await manager.update(c.id, Resources(memory=5))
