"""``/_ping``, ``/version`` and ``/info``: how clients find out who they talk to.

The docker CLI pings first and takes the lower of its own API version and the ``Api-Version``
header as the version of every later call (``/v1.43/images/json``); the SDK asks ``/version`` for
``ApiVersion``. ``Builder-Version: 1`` tells clients that only the legacy builder exists here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import socket
from typing import Any

from aiohttp import web

from engine.daemon import hoststats
from engine.daemon.context import API_VERSION, ENGINE_VERSION, MIN_API_VERSION, EngineContext, context_of
from engine.daemon.replies import json_response

PING_HEADERS = {
    "Api-Version": API_VERSION,
    "Builder-Version": "1",
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}
# Python's machine names -> the GOARCH names Docker reports
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def go_arch() -> str:
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK", headers=PING_HEADERS)


def _version_details() -> dict[str, Any]:
    return {
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": platform.release(),
        "BuildTime": "",
    }


async def version(request: web.Request) -> web.Response:
    details = _version_details()
    return json_response(
        {
            "Platform": {"Name": "Pinnace Engine"},
            "Components": [
                {"Name": "Engine", "Version": ENGINE_VERSION, "Details": {**details, "Experimental": "false"}}
            ],
            "Version": ENGINE_VERSION,
            **details,
        }
    )


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
    except OSError:
        return "Linux"


def _info(ctx: EngineContext) -> dict[str, Any]:
    images = ctx.store.images()
    containers = ctx.containers.manager.list(all=True) if ctx.containers is not None else []
    running = sum(1 for c in containers if c.running)
    return {
        "ID": (ctx.root / "engine-id").read_text().strip() if (ctx.root / "engine-id").exists() else "",
        "Containers": len(containers),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": len(containers) - running,
        "Images": len(images),
        "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", "overlayfs snapshots"]],
        "DockerRootDir": str(ctx.root),
        "Plugins": {"Volume": [], "Network": [], "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True,
        "SwapLimit": False,
        "KernelMemory": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "BridgeNfIptables": False,
        "BridgeNfIp6tables": False,
        "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": 0,
        "OomKillDisable": False,
        "SystemTime": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "LoggingDriver": "json-file",  # what container inspect reports too (the SDK checks it)
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": _cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
            "IndexConfigs": {
                name: {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
                for name in ctx.insecure_registries
            },
            "Mirrors": [],
        },
        "NCPU": os.cpu_count() or 1,
        "MemTotal": hoststats.host_memory(),
        "GenericResources": None,
        "Name": socket.gethostname(),
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {"crun": {"path": "crun"}, "runc": {"path": "runc"}},
        "DefaultRuntime": "crun",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": [],
        "Warnings": None,
    }


async def info(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(_info, context_of(request)))
