"""Image pulls for one pod, per imagePullPolicy, with upstream's errors and pull back-off.

``Always`` pulls every time a container starts (``:latest`` or no tag defaults to it),
``IfNotPresent`` only when the runtime lacks the image, ``Never`` never (``ErrImageNeverPull``). A
failed pull is ``ErrImagePull``; the next attempts wait out a doubling back-off, shown as
``ImagePullBackOff``. The puller only answers; the pod worker records the waiting reason and sets
the timer it is given.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import grpc

from kubelet.cri import CriClient, pb
from kubelet.events import EventRecorder

Waiting = tuple[str, str]  # (reason, message) of a container that cannot start yet


class BackoffLike(Protocol):
    def next_delay(self, key: str, now: float) -> float: ...
    def reset(self, key: str) -> None: ...


def default_pull_policy(image: str) -> str:
    """The API server's default, for pods written without one: Always for :latest or no tag."""
    name = image.split("@", 1)[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    return "Always" if "@" not in image and tag in ("", "latest") else "IfNotPresent"


def image_user(image: pb.Image) -> str:
    """The image's configured user, as container_config's runAsNonRoot check wants it."""
    if image.HasField("uid"):
        return str(image.uid.value)
    return image.username


class ImagePuller:
    """One pod's pulls; remembers failed pulls (per image) to back off."""

    def __init__(self, *, uid: str, cri: CriClient, backoff: BackoffLike, recorder: EventRecorder) -> None:
        self.uid = uid
        self.cri = cri
        self.backoff = backoff
        self.recorder = recorder
        self._failures: dict[str, tuple[float, float]] = {}  # pod/image -> (back-off delay, failed at)

    async def _status(self, image: str) -> pb.Image:
        return (await self.cri.images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=image)))).image

    async def ensure(self, pod: dict[str, Any], container: dict[str, Any]
                     ) -> tuple[tuple[str, str] | None, Waiting | None, float | None]:
        """((image ref, image user) or None, the waiting reason if not, seconds until a retry makes sense)."""
        name, image = container["name"], container.get("image", "")
        policy = container.get("imagePullPolicy") or default_pull_policy(image)
        field_path = f"spec.containers{{{name}}}"
        status = await self._status(image)
        if policy == "Never" and not status.id:
            message = f'Container image "{image}" is not present with pull policy of Never'
            self.recorder.event(pod, reason="ErrImageNeverPull", message=message, warning=True, field_path=field_path)
            return None, ("ErrImageNeverPull", message), None
        if status.id and policy != "Always":
            self.recorder.event(pod, reason="Pulled", field_path=field_path,
                                message=f'Container image "{image}" already present on machine')
            return (status.id, image_user(status)), None, None
        key = f"{self.uid}/{image}"
        now = time.time()
        failed = self._failures.get(key)
        if failed is not None and now - failed[1] < failed[0]:
            message = f'Back-off pulling image "{image}"'
            self.recorder.event(pod, reason="BackOff", message=message, field_path=field_path)
            return None, ("ImagePullBackOff", message), failed[1] + failed[0] - now
        self.recorder.event(pod, reason="Pulling", message=f'Pulling image "{image}"', field_path=field_path)
        started = time.monotonic()
        try:
            pulled = await self.cri.images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)),
                                                     timeout=600)
        except grpc.aio.AioRpcError as exc:
            message = f'Failed to pull image "{image}": {exc.details()}'
            self.recorder.event(pod, reason="Failed", message=message, warning=True, field_path=field_path)
            delay = self.backoff.next_delay(key, now)
            self._failures[key] = (delay, now)
            return None, ("ErrImagePull", message), delay
        self._failures.pop(key, None)
        self.backoff.reset(key)
        self.recorder.event(pod, reason="Pulled", field_path=field_path,
                            message=f'Successfully pulled image "{image}" in {time.monotonic() - started:.3f}s')
        status = await self._status(image)
        return ((status.id or pulled.image_ref), image_user(status)), None, None
