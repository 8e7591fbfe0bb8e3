"""The engine's Dockerfile builder (what ``docker build`` with the legacy builder does), one call:
``build(store, context, ...) -> Image``.

The daemon's ``POST /build`` unpacks the uploaded context to a directory and calls this, streaming
``progress`` lines to the client as ``{"stream": line + "\\n"}``. Parsing is ``parser``/``lex``,
file selection ``context``/``dockerignore``, the steps ``metadata``/``filesystem`` run by
``executor`` with the ``cache``; RUN steps use ``engine.runtime`` (crun/runc). Every failure is
one ``BuildError`` line; whatever happens, mounts, containers and scratch dirs are cleaned up and
the store only ever gains complete images. The implementation (``runner``) is imported on first
call, so the light modules of this package stay cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine.build.errors import BuildError

if TYPE_CHECKING:
    from engine.images.store import Image, ImageStore

__all__ = ["BuildError", "build"]


async def build(
    store: ImageStore,
    context: Path,
    *,
    dockerfile: str = "Dockerfile",
    tags: Sequence[str] = (),
    build_args: dict[str, str] | None = None,
    target: str | None = None,
    no_cache: bool = False,
    labels: dict[str, str] | None = None,
    network: str = "none",
    runtime: str = "crun",
    progress: Callable[[str], None] | None = None,
) -> Image:
    """Build the Dockerfile in ``context`` and store the image under ``tags``; returns it.

    ``progress`` gets Docker-style lines without newline ("Step 1/5 : FROM busybox",
    " ---> 3f2a...", RUN output, "Successfully built ..."). Raises ``BuildError``.
    """
    from engine.build.runner import run_build

    return await run_build(
        store,
        context,
        dockerfile=dockerfile,
        tags=tags,
        build_args=build_args,
        target=target,
        no_cache=no_cache,
        labels=labels,
        network=network,
        runtime=runtime,
        progress=progress,
    )
