"""The container half of the daemon without containers: wire formats, request parsing, shapes,
hijacked connections, events, and the CLI's helpers. Fast; no runtime needed."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from cli import engine_client, engine_containers
from engine.containers.config import ContainerConfig
from engine.containers.errors import InvalidArgument
from engine.containers.layout import ContainerPaths
from engine.containers.record import Container, State, Status
from engine.daemon import createbody, ctrshapes, frames, hoststats, streams
from engine.daemon.context import EngineContext
from engine.daemon.errors import ApiError, BadParameter, NotFound
from engine.daemon.events import EventBus, matches, parse_time
from engine.daemon.network import Endpoint, conflist, port_mappings

# ------------------------------------------------------------------------------------ frames


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(min_size=1, max_size=300)), max_size=8),
       st.integers(min_value=1, max_value=17))
def test_frames_round_trip_in_any_chunking(parts, step):
    data = b"".join(frames.encode(s, d) for s, d in parts)
    decoder = frames.FrameDecoder()
    got = []
    for i in range(0, len(data), step):
        got += decoder.feed(data[i : i + step])
    assert got == parts and decoder.pending == 0


def test_frame_header_layout_and_errors():
    assert frames.encode(2, b"hi") == b"\x02\x00\x00\x00\x00\x00\x00\x02hi"
    assert frames.encode(1, b"") == b""
    with pytest.raises(frames.FrameError):
        frames.encode(7, b"x")
    with pytest.raises(frames.FrameError):
        frames.FrameDecoder().feed(b"\x09\x00\x00\x00\x00\x00\x00\x01x")
    with pytest.raises(frames.FrameError):
        list(frames.decode_all(frames.encode(1, b"abc")[:-1]))


# --------------------------------------------------------------------------- create bodies


def test_create_body_maps_docker_fields():
    body = {
        "Image": "busybox",
        "Cmd": ["sh", "-c", "echo hi"],
        "Entrypoint": [""],
        "Env": ["A=1"],
        "WorkingDir": "/tmp",
        "User": "1000:1000",
        "Tty": True,
        "OpenStdin": True,
        "Labels": {"k": "v"},
        "HostConfig": {
            "Binds": ["/tmp:/data:ro"],
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
            "Memory": 64 << 20,
            "NanoCpus": 1_500_000_000,
            "PidsLimit": 20,
            "ReadonlyRootfs": True,
            "CapAdd": ["NET_ADMIN"],
            "CapDrop": ["MKNOD"],
            "AutoRemove": True,
            "NetworkMode": "default",
            "SecurityOpt": ["seccomp=unconfined"],
            "Tmpfs": {"/run": "size=1m"},
        },
    }
    req = createbody.parse(body, name="web")
    c = req.config
    assert (c.image, c.name, c.command, c.entrypoint) == ("busybox", "web", ["sh", "-c", "echo hi"], [])
    assert (c.env, c.workdir, c.user, c.tty, c.stdin, dict(c.labels)) == (("A=1",), "/tmp", "1000:1000", True, True,
                                                                           {"k": "v"})
    assert [(m.source, m.destination, m.readonly) for m in c.mounts] == [("/tmp", "/data", True)]
    assert [(p.host_port, p.container_port, p.protocol) for p in c.ports] == [(8080, 80, "tcp")]
    assert (c.resources.memory, c.resources.cpus, c.resources.pids_limit) == (64 << 20, 1.5, 20)
    assert (c.readonly_rootfs, tuple(c.cap_add), tuple(c.cap_drop), c.seccomp) == (True, ("NET_ADMIN",),
                                                                                    ("MKNOD",), "unconfined")
    assert dict(c.tmpfs) == {"/run": "size=1m"}
    assert (req.network_mode, req.network_implicit, req.auto_remove) == ("bridge", True, True)
    assert c.extra[createbody.DOCKER_KEY]["HostConfig"]["NetworkMode"] == "bridge"


def test_create_body_unset_spellings_mean_unset():
    host = {"Memory": 0, "PidsLimit": -1, "NetworkMode": "none"}
    req = createbody.parse({"Image": "x", "Cmd": None, "WorkingDir": "", "HostConfig": host}, name=None)
    assert req.config.command is None and req.config.workdir is None
    assert req.config.resources.memory is None and req.config.resources.pids_limit is None
    assert (req.network_mode, req.network_implicit, req.config.network) == ("none", False, "none")
    assert createbody.parse({"Image": "x", "HostConfig": {"NetworkMode": "host"}}, name=None).config.network == "host"


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (None, BadParameter, "config cannot be empty"),
        ({"Cmd": ["true"]}, BadParameter, "no image"),
        ({"Image": "x", "Cmd": "true", "Env": "A=1"}, BadParameter, "Env"),
        ({"Image": "x", "HostConfig": {"Memory": "lots"}}, BadParameter, "HostConfig.Memory"),
        ({"Image": "x", "HostConfig": {"Memory": -5}}, BadParameter, "must not be negative"),
        ({"Image": "x", "HostConfig": {"Memory": 1000}}, InvalidArgument, "minimum memory"),
        ({"Image": "x", "HostConfig": {"NanoCpus": -1}}, InvalidArgument, "CPUs"),
        ({"Image": "x", "HostConfig": {"Binds": ["data:/data"]}}, BadParameter, "named volumes"),
        ({"Image": "x", "HostConfig": {"Binds": ["/a:relative"]}}, InvalidArgument, "absolute"),
        ({"Image": "x", "HostConfig": {"NetworkMode": "mynet"}}, NotFound, "network mynet not found"),
        ({"Image": "x", "HostConfig": {"NetworkMode": "container:abc"}}, BadParameter, "not supported"),
        ({"Image": "x", "HostConfig": {"SecurityOpt": ["evil"]}}, BadParameter, "security option"),
        ({"Image": "x", "HostConfig": {"Mounts": [{"Type": "volume", "Target": "/v"}]}}, BadParameter, "volume"),
        ({"Image": "x", "Env": ["=bad"]}, InvalidArgument, "environment"),
    ],
)
def test_create_body_refuses_bad_input_with_one_clear_error(body, error, text):
    with pytest.raises(error) as info:
        createbody.parse(body, name=None)
    assert text in str(info.value) and "\n" not in str(info.value)
    assert info.value.status in (400, 404)


# ----------------------------------------------------------------------------------- shapes


def _container(tmp_path: Path, **state) -> Container:
    config = ContainerConfig(image="busybox", name="c1", command=["sleep", "9"], labels={"a": "b"},
                             extra={createbody.DOCKER_KEY: {"HostConfig": {"NetworkMode": "bridge", "AutoRemove": True},
                                                            "Config": {"ExposedPorts": {"80/tcp": {}}}}})
    defaults = {"status": Status.RUNNING, "pid": 42, "created_at": "2026-01-02T03:04:05.000000000Z",
                "started_at": "2026-01-02T03:04:06.000000000Z", "image_id": "sha256:" + "a" * 64}
    return Container(id="f" * 64, config=config, state=State(**{**defaults, **state}),
                     paths=ContainerPaths(tmp_path, "f" * 64))


def test_status_text_and_times(tmp_path: Path):
    started = ctrshapes.parse_time("2026-01-02T03:04:06.000000000Z")
    assert ctrshapes.status_text(_container(tmp_path), now=started + 7) == "Up 7 seconds"
    exited = _container(tmp_path, status=Status.EXITED, exit_code=3, finished_at="2026-01-02T03:05:06.5Z")
    assert ctrshapes.status_text(exited, now=started + 60.5 + 3600 * 2) == "Exited (3) 2 hours ago"
    assert ctrshapes.status_text(_container(tmp_path, status=Status.CREATED), now=0) == "Created"
    assert ctrshapes.parse_time("") == 0.0


def test_list_row_and_inspect_shapes(tmp_path: Path):
    c = _container(tmp_path)
    ep = Endpoint(netns="/n", ip="10.89.0.5", prefix=16, gateway="10.89.0.1", mac="aa:bb",
                  ports=({"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""},))
    row = ctrshapes.summary(c, args=["sleep", "9 s"], endpoint=ep, now=time.time())
    assert row["Names"] == ["/c1"] and row["Command"] == "sleep '9 s'" and row["State"] == "running"
    assert row["Ports"] == [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]
    doc = ctrshapes.inspect(c, args=["sleep", "9"], env=["PATH=/bin"], image_settings={"Cmd": ["sh"]}, endpoint=ep,
                            exec_ids=[], runtime="crun")
    assert doc["Name"] == "/c1" and doc["Path"] == "sleep" and doc["Args"] == ["9"]
    assert doc["State"]["Running"] and doc["State"]["Pid"] == 42 and doc["State"]["FinishedAt"] == ctrshapes.ZERO_TIME
    assert doc["HostConfig"]["AutoRemove"] is True and doc["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert doc["Config"]["Cmd"] == ["sleep", "9"] and doc["Config"]["Labels"] == {"a": "b"}
    assert doc["NetworkSettings"]["IPAddress"] == "10.89.0.5"
    assert doc["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert doc["NetworkSettings"]["Networks"]["bridge"]["Gateway"] == "10.89.0.1"


def test_stats_shape_feeds_the_cli_arithmetic(tmp_path: Path):
    c = _container(tmp_path)
    before = {"cpu_usage_ns": 1_000, "system_ns": 10_000, "online_cpus": 2}
    after = {"cpu_usage_ns": 3_500, "system_ns": 20_000, "online_cpus": 2, "memory_usage": 3 << 20,
             "memory_cache": 1 << 20, "memory_limit": 0, "pids_current": 4}
    doc = ctrshapes.stats(c, sample=after, previous=before, read="r", preread="p", host_memory=8 << 20,
                          networks={"eth0": {"rx_bytes": 1500, "tx_bytes": 20}})
    assert doc["memory_stats"]["limit"] == 8 << 20
    row = engine_containers.stats_row(doc)
    assert row[:2] == ("f" * 12, "c1")
    assert row[2] == "50.00%"  # 2500 / 10000 x 2 CPUs
    assert row[3] == "2MiB / 8MiB" and row[4] == "25.00%"
    assert row[5] == "1.5kB / 20B" and row[7] == "4"


def test_net_dev_parsing():
    text = ("Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n"
            "    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 1500 3 0 1 0 0 0 0 200 2 0 0 0 0 0 0\n")
    assert hoststats.parse_net_dev(text) == {"eth0": {"rx_bytes": 1500, "rx_packets": 3, "rx_errors": 0,
                                                      "rx_dropped": 1, "tx_bytes": 200, "tx_packets": 2,
                                                      "tx_errors": 0, "tx_dropped": 0}}
    assert hoststats.system_cpu_ns() > 0 and hoststats.online_cpus() >= 1


def test_bridge_network_config_and_ports():
    doc = conflist(Path("/x/ipam"))
    assert [p["type"] for p in doc["plugins"]] == ["bridge", "portmap"]
    assert doc["plugins"][0]["bridge"] == "pinnace0" and doc["plugins"][0]["ipam"]["dataDir"] == "/x/ipam"
    from engine.containers.config import PortMapping

    fixed, chosen = port_mappings([PortMapping(80, 8080), PortMapping(53, 0, "udp")])
    assert fixed == {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}
    assert chosen["protocol"] == "udp" and 0 < chosen["hostPort"] < 65536


# ----------------------------------------------------------------------------------- events


def test_event_filters():
    bus = EventBus(history=3)
    for i in range(5):
        bus.publish(action="start" if i % 2 else "die", actor_id=f"{i}" * 64, attributes={"name": f"c{i}",
                                                                                          "image": "busybox", "k": "v"})
    history = bus.history()
    assert len(history) == 3 and history[-1]["Actor"]["Attributes"]["name"] == "c4"
    event = history[-1]
    assert event["status"] == event["Action"] == "die" and event["Type"] == "container"
    assert matches(event, {"event": ["die", "start"], "container": ["c4"], "label": ["k=v"]})
    assert not matches(event, {"event": ["start"]})
    assert not matches(event, {"label": ["k=v", "missing"]})
    assert parse_time("1700000000.5", "since") == 1700000000.5
    assert parse_time("2026-01-02T03:04:05Z", "since") > 0
    with pytest.raises(BadParameter):
        parse_time("yesterday", "since")


async def test_events_endpoint_replays_and_follows(api: TestClient, context: EngineContext):
    context.events.publish(action="create", actor_id="a" * 64, attributes={"name": "x", "image": "busybox"})
    resp = await api.get("/events", params={"since": "0", "until": str(time.time() + 0.3)})
    assert resp.status == 200
    lines = [orjson.loads(line) for line in (await resp.read()).splitlines()]
    assert [e["Action"] for e in lines] == ["create"]
    follow = asyncio.ensure_future(api.get("/events", params={"filters": json.dumps({"event": ["die"]}),
                                                              "until": str(time.time() + 0.5)}))
    await asyncio.sleep(0.1)
    context.events.publish(action="start", actor_id="b" * 64, attributes={"name": "y"})
    context.events.publish(action="die", actor_id="b" * 64, attributes={"name": "y"})
    resp = await follow
    assert [orjson.loads(line)["Actor"]["ID"] for line in (await resp.read()).splitlines()] == ["b" * 64]


async def test_container_routes_without_a_runtime_say_why(api: TestClient, context: EngineContext):
    context.containers_unavailable = "containers are not available: conmon is not installed"
    for method, path in (("GET", "/containers/json"), ("POST", "/v1.43/containers/create"),
                         ("GET", "/containers/x/json"), ("POST", "/containers/x/exec")):
        resp = await api.request(method, path, json={"Image": "busybox"})
        assert resp.status == 503, path
        assert (await resp.json())["message"] == "containers are not available: conmon is not installed"


# ------------------------------------------------------------------------------ hijacking


async def _serve_unix(tmp_path: Path, handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    path = str(tmp_path / "h.sock")
    await web.UnixSite(runner, path).start()
    return runner, path


def _raw_request(path: str, head: bytes) -> tuple[bytes, socket.socket]:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    sock.sendall(head)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(1)
    return buf, sock


async def test_hijack_carries_stdin_past_a_half_close(tmp_path: Path):
    async def handler(request: web.Request) -> web.StreamResponse:
        conn = await streams.hijack(request, tty=False)
        while chunk := await conn.stdin.read():
            await conn.send(frames.STDOUT, chunk.upper())
        await conn.send(frames.STDERR, b"after eof")  # our side still open after the client's EOF
        await conn.close()
        return conn.response

    runner, path = await _serve_unix(tmp_path, handler)
    try:
        def client() -> tuple[bytes, bytes]:
            head, sock = _raw_request(path, b"POST /x HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                                            b"Content-Length: 0\r\n\r\n")
            with sock:
                sock.sendall(b"abc")
                time.sleep(0.05)
                sock.sendall(b"def")
                sock.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
            return head, data

        head, data = await asyncio.to_thread(client)
    finally:
        await runner.cleanup()
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Content-Type: application/vnd.docker.multiplexed-stream" in head and b"Upgrade: tcp" in head
    got = list(frames.decode_all(data))
    assert b"".join(d for s, d in got if s == frames.STDOUT) == b"ABCDEF"
    assert got[-1] == (frames.STDERR, b"after eof")


async def test_hijack_without_upgrade_is_a_raw_200_and_ignores_input(tmp_path: Path):
    async def handler(request: web.Request) -> web.StreamResponse:
        conn = await streams.hijack(request, tty=True)
        assert await conn.stdin.read() == b""
        await conn.send(frames.STDOUT, b"raw bytes")
        await conn.close()
        return conn.response

    runner, path = await _serve_unix(tmp_path, handler)
    try:
        def client() -> tuple[bytes, bytes]:
            head, sock = _raw_request(path, b"POST /x HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n")
            with sock:
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
            return head, data

        head, data = await asyncio.to_thread(client)
    finally:
        await runner.cleanup()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"application/vnd.docker.raw-stream" in head
    assert b"Transfer-Encoding" not in head and data == b"raw bytes"


class _FakeSession:
    """An attach/exec session that echoes input and ends a while after its stdin closes (longer
    than the hang-up poll, so a half-closed client must not be taken for a gone one)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stdin_closed = False

    async def read(self):
        return await self.queue.get()

    async def write(self, data: bytes) -> None:
        await self.queue.put(("stdout", data))

    async def close_stdin(self) -> None:
        self.stdin_closed = True
        await asyncio.sleep(streams.HANGUP_POLL * 1.5)
        await self.queue.put(("stderr", b"bye"))
        await self.queue.put(None)


async def test_pump_forwards_both_ways_and_notices_a_client_leaving(tmp_path: Path):
    sessions: list[tuple[_FakeSession, bool]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        session = _FakeSession()
        conn = await streams.hijack(request, tty=False)
        forward = request.query.get("stdin") == "1"
        complete = await streams.pump(session, conn, forward_stdin=forward)
        sessions.append((session, complete))
        await conn.close()
        return conn.response

    runner, path = await _serve_unix(tmp_path, handler)
    try:
        def talk(query: str, *, leave: bool) -> bytes:
            _, sock = _raw_request(path, f"POST /x?{query} HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\n"
                                         "Upgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
            with sock:
                if leave:
                    return b""
                sock.sendall(b"ping")
                sock.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
                return data

        data = await asyncio.to_thread(talk, "stdin=1", leave=False)
        await asyncio.to_thread(talk, "stdin=0", leave=True)
        for _ in range(50):
            if len(sessions) == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert list(frames.decode_all(data)) == [(frames.STDOUT, b"ping"), (frames.STDERR, b"bye")]
    assert sessions[0][1] is True and sessions[0][0].stdin_closed
    assert sessions[1][1] is False and not sessions[1][0].stdin_closed


# ------------------------------------------------------------------------------------- CLI


def test_cli_parses_sizes_and_ports():
    assert engine_containers.parse_bytes("32m", "--memory") == 32 << 20
    assert engine_containers.parse_bytes("1.5g", "--memory") == 3 << 29
    assert engine_containers.parse_bytes("4096", "--memory") == 4096
    for bad in ("lots", "5q", ""):
        with pytest.raises(engine_client.EngineError):
            engine_containers.parse_bytes(bad, "--memory")
    exposed, bindings = engine_containers._port_bindings(["8080:80", "127.0.0.1:53:53/udp", "9000"])
    assert exposed == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}}
    assert bindings["80/tcp"] == [{"HostIp": "", "HostPort": "8080"}]
    assert bindings["53/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "53"}]
    assert bindings["9000/tcp"] == [{"HostIp": "", "HostPort": ""}]
    with pytest.raises(engine_client.EngineError):
        engine_containers._port_bindings(["a:b"])


def test_cli_run_body_is_what_the_daemon_parses():
    parser = engine_containers.argparse.ArgumentParser()
    engine_containers._configure_run(parser)
    args = parser.parse_args(["--rm", "-e", "A=1", "-v", "/tmp:/t:ro", "-p", "8080:80", "--name", "n", "-w", "/t",
                              "-u", "1:1", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "30", "--read-only",
                              "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "--network", "none", "busybox",
                              "sh", "-c", "echo -e x"])
    req = createbody.parse(engine_containers._run_body(args), name=args.name)
    c = req.config
    assert c.command == ["sh", "-c", "echo -e x"] and c.env == ("A=1",) and c.workdir == "/t" and c.user == "1:1"
    assert (c.resources.memory, c.resources.cpus, c.resources.pids_limit) == (64 << 20, 0.5, 30)
    assert c.readonly_rootfs and tuple(c.cap_add) == ("NET_ADMIN",) and tuple(c.cap_drop) == ("CHOWN",)
    assert req.auto_remove and req.network_mode == "none" and c.mounts[0].readonly
    with pytest.raises(engine_client.EngineError, match="--cpus"):
        engine_containers._run_body(parser.parse_args(["--cpus", "many", "busybox"]))


def test_api_errors_keep_their_status():
    assert streams.MULTIPLEXED_STREAM.endswith("multiplexed-stream")
    assert issubclass(createbody.BadParameter, ApiError)
