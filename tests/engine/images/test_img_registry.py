"""The registry client against a real docker-registry (and a counting/auth proxy in front of it)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from imgtest_util import (
    GateProxy,
    ProxyAuth,
    RegistryProcess,
    build_image,
    free_port,
    image_config,
    need_tool,
    skopeo,
    small_tree,
    store_snapshot,
    unique_repo,
)

from engine.images import mediatypes as mt
from engine.images import rootfs
from engine.images.auth import Credentials
from engine.images.errors import (
    AuthError,
    DigestMismatch,
    InvalidReference,
    RegistryNotFound,
    RegistryTimeout,
    RegistryUnavailable,
)
from engine.images.registry import RegistryClient
from engine.images.store import ImageStore


def _client(store: ImageStore, **kw) -> RegistryClient:
    return RegistryClient(store, use_docker_config=False, **kw)


def _layers(tmp_path: Path, busybox_root: Path, tag: str) -> list[Path]:
    return [
        busybox_root,
        small_tree(tmp_path / f"etc-{tag}", {"etc/motd": f"hello {tag}\n"}),
        small_tree(tmp_path / f"app-{tag}", {"app/data": os.urandom(2048).hex()}),
    ]


async def test_push_delete_pull_gives_same_digest(
    store: ImageStore, tmp_path: Path, busybox_root: Path, registry: RegistryProcess
) -> None:
    name = f"{registry.host}/{unique_repo()}:1"
    built = build_image(store, _layers(tmp_path, busybox_root, "a"), names=[name])
    async with _client(store) as client:
        pushed = await client.push(name)
        assert pushed == built.manifest_digest
        assert store.resolve(name).repo_digests == [f"{name.rsplit(':', 1)[0]}@{pushed}"]
        store.remove(name)
        assert store.images() == [] and list(store.blobs_dir.iterdir()) == []
        pulled = await client.pull(name)
    assert pulled.id == built.id
    assert pulled.target["digest"] == pushed
    assert pulled.repo_tags == [name]
    assert store.check(deep=True) == []
    if shutil.which("skopeo"):
        info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{name}").stdout)
        assert info["Digest"] == pushed
        assert len(info["Layers"]) == 3


async def test_chunked_upload_and_existing_blobs(
    store: ImageStore, tmp_path: Path, busybox_root: Path, proxy: GateProxy
) -> None:
    name = f"{proxy.host}/{unique_repo()}:c"
    build_image(store, _layers(tmp_path, busybox_root, "c"), names=[name])
    async with _client(store, chunk_size=256 * 1024) as client:
        await client.push(name)
        patches = proxy.count("PATCH", "/blobs/uploads/")
        assert patches >= 4  # busybox (~1 MB gzip) went in 256 KiB chunks
        posts, heads = proxy.count("POST", "/blobs/uploads/"), proxy.count("HEAD", "/blobs/sha256:")
        assert posts == heads == 4  # config + 3 layers, each checked then uploaded
        await client.push(name)  # second time: every blob exists, only HEADs
    assert proxy.count("PATCH", "/blobs/uploads/") == patches
    assert proxy.count("POST", "/blobs/uploads/") == posts
    assert proxy.count("HEAD", "/blobs/sha256:") == heads + 4


async def test_cross_repository_mount(store: ImageStore, tmp_path: Path, busybox_root: Path, proxy: GateProxy) -> None:
    first, second = f"{proxy.host}/{unique_repo()}:1", f"{proxy.host}/{unique_repo()}:1"
    build_image(store, _layers(tmp_path, busybox_root, "m"), names=[first])
    async with _client(store) as client:
        await client.push(first)
        store.tag(first, second)
        await client.push(second)
    second_path = second.split("/", 1)[1].rsplit(":", 1)[0]
    assert proxy.count("POST", f"/v2/{second_path}/blobs/uploads/") == 4  # config + 3 layers, all mounted
    assert proxy.count("PUT", f"/v2/{second_path}/blobs/uploads/") == 0
    assert proxy.count("PATCH", f"/v2/{second_path}/blobs/uploads/") == 0


async def test_concurrent_pulls_download_each_blob_once(
    store: ImageStore, tmp_path: Path, busybox_root: Path, proxy: GateProxy
) -> None:
    repo = f"{proxy.host}/{unique_repo()}"
    base = _layers(tmp_path, busybox_root, "p")
    build_image(store, base, names=[f"{repo}:one"])
    build_image(store, [*base[:2], small_tree(tmp_path / "other", {"o": "x"})], names=[f"{repo}:two"])
    async with _client(store) as pusher:
        await pusher.push(f"{repo}:one")
        await pusher.push(f"{repo}:two")
    store.remove(f"{repo}:one")
    store.remove(f"{repo}:two")
    assert list(store.blobs_dir.iterdir()) == []
    proxy.requests.clear()
    async with _client(store) as a, _client(store) as b:
        images = await asyncio.gather(
            a.pull(f"{repo}:one"), a.pull(f"{repo}:one"), b.pull(f"{repo}:one"), b.pull(f"{repo}:two")
        )
    assert len({i.id for i in images[:3]}) == 1
    blob_gets = {path: n for (method, path), n in proxy.requests.items() if method == "GET" and "/blobs/" in path}
    assert len(blob_gets) == 2 + 4  # two configs, four distinct layers
    assert set(blob_gets.values()) == {1}
    assert store.check(deep=True) == []


async def test_corrupted_blob_is_refused_and_nothing_kept(
    store: ImageStore, tmp_path: Path, busybox_root: Path, registry: RegistryProcess
) -> None:
    keep = build_image(store, [small_tree(tmp_path / "keep", {"k": "k"})], names=["keep:1"])
    name = f"{registry.host}/{unique_repo()}:bad"
    layers = _layers(tmp_path, busybox_root, "bad")
    built = build_image(store, layers, names=[name])
    async with _client(store) as client:
        await client.push(name)
        store.remove(name)
        before = store_snapshot(store)
        victim = registry.blob_data_path(built.layers[2]["digest"])
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        with pytest.raises(DigestMismatch, match="digest mismatch") as info:
            await client.pull(name)
    assert "\n" not in str(info.value)
    assert store_snapshot(store) == before
    assert store.check(deep=True) == []
    assert [i.id for i in store.images()] == [keep.id]


async def test_not_found_and_unavailable(store: ImageStore, registry: RegistryProcess) -> None:
    async with _client(store, connect_timeout=2) as client:
        with pytest.raises(RegistryNotFound, match=r"manifest for .*:nope not found: (manifest|name) unknown"):
            await client.pull(f"{registry.host}/{unique_repo()}:nope")
        with pytest.raises(RegistryUnavailable, match="cannot connect to registry"):
            await client.pull(f"127.0.0.1:{free_port()}/x:1")
    assert store.images() == [] and list(store.blobs_dir.iterdir()) == []


async def test_timeout_is_reported_and_store_unchanged(
    store: ImageStore, tmp_path: Path, busybox_root: Path, registry: RegistryProcess
) -> None:
    name = f"{unique_repo()}:slow"
    build_image(store, _layers(tmp_path, busybox_root, "slow"), names=[f"{registry.host}/{name}"])
    async with _client(store) as client:
        await client.push(f"{registry.host}/{name}")
    store.remove(f"{registry.host}/{name}")
    gate = await GateProxy(registry.host, stall=["/blobs/sha256:"]).start()
    try:
        before = store_snapshot(store)
        async with _client(store, timeout=0.5) as client:
            with pytest.raises(RegistryTimeout, match="timed out"):
                await client.pull(f"{gate.host}/{name}")
        assert store_snapshot(store) == before
    finally:
        await gate.stop()


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
async def test_auth(store: ImageStore, tmp_path: Path, registry: RegistryProcess, scheme: str) -> None:
    gate = await GateProxy(registry.host, auth=ProxyAuth(scheme)).start()
    try:
        name = f"{gate.host}/{unique_repo()}:auth"
        build_image(store, [small_tree(tmp_path / "a", {"a": scheme})], names=[name])
        async with _client(store) as anonymous:
            with pytest.raises(AuthError, match="authentication required"):
                await anonymous.push(name)
        async with _client(store, credentials={gate.host: Credentials("alice", "wrong")}) as wrong:
            with pytest.raises(AuthError):
                await wrong.push(name)
        config = tmp_path / "docker-config.json"
        config.write_text(json.dumps({"auths": {f"http://{gate.host}": {"username": "alice", "password": "s3cret"}}}))
        async with RegistryClient(store, docker_config=config) as client:
            digest = await client.push(name)
            store.remove(name)
            assert (await client.pull(name)).target["digest"] == digest
        if scheme == "bearer":
            path = name.split("/", 1)[1].rsplit(":", 1)[0]
            assert [f"repository:{path}:pull,push"] in gate.token_scopes
            assert [f"repository:{path}:pull"] in gate.token_scopes
    finally:
        await gate.stop()


async def test_pull_of_an_index_picks_amd64(store: ImageStore, tmp_path: Path, registry: RegistryProcess) -> None:
    amd = build_image(store, [small_tree(tmp_path / "amd", {"arch": "amd64"})], flavour="oci")
    arm_config = image_config(amd.diff_ids, label="arm")
    arm_config["architecture"] = "arm64"
    arm = store.write_image(config=arm_config, layers=amd.layers, flavour="oci")
    index = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {**arm.target, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {**amd.target, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    data = orjson.dumps(index)
    index_digest = store.put_blob(data)
    name = f"{registry.host}/{unique_repo()}:multi"
    store.add_image({"mediaType": mt.OCI_INDEX, "digest": index_digest, "size": len(data)}, [name])
    async with _client(store) as client:
        assert await client.push(name) == index_digest  # a complete index goes up as is
        for image in store.images():
            store.remove(image.id, force=True)
        assert list(store.blobs_dir.iterdir()) == []
        pulled = await client.pull(name)
    assert pulled.id == amd.id and pulled.target["digest"] == index_digest
    assert not store.has_blob(arm.id)
    assert store.check(deep=True) == []


async def test_pull_an_image_made_by_umoci_and_skopeo(
    store: ImageStore, tmp_path: Path, busybox_root: Path, registry: RegistryProcess
) -> None:
    need_tool("/usr/bin/umoci")
    need_tool("/usr/bin/skopeo")
    layout = tmp_path / "layout"

    def umoci(*args: str) -> None:
        subprocess.run(["umoci", *args], check=True, capture_output=True, timeout=30)

    etc = small_tree(tmp_path / "etc", {"keep": "k", "drop": "d"})
    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:t")
    umoci("insert", "--image", f"{layout}:t", str(busybox_root / "bin"), "/bin")
    umoci("insert", "--image", f"{layout}:t", str(etc), "/etc")
    umoci("insert", "--image", f"{layout}:t", "--whiteout", "/etc/drop")
    name = f"{registry.host}/{unique_repo()}:umoci"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:t", f"docker://{name}")
    async with _client(store) as client:
        image = await client.pull(name)
    assert len(image.layers) == 3
    target = tmp_path / "mnt"
    with rootfs.mounted(store, image, target=target, upper=tmp_path / "u", work=tmp_path / "w"):
        assert sorted(os.listdir(target / "etc")) == ["keep"]
        assert (target / "bin" / "busybox").stat().st_size == (busybox_root / "bin" / "busybox").stat().st_size


async def test_pull_and_push_by_digest(store: ImageStore, tmp_path: Path, registry: RegistryProcess) -> None:
    repo = f"{registry.host}/{unique_repo()}"
    built = build_image(store, [small_tree(tmp_path / "d", {"d": "digest"})], names=[f"{repo}:src"])
    events = []
    async with _client(store) as client:
        with pytest.raises(InvalidReference, match="its digest is"):
            await client.push(f"{repo}:src", dest=f"{repo}@sha256:{'0' * 64}")
        digest = await client.push(f"{repo}:src", dest=f"{repo}@{built.manifest_digest}")
        assert digest == built.manifest_digest
        desc, doc = await client.inspect(f"{repo}@{digest}")
        assert desc["digest"] == digest and doc["config"]["digest"] == built.id
        with pytest.raises(RegistryNotFound):
            await client.inspect(f"{repo}:src")  # pushing by digest made no tag
        store.remove(built.id)
        pulled = await client.pull(f"{repo}@{digest}", progress=events.append)
        assert pulled.repo_tags == [] and pulled.repo_digests == [f"{repo}@{digest}"]
        statuses = [e.status for e in events]
        assert "Pull complete" in statuses and f"Digest: {digest}" in statuses
        events.clear()
        store.tag(pulled.id, f"{repo}:again")
        await client.push(f"{repo}:again", progress=events.append)
        assert {e.status for e in events if e.status != "Preparing"} >= {"Layer already exists"}
