"""Issue 4's acceptance flow through the real CLI and daemon: build the busybox image from
manifests/images, run a command from it through the OCI runtime, push it to a real registry,
delete it locally, pull it back, and get the same digest."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from engine.images import rootfs
from engine.runtime import oci
from engine.runtime.spec import ContainerOptions, make_spec
from tests.engine.daemon.engine_env import REPO, EngineProcess, Registry, open_store, pinnace

pytestmark = pytest.mark.skipif(shutil.which("crun") is None, reason="crun is not installed")


def _context(tmp_path: Path) -> Path:
    if not Path("/bin/busybox").is_file():
        pytest.skip("busybox-static is not installed")
    context = tmp_path / "busybox"
    shutil.copytree(REPO / "manifests/images/busybox", context)
    subprocess.run(["sh", str(context / "prepare.sh"), str(context)], check=True)
    return context


async def _run(root: Path, image: str, args: list[str], work: Path) -> oci.RunResult:
    with open_store(root) as store:
        target, upper, scratch = work / "rootfs", work / "upper", work / "work"
        for d in (target, upper, scratch):
            d.mkdir(parents=True)
        with rootfs.mounted(store, store.resolve(image), target=target, upper=upper, work=scratch):
            bundle = work / "bundle"
            oci.write_bundle(bundle, make_spec(ContainerOptions(rootfs=str(target), args=args)))
            return await oci.run(bundle=bundle, container_id=f"accept-{uuid.uuid4().hex[:8]}")


async def test_build_run_push_delete_pull(engine: EngineProcess, registry: Registry, tmp_path: Path):
    name = f"{registry.host}/accept/busybox:1"
    built = pinnace("engine", "build", "-t", name, str(_context(tmp_path)), env=engine.env)
    assert b"Successfully tagged" in built.stdout

    result = await _run(engine.root, name, ["busybox", "echo", "hi"], tmp_path / "run")
    assert (result.exit_code, result.output) == (0, b"hi\n")

    pinnace("engine", "push", name, env=engine.env)
    pushed = registry.manifest_digest("accept/busybox", "1")
    image_id = json.loads(pinnace("engine", "inspect", name, env=engine.env).stdout)[0]["Id"]
    pinnace("engine", "rmi", name, env=engine.env)
    gone = pinnace("engine", "inspect", name, env=engine.env, check=False)
    assert gone.returncode == 1 and len(gone.stderr.strip().splitlines()) == 1

    pinnace("engine", "pull", name, env=engine.env)
    pulled = json.loads(pinnace("engine", "inspect", name, env=engine.env).stdout)[0]
    assert pulled["Id"] == image_id
    assert f"{registry.host}/accept/busybox@{pushed}" in pulled["RepoDigests"]
