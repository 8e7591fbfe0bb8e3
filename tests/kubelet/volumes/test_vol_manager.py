"""VolumeManager end to end on real dirs and real tmpfs mounts (needs root, as the kubelet does)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from vol_env import FakeSource, FakeTokens, config, mounts_below, pod

from kubelet.volumes import VolumeError, VolumeManager
from kubelet.volumes import fs as vfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[VolumeManager, FakeSource, FakeTokens, Path]]:
    source, tokens = FakeSource(), FakeTokens()
    root = tmp_path / "kubelet"
    manager = VolumeManager(config=config(root), source=source, tokens=tokens)
    yield manager, source, tokens, root
    for uid in manager.pod_uids_on_disk():
        await manager.teardown(uid)
    for point in mounts_below(tmp_path):  # never leave a mount behind, even when a test failed
        vfs.unmount(point)


def _tmpfs_options(path: str) -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                sep = fields.index("-")
                return fields[sep + 1] + " " + fields[sep + 3]
    return None


async def test_all_plugins_set_up_and_teardown_leaves_nothing(env, tmp_path: Path) -> None:
    manager, source, tokens, root = env
    source.put_configmap("cfg", {"a.conf": "A=1", "b.conf": "B=2"})
    source.put_secret("sec", {"password": b"s3cret"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    p = pod([
        {"name": "scratch", "emptyDir": {}},
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "host", "hostPath": {"path": str(tmp_path / "made" / "here"), "type": "DirectoryOrCreate"}},
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "x/a.conf", "mode": 0o600}]}},
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                                 "divisor": "1Mi"}}]}},
        {"name": "api", "projected": {"defaultMode": 0o444, "sources": [
            {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 7200}},
            {"configMap": {"name": "cfg", "items": [{"key": "b.conf", "path": "b"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
    ], serviceAccountName="robot")
    uid = p["metadata"]["uid"]
    paths = await manager.setup(p)
    vols = root / "pods" / uid / "volumes"
    assert paths["scratch"] == str(vols / "kubernetes.io~empty-dir" / "scratch")
    assert stat.S_IMODE(os.stat(paths["scratch"]).st_mode) == 0o777
    assert _tmpfs_options(paths["mem"]).startswith("tmpfs") and "size=1024k" in _tmpfs_options(paths["mem"])
    assert paths["host"] == str(tmp_path / "made" / "here")
    assert stat.S_IMODE(os.stat(paths["host"]).st_mode) == 0o755
    cfg = Path(paths["cfg"])
    assert (cfg / "x" / "a.conf").read_text() == "A=1" and not (cfg / "b.conf").exists()
    assert stat.S_IMODE((cfg / "x" / "a.conf").stat().st_mode) == 0o600
    assert _tmpfs_options(paths["cfg"]) is None  # configMaps are on disk
    sec = Path(paths["sec"])
    assert (sec / "password").read_bytes() == b"s3cret"
    assert stat.S_IMODE((sec / "password").stat().st_mode) == 0o400
    assert _tmpfs_options(paths["sec"]).startswith("tmpfs")
    info = Path(paths["info"])
    assert (info / "labels").read_text() == 'app="web"\ntier="f\\"e"'
    assert (info / "name").read_text() == "web" and (info / "mem").read_text() == "64"
    api = Path(paths["api"])
    assert (api / "token").read_text() == "token-1" and (api / "b").read_text() == "B=2"
    assert (api / "namespace").read_text() == "ns"
    assert stat.S_IMODE((api / "token").stat().st_mode) == 0o444
    assert tokens.calls == [{"namespace": "ns", "service_account": "robot", "audiences": ["vault"],
                             "expiration_seconds": 7200, "pod": "web"}]
    # idempotent: a second setup mounts nothing new and asks for no token
    before = len(mounts_below(root))
    assert await manager.setup(p) == paths
    assert len(mounts_below(root)) == before == 4  # mem, sec, info, api
    assert len(tokens.calls) == 1
    # a symlink out of the pod dir must not be followed by teardown
    os.symlink(outside, Path(paths["scratch"]) / "escape")
    os.symlink(outside, Path(paths["mem"]) / "escape")
    assert manager.pod_uids_on_disk() == {uid}
    await manager.teardown(uid)
    assert mounts_below(root) == []
    assert not (root / "pods" / uid).exists()
    assert (outside / "keep").read_text() == "precious"
    assert (tmp_path / "made" / "here").is_dir()  # hostPath content is the host's
    assert manager.pod_uids_on_disk() == set()


async def test_refresh_propagates_updates_atomically(env) -> None:
    manager, source, tokens, _root = env
    source.put_configmap("cfg", {"k": "v1"})
    p = pod([{"name": "cfg", "configMap": {"name": "cfg"}},
             {"name": "api", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}])
    paths = await manager.setup(p)
    cfg = Path(paths["cfg"])
    first = os.readlink(cfg / "..data")
    await manager.refresh(p)
    assert os.readlink(cfg / "..data") == first  # unchanged: not rewritten
    source.put_configmap("cfg", {"k": "v2", "new": "n"})
    await manager.refresh(p)
    assert (cfg / "k").read_text() == "v2" and (cfg / "new").read_text() == "n"
    second = os.readlink(cfg / "..data")
    assert second != first and not (cfg / first).exists()
    assert os.readlink(cfg / "k") == "..data/k"
    assert len(tokens.calls) == 1 and tokens.calls[0]["audiences"] == []
    assert tokens.calls[0]["expiration_seconds"] == 3600
    # the object disappears: refresh reports it, the last good files stay
    del source.objects[("configmaps", "ns", "cfg")]
    with pytest.raises(VolumeError) as info:
        await manager.refresh(p)
    assert str(info.value) == 'MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found'
    assert (cfg / "k").read_text() == "v2"


async def test_token_is_renewed_when_old(env) -> None:
    manager, _source, tokens, _root = env
    token = {"serviceAccountToken": {"path": "t", "expirationSeconds": 600}}
    p = pod([{"name": "api", "projected": {"sources": [token]}}])
    paths = await manager.setup(p)
    cache = manager._tokens[p["metadata"]["uid"]]
    (key, cached), = cache.items()
    cache[key] = type(cached)(cached.token, cached.obtained - 481, cached.ttl)  # past 80% of 600 s
    await manager.refresh(p)
    assert len(tokens.calls) == 2 and (Path(paths["api"]) / "t").read_text() == "token-2"


@pytest.mark.parametrize(("volume", "message"), [
    ({"configMap": {"name": "nope"}}, 'configmap "nope" not found'),
    ({"secret": {"secretName": "nope"}}, 'secret "nope" not found'),
    ({"configMap": {"name": "cfg", "items": [{"key": "missing", "path": "m"}]}},
     "configmap references non-existent config key: missing"),
    ({"secret": {"secretName": "sec", "items": [{"key": "missing", "path": "m"}]}},
     "secret references non-existent secret key: missing"),
    ({"hostPath": {"path": "/proc/version", "type": "Directory"}},
     "hostPath type check failed: /proc/version is not a directory"),
    ({"hostPath": {"path": "/proc", "type": "File"}}, "hostPath type check failed: /proc is not a file"),
    ({"hostPath": {"path": "/proc", "type": "Socket"}}, "hostPath type check failed: /proc is not a socket file"),
    ({"hostPath": {"path": "/proc", "type": "Bogus"}}, "Bogus is an invalid volume type"),
    ({"emptyDir": {"medium": "Memory", "sizeLimit": "lots"}}, "quantities must match"),
    ({"nfs": {"server": "x", "path": "/"}}, "unsupported volume type nfs"),
])
async def test_failures_carry_upstream_messages(env, volume: dict, message: str) -> None:
    manager, source, _tokens, _root = env
    source.put_configmap("cfg", {"k": "v"})
    source.put_secret("sec", {"k": b"v"})
    with pytest.raises(VolumeError) as info:
        await manager.setup(pod([{"name": "v", **volume}]))
    assert message in info.value.detail
    assert str(info.value).startswith('MountVolume.SetUp failed for volume "v" : ')
    assert info.value.volume == "v" and info.value.reason == "FailedMount"


async def test_optional_sources_and_file_types(env, tmp_path: Path) -> None:
    manager, source, _tokens, _root = env
    source.put_configmap("cfg", {"k": "v"})
    target = tmp_path / "deep" / "file.txt"
    paths = await manager.setup(pod([
        {"name": "a", "configMap": {"name": "absent", "optional": True}},
        {"name": "b", "configMap": {"name": "cfg", "optional": True, "items": [{"key": "zz", "path": "z"},
                                                                               {"key": "k", "path": "k"}]}},
        {"name": "c", "secret": {"secretName": "absent", "optional": True}},
        {"name": "f", "hostPath": {"path": str(target), "type": "FileOrCreate"}},
        {"name": "d", "hostPath": {"path": "/dev/null", "type": "CharDevice"}},
    ]))
    assert os.listdir(Path(paths["a"]) / "..data") == []
    assert sorted(p for p in os.listdir(paths["b"]) if not p.startswith("..")) == ["k"]
    assert os.listdir(Path(paths["c"]) / "..data") == []
    assert target.is_file() and stat.S_IMODE(target.stat().st_mode) == 0o644


async def test_teardown_of_unknown_or_bad_uid(env) -> None:
    manager, *_ = env
    await manager.teardown("not-there")  # nothing to do is fine
    with pytest.raises(VolumeError):
        await manager.teardown("..")


async def test_fs_group_and_user_ownership(env) -> None:
    manager, source, _tokens, _root = env
    source.put_configmap("cfg", {"k": "v"})
    p = pod([{"name": "scratch", "emptyDir": {}},
             {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o400}},
             {"name": "api", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
            securityContext={"fsGroup": 1234, "runAsUser": 1000})
    paths = await manager.setup(p)
    scratch = os.stat(paths["scratch"])
    assert scratch.st_gid == 1234 and stat.S_IMODE(scratch.st_mode) == 0o2777
    cfg = Path(paths["cfg"])
    data = (cfg / "k").stat()
    assert data.st_gid == 1234 and stat.S_IMODE(data.st_mode) == 0o440
    version = (cfg / os.readlink(cfg / "..data")).stat()
    assert version.st_gid == 1234 and version.st_mode & stat.S_ISGID
    token = (Path(paths["api"]) / "token").stat()
    assert (token.st_uid, token.st_gid, stat.S_IMODE(token.st_mode)) == (1000, 1234, 0o640)
    first = os.readlink(cfg / "..data")
    await manager.refresh(p)
    assert os.readlink(cfg / "..data") == first  # ownership is part of "unchanged"


async def test_memory_empty_dir_is_bounded_by_the_pod_limit(env) -> None:
    manager, *_ = env
    paths = await manager.setup(pod([{"name": "m", "emptyDir": {"medium": "Memory"}},
                                     {"name": "big", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]))
    assert "size=65536k" in _tmpfs_options(paths["m"])  # the container's 64Mi limit
    assert "size=65536k" in _tmpfs_options(paths["big"])


async def test_teardown_detaches_a_busy_mount(env) -> None:
    manager, *_ = env
    p = pod([{"name": "m", "emptyDir": {"medium": "Memory"}}])
    paths = await manager.setup(p)
    # an open file keeps the mount busy: a plain unmount fails with EBUSY
    held = await asyncio.to_thread(os.open, Path(paths["m"]) / "open-file", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        await manager.teardown(p["metadata"]["uid"])
        assert _tmpfs_options(paths["m"]) is None
        assert not await asyncio.to_thread(Path(paths["m"]).exists)
        assert os.write(held, b"still writable after a lazy unmount") > 0
    finally:
        os.close(held)
