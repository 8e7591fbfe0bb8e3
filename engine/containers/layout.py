"""Where a container's files live: everything under ``<root>/containers/<id>/``.

Keeping all of a container's state in one directory is what lets it outlive the engine: a restarted
``ContainerManager`` rebuilds its table from these directories alone, and removing a container is
unmounting its rootfs and deleting its directory. ``<root>/crun`` is the OCI runtime's own state
root (``--root``), private to this engine so two engines (or tests) never see each other's containers.

    <root>/containers/<id>/
        config.json     the ContainerConfig as created (immutable)
        state.json      status, pids, times, exit code (rewritten atomically on each change)
        ctr.log         container output in the CRI log format, written by conmon
        etc/            hostname, hosts, resolv.conf bound into the container
        exit/<id>       the exit status, written by conmon
        bundle/         OCI bundle: config.json, pidfile, conmon.pid, attach socket, ctl fifo, oom
        rootfs/         the overlay mount the container sees as /
        upper/ work/    the overlay's writable layer and scratch dir
        lower/<n>/      idmapped views of the image layers (user-namespaced containers only)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ContainerPaths:
    root: Path  # the manager's root
    id: str

    @property
    def dir(self) -> Path:
        return self.root / "containers" / self.id

    @property
    def config(self) -> Path:
        return self.dir / "config.json"

    @property
    def state(self) -> Path:
        return self.dir / "state.json"

    @property
    def log(self) -> Path:
        return self.dir / "ctr.log"

    @property
    def etc(self) -> Path:
        return self.dir / "etc"

    @property
    def exit_dir(self) -> Path:
        return self.dir / "exit"

    @property
    def exit_file(self) -> Path:
        return self.exit_dir / self.id

    @property
    def bundle(self) -> Path:
        return self.dir / "bundle"

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def lowers(self) -> Path:
        return self.dir / "lower"

    @property
    def conmon_pidfile(self) -> Path:
        return self.bundle / "conmon.pid"

    @property
    def oom_file(self) -> Path:
        return self.bundle / "oom"

    @property
    def attach_socket(self) -> Path:
        return self.bundle / "attach"


def containers_dir(root: Path) -> Path:
    return root / "containers"


def runtime_root(root: Path) -> Path:
    return root / "crun"
