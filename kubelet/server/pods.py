"""Finding a pod's sandbox and containers in the runtime by the labels the kubelet puts on them.

The streaming server has no pod cache of its own: like ``crictl``, it asks the CRI for sandboxes and
containers labelled with the pod's namespace/name (and the container's name), newest attempt first.
Errors are ``web.HTTPException``s with the upstream kubelet's wording, so handlers just let them out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from kubelet.cri import CriClient, pb

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CALL_TIMEOUT = 10.0
T = TypeVar("T", pb.Container, pb.PodSandbox)


def _newest_first(items: list[T], *, attempt: Callable[[T], int]) -> list[T]:
    return sorted(items, key=lambda i: (attempt(i), i.created_at), reverse=True)  # type: ignore[attr-defined]


async def containers_named(cri: CriClient, *, namespace: str, pod: str, container: str) -> list[pb.Container]:
    """Every attempt of the container, newest first."""
    selector = {POD_NAMESPACE: namespace, POD_NAME: pod, CONTAINER_NAME: container}
    answer = await cri.runtime.ListContainers(
        pb.ListContainersRequest(filter=pb.ContainerFilter(label_selector=selector)), timeout=CALL_TIMEOUT)
    return _newest_first(list(answer.containers), attempt=lambda c: c.metadata.attempt)


async def current_container(cri: CriClient, *, namespace: str, pod: str, container: str) -> pb.Container:
    """The latest attempt (running or, if it ended, the last one), as ``kubectl logs`` wants."""
    found = await containers_named(cri, namespace=namespace, pod=pod, container=container)
    if not found:
        raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod}" is waiting to start: '
                                      "ContainerCreating")
    return found[0]


async def running_container(cri: CriClient, *, namespace: str, pod: str, container: str) -> pb.Container:
    """exec and attach need a running one."""
    found = await containers_named(cri, namespace=namespace, pod=pod, container=container)
    for item in found:
        if item.state == pb.CONTAINER_RUNNING:
            return item
    raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod}" is not running')


async def previous_container(cri: CriClient, *, namespace: str, pod: str, container: str) -> pb.Container:
    """The attempt before the latest one (``--previous``), with the upstream error when none."""
    found = await containers_named(cri, namespace=namespace, pod=pod, container=container)
    if len(found) < 2:
        raise web.HTTPBadRequest(text=f'previous terminated container "{container}" in pod "{pod}" not found')
    return found[1]


async def ready_sandbox(cri: CriClient, *, namespace: str, pod: str) -> pb.PodSandbox:
    selector = {POD_NAMESPACE: namespace, POD_NAME: pod}
    flt = pb.PodSandboxFilter(label_selector=selector,
                              state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
    answer = await cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=flt), timeout=CALL_TIMEOUT)
    items = _newest_first(list(answer.items), attempt=lambda s: s.metadata.attempt)
    if not items:
        raise web.HTTPNotFound(text=f'pod "{pod}" in namespace "{namespace}" has no running sandbox')
    return items[0]
