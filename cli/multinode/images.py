"""Giving every node of a cluster an image: save once, load into each node's engine.

Each node has its own engine (and image store), reachable from the host on its unix socket. An
image comes from an archive (``docker save`` format) or from an engine on the host; it is saved to
an archive once and loaded into all nodes at the same time. The demo image ``pinnace/busybox:1`` is
built once per host into the first node's engine (``cli.cluster_cmds.ensure_demo_image``) and its
archive kept under ``<root>/.images``, so later clusters and added nodes only load it.
"""

from __future__ import annotations

import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cli.agent_cmds import AgentPaths
from cli.cluster_cmds import DEMO_IMAGE, ensure_demo_image
from cli.engine_client import EngineClient, EngineError
from cli.multinode.layout import Cluster, ClusterError, NodeSpec

HOST_ENGINE_SOCKET = os.environ.get("PINNACE_ENGINE_SOCKET", "/run/pinnace/engine.sock")
BLOCK = 1 << 20


def engine_socket(node: NodeSpec) -> Path:
    return AgentPaths(node.path).engine_socket


def cache_path(root: str, image: str) -> Path:
    return Path(root) / ".images" / (re.sub(r"[^A-Za-z0-9_.-]", "_", image) + ".tar")


def save(socket_path: Path | str, image: str, *, target: Path) -> Path:
    """``image`` from the engine at ``socket_path`` into the archive ``target`` (written atomically)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial{os.getpid()}")
    try:
        with EngineClient(str(socket_path)).request("GET", "/images/get", query={"names": [image]}) as response:
            with open(partial, "wb") as out:
                while chunk := response.read(BLOCK):
                    out.write(chunk)
        partial.replace(target)
    except EngineError as exc:
        raise ClusterError(f"cannot save {image}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def load(socket_path: Path, archive: Path) -> list[str]:
    """Load an archive into one engine; the image names it reported."""
    loaded = []
    with open(archive, "rb") as source:
        headers = {"Content-Type": "application/x-tar", "Content-Length": str(os.fstat(source.fileno()).st_size)}
        for message in EngineClient(str(socket_path)).stream("POST", "/images/load", query={"quiet": "1"},
                                                            body=source, headers=headers):
            stream = str(message.get("stream") or "").strip()
            if stream.startswith("Loaded image"):
                loaded.append(stream.split(":", 1)[-1].strip())
    return loaded


def load_everywhere(nodes: list[NodeSpec], archive: Path) -> dict[str, str]:
    """Load ``archive`` into every node at once: node name → what happened (``error: ...`` on failure)."""

    def one(node: NodeSpec) -> str:
        try:
            return ", ".join(load(engine_socket(node), archive)) or "loaded"
        except (EngineError, OSError) as exc:
            return f"error: {exc}"

    if not nodes:
        return {}
    with ThreadPoolExecutor(len(nodes)) as pool:
        return dict(zip([n.name for n in nodes], pool.map(one, nodes), strict=True))


def demo_image(cluster: Cluster, nodes: list[NodeSpec]) -> str:
    """``pinnace/busybox:1`` on ``nodes``: loaded from the host's cached archive, or built on the first
    node (and cached) the first time. Returns how it got there."""
    archive = cache_path(cluster.root, DEMO_IMAGE)
    how = "loaded"
    rest = nodes
    if not archive.exists():
        ensure_demo_image(engine_socket(nodes[0]))
        save(engine_socket(nodes[0]), DEMO_IMAGE, target=archive)
        how, rest = "built", nodes[1:]
    _raise_failures(load_everywhere(rest, archive))
    return how


def load_image(cluster: Cluster, image: str, *, source_socket: str = HOST_ENGINE_SOCKET) -> dict[str, str]:
    """``image`` (an archive path, or a name on the host's engine) into every node of the cluster."""
    path = Path(image)
    if path.is_file():
        results = load_everywhere(cluster.nodes, path)
    else:
        with tempfile.TemporaryDirectory(prefix="pinnace-load-", dir=cluster.dir) as temp:
            archive = save(source_socket, image, target=Path(temp) / "image.tar")
            results = load_everywhere(cluster.nodes, archive)
    _raise_failures(results)
    return results


def _raise_failures(results: dict[str, str]) -> None:
    failed = {name: what for name, what in results.items() if what.startswith("error:")}
    if failed:
        raise ClusterError("; ".join(f"{name}: {what[7:]}" for name, what in failed.items()))
