"""A stand-in engine process for the restart test: a ContainerManager that starts some containers.

``python -m tests.engine.containers.engine_runner ROOT STORE CGROUP_PARENT N`` starts N ticking
containers (``svc0``..) and one that exits with 3 after a second (``short``), prints their ids as
one JSON line, then idles until it is killed — the test SIGKILLs it, as a crashed engine.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from engine.containers.config import ContainerConfig
from engine.containers.manager import ContainerManager
from engine.images.store import ImageStore

TICKER = ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"]


async def main(root: str, store_root: str, cgroup_parent: str, count: int) -> None:
    store = ImageStore(store_root)
    manager = ContainerManager(root, store, cgroup_parent=cgroup_parent)
    await manager.load()
    ids = []
    for i in range(count):
        c = await manager.create(ContainerConfig(image="busybox", name=f"svc{i}", command=TICKER))
        await manager.start(c.id)
        ids.append(c.id)
    short_cmd = ["sh", "-c", "sleep 1; exit 3"]
    short = await manager.create(ContainerConfig(image="busybox", name="short", command=short_cmd))
    await manager.start(short.id)
    sys.stdout.write(orjson.dumps({"ids": ids, "short": short.id}).decode() + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
