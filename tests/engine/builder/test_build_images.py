"""End-to-end builds with real overlay mounts and crun: the busybox image of manifests/images, run
from its rootfs; multi-stage, cache, .dockerignore, USER/WORKDIR, and clean failures."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.build import BuildError, build
from engine.build.cache import BuildCache
from engine.images import rootfs
from engine.images.store import ImageStore
from engine.runtime import oci
from engine.runtime.spec import ContainerOptions, make_spec

pytestmark = pytest.mark.skipif(shutil.which("crun") is None, reason="crun is not installed")

REPO = Path(__file__).resolve().parents[3]
BUSYBOX_CONTEXT = REPO / "manifests/images/busybox"
BUSYBOX_BIN = Path("/bin/busybox")


def _mounts_under(path: Path) -> list[str]:
    prefix = os.path.realpath(path) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def _containers_under(path: Path) -> list[str]:
    """Containers crun still knows whose bundle lives under ``path`` (other users' are not ours)."""
    out = subprocess.run(["crun", "list", "--format", "json"], capture_output=True, text=True, check=False).stdout
    prefix = os.path.realpath(path) + "/"
    return [c["id"] for c in json.loads(out or "[]") if os.path.realpath(c.get("bundle", "")).startswith(prefix)]


def _blobs(store: ImageStore) -> set[str]:
    return {p.name for p in store.blobs_dir.iterdir()}


def _assert_clean(store: ImageStore) -> None:
    assert store.check() == []
    assert _mounts_under(store.root) == []
    assert list((store.root / "build-tmp").iterdir()) == []
    assert _containers_under(store.root) == []


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    if not BUSYBOX_BIN.is_file():
        pytest.skip("busybox-static is not installed")
    path = Path(tempfile.mkdtemp(prefix="pinnace-build-test-"))
    try:
        yield path
    finally:
        for point in _mounts_under(path):
            rootfs.unmount(point, lazy=True)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def store(workdir: Path) -> Iterator[ImageStore]:
    s = ImageStore(workdir / "store")
    try:
        yield s
    finally:
        s.close()


def _busybox_context(dest: Path) -> Path:
    """The manifests/images/busybox context with the static binary added, as prepare.sh does."""
    shutil.copytree(BUSYBOX_CONTEXT, dest, ignore=shutil.ignore_patterns("busybox"))
    subprocess.run(["sh", str(dest / "prepare.sh"), str(dest)], check=True)
    return dest


@pytest.fixture(scope="module")
def busybox(store: ImageStore, workdir: Path) -> str:
    context = _busybox_context(workdir / "busybox-context")
    lines: list[str] = []
    image = asyncio.run(build(store, context, tags=["busybox:latest"], progress=lines.append))
    assert lines[-2:] == [f"Successfully built {image.short_id}", "Successfully tagged busybox:latest"]
    return image.id


def _context(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


async def _run_in_image(store: ImageStore, image: str, args: list[str], scratch: Path) -> oci.RunResult:
    """Run ``args`` in a throwaway overlay of ``image`` (what the container half will do with conmon)."""
    base = scratch / f"run-{uuid.uuid4().hex[:8]}"
    merged = base / "merged"
    await asyncio.to_thread(rootfs.mount, store, image, target=merged, upper=base / "upper", work=base / "work")
    try:
        spec = make_spec(ContainerOptions(rootfs=str(merged), args=args))
        oci.write_bundle(base / "bundle", spec)
        return await oci.run(bundle=base / "bundle", container_id=f"pinnace-test-{uuid.uuid4().hex[:8]}")
    finally:
        await asyncio.to_thread(rootfs.unmount, merged, lazy=True)
        shutil.rmtree(base, ignore_errors=True)


async def test_busybox_image_runs(store: ImageStore, busybox: str, workdir: Path) -> None:
    image = store.resolve("busybox")
    assert image.id == busybox
    assert image.config["config"]["Cmd"] == ["sh"]
    history = image.config["history"]
    assert len([h for h in history if not h.get("empty_layer")]) == len(image.layers) == 3
    assert history[-1] == {**history[-1], "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True}
    result = await _run_in_image(store, "busybox", ["busybox", "echo", "hi"], workdir)
    assert (result.exit_code, result.output) == (0, b"hi\n")
    result = await _run_in_image(store, "busybox", ["sh", "-c", "for a in httpd wget nc; do which $a; done"], workdir)
    assert result.output.split() == [b"/bin/httpd", b"/bin/wget", b"/bin/nc"]
    top = sorted(os.listdir(store.layer_dirs(image)[-1]))
    assert "proc" not in top and "dev" not in top  # the runtime's mount points stay out of layers
    _assert_clean(store)


async def test_unchanged_rebuild_is_a_cache_hit(store: ImageStore, busybox: str, workdir: Path) -> None:
    context = _busybox_context(workdir / "busybox-context-2")
    blobs, snapshots = _blobs(store), store.snapshots.list()
    lines: list[str] = []
    image = await build(store, context, tags=["busybox:latest"], progress=lines.append)
    assert image.id == busybox
    assert (_blobs(store), store.snapshots.list()) == (blobs, snapshots)
    assert lines.count(" ---> Using cache") == 4
    lines.clear()
    await build(store, context, tags=["busybox:nocache"], no_cache=True, progress=lines.append)
    assert " ---> Using cache" not in lines
    with open(context / "busybox", "ab") as f:  # noqa: ASYNC230 - a tiny local write in a test
        f.write(b"\0")  # a changed input misses
    lines.clear()
    changed = await build(store, context, tags=["busybox:changed"], progress=lines.append)
    assert changed.id != busybox and " ---> Using cache" not in lines
    _assert_clean(store)


APP_DOCKERFILE = """\
ARG BASE=busybox
FROM $BASE AS builder
ARG GREETING=hi
ENV OUT=/out
RUN mkdir -p $OUT && echo "$GREETING from builder" > $OUT/msg && echo junk > /junk
FROM ${BASE}:latest
LABEL org.example.role=test
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
WORKDIR /srv/app
COPY --from=builder /out/msg ./
COPY --chown=app src/ data/
ADD pkg.tar.gz /opt/
USER app
RUN echo "uid=$(id -u) gid=$(id -g) pwd=$(pwd)"; ls -n data | tail -n +2 | awk '{print $3, $9}'; \\
    cat msg /opt/pkg/hello; test -e /junk || echo "no junk"
CMD ["cat", "/srv/app/msg"]
"""


def _tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_multi_stage_user_workdir_and_dockerignore(store: ImageStore, busybox: str, workdir: Path) -> None:
    context = _context(
        workdir / "app",
        {
            "Dockerfile": APP_DOCKERFILE,
            ".dockerignore": "secrets\n**/*.log\n",
            "src/a.txt": "a",
            "src/deep/b.txt": "b",
            "src/deep/debug.log": "noise",
            "secrets/key": "k",
            "pkg.tar.gz": _tgz({"pkg/hello": b"from tar\n"}),
        },
    )
    lines: list[str] = []
    image = await build(store, context, tags=["app:1"], build_args={"GREETING": "yo"}, progress=lines.append)
    assert "uid=1000 gid=1000 pwd=/srv/app" in lines
    assert "1000 a.txt" in lines and "1000 deep" in lines
    assert "yo from builder" in lines and "from tar" in lines and "no junk" in lines
    config = image.config["config"]
    assert (config["User"], config["WorkingDir"], config["Cmd"]) == ("app", "/srv/app", ["cat", "/srv/app/msg"])
    assert config["Labels"] == {"org.example.role": "test"}
    base_layers = len(store.resolve("busybox").layers)
    assert len(image.layers) == base_layers + 6  # RUN, WORKDIR, COPY, COPY, ADD, RUN: nothing of the builder
    data_layer = store.layer_dirs(image)[base_layers + 3]
    assert sorted(p.name for p in (data_layer / "srv/app/data/deep").iterdir()) == ["b.txt"]
    assert not any("secrets" in str(p) for p in data_layer.rglob("*"))
    result = await _run_in_image(store, "app:1", ["cat", "/srv/app/msg"], workdir)
    assert result.output == b"yo from builder\n"
    # --target stops at the named stage; build args show in the RUN history as Docker writes them
    target = await build(store, context, tags=["app:builder"], target="builder", build_args={"GREETING": "yo"})
    assert target.config["history"][-1]["created_by"].startswith("|1 GREETING=yo /bin/sh -c mkdir -p $OUT")
    assert target.config["config"]["Env"][-1] == "OUT=/out"
    _assert_clean(store)


async def test_run_failure_cleans_up(store: ImageStore, busybox: str, workdir: Path) -> None:
    context = _context(workdir / "fail", {"Dockerfile": "FROM busybox\nRUN echo before; exit 3\n"})
    images, blobs_before = [i.id for i in store.images()], _blobs(store)
    lines: list[str] = []
    with pytest.raises(BuildError, match=r"^The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3$"):
        await build(store, context, tags=["fail:1"], progress=lines.append)
    assert "before" in lines
    assert [i.id for i in store.images()] == images
    assert _blobs(store) == blobs_before
    _assert_clean(store)


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("FROM busybox\nRUN true\n\nFORM x\n", r"^Dockerfile:4: unknown instruction: FORM$"),
        ("FROM busybox\nENV ONLYNAME\n", r"^Dockerfile:2: ENV must have two arguments$"),
        ("FROM busybox\nEXPOSE 80/tcp notaport\n", r"^Dockerfile:2: invalid containerPort: notaport$"),
        ("FROM busybox\nUSER ghost\nRUN id\n", r"^Dockerfile:3: unable to find user ghost"),
        ("FROM no-such-image:1\nRUN true\n", r"^Dockerfile:1: FROM no-such-image:1: no such image in the store"),
        ("FROM busybox\nCOPY absent /x\n", r"^Dockerfile:2: COPY failed: file not found in build context"),
        ("FROM busybox\nCOPY --from=later /x /x\nFROM busybox AS later\n", r"^Dockerfile:2: COPY --from=later: stage"),
        ("FROM busybox\nADD http://example.com/x /x\n", r"^Dockerfile:2: ADD from a URL is not supported"),
        ("FROM scratch\n", r"^No image was generated"),
    ],
)
async def test_bad_dockerfiles_fail_cleanly(
    store: ImageStore, busybox: str, workdir: Path, dockerfile: str, message: str
) -> None:
    context = _context(workdir / f"bad-{uuid.uuid4().hex[:8]}", {"Dockerfile": dockerfile})
    images, blobs_before = [(i.id, i.references) for i in store.images()], _blobs(store)
    with pytest.raises(BuildError, match=message):
        await build(store, context, tags=["bad:1"])
    assert [(i.id, i.references) for i in store.images()] == images
    assert _blobs(store) == blobs_before
    _assert_clean(store)


async def test_bad_options(store: ImageStore, busybox: str, workdir: Path) -> None:
    context = _context(workdir / "opts", {"Dockerfile": 'FROM busybox\nCMD ["true"]\n'})
    with pytest.raises(BuildError, match="Cannot locate specified Dockerfile: nope"):
        await build(store, context, dockerfile="nope")
    with pytest.raises(BuildError, match="failed to reach build target"):
        await build(store, context, target="missing")
    with pytest.raises(BuildError, match="invalid tag"):
        await build(store, context, tags=["UPPER:case"])
    with pytest.raises(BuildError, match="network mode"):
        await build(store, context, network="bridge")
    image = await build(store, context, tags=["opts:1"], labels={"a b": "$HOME 'quoted'"})
    assert image.config["config"]["Labels"] == {"a b": "$HOME 'quoted'"}
    _assert_clean(store)


async def test_onbuild_triggers_run_in_the_child_build(store: ImageStore, busybox: str, workdir: Path) -> None:
    parent = _context(workdir / "onbuild-parent", {"Dockerfile": "FROM busybox\nONBUILD RUN echo triggered > /t\n"})
    base = await build(store, parent, tags=["onbuild-base:1"])
    assert base.config["config"]["OnBuild"] == ["RUN echo triggered > /t"]
    child = _context(workdir / "onbuild-child", {"Dockerfile": "FROM onbuild-base:1\nRUN cat /t\n"})
    lines: list[str] = []
    image = await build(store, child, tags=["onbuild-child:1"], progress=lines.append)
    assert "# Executing 1 build trigger" in lines
    assert lines.count("triggered") == 1
    assert not image.config["config"].get("OnBuild")
    _assert_clean(store)


@pytest.mark.parametrize(("runtime", "network"), [("runc", "none"), ("crun", "host")])
async def test_runtime_and_network_choices(
    store: ImageStore, busybox: str, workdir: Path, runtime: str, network: str
) -> None:
    if shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed")
    script = "ip -o link | wc -l; test -s /etc/resolv.conf && echo resolv || echo no-resolv"
    context = _context(workdir / f"net-{runtime}-{network}", {"Dockerfile": f"FROM busybox\nRUN {script}\n"})
    lines: list[str] = []
    image = await build(store, context, runtime=runtime, network=network, no_cache=True, progress=lines.append)
    output = lines[lines.index(next(x for x in lines if x.startswith(" ---> Running in"))) + 1 :]
    if network == "none":
        assert output[:2] == ["1", "no-resolv"]  # only loopback, nothing from the host
    else:
        host_links = len(os.listdir("/sys/class/net"))
        assert output[0] == str(host_links)
        assert output[1] == ("resolv" if os.path.getsize("/etc/resolv.conf") else "no-resolv")  # noqa: ASYNC240
    assert "etc" not in os.listdir(store.layer_dirs(image)[-1])  # the mount points did not leak
    _assert_clean(store)


async def test_cancelled_build_leaves_nothing_behind(store: ImageStore, busybox: str, workdir: Path) -> None:
    context = _context(workdir / "cancel", {"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
    started = asyncio.Event()

    def progress(line: str) -> None:
        if line == "started":
            started.set()

    task = asyncio.create_task(build(store, context, tags=["cancel:1"], no_cache=True, progress=progress))
    async with asyncio.timeout(20):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not store.exists("cancel:1")
    _assert_clean(store)


async def test_deletions_become_whiteouts(store: ImageStore, busybox: str, workdir: Path) -> None:
    dockerfile = "FROM busybox\nRUN rm /etc/group && rm -rf /var && mkdir /var && echo new > /var/only\n"
    context = _context(workdir / "whiteouts", {"Dockerfile": dockerfile})
    image = await build(store, context, tags=["whiteouts:1"])
    blob = store.blob_path(image.layers[-1]["digest"])
    with tarfile.open(blob) as tf:
        names = set(tf.getnames())
    assert "etc/.wh.group" in names
    assert "var/.wh..wh..opq" in names and "var/only" in names
    result = await _run_in_image(store, "whiteouts:1", ["sh", "-c", "ls /etc; ls -A /var"], workdir)
    assert result.output.split() == [b"passwd", b"only"]
    _assert_clean(store)


async def test_cache_survives_garbage_collection(store: ImageStore, busybox: str, workdir: Path) -> None:
    dockerfile = "FROM busybox AS b\nRUN echo x > /x; echo y > /y\nFROM busybox\nCOPY --from=b /x /x\nRUN cat /x\n"
    context = _context(workdir / "gc", {"Dockerfile": dockerfile})
    first = await build(store, context, tags=["gc:1"])
    report = await asyncio.to_thread(store.gc)  # takes the builder stage's layer: no image holds it
    assert report.blobs
    dropped = await asyncio.to_thread(BuildCache(store).prune)
    assert dropped >= 1
    lines: list[str] = []
    second = await build(store, context, tags=["gc:1"], progress=lines.append)
    assert lines.count("x") == 1  # the final RUN ran again on the rebuilt stage
    assert second.id != first.id
    _assert_clean(store)
