"""The one error type of the patch package.

The API server turns a failed patch into an HTTP 422/400 answer whose message the user reads in
kubectl, so every patch function raises this (and only this) for bad input, with a message naming
the offending path or operation.
"""

from __future__ import annotations


class PatchError(ValueError):
    """A patch that is malformed or cannot be applied to the given document."""
