"""``pinnace engine ...`` against a real daemon (subprocess on a temp socket) and a real registry.

Bad input (no daemon, unknown image, unreachable registry) must be one stderr line and exit 1;
the client must start without importing aiohttp.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import engine_client, engine_images
from tests.engine.daemon.engine_env import (
    REGISTRY_BIN,
    REPO,
    EngineProcess,
    Registry,
    busybox_image,
    open_store,
    pinnace,
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    daemon = EngineProcess(tmp_path_factory.mktemp("engine")).start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed")
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def seeded(engine: EngineProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    with open_store(engine.root) as store:
        return busybox_image(store, tmp_path_factory.mktemp("seed"), names=("seed:1",), layers=2).id


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


def test_no_daemon_is_one_line(tmp_path: Path):
    env = {**os.environ, "PINNACE_ENGINE_SOCKET": str(tmp_path / "absent.sock")}
    line = one_error_line(pinnace("engine", "images", env=env, check=False))
    assert line.startswith("pinnace engine: cannot connect to the engine at") and "absent.sock" in line
    other = str(tmp_path / "other.sock")
    assert other in one_error_line(pinnace("engine", "--socket", other, "images", env=env, check=False))
    assert other in one_error_line(pinnace("engine", "pull", "--socket", other, "x", env=env, check=False))


def test_serve_refuses_a_taken_socket_and_a_bad_root(engine: EngineProcess, tmp_path: Path):
    taken = one_error_line(pinnace("engine", "serve", "--root", str(tmp_path / "r"), "--socket", str(engine.socket),
                                   env=engine.env, check=False))
    assert taken == f"pinnace engine: another engine daemon is already listening on {engine.socket}"
    not_socket = tmp_path / "file.sock"
    not_socket.write_text("")
    line = one_error_line(pinnace("engine", "serve", "--root", str(tmp_path / "r"), "--socket", str(not_socket),
                                  env=engine.env, check=False))
    assert "is not a socket" in line
    bad_root = one_error_line(pinnace("engine", "serve", "--root", "/proc/pinnace-nope", "--socket",
                                      str(tmp_path / "s.sock"), env=engine.env, check=False))
    assert "/proc/pinnace-nope" in bad_root


def test_serve_replaces_a_stale_socket(tmp_path: Path):
    import socket

    daemon = EngineProcess(tmp_path)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(daemon.socket))
    stale.close()  # the file stays, nothing listens: a daemon that died
    daemon.start()
    try:
        assert pinnace("engine", "images", "-q", env=daemon.env).stdout == b""
    finally:
        daemon.stop()
    assert not daemon.socket.exists()


def test_a_silent_daemon_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import socket

    monkeypatch.setattr(engine_client, "PING_TIMEOUT", 0.3)
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen()  # accepts connections, never answers: a hung daemon
        with pytest.raises(engine_client.EngineError, match="does not answer"):
            engine_client.EngineClient(str(path)).json("GET", "/images/json")


def test_client_does_not_import_aiohttp(tmp_path: Path):
    code = ("import sys\nfrom cli import main\nrc = main.main(['engine', 'images'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'orjson', 'engine')))")
    env = {**os.environ, "PINNACE_ENGINE_SOCKET": str(tmp_path / "absent.sock")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.stdout.strip() == "['engine', 'engine.daemon', 'engine.daemon.units']"


def test_images_tag_inspect_history_rmi(engine: EngineProcess, seeded: str):
    env = engine.env
    pinnace("engine", "tag", "seed:1", "localhost:5000/team/seed:v1", env=env)
    table = pinnace("engine", "images", env=env).stdout.decode().splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    rows = [line.split() for line in table[1:]]
    assert ["seed", "1", seeded[7:19]] in [r[:3] for r in rows]
    assert ["localhost:5000/team/seed", "v1", seeded[7:19]] in [r[:3] for r in rows]
    assert pinnace("engine", "images", "-q", "seed", env=env).stdout.decode().split() == [seeded[7:19]]

    inspected = json.loads(pinnace("engine", "inspect", "localhost:5000/team/seed:v1", env=env).stdout)
    assert inspected[0]["Id"] == seeded and len(inspected[0]["RootFS"]["Layers"]) == 2
    history = pinnace("engine", "history", "seed:1", env=env).stdout.decode().splitlines()
    assert history[0].split()[:2] == ["IMAGE", "CREATED"] and "test layer 1" in history[1]

    removed = pinnace("engine", "rmi", "localhost:5000/team/seed:v1", env=env).stdout.decode()
    assert removed.strip() == "Untagged: localhost:5000/team/seed:v1"


def test_unknown_image_is_one_line(engine: EngineProcess):
    for args in (("rmi", "absent:1"), ("inspect", "absent:1"), ("history", "absent:1"),
                 ("tag", "absent:1", "x:1"), ("save", "-o", "/dev/null", "absent:1")):
        line = one_error_line(pinnace("engine", *args, env=engine.env, check=False))
        assert line == "pinnace engine: No such image: absent:1", args
    bad = one_error_line(pinnace("engine", "tag", "seed:1", "Bad Name", env=engine.env, check=False))
    assert "invalid reference format" in bad


def test_save_load_round_trip(engine: EngineProcess, seeded: str, tmp_path: Path):
    env = engine.env
    archive = tmp_path / "seed.tar"
    pinnace("engine", "tag", "seed:1", "roundtrip:1", env=env)
    pinnace("engine", "save", "-o", str(archive), "roundtrip:1", env=env)
    assert archive.stat().st_size > 1_000_000
    pinnace("engine", "rmi", "roundtrip:1", env=env)
    loaded = pinnace("engine", "load", "-i", str(archive), env=env).stdout.decode()
    assert loaded.strip() == "Loaded image: roundtrip:1"
    piped = pinnace("engine", "load", env=env, input=archive.read_bytes()).stdout.decode()
    assert piped.strip() == "Loaded image: roundtrip:1"
    assert "archive" in one_error_line(pinnace("engine", "load", env=env, input=b"not a tar" * 64, check=False))
    missing = one_error_line(pinnace("engine", "load", "-i", str(tmp_path / "none.tar"), env=env, check=False))
    assert "cannot read" in missing
    pinnace("engine", "rmi", "roundtrip:1", env=env)


def test_push_pull_and_bad_registry(engine: EngineProcess, registry: Registry, seeded: str):
    env = engine.env
    remote = f"{registry.host}/cli/seed:3"
    pinnace("engine", "tag", "seed:1", remote, env=env)
    pushed = pinnace("engine", "push", remote, env=env).stdout.decode()
    digest = registry.manifest_digest("cli/seed", "3")
    assert f"3: digest: {digest}" in pushed
    pinnace("engine", "rmi", remote, env=env)
    pulled = pinnace("engine", "pull", remote, env=env).stdout.decode().splitlines()
    assert pulled[0] == f"3: Pulling from {registry.host}/cli/seed"
    assert f"Digest: {digest}" in pulled and pulled[-1] == f"Status: Downloaded newer image for {remote}"

    line = one_error_line(pinnace("engine", "pull", "127.0.0.1:1/nothing:1", env=env, check=False))
    assert line.startswith("pinnace engine:") and "cannot connect to registry 127.0.0.1:1" in line
    missing = one_error_line(pinnace("engine", "pull", f"{registry.host}/cli/absent:1", env=env, check=False))
    assert "not found" in missing
    pinnace("engine", "tag", "seed:1", "127.0.0.1:1/nothing:1", env=env)
    push_line = one_error_line(pinnace("engine", "push", "127.0.0.1:1/nothing:1", env=env, check=False))
    assert "cannot connect to registry 127.0.0.1:1" in push_line
    pinnace("engine", "rmi", "127.0.0.1:1/nothing:1", env=env)


def test_prune_removes_dangling_images(engine: EngineProcess, tmp_path: Path):
    with open_store(engine.root) as store:
        image = busybox_image(store, tmp_path, names=("doomed:1",), label="doomed")
        store.untag("doomed:1")
    out = pinnace("engine", "prune", env=engine.env).stdout.decode()
    assert f"deleted: {image.id}" in out and "Total reclaimed space:" in out
    with open_store(engine.root) as store:
        assert image.id not in {i.id for i in store.images()} and store.check() == []


def test_build(engine: EngineProcess, seeded: str, tmp_path: Path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM seed:1\nARG WHO=nobody\nCOPY a.txt /a.txt\nLABEL who=$WHO\n")
    (context / "a.txt").write_text("a\n")
    out = pinnace("engine", "build", "-t", "cli-built:1", "--build-arg", "WHO=me", str(context),
                  env=engine.env).stdout.decode()
    assert "Successfully tagged cli-built:1" in out
    inspected = json.loads(pinnace("engine", "inspect", "cli-built:1", env=engine.env).stdout)
    assert inspected[0]["Config"]["Labels"]["who"] == "me"
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM seed:1\nLABEL where=outside\n")
    quiet = pinnace("engine", "build", "-q", "-f", str(outside), "-t", "cli-built:2", str(context),
                    env=engine.env).stdout.decode().strip()
    assert quiet.startswith("sha256:")
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM seed:1\nFORM nothing\n")
    line = one_error_line(pinnace("engine", "build", "-f", str(bad), str(context), env=engine.env, check=False))
    assert ":2:" in line
    pinnace("engine", "rmi", "cli-built:1", "cli-built:2", env=engine.env)


def test_build_input_checks(tmp_path: Path):
    env = {**os.environ, "PINNACE_ENGINE_SOCKET": str(tmp_path / "absent.sock")}
    assert "is not a directory" in one_error_line(
        pinnace("engine", "build", str(tmp_path / "nope"), env=env, check=False))
    assert "not found" in one_error_line(
        pinnace("engine", "build", "-f", str(tmp_path / "nope"), str(tmp_path), env=env, check=False))


def test_context_tar_honours_dockerignore(tmp_path: Path):
    import tarfile

    context = tmp_path / "ctx"
    (context / "big" / "keep").mkdir(parents=True)
    (context / "big" / "junk.bin").write_bytes(b"x" * 1000)
    (context / "big" / "keep" / "yes.txt").write_text("kept")
    (context / "secret.key").write_text("no")
    (context / "app.txt").write_text("app")
    (context / "Dockerfile").write_text("FROM scratch\n")
    (context / ".dockerignore").write_text("big\n!big/keep\n*.key\nDockerfile\n")
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM scratch\n")
    spool, name = engine_images._context_tar(context, None)
    with spool, tarfile.open(fileobj=spool) as tf:
        names = set(tf.getnames())
        assert all(m.uid == 0 and m.gid == 0 for m in tf.getmembers())
    assert name == "Dockerfile"
    assert names == {".dockerignore", "Dockerfile", "app.txt", "big/keep", "big/keep/yes.txt"}
    spool, name = engine_images._context_tar(context, outside)
    with spool, tarfile.open(fileobj=spool) as tf:
        assert name.startswith(".dockerfile.") and name in tf.getnames()
    (context / ".dockerignore").write_text("[unclosed\n")
    with pytest.raises(engine_client.EngineError):
        engine_images._context_tar(context, None)


def test_helpers():
    assert engine_client.split_repo_tag("localhost:5000/x:1") == ("localhost:5000/x", "1")
    assert engine_client.split_repo_tag("localhost:5000/x") == ("localhost:5000/x", "")
    assert engine_client.split_repo_tag("busybox@sha256:" + "a" * 64) == ("busybox", "")
    assert engine_client.quote_name("localhost:5000/x:1") == "localhost:5000/x:1"
    assert engine_client.quote_name("a b") == "a%20b"
    assert engine_client.ago(0) == "N/A" and engine_client.ago(1000, now=1000 + 7200) == "2 hours ago"
