"""The one error a container's configuration can fail with before the runtime is asked anything.

Upstream the kubelet reports such failures as the waiting reason ``CreateContainerConfigError``
with the error text as the message (``configmap "x" not found``, the runAsNonRoot refusals...);
the pod worker puts ``reason`` and ``str(exc)`` into the container status and the Failed event.
"""

from __future__ import annotations

CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"


class ConfigError(Exception):
    """``str(exc)`` is the upstream message; ``reason`` the waiting reason it is shown under."""

    def __init__(self, message: str, *, reason: str = CREATE_CONTAINER_CONFIG_ERROR) -> None:
        super().__init__(message)
        self.reason = reason
