"""The real docker CLI (/usr/local/bin/docker) and the docker Python SDK against ``pinnace engine serve``.

The daemon runs as a subprocess on a temp socket and root; images come from a busybox image packed
into the daemon's store and from a real docker-registry on loopback.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from tests.engine.daemon.engine_env import (
    DOCKER,
    EngineProcess,
    Registry,
    busybox_image,
    open_store,
    run,
)

pytestmark = pytest.mark.skipif(not DOCKER.exists(), reason="the docker CLI is not installed")


def docker(engine: EngineProcess, *args: str, input: bytes | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    return run([str(DOCKER), *args], env=engine.env, input=input, check=check)


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode()


@pytest.fixture(scope="module")
def seeded(engine: EngineProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 3-layer busybox image ``seed:1`` in the daemon's store; returns its id."""
    with open_store(engine.root) as store:
        return busybox_image(store, tmp_path_factory.mktemp("seed"), names=("seed:1",), layers=3).id


def test_docker_version_negotiates(engine: EngineProcess):
    version = out(docker(engine, "version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}"))
    assert version.split() == ["1.43", "1.43"]


def test_docker_images_tag_push_rmi_pull(engine: EngineProcess, registry: Registry, seeded: str):
    listing = out(docker(engine, "images"))
    assert listing.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:3] == ["seed", "1", seeded[7:19]] for line in listing.splitlines())

    remote = f"{registry.host}/cli/seed:1"
    docker(engine, "tag", "seed:1", remote)
    ids = out(docker(engine, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"))
    assert f"{remote} {seeded}" in ids.splitlines()

    pushed = out(docker(engine, "push", remote))
    digest = registry.manifest_digest("cli/seed", "1")
    assert f"1: digest: {digest}" in pushed

    removed = out(docker(engine, "rmi", remote))
    assert f"Untagged: {remote}" in removed
    assert remote not in out(docker(engine, "images", "--format", "{{.Repository}}:{{.Tag}}"))

    pulled = out(docker(engine, "pull", remote))
    assert f"Digest: {digest}" in pulled and f"Status: Downloaded newer image for {remote}" in pulled
    inspect = out(docker(engine, "image", "inspect", "--format", "{{.Id}} {{index .RepoDigests 0}}", remote))
    assert inspect.split() == [seeded, f"{registry.host}/cli/seed@{digest}"]


def test_docker_errors_are_reported(engine: EngineProcess, registry: Registry):
    missing = docker(engine, "pull", f"{registry.host}/cli/absent:1", check=False)
    assert missing.returncode == 1 and b"not found" in missing.stderr
    unknown = docker(engine, "rmi", "absent:1", check=False)
    assert unknown.returncode == 1 and b"No such image: absent:1" in unknown.stderr
    unreachable = docker(engine, "pull", "127.0.0.1:1/x:1", check=False)
    assert unreachable.returncode == 1 and b"cannot connect" in unreachable.stderr


def test_docker_save_pipe_load(engine: EngineProcess, seeded: str):
    docker(engine, "tag", "seed:1", "saved:1")
    archive = docker(engine, "save", "saved:1").stdout
    assert len(archive) > 1_000_000
    docker(engine, "rmi", "saved:1")
    loaded = out(docker(engine, "load", input=archive))
    assert "Loaded image: saved:1" in loaded
    assert out(docker(engine, "images", "-q", "--no-trunc", "saved:1")).strip() == seeded
    docker(engine, "rmi", "saved:1")


def test_docker_legacy_build(engine: EngineProcess, seeded: str, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text("FROM seed:1\nCOPY hello.txt /hello.txt\nLABEL built=yes\n")
    (tmp_path / "hello.txt").write_text("hello\n")
    env_build = dict(engine.env, DOCKER_BUILDKIT="0")
    result = run([str(DOCKER), "build", "-t", "built:1", "."], env=env_build, cwd=tmp_path)
    assert b"Successfully tagged built:1" in result.stdout
    labels = out(docker(engine, "image", "inspect", "--format", "{{.Config.Labels.built}}", "built:1"))
    assert labels.strip() == "yes"
    docker(engine, "rmi", "built:1")


def test_docker_sdk_images(engine: EngineProcess, registry: Registry, seeded: str, tmp_path: Path):
    docker_sdk = pytest.importorskip("docker")
    client = docker_sdk.DockerClient(base_url=f"unix://{engine.socket}", version="auto")
    try:
        assert client.api.api_version == "1.43"
        assert seeded in {i.id for i in client.images.list()}
        image = client.images.get("seed:1")
        assert image.labels == {"pinnace.test": "test"}
        assert image.tag(f"{registry.host}/sdk/seed", "2")
        client.images.push(f"{registry.host}/sdk/seed", tag="2")
        client.images.remove(f"{registry.host}/sdk/seed:2")
        pulled = client.images.pull(f"{registry.host}/sdk/seed", tag="2")
        assert pulled.id == seeded and f"{registry.host}/sdk/seed:2" in pulled.tags
        assert [i.id for i in client.images.list(name=f"{registry.host}/sdk/seed")] == [seeded]
        with pytest.raises(docker_sdk.errors.ImageNotFound):
            client.images.get("absent:1")
        with pytest.raises(docker_sdk.errors.NotFound):
            client.images.pull(f"{registry.host}/sdk/absent", tag="1")
        dockerfile = io.BytesIO(b"FROM seed:1\nENV GREETING=hi\n")
        built, _ = client.images.build(fileobj=dockerfile, tag="sdk-built:1")
        assert "sdk-built:1" in built.tags and "GREETING=hi" in built.attrs["Config"]["Env"]
        client.images.remove("sdk-built:1")
    finally:
        client.close()

