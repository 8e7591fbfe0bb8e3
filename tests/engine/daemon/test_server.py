"""The daemon's lifetime in-process: host set-up, socket claiming, scratch cleaning, clean stop."""

from __future__ import annotations

import asyncio
import socket
import stat
from pathlib import Path

import pytest

from cli.engine_client import EngineClient
from engine.daemon import server


async def test_start_serve_stop(tmp_path: Path):
    calls: list[str] = []
    root, sock = tmp_path / "root", tmp_path / "run" / "engine.sock"
    (root / "daemon-tmp" / "left-over").mkdir(parents=True)
    daemon = server.EngineDaemon(root=root, socket_path=sock, host_setup=lambda: calls.append("setup"))
    await daemon.start()
    try:
        assert calls == ["setup"]
        assert stat.S_IMODE(sock.stat().st_mode) == server.SOCKET_MODE
        assert list((root / "daemon-tmp").iterdir()) == []
        engine_id = (root / "engine-id").read_text()
        client = EngineClient(str(sock))
        images = await asyncio.to_thread(client.json, "GET", "/images/json")
        info = await asyncio.to_thread(client.json, "GET", "/info")
        assert images == [] and info["ID"] == engine_id.strip() and info["DockerRootDir"] == str(root)
    finally:
        await daemon.stop()
    assert not sock.exists()
    again = server.EngineDaemon(root=root, socket_path=sock, host_setup=lambda: None)
    await again.start()
    await again.stop()
    assert (root / "engine-id").read_text() == engine_id


async def test_a_failed_start_leaves_another_daemons_socket_alone(tmp_path: Path):
    sock = tmp_path / "engine.sock"
    first = server.EngineDaemon(root=tmp_path / "a", socket_path=sock, host_setup=lambda: None)
    await first.start()
    try:
        second = server.EngineDaemon(root=tmp_path / "b", socket_path=sock, host_setup=lambda: None)
        with pytest.raises(server.DaemonError, match="already listening"):
            await second.start()
        assert sock.exists()
        assert await asyncio.to_thread(EngineClient(str(sock)).json, "GET", "/images/json") == []
    finally:
        await first.stop()


async def test_host_setup_failure_stops_the_start(tmp_path: Path):
    def broken() -> None:
        raise server.DaemonError("cgroups are not ready")

    daemon = server.EngineDaemon(root=tmp_path / "r", socket_path=tmp_path / "s.sock", host_setup=broken)
    with pytest.raises(server.DaemonError, match="cgroups"):
        await daemon.start()
    assert not (tmp_path / "s.sock").exists()


def test_claim_socket(tmp_path: Path):
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(stale))
    server.claim_socket(stale)
    assert not stale.exists()
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(server.DaemonError, match="not a socket"):
        server.claim_socket(plain)
    server.claim_socket(tmp_path / "new" / "dir" / "x.sock")
    assert (tmp_path / "new" / "dir").is_dir()


def test_host_setup_runs_when_the_runtime_exists():
    pytest.importorskip("engine.runtime.hostsetup")
    assert server.run_host_setup() is True
