"""Store images in the JSON shapes of the Docker Engine API (``/images/json`` and inspect).

Pure functions over ``engine.images.store.Image``: the field names, defaults and types are what
the docker CLI's templates and the docker SDK's ``Image`` model read (``Id``, ``RepoTags``,
``Config.Labels``, ``RootFS.Layers``...), so keeping them in one table-like place makes a
mismatch easy to spot.
"""

from __future__ import annotations

from typing import Any

from engine.images.store import Image, parse_created

# the container config Docker reports for every image, before the image's own values
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}
ZERO_TIME = "0001-01-01T00:00:00Z"


def labels(image: Image) -> dict[str, str] | None:
    return (image.config.get("config") or {}).get("Labels") or None


def summary(image: Image) -> dict[str, Any]:
    """One row of ``GET /images/json``."""
    return {
        "Id": image.id,
        "ParentId": "",
        "RepoTags": image.repo_tags,
        "RepoDigests": image.repo_digests,
        "Created": parse_created(image.created),
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": labels(image),
        "Containers": -1,
    }


def inspect(image: Image, *, layer_dirs: list[str] | None = None) -> dict[str, Any]:
    """``GET /images/{name}/json``; ``layer_dirs`` (bottom first) fill ``GraphDriver.Data``."""
    config = image.config
    graph: dict[str, Any] = {"Name": "overlay", "Data": None}
    if layer_dirs:
        graph["Data"] = {"LowerDir": ":".join(reversed(layer_dirs))}
    return {
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": image.repo_digests,
        "Parent": "",
        "Comment": config.get("comment", ""),
        "Created": image.created or ZERO_TIME,
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": {**_CONFIG_DEFAULTS, **(config.get("config") or {})},
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": graph,
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": ZERO_TIME},
        "Descriptor": {k: image.target[k] for k in ("mediaType", "digest", "size") if k in image.target},
    }
