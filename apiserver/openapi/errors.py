"""The one exception type of the OpenAPI package, so callers can tell bad input from bugs."""

from __future__ import annotations


class SchemaError(ValueError):
    """A model or schema the package cannot describe (unknown model name, unexpected shape)."""
