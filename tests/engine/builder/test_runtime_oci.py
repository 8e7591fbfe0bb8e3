"""engine.runtime.oci: a real crun/runc run of a busybox rootfs, exit codes, output, cleanup."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from engine.runtime import hostsetup, oci
from engine.runtime.errors import OCIRuntimeError
from engine.runtime.spec import ContainerOptions, make_spec

pytestmark = pytest.mark.skipif(shutil.which("crun") is None, reason="crun is not installed")
BUSYBOX = Path("/bin/busybox")


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    if not BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed")
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "echo", "sleep", "id", "cat"):
        (root / "bin" / applet).symlink_to("busybox")
    hostsetup.ensure_cgroups()
    return root


def _bundle(tmp_path: Path, rootfs: Path, args: list[str], **kw: object) -> Path:
    bundle = tmp_path / f"bundle-{uuid.uuid4().hex[:8]}"
    oci.write_bundle(bundle, make_spec(ContainerOptions(rootfs=str(rootfs), args=args, **kw)))  # type: ignore[arg-type]
    return bundle


def _known(runtime: str, container_id: str) -> bool:
    state = subprocess.run([runtime, "state", container_id], capture_output=True, check=False)
    return state.returncode == 0


@pytest.mark.parametrize("runtime", ["crun", "runc"])
async def test_run_echo(tmp_path: Path, rootfs: Path, runtime: str) -> None:
    if shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed")
    chunks: list[bytes] = []
    cid = f"pinnace-test-{uuid.uuid4().hex[:8]}"
    bundle = _bundle(tmp_path, rootfs, ["echo", "hi"])
    result = await oci.run(bundle=bundle, container_id=cid, runtime=runtime, on_output=chunks.append)
    assert result.exit_code == 0
    assert result.output == b"hi\n"
    assert b"".join(chunks) == b"hi\n"
    assert not _known(runtime, cid)


async def test_exit_code_stderr_and_user(tmp_path: Path, rootfs: Path) -> None:
    bundle = _bundle(tmp_path, rootfs, ["sh", "-c", "id -u; echo oops >&2; exit 7"], user="4242:4343")
    result = await oci.run(bundle=bundle, container_id=f"pinnace-test-{uuid.uuid4().hex[:8]}")
    assert result.exit_code == 7
    assert result.output.split() == [b"4242", b"oops"]


async def test_missing_executable_is_a_failed_run(tmp_path: Path, rootfs: Path) -> None:
    bundle = _bundle(tmp_path, rootfs, ["no-such-binary"])
    cid = f"pinnace-test-{uuid.uuid4().hex[:8]}"
    result = await oci.run(bundle=bundle, container_id=cid)
    assert result.exit_code != 0
    assert b"no-such-binary" in result.output
    assert not _known("crun", cid)


async def test_cancellation_kills_and_deletes(tmp_path: Path, rootfs: Path) -> None:
    bundle = _bundle(tmp_path, rootfs, ["sleep", "30"])
    cid = f"pinnace-test-{uuid.uuid4().hex[:8]}"
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await oci.run(bundle=bundle, container_id=cid)
    assert loop.time() - start < 10
    assert not _known("crun", cid)


async def test_bad_inputs(tmp_path: Path, rootfs: Path) -> None:
    bundle = _bundle(tmp_path, rootfs, ["true"])
    with pytest.raises(OCIRuntimeError, match="not found"):
        await oci.run(bundle=bundle, container_id="x1", runtime="no-such-runtime")
    with pytest.raises(OCIRuntimeError, match="invalid container id"):
        await oci.run(bundle=bundle, container_id="../escape")
    with pytest.raises(OCIRuntimeError, match=r"no config\.json"):
        await oci.run(bundle=tmp_path / "empty", container_id="x2")
