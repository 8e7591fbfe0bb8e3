"""Pod volumes on the node: set up before containers start, refreshed, torn down after the pod.

The pod worker calls :class:`VolumeManager` (``setup`` -> name -> host path, ``refresh`` to
re-project changed ConfigMaps/Secrets, ``teardown`` when the pod is gone) and
:func:`container_mounts` to turn a container's ``volumeMounts`` into CRI mounts. Each volume plugin
lives in its own module and is picked through a table in :mod:`kubelet.volumes.manager`.
"""

from __future__ import annotations

from kubelet.volumes.errors import VolumeError
from kubelet.volumes.manager import VolumeManager
from kubelet.volumes.mounts import container_mounts

__all__ = ["VolumeError", "VolumeManager", "container_mounts"]
