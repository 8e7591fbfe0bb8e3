"""Test helpers for the container tests: a busybox image with every applet, and leftover checks.

The image is written straight into an ImageStore (no registry). ``leftovers`` lists whatever a
manager root still owns on the host — mounts, runtime records, conmon processes, container dirs,
cgroups — so tests can assert that failures and removals leave nothing behind; ``scrub`` removes
all of it by pid/path (used by fixtures, whatever state a failed test left).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from engine.images.pack import pack_dir
from engine.images.rootfs import unmount
from engine.images.store import Image, ImageStore
from engine.runtime import cgroups

BUSYBOX = Path("/bin/busybox")
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"


def _layer(store: ImageStore, tree: Path) -> dict[str, Any]:
    buf = io.BytesIO()
    packed = pack_dir(tree, buf)
    store.put_blob(buf.getvalue(), expected=packed.digest)
    return {"mediaType": packed.media_type, "digest": packed.digest, "size": packed.size, "diff_id": packed.diff_id}


def busybox_tree(dest: Path) -> Path:
    """A root filesystem of static busybox with every applet, /etc/passwd and /etc/group."""
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", dest / "bin" / applet)
    for d in ("etc", "tmp", "root", "home/app", "proc", "sys", "dev"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chown(dest / "home/app", 1000, 1000)
    (dest / "etc/passwd").write_text(PASSWD)
    (dest / "etc/group").write_text(GROUP)
    return dest


def write_image(store: ImageStore, tree: Path, *, names: tuple[str, ...], settings: dict[str, Any]) -> Image:
    desc = _layer(store, tree)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"], **settings},
        "rootfs": {"type": "layers", "diff_ids": [desc["diff_id"]]},
        "history": [{"created": "2026-01-02T03:04:05Z", "created_by": "test busybox"}],
    }
    return store.write_image(config=config, layers=[desc], names=names)


# ------------------------------------------------------------------------------------ leftovers


def _mounts_under(root: Path) -> list[str]:
    prefix = os.path.realpath(root) + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def _runtime_records(root: Path) -> list[str]:
    state = root / "crun"
    if not state.is_dir():
        return []
    return sorted(p.name for p in state.iterdir() if p.is_dir())


def conmon_pids(root: Path) -> list[int]:
    """conmon processes serving containers of this root (found by their bundle path)."""
    marker = os.fsencode(os.path.realpath(root))
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if cmdline.startswith(b"conmon") or b"/conmon\0" in cmdline.split(b"\0", 1)[0] + b"\0":
            if marker in cmdline and stat.rpartition(")")[2].split()[0] != "Z":
                found.append(int(entry))
    return found


def _cgroups(parent: str) -> list[str]:
    out = []
    for controller, mount in cgroups.host_layout().v1.items():
        base = mount / parent
        if base.is_dir():
            out += [f"{controller}:{p.name}" for p in base.iterdir() if p.is_dir()]
    return out


def leftovers(root: Path, *, cgroup_parent: str) -> list[str]:
    """Everything on the host that still belongs to containers of ``root``."""
    found = [f"mount {m}" for m in _mounts_under(root)]
    found += [f"runtime record {r}" for r in _runtime_records(root)]
    found += [f"conmon pid {p}" for p in conmon_pids(root)]
    containers = root / "containers"
    if containers.is_dir():
        found += [f"dir {d.name}" for d in containers.iterdir()]
    found += [f"cgroup {c}" for c in _cgroups(cgroup_parent)]
    return found


def scrub(root: Path, *, cgroup_parent: str) -> None:
    """Remove whatever a failed test left: runtime records, conmons (by pid), mounts, cgroups."""
    for record in _runtime_records(root):
        subprocess.run(["crun", "--root", str(root / "crun"), "delete", "-f", record], capture_output=True)
    for pid in conmon_pids(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for mount in sorted(_mounts_under(root), key=len, reverse=True):
        unmount(mount, lazy=True)
    remove_cgroup_parent(cgroup_parent)


def remove_cgroup_parent(parent: str) -> None:
    for mount in {*cgroups.host_layout().v1.values(), cgroups.host_layout().unified}:
        if mount is None:
            continue
        base = mount / parent
        if not base.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(base), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
