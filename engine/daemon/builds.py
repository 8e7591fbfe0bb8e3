"""``POST /build``: the legacy builder API that ``DOCKER_BUILDKIT=0 docker build`` and the SDK use.

The body is the build context as a tar (gzip allowed); it is unpacked into a scratch dir with
tarfile's ``tar`` filter (no absolute paths, nothing written outside the dir through ``..`` or
symlinks, no setuid bits), then ``engine.build.build`` runs on it. Output is Docker's stream:
``{"stream": "Step 1/3 : ..."}`` lines from the builder, ending with its "Successfully built <id>"
and "Successfully tagged <name>" (the SDK finds the image id there), then ``{"aux": {"ID": ...}}``
(what ``docker build --iidfile`` reads). ``q=1`` sends only the id.
"""

from __future__ import annotations

import asyncio
import posixpath
import tarfile
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.daemon import bodies, params
from engine.daemon.context import context_of
from engine.daemon.errors import BadParameter
from engine.daemon.jsonstream import JsonStream, respond, stream_text
from engine.images.reference import parse_reference

DEFAULT_DOCKERFILE = "Dockerfile"
# Docker network modes -> the builder's; "default" keeps the builder's own default (no network)
_NETWORKS = {"": None, "default": None, "none": "none", "host": "host"}


def _extract(reader: Any, dest: Path) -> None:
    """Unpack a context tar safely (see module doc); bad tars are a 400."""
    dest.mkdir()
    try:
        with tarfile.open(fileobj=reader, mode="r|*") as tf:
            tf.extractall(dest, filter="tar")
    except (tarfile.TarError, EOFError) as exc:
        raise BadParameter(f"invalid build context: {exc}") from None


def _dockerfile_name(raw: str) -> str:
    name = posixpath.normpath(raw or DEFAULT_DOCKERFILE)
    if name.startswith("/") or name == ".." or name.startswith("../"):
        raise BadParameter(f"the Dockerfile ({raw}) must be within the build context")
    return name


def _progress(stream: JsonStream) -> Any:
    """The builder's progress callback: text lines become ``stream`` messages."""

    def report(event: Any) -> None:
        if isinstance(event, dict):
            stream.emit(event)
        else:
            stream.emit(stream_text(str(event)))

    return report


def _options(request: web.Request) -> dict[str, Any]:
    query = request.query
    if query.get("remote"):
        raise BadParameter("remote build contexts are not supported: send the context as a tar")
    if query.get("version", "1") == "2":
        raise BadParameter("BuildKit is not supported here: use the legacy builder (DOCKER_BUILDKIT=0)")
    network = query.get("networkmode", "")
    if network not in _NETWORKS:
        raise BadParameter(f"network mode {network!r} is not supported for builds (none or host)")
    tags = [t for t in query.getall("t", []) if t]
    for tag in tags:
        parse_reference(tag)
    options: dict[str, Any] = {
        "dockerfile": _dockerfile_name(query.get("dockerfile", "")),
        "tags": tuple(tags),
        "build_args": {k: str(v) for k, v in params.json_object(request, "buildargs").items() if v is not None},
        "target": query.get("target") or None,
        "no_cache": params.flag(request, "nocache"),
        "labels": {k: str(v) for k, v in params.json_object(request, "labels").items()},
    }
    if _NETWORKS[network] is not None:
        options["network"] = _NETWORKS[network]
    return options


async def build(request: web.Request) -> web.StreamResponse:
    from engine.build import build as run_build  # imported on first use: the builder is heavy
    options = _options(request)
    quiet = params.flag(request, "q")
    ctx = context_of(request)
    with ctx.scratch_dir("build") as work:
        context = work / "context"
        await asyncio.to_thread(_extract, bodies.body_reader(request), context)
        if not (context / options["dockerfile"]).is_file():
            raise BadParameter(f"Cannot locate specified Dockerfile: {options['dockerfile']}")

        async def work_fn(stream: JsonStream) -> None:
            progress = None if quiet else _progress(stream)
            # the builder itself reports "Successfully built/tagged" through ``progress``
            image = await run_build(ctx.store, context, progress=progress, **options)
            stream.emit({"aux": {"ID": image.id}})
            if quiet:
                stream.emit(stream_text(image.id))

        return await respond(request, work_fn)
