"""Containers outlive their engine: a new manager (or a new engine process after SIGKILL) finds them."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import orjson

from engine.containers.config import ContainerConfig
from engine.containers.manager import ContainerManager
from engine.containers.record import Status
from engine.images.store import ImageStore
from tests.engine.containers.engine_runner import TICKER

REPO = Path(__file__).resolve().parents[3]


async def last_tick(manager: ContainerManager, ref: str) -> int:
    ticks = [int(line.data.split()[1]) async for line in manager.logs(ref) if line.data.startswith(b"tick")]
    return ticks[-1] if ticks else -1


async def assert_ticking_on(manager: ContainerManager, ref: str) -> None:
    """The log keeps growing: a tick newer than the last one written appears."""
    before = await last_tick(manager, ref)
    async with asyncio.timeout(5):
        async for line in manager.logs(ref, follow=True, tail=0):
            if line.data.startswith(b"tick") and int(line.data.split()[1]) > before:
                return


def zombie_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[0] == "Z" and fields[1] == me:
                found.append(int(entry))
    return found


async def assert_no_lasting_zombies() -> None:
    """conmon double-forks to init, so no child of ours stays a zombie (a runtime call finishing
    in the background may be one for an instant before asyncio reaps it)."""
    for _ in range(60):
        if not await asyncio.to_thread(zombie_children):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"zombie children: {zombie_children()}")


async def test_new_manager_finds_running_containers(
    manager: ContainerManager, engine_root: Path, store: ImageStore, cgroup_parent: str
) -> None:
    first = ContainerManager(engine_root, store, cgroup_parent=cgroup_parent)
    ids = []
    for i in range(5):
        c = await first.create(ContainerConfig(image="busybox", name=f"svc{i}", command=TICKER))
        await first.start(c.id)
        ids.append(c.id)
    await first.close()  # the engine goes away; its containers do not
    found = await manager.load()
    assert sorted(c.id for c in found) == sorted(ids)
    assert {c.name for c in manager.list()} == {f"svc{i}" for i in range(5)}
    for cid in ids:
        await assert_ticking_on(manager, cid)
    stopped = await asyncio.gather(*(manager.stop(cid, timeout=5) for cid in ids))
    assert [c.state.exit_code for c in stopped] == [0] * 5
    assert manager.list() == []
    await assert_no_lasting_zombies()


async def test_engine_killed_with_sigkill(
    manager: ContainerManager, engine_root: Path, store: ImageStore, cgroup_parent: str
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.engine.containers.engine_runner", str(engine_root), str(store.root),
        cgroup_parent, "5", cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        report = orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    await asyncio.sleep(1.3)  # "short" exits (code 3) while no engine is running
    await manager.load()
    running = {c.id for c in manager.list()}
    assert running == set(report["ids"])
    short = manager.get("short")
    assert short.state.status is Status.EXITED and short.state.exit_code == 3 and short.state.finished_at
    for cid in report["ids"]:
        await assert_ticking_on(manager, cid)
    for cid in report["ids"]:
        assert (await manager.stop(cid, timeout=5)).state.exit_code == 0
    await manager.start("short")  # an exited container found after the restart runs again
    assert await manager.wait("short") == 3
