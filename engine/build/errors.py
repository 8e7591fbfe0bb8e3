"""The one exception a build raises: ``BuildError``, whose message is a single line.

The daemon streams it to the client as Docker's ``{"errorDetail": ...}``; syntax errors name the
Dockerfile line (``Dockerfile:3: unknown instruction: FORM``). Failures of the layers below (image
store, mounts, the OCI runtime) are translated into it by the executor, so callers catch one type.
"""

from __future__ import annotations

from engine.images.errors import ImageError


class BuildError(ImageError):
    """A build that cannot proceed: bad Dockerfile, missing input, failing RUN step."""

    status = 400


def at_line(filename: str, line: int, message: str) -> BuildError:
    """An error about ``filename`` line ``line`` (1-based), in the ``file:line: message`` form."""
    return BuildError(f"{filename}:{line}: {message}")
