"""The container endpoints in-process (aiohttp test server) over a real ContainerManager: crun under
conmon, a real image store, no network unless a test asks for one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine.containers.manager import ContainerManager
from engine.daemon import frames
from engine.daemon.app import make_app
from engine.daemon.context import EngineContext
from engine.daemon.events import EventBus
from engine.daemon.network import Networks
from engine.daemon.server import prepare_root
from engine.daemon.service import ContainerService
from engine.images.store import ImageStore
from tests.engine.daemon.test_containers_docker import busybox_full, leftovers, needs_runtime, wait_until

pytestmark = needs_runtime


@pytest.fixture
async def capi(tmp_path: Path) -> AsyncIterator[tuple[TestClient, EngineContext]]:
    root = tmp_path / "root"
    store = ImageStore(root)
    busybox_full(store, tmp_path / "seed", names=("busybox:latest",))
    ctx = EngineContext(store=store, root=root, socket_path=tmp_path / "unused.sock")
    prepare_root(root, ctx.scratch)
    networks = Networks(root, bin_dirs=[str(tmp_path / "no-plugins")])  # bridge unavailable: fast, no host changes
    service = ContainerService(ContainerManager(root, store), networks=networks, events=ctx.events)
    service.on_remove(ctx.execs.forget_container)
    store.in_use = service.image_in_use
    ctx.containers = service
    client = TestClient(TestServer(make_app(ctx)))
    await client.start_server()
    try:
        yield client, ctx
    finally:
        for container in service.manager.list(all=True):
            await service.remove(container.id, force=True)
        await client.close()
        await service.close()
        await ctx.close()
        store.close()
        assert not any(leftovers(root).values()), leftovers(root)


async def create(client: TestClient, body: dict, *, name: str | None = None, status: int = 201) -> dict:
    resp = await client.post("/v1.43/containers/create", params={"name": name} if name else None,
                             json={"Image": "busybox", **body})
    doc = await resp.json()
    assert resp.status == status, doc
    return doc


async def test_lifecycle_statuses_and_events(capi):
    client, ctx = capi
    created = await create(client, {"Cmd": ["sh", "-c", "echo hello; exit 3"], "Labels": {"app": "t"}}, name="one")
    cid = created["Id"]
    assert created["Warnings"] and "without a network" in created["Warnings"][0]  # the implicit bridge
    waiting = await asyncio.wait_for(client.post(f"/containers/{cid}/wait", params={"condition": "next-exit"}), 5)
    assert waiting.status == 200  # the headers come at once (the CLI starts the container only then) ...
    body = asyncio.ensure_future(waiting.json())
    await asyncio.sleep(0.05)
    assert not body.done()  # ... the body at the exit
    assert (await client.post("/containers/one/start")).status == 204
    assert await body == {"StatusCode": 3, "Error": None}
    assert (await client.post("/containers/one/start")).status == 204  # exited: starts afresh
    assert (await (await client.post("/containers/one/wait")).json())["StatusCode"] == 3
    assert (await client.post("/containers/one/stop")).status == 304
    kill = await client.post("/containers/one/kill")
    assert kill.status == 409 and "not running" in (await kill.json())["message"]

    doc = await (await client.get("/containers/one/json")).json()
    assert doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 3 and doc["RestartCount"] == 1
    assert doc["Config"]["Labels"] == {"app": "t"} and doc["HostConfig"]["NetworkMode"] == "none"
    rows = await (await client.get("/containers/json", params={"all": "1",
                                                               "filters": json.dumps({"label": ["app=t"]})})).json()
    assert [r["Id"] for r in rows] == [cid] and rows[0]["Status"].startswith("Exited (3)")
    assert await (await client.get("/containers/json")).json() == []  # not running
    exited = await (await client.get("/containers/json", params={"filters": json.dumps({"exited": ["3"]})})).json()
    assert [r["Names"] for r in exited] == [["/one"]]

    info = await (await client.get("/info")).json()
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"]) == (1, 0, 1)

    assert (await client.delete("/containers/one")).status == 204
    assert (await (await client.get("/info")).json())["Containers"] == 0
    missing = await client.get(f"/containers/{cid}/json")
    assert missing.status == 404 and (await missing.json())["message"] == f"No such container: {cid}"
    actions = [e["Action"] for e in ctx.events.history() if e["id"] == cid]
    assert actions == ["create", "start", "die", "start", "die", "destroy"]


async def test_wait_removed_and_auto_remove(capi):
    client, _ = capi
    cid = (await create(client, {"Cmd": ["true"], "HostConfig": {"AutoRemove": True}}))["Id"]
    waiting = await client.post(f"/containers/{cid}/wait", params={"condition": "removed"})
    await client.post(f"/containers/{cid}/start")
    assert (await waiting.json())["StatusCode"] == 0
    assert (await client.get(f"/containers/{cid}/json")).status == 404
    bad = await client.post(f"/containers/{cid}/wait")
    assert bad.status == 404
    cid = (await create(client, {"Cmd": ["true"]}))["Id"]
    bad = await client.post(f"/containers/{cid}/wait", params={"condition": "soon"})
    assert bad.status == 400 and "invalid condition" in (await bad.json())["message"]
    for _ in range(3):  # a forced remove racing the auto-remove its kill triggers: one removal, no error
        cid = (await create(client, {"Cmd": ["sleep", "60"], "HostConfig": {"AutoRemove": True}}))["Id"]
        await client.post(f"/containers/{cid}/start")
        removed = await client.delete(f"/containers/{cid}", params={"force": "1"})
        assert removed.status == 204, await removed.text()
        assert (await client.get(f"/containers/{cid}/json")).status == 404


async def test_conflicts_and_bad_input(capi):
    client, ctx = capi
    await create(client, {"Cmd": ["sleep", "60"]}, name="busy")
    await client.post("/containers/busy/start")
    dup = await create(client, {"Cmd": ["true"]}, name="busy", status=409)
    assert "already in use" in dup["message"]
    running = await client.delete("/containers/busy")
    assert running.status == 409 and "stop the container" in (await running.json())["message"]
    image = await client.delete("/images/busybox")
    assert image.status == 409  # in use by a container
    for body, status, text in (
        ({"Image": "nosuch:1"}, 404, "No such image"),
        ({"Cmd": ["nosuchcmd"]}, 400, "executable file not found"),
        ({"HostConfig": {"Binds": ["/nonexistent/dir:/x"]}}, 400, "bind source path does not exist"),
        ({"HostConfig": {"Memory": 1024}}, 400, "minimum memory"),
        ({"HostConfig": {"PidsLimit": "many"}}, 400, "PidsLimit"),
        ({"HostConfig": {"NetworkMode": "bridge"}}, 400, "network bridge is not available"),
    ):
        doc = await create(client, body, status=status)
        assert text in doc["message"] and "\n" not in doc["message"]
    assert [c.name for c in ctx.containers.manager.list(all=True)] == ["busy"]
    resp = await client.post("/containers/create", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400


async def test_logs_attach_and_exec(capi):
    client, ctx = capi
    script = "echo out1; echo err1 >&2; echo out2; read line; echo got $line; sleep 60"
    cid = (await create(client, {"Cmd": ["sh", "-c", script], "OpenStdin": True}, name="talk"))["Id"]
    await client.post("/containers/talk/start")
    manager = ctx.containers.manager

    async def three_lines() -> None:
        async for _ in manager.logs(cid, follow=True, tail=None):
            seen.append(1)
            if len(seen) == 3:
                return

    seen: list[int] = []
    await asyncio.wait_for(three_lines(), 10)
    resp = await client.get("/containers/talk/logs", params={"stdout": "1", "stderr": "1"})
    assert resp.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    got = list(frames.decode_all(await resp.read()))
    # stdout and stderr are two pipes: their relative order is not kept, each one's is
    assert [d for s, d in got if s == 1] == [b"out1\n", b"out2\n"] and [d for s, d in got if s == 2] == [b"err1\n"]
    resp = await client.get("/containers/talk/logs", params={"stdout": "1", "stderr": "1", "tail": "1",
                                                             "timestamps": "1"})
    [(stream, data)] = list(frames.decode_all(await resp.read()))
    assert (stream, data[-6:]) in ((1, b"Z out2\n"[-6:]), (2, b"Z err1\n"[-6:])) and data[:4].isdigit()
    assert (await client.get("/containers/talk/logs")).status == 400  # no stream chosen

    # attach without upgrade: past output (logs=1), no stream
    resp = await client.post("/containers/talk/attach", params={"logs": "1", "stdout": "1"})
    assert resp.status == 200 and list(frames.decode_all(await resp.read())) == [(1, b"out1\n"), (1, b"out2\n")]

    # exec: create, start (no upgrade: a raw 200 stream), inspect
    made = await client.post("/containers/talk/exec", json={"Cmd": ["sh", "-c", "echo x; echo y >&2; exit 6"],
                                                            "AttachStdout": True, "AttachStderr": True})
    exec_id = (await made.json())["Id"]
    started = await client.post(f"/exec/{exec_id}/start", json={"Detach": False, "Tty": False})
    assert started.status == 200 and started.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert sorted(frames.decode_all(await started.read())) == [(1, b"x\n"), (2, b"y\n")]
    info = await (await client.get(f"/exec/{exec_id}/json")).json()
    assert (info["ExitCode"], info["Running"], info["ContainerID"]) == (6, False, cid)
    again = await client.post(f"/exec/{exec_id}/start", json={})
    assert again.status == 409
    assert exec_id in (await (await client.get("/containers/talk/json")).json())["ExecIDs"]
    assert (await client.get("/exec/nope/json")).status == 404
    top = await (await client.get("/containers/talk/top")).json()
    assert "PID" in top["Titles"] and any("sh -c" in " ".join(p) for p in top["Processes"])
    stats = await (await client.get("/containers/talk/stats", params={"stream": "0", "one-shot": "1"})).json()
    assert stats["id"] == cid and stats["memory_stats"]["usage"] > 0 and stats["pids_stats"]["current"] >= 1
    assert stats["cpu_stats"]["system_cpu_usage"] > 0 and stats["name"] == "/talk"


async def test_prune_and_restart(capi):
    client, _ = capi
    done = (await create(client, {"Cmd": ["true"]}, name="done"))["Id"]
    await client.post("/containers/done/start")
    await client.post("/containers/done/wait")
    await create(client, {"Cmd": ["sleep", "60"], "StopSignal": "SIGKILL"}, name="live")
    await client.post("/containers/live/start")
    before = (await (await client.get("/containers/live/json")).json())["State"]["Pid"]
    started = time.monotonic()
    assert (await client.post("/containers/live/restart", params={"t": "5"})).status == 204
    assert time.monotonic() - started < 4  # SIGKILL as its stop signal: no grace period needed
    after = (await (await client.get("/containers/live/json")).json())["State"]
    assert after["Running"] and after["Pid"] != before
    pruned = await (await client.post("/containers/prune")).json()
    assert pruned["ContainersDeleted"] == [done]
    names = [r["Names"][0] for r in await (await client.get("/containers/json", params={"all": "1"})).json()]
    assert names == ["/live"]


def test_module_helpers_are_sound():
    assert wait_until(lambda: 5, what="a value") == 5
    assert EventBus().history() == []
    assert orjson.loads(orjson.dumps({"a": 1})) == {"a": 1}
