"""Lifecycle hooks (postStart, preStop): run one handler against a running container.

The handler kinds are upstream's: ``exec`` (a command through the CRI's ExecSync; non-zero exit is a
failure), ``httpGet`` (any answer counts, only a failed request is an error, as upstream), and
``sleep`` (wait ``seconds``). The answer is None on success or upstream's failure message, which the
pod worker reports as FailedPostStartHook / FailedPreStopHook. ``timeout`` bounds the whole hook
(the grace period for preStop).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from kubelet.containers.security import pod_ref
from kubelet.cri import CriClient
from kubelet.probes import ProbeError, exec_action, http_get


@dataclass(frozen=True)
class _Target:
    cri: CriClient
    container_id: str
    pod_ip: str
    container: dict[str, Any]
    pod: dict[str, Any] | None
    limit: float  # seconds the whole hook may take

    @property
    def where(self) -> str:
        name = json.dumps(str(self.container.get("name", "")))
        return f"for Container {name} in Pod {json.dumps(pod_ref(self.pod))}" if self.pod else f"for Container {name}"


async def _exec(action: dict[str, Any], t: _Target) -> str | None:
    cmd = [str(c) for c in action.get("command") or []]
    code, output, error = await exec_action(cmd, cri=t.cri, container_id=t.container_id, timeout=t.limit)
    if code == 0:
        return None
    return f"Exec lifecycle hook ([{' '.join(cmd)}]) {t.where} failed - error: {error}, message: {json.dumps(output)}"


async def _http(action: dict[str, Any], t: _Target) -> str | None:
    try:
        status, text = await http_get(action, pod_ip=t.pod_ip, container=t.container, timeout=t.limit)
    except ProbeError as exc:
        status, text = None, str(exc)
    if status is not None:
        return None
    return f"HTTP lifecycle hook ({action.get('path', '')}) {t.where} failed - error: {text}"


async def _sleep(action: dict[str, Any], t: _Target) -> str | None:
    await asyncio.sleep(max(0.0, min(float(action.get("seconds") or 0), t.limit)))
    return None


HOOK_ACTIONS = {"exec": _exec, "httpGet": _http, "sleep": _sleep}


async def run_handler(handler: dict[str, Any], *, cri: CriClient, container_id: str, pod_ip: str,
                      container: dict[str, Any], timeout: float,  # noqa: ASYNC109 (bounds the hook, given on)
                      pod: dict[str, Any] | None = None) -> str | None:
    """Run a postStart/preStop handler; None on success, else the failure message (``pod`` names the
    pod in it, as upstream's does)."""
    target = _Target(cri=cri, container_id=container_id, pod_ip=pod_ip, container=container, pod=pod, limit=timeout)
    for kind, action in HOOK_ACTIONS.items():
        if kind in handler:
            return await action(handler[kind] or {}, target)
    return f"Lifecycle hook {target.where} failed - error: no handler is set"
