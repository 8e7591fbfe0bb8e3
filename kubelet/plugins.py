"""The neighbours a pod worker calls, gathered in one record so tests can swap any of them.

Container and sandbox configs (kubelet/containers), volume mounts (kubelet/volumes), lifecycle hooks
(kubelet/hooks) and the restart back-off (kubelet/backoff) are built by other parts of the kubelet;
``Plugins.load()`` imports them only when a kubelet starts, so importing the core stays cheap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubelet.cri import pb


@dataclass(frozen=True)
class Plugins:
    sandbox_config: Callable[..., pb.PodSandboxConfig]
    container_config: Callable[..., Awaitable[pb.ContainerConfig]]
    container_hash: Callable[[dict[str, Any]], str]
    qos_class: Callable[[dict[str, Any]], str]
    container_mounts: Callable[[dict[str, Any], dict[str, Any], dict[str, str]], list[pb.Mount]]
    run_handler: Callable[..., Awaitable[str | None]]
    service_env: Callable[..., dict[str, str]]
    config_error: type[Exception]
    volume_error: type[Exception]

    @classmethod
    def load(cls) -> Plugins:
        from kubelet import containers, hooks, volumes

        return cls(sandbox_config=containers.sandbox_config, container_config=containers.container_config,
                   container_hash=containers.container_hash, qos_class=containers.qos_class,
                   container_mounts=volumes.container_mounts, run_handler=hooks.run_handler,
                   service_env=containers.service_env,
                   config_error=containers.ConfigError, volume_error=volumes.VolumeError)
