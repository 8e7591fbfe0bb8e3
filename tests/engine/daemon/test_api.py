"""The daemon's HTTP API in-process (aiohttp test server) over a real store and a real registry."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import tarfile
import time
from pathlib import Path

import orjson
from aiohttp.test_utils import TestClient

from engine.daemon.context import API_VERSION, MIN_API_VERSION, EngineContext
from engine.daemon.system import PING_HEADERS
from tests.engine.daemon.engine_env import Registry, busybox_image


async def messages(resp) -> list[dict]:
    return [orjson.loads(line) for line in (await resp.read()).splitlines() if line.strip()]


async def test_ping_version_info(api: TestClient):
    for method in ("GET", "HEAD"):
        resp = await api.request(method, "/_ping")
        assert resp.status == 200
        for key, value in PING_HEADERS.items():
            assert resp.headers[key] == value
    assert await (await api.get("/_ping")).text() == "OK"
    version = await (await api.get("/v1.24/version")).json()
    assert version["ApiVersion"] == API_VERSION and version["MinAPIVersion"] == MIN_API_VERSION
    assert version["Components"][0]["Details"]["ApiVersion"] == API_VERSION
    info = await (await api.get(f"/v{API_VERSION}/info")).json()
    assert info["Images"] == 0 and info["OSType"] == "linux" and info["Swarm"]["LocalNodeState"] == "inactive"


async def test_version_prefix_and_unknown_paths(api: TestClient):
    for path in ("/v1.12/images/json", "/v1.99/images/json"):
        resp = await api.get(path)
        assert resp.status == 400
        assert "supported API version" in (await resp.json())["message"]
    resp = await api.get("/v1.43/nothing/here")
    assert resp.status == 404 and await resp.json() == {"message": "page not found"}
    assert resp.headers["Api-Version"] == API_VERSION


async def test_list_inspect_history_with_filters(api: TestClient, context: EngineContext, tmp_path: Path):
    tagged = busybox_image(context.store, tmp_path / "a", names=("app:1", "app:2"), layers=2, label="a")
    other = busybox_image(context.store, tmp_path / "b", names=("tools:latest",), label="b")
    rows = await (await api.get("/images/json")).json()
    assert {r["Id"] for r in rows} == {tagged.id, other.id}
    row = next(r for r in rows if r["Id"] == tagged.id)
    assert sorted(row["RepoTags"]) == ["app:1", "app:2"]
    assert row["Size"] == tagged.size > 1_000_000 and row["Labels"] == {"pinnace.test": "a"}
    assert row["Created"] == 1767323045  # 2026-01-02T03:04:05Z

    async def listed(filters: dict) -> set[str]:
        resp = await api.get("/images/json", params={"filters": json.dumps(filters)})
        assert resp.status == 200, await resp.text()
        return {r["Id"] for r in await resp.json()}

    assert await listed({"reference": ["app"]}) == {tagged.id}
    narrowed = await (await api.get("/images/json", params={"filters": json.dumps({"reference": ["app:2"]})})).json()
    assert [r["RepoTags"] for r in narrowed] == [["app:2"]]
    assert await listed({"reference": ["tool*:latest"]}) == {other.id}
    assert await listed({"label": ["pinnace.test=b"]}) == {other.id}
    assert await listed({"dangling": ["true"]}) == set()
    bad = await api.get("/images/json", params={"filters": json.dumps({"colour": ["red"]})})
    assert bad.status == 400 and "invalid filter 'colour'" in (await bad.json())["message"]

    inspect = await (await api.get("/v1.43/images/app:1/json")).json()
    assert inspect["Id"] == tagged.id and inspect["RootFS"]["Layers"] == tagged.diff_ids
    assert inspect["Config"]["Cmd"] == ["sh"] and inspect["Config"]["Labels"] == {"pinnace.test": "a"}
    assert inspect["Os"] == "linux" and inspect["Architecture"] == "amd64"
    assert len(inspect["GraphDriver"]["Data"]["LowerDir"].split(":")) == 2
    by_short_id = await (await api.get(f"/images/{tagged.id[7:19]}/json")).json()
    assert by_short_id["Id"] == tagged.id

    history = await (await api.get("/images/app:1/history")).json()
    assert [h["CreatedBy"] for h in history] == ["test layer 1", "test layer 0"]
    assert history[0]["Id"] == tagged.id and history[1]["Id"] == "<missing>"

    missing = await api.get("/images/nope:1/json")
    assert missing.status == 404 and (await missing.json())["message"] == "No such image: nope:1"
    bad_name = await api.get("/images/UPPER:1/json")
    assert bad_name.status in (400, 404)


async def test_tag_remove_prune(api: TestClient, context: EngineContext, tmp_path: Path):
    image = busybox_image(context.store, tmp_path / "a", names=("app:1",))
    resp = await api.post("/images/app:1/tag", params={"repo": "localhost:5000/team/app", "tag": "v2"})
    assert resp.status == 201
    assert context.store.resolve("localhost:5000/team/app:v2").id == image.id
    assert (await api.post("/images/app:1/tag", params={"tag": "x"})).status == 400
    assert (await api.post("/images/app:1/tag", params={"repo": "Bad Name"})).status == 400
    assert (await api.post("/images/ghost:1/tag", params={"repo": "x"})).status == 404

    conflict = await api.delete(f"/images/{image.id}")
    assert conflict.status == 409 and "must be forced" in (await conflict.json())["message"]
    report = await (await api.delete("/images/app:1")).json()
    assert report == [{"Untagged": "app:1"}]
    report = await (await api.delete("/images/localhost:5000/team/app:v2")).json()
    assert {"Deleted": image.id} in report and {"Untagged": "localhost:5000/team/app:v2"} in report
    assert context.store.images() == [] and context.store.check() == []
    assert (await api.delete("/images/app:1")).status == 404

    keep = busybox_image(context.store, tmp_path / "b", names=("keep:1",), label="keep")
    dangling = busybox_image(context.store, tmp_path / "c", names=("gone:1",), label="gone")
    context.store.untag("gone:1")
    pruned = await (await api.post("/images/prune")).json()
    assert {"Deleted": dangling.id} in pruned["ImagesDeleted"] and pruned["SpaceReclaimed"] > 0
    assert [i.id for i in context.store.images()] == [keep.id]
    everything = await (await api.post("/images/prune", params={"filters": json.dumps({"dangling": ["false"]})})).json()
    assert {"Deleted": keep.id} in everything["ImagesDeleted"]
    assert context.store.images() == [] and list(context.store.blobs_dir.iterdir()) == []


async def test_save_load_round_trip(api: TestClient, context: EngineContext, tmp_path: Path):
    image = busybox_image(context.store, tmp_path / "a", names=("app:1",), layers=3)
    resp = await api.get("/images/get", params={"names": "app:1"})
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/x-tar"
    archive = await resp.read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["app:1"] and len(manifest[0]["Layers"]) == 3
    assert (await api.get("/images/app:1/get")).status == 200
    assert (await api.get("/images/nope:1/get")).status == 404

    await api.delete("/images/app:1")
    assert context.store.images() == []
    loaded = await api.post("/images/load", data=archive, headers={"Content-Type": "application/x-tar"})
    assert loaded.status == 200
    assert await messages(loaded) == [{"stream": "Loaded image: app:1\n"}]
    assert context.store.resolve("app:1").id == image.id and context.store.check() == []

    garbage = await api.post("/images/load", data=b"this is not a tar" * 100)
    assert garbage.status == 400 and "archive" in (await garbage.json())["message"]
    assert context.store.check() == []


async def test_store_work_does_not_block_the_loop(api: TestClient, context: EngineContext, monkeypatch):
    slow_images = context.store.images

    def slow() -> list:
        time.sleep(0.6)
        return slow_images()

    monkeypatch.setattr(context.store, "images", slow)
    listing = asyncio.ensure_future(api.get("/images/json"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert (await api.get("/_ping")).status == 200
    assert time.monotonic() - started < 0.3
    assert (await listing).status == 200


def _auth_header(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


async def test_push_pull_through_a_registry(api: TestClient, context: EngineContext, registry: Registry,
                                            tmp_path: Path):
    name = f"{registry.host}/api/app"
    image = busybox_image(context.store, tmp_path / "a", names=(f"{name}:1",), layers=3)
    push = await api.post(f"/v1.43/images/{name}/push", params={"tag": "1"},
                          headers={"X-Registry-Auth": _auth_header({})})
    assert push.status == 200
    lines = await messages(push)
    assert lines[0] == {"status": f"The push refers to repository [{name}]"}
    aux = [m["aux"] for m in lines if "aux" in m]
    assert aux and aux[0]["Tag"] == "1" and aux[0]["Digest"] == registry.manifest_digest("api/app", "1")
    assert not any("error" in m for m in lines)

    await api.delete(f"/images/{name}:1")
    assert context.store.images() == []
    pull = await api.post("/images/create", params={"fromImage": name, "tag": "1"})
    assert pull.status == 200
    lines = await messages(pull)
    assert lines[0] == {"status": "Pulling from " + name, "progressDetail": {}, "id": "1"}
    assert {"status": f"Digest: {aux[0]['Digest']}"} in lines
    assert lines[-1] == {"status": f"Status: Downloaded newer image for {name}:1"}
    assert sum(1 for m in lines if m.get("status") == "Pull complete") == 3
    assert context.store.resolve(f"{name}:1").id == image.id and context.store.check() == []

    again = await messages(await api.post("/images/create", params={"fromImage": f"{name}:1"}))
    assert again[-1] == {"status": f"Status: Image is up to date for {name}:1"}

    pushed_all = await messages(await api.post(f"/images/{name}/push"))  # no tag: every local tag
    assert [m["aux"]["Tag"] for m in pushed_all if "aux" in m] == ["1"]


async def test_pull_and_push_errors_before_any_progress(api: TestClient, context: EngineContext,
                                                        registry: Registry, tmp_path: Path):
    unknown = await api.post("/images/create", params={"fromImage": f"{registry.host}/api/none", "tag": "1"})
    assert unknown.status == 404 and "not found" in (await unknown.json())["message"]
    unreachable = await api.post("/images/create", params={"fromImage": "127.0.0.1:1/x", "tag": "1"})
    assert unreachable.status >= 500 and "cannot connect" in (await unreachable.json())["message"]
    bad = await api.post("/images/create", params={"fromImage": "Bad Name"})
    assert bad.status == 400
    assert (await api.post("/images/create")).status == 400
    assert (await api.post("/images/create", params={"fromImage": "x"},
                           headers={"X-Registry-Auth": "%%%"})).status == 400
    missing = await api.post(f"/images/{registry.host}/api/ghost/push", params={"tag": "1"})
    assert missing.status == 404 and "does not exist locally" in (await missing.json())["message"]
    assert context.store.check() == [] and list(context.store.blobs_dir.iterdir()) == []

    busybox_image(context.store, tmp_path / "a", names=("127.0.0.1:1/x:1",))
    push = await api.post("/images/127.0.0.1:1/x/push", params={"tag": "1"})
    assert push.status == 200  # Docker reports registry failures inside the push stream
    lines = await messages(push)
    assert "cannot connect" in lines[-1]["error"] and lines[-1]["errorDetail"]["message"] == lines[-1]["error"]


def context_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_build_without_a_context_is_refused(api: TestClient):
    expected = 400
    assert (await api.post("/build", data=b"", params={"t": "x:1"})).status == expected
    assert (await api.post("/build", params={"t": "Bad Tag"}, data=b"")).status == expected
    assert (await api.post("/build", params={"version": "2"}, data=b"")).status == expected
    assert (await api.post("/build", params={"networkmode": "bridge"}, data=b"")).status == expected


async def test_build_streams_docker_messages(api: TestClient, context: EngineContext):
    body = context_tar({"Dockerfile": b"FROM scratch\nCOPY a.txt /a.txt\nLABEL x=y\n", "a.txt": b"a\n"})
    resp = await api.post("/v1.43/build", data=body, params={"t": "built:1", "labels": json.dumps({"l": "v"})},
                          headers={"Content-Type": "application/x-tar"})
    assert resp.status == 200
    lines = await messages(resp)
    text = "".join(m.get("stream", "") for m in lines)
    assert "Step 1/" in text and "Successfully tagged built:1" in text
    image = context.store.resolve("built:1")
    assert lines[-1] == {"aux": {"ID": image.id}}
    assert image.config["config"]["Labels"] == {"x": "y", "l": "v"}

    quiet = await messages(await api.post("/build", data=body, params={"q": "1", "labels": json.dumps({"l": "v"})}))
    assert quiet == [{"aux": {"ID": image.id}}, {"stream": image.id + "\n"}]

    syntax = await api.post("/build", data=context_tar({"Dockerfile": b"FROM scratch\nFORM x\n"}))
    assert syntax.status == 400 and "Dockerfile:2" in (await syntax.json())["message"]

    missing = await api.post("/build", data=context_tar({"Dockerfile": b"FROM scratch\nCOPY nothing /x\n"}))
    lines = await messages(missing)
    assert missing.status == 200 and lines[-1]["error"] and "nothing" in lines[-1]["error"]
    assert context.store.check() == []


async def test_build_request_checks(api: TestClient):
    other = context_tar({"Other.dockerfile": b"FROM scratch\n"})
    no_dockerfile = await api.post("/build", data=other)
    assert no_dockerfile.status == 400
    assert (await no_dockerfile.json())["message"] == "Cannot locate specified Dockerfile: Dockerfile"
    assert (await api.post("/build", data=other, params={"dockerfile": "../x"})).status == 400
    refused = await api.post("/build", data=context_tar({"../../escaped": b"x"}))
    assert refused.status == 400 and "invalid build context" in (await refused.json())["message"]
