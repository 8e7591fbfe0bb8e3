"""Pod sandboxes on the host: pinned namespaces, the reference bridge network, state across restarts.

Real namespaces and the real ``bridge``/``host-local`` plugins on the private test network; each
test's sandboxes are removed by the test, and the fixture scrubs mounts, the bridge and temp dirs.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cri import namespaces
from engine.cri.cni import CNI
from engine.cri.errors import AlreadyExists, InvalidArgument, NetworkError
from engine.cri.proto import api_pb2 as pb
from engine.cri.sandboxes import NOTREADY, READY, SandboxManager
from tests.engine.cri import cri_env
from tests.engine.cri.conftest import needs_host

pytestmark = needs_host


@pytest.fixture
def base() -> Iterator[Path]:
    path = cri_env.new_base()
    try:
        yield path
    finally:
        left = cri_env.scrub(path, cgroup_parent="pinnace-cri-unused")
        assert not left, f"left mounts behind: {left}"


def _manager(base: Path, *, conf_dir: Path | None = None, bin_dirs: tuple[str, ...] = cri_env.BIN_DIRS
             ) -> SandboxManager:
    conf = conf_dir or base / "net.d"
    if conf_dir is None:
        cri_env.write_conflist(conf, base / "ipam")
    return SandboxManager(state_dir=base / "state", run_dir=base / "run", cni=CNI(conf_dir=conf, bin_dirs=bin_dirs))


def _gone(*paths: str) -> bool:
    return not any(os.path.exists(p) for p in paths)


def _nsenter(netns: str, uts: str, *cmd: str) -> str:
    return subprocess.run(["nsenter", f"--net={netns}", f"--uts={uts}", *cmd], capture_output=True, text=True,
                          check=True).stdout


async def test_namespaces_are_pinned_with_hostname_and_loopback(base: Path):
    paths = await namespaces.create(run_dir=base / "run", sandbox_id="s1", kinds=["net", "ipc", "uts"],
                                    hostname="pod-one")
    assert set(paths) == {"net", "ipc", "uts"} and all(namespaces.is_held(p) for p in paths.values())
    assert await asyncio.to_thread(_nsenter, paths["net"], paths["uts"], "hostname") == "pod-one\n"
    links = await asyncio.to_thread(_nsenter, paths["net"], paths["uts"], "ip", "-o", "link")
    assert [line.split()[1] for line in links.splitlines()] == ["lo:"] and "UP" in links
    assert socket.gethostname() != "pod-one"
    await namespaces.release(paths)
    assert _gone(*paths.values())
    await namespaces.release(paths)  # idempotent
    with pytest.raises(InvalidArgument, match="invalid hostname"):
        await namespaces.create(run_dir=base / "run", sandbox_id="s2", kinds=["uts"], hostname="bad name")
    with pytest.raises(InvalidArgument, match="needs the sandbox's own UTS"):
        await namespaces.create(run_dir=base / "run", sandbox_id="s2", kinds=["net"], hostname="x")


async def test_sandbox_network_survives_a_restart_and_stop_releases_it(base: Path):
    manager = _manager(base)
    await asyncio.to_thread(manager.load)
    config = cri_env.sandbox_config("web", uid=str(uuid.uuid4()), log_dir=base / "logs")
    sandbox = await manager.run(config)
    assert sandbox.state == READY and len(sandbox.ips) == 1
    assert cri_env.ipam_reservations(base / "ipam") == sandbox.ips
    assert (base / "logs").is_dir()
    assert sandbox.hosts_file.read_text().splitlines()[-1] == f"{sandbox.ips[0]}\tweb"
    with pytest.raises(AlreadyExists):
        await manager.run(config)

    again = _manager(base)  # a restarted engine
    await asyncio.to_thread(again.load)
    found = again.get(sandbox.id[:10])
    assert (found.id, found.state, found.ips, found.netns) == (sandbox.id, READY, sandbox.ips, sandbox.netns)
    assert found.config.annotations == {"note": "kept as is"}
    assert [s.id for s in again.list(labels={})] == [sandbox.id]
    assert again.list(state=NOTREADY) == []

    await again.stop(found)
    assert found.state == NOTREADY and found.ips == []
    assert cri_env.ipam_reservations(base / "ipam") == []
    assert _gone(sandbox.netns)
    await again.stop(found)  # idempotent
    saved = json.loads((found.dir / "sandbox.json").read_text())
    assert saved["state"] == NOTREADY
    await again.remove(found)
    assert not found.dir.exists() and again.list() == []


async def test_host_network_sandbox_skips_cni(base: Path):
    manager = _manager(base, conf_dir=base / "no-such-dir")  # CNI would fail if it were used
    config = cri_env.sandbox_config("host", uid="u", host_network=True)
    sandbox = await manager.run(config)
    assert sandbox.netns == "" and sandbox.ips == [] and sandbox.hostname == socket.gethostname()
    assert set(sandbox.namespaces) == {"ipc"}
    await manager.remove(sandbox)
    assert _gone(*sandbox.namespaces.values())


async def test_failed_add_is_undone_with_del(base: Path):
    """bridge + host-local succeed, then a broken plugin fails: DEL must give the IP back."""
    fake = base / "fakebin"
    fake.mkdir()
    (fake / "broken").write_text('#!/bin/sh\ncat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\n'
                                 'echo \'{"code": 7, "msg": "refused"}\'\nexit 1\n')
    (fake / "broken").chmod(0o755)
    doc = cri_env.conflist(base / "ipam")
    doc["plugins"].append({"type": "broken"})
    conf = base / "net.d"
    conf.mkdir()
    (conf / "10-broken.conflist").write_text(json.dumps(doc))
    manager = _manager(base, conf_dir=conf, bin_dirs=(*cri_env.BIN_DIRS, str(fake)))
    with pytest.raises(NetworkError, match="broken ADD failed: refused"):
        await manager.run(cri_env.sandbox_config("web", uid="u"))
    assert manager.list() == []
    assert cri_env.ipam_reservations(base / "ipam") == []
    assert [p for p in (base / "run").rglob("*") if not p.is_dir()] == []  # no namespace file left
    assert list((base / "state" / "sandboxes").iterdir()) == []


async def test_bad_sandbox_configs(base: Path):
    manager = _manager(base)
    bad_dns = cri_env.sandbox_config("web", uid="u")
    bad_dns.dns_config.servers.append("not-an-ip")
    for config, words in [
        (pb.PodSandboxConfig(), "metadata with a name"),
        (bad_dns, "not an IP address"),
        (pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="a", namespace="b"), log_directory="rel"),
         "absolute"),
    ]:
        with pytest.raises(InvalidArgument, match=words):
            await manager.run(config)
    assert manager.list() == []
