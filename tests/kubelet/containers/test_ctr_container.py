"""container_config: the whole ContainerConfig for a pod container, and labels/annotations/hash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubelet.containers import ConfigError, container_config, container_hash
from kubelet.cri import pb
from tests.kubelet.containers.kctr_env import FakeSource, make_config, make_pod

GIB = 1 << 30
APP = {
    "name": "app", "image": "busybox", "command": ["sh", "-c", "echo $(MSG)"], "args": ["$(MSG)", "x"],
    "workingDir": "/work", "tty": True, "stdin": True,
    "env": [{"name": "MSG", "value": "hi"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
    "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": 1000},
    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
    "ports": [{"name": "http", "containerPort": 80}],
}


def _mode_and_size(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_mode & 0o777, info.st_size


async def build(pod: dict[str, Any], container: dict[str, Any], *, root: Path, **kw: Any) -> pb.ContainerConfig:
    args: dict[str, Any] = {"config": make_config(root), "attempt": 3, "image_ref": "sha256:abc", "image_user": "",
                            "mounts": [pb.Mount(container_path="/data", host_path="/tmp")], "source": FakeSource(),
                            "pod_ip": "10.1.0.7", "host_ip": "192.168.1.2", "allocatable": {"cpu": 1000},
                            "memory_capacity": 8 * GIB}
    args.update(kw)
    return await container_config(pod, container, **args)


async def test_full_mapping(tmp_path: Path) -> None:
    pod = make_pod(APP, terminationGracePeriodSeconds=30)
    config = await build(pod, APP, root=tmp_path)
    assert (config.metadata.name, config.metadata.attempt) == ("app", 3)
    assert (config.image.image, config.image.user_specified_image) == ("sha256:abc", "busybox")
    assert list(config.command) == ["sh", "-c", "echo hi"]
    assert list(config.args) == ["hi", "x"]
    assert (config.working_dir, config.tty, config.stdin, config.stdin_once) == ("/work", True, True, False)
    assert [(e.key, e.value) for e in config.envs] == [("MSG", "hi"), ("POD_IP", "10.1.0.7"), ("NODE", "n1")]
    assert [m.container_path for m in config.mounts] == ["/data", "/dev/termination-log"]
    message_file = Path(config.mounts[1].host_path)
    assert message_file.parent == tmp_path / "pods" / "u-1" / "containers" / "app"
    assert _mode_and_size(message_file) == (0o666, 0)
    assert config.log_path == "app/3.log"
    assert dict(config.labels) == {"io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "default",
                                   "io.kubernetes.pod.uid": "u-1", "io.kubernetes.container.name": "app"}
    ann = dict(config.annotations)
    assert ann["io.kubernetes.container.hash"] == container_hash(APP)
    assert ann["io.kubernetes.container.restartCount"] == "3"
    assert ann["io.kubernetes.container.terminationMessagePath"] == "/dev/termination-log"
    assert ann["io.kubernetes.pod.terminationGracePeriod"] == "30"
    assert json.loads(ann["io.kubernetes.container.preStopHandler"]) == APP["lifecycle"]["preStop"]
    assert json.loads(ann["io.kubernetes.container.ports"]) == APP["ports"]
    res = config.linux.resources
    assert (res.cpu_shares, res.cpu_quota, res.cpu_period, res.memory_limit_in_bytes) == (256, 50000, 100000, 128 << 20)
    assert res.oom_score_adj == 1000 - (1000 * (64 << 20)) // (8 * GIB)  # Burstable
    ctx = config.linux.security_context
    assert ctx.readonly_rootfs and ctx.run_as_user.value == 1000 and not ctx.privileged


async def test_pod_ips_from_status_and_defaults(tmp_path: Path) -> None:
    container = {"name": "c", "image": "busybox", "env": [
        {"name": "IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}}]}
    pod = make_pod(container)
    pod["status"] = {"podIPs": [{"ip": "10.1.0.7"}, {"ip": "fd00::7"}]}
    config = await build(pod, container, root=tmp_path)
    assert {e.key: e.value for e in config.envs} == {"IPS": "10.1.0.7,fd00::7", "HOST": "192.168.1.2"}
    assert list(config.command) == [] and list(config.args) == []  # the engine applies the image's
    assert config.linux.resources.oom_score_adj == 1000  # BestEffort


async def test_run_as_non_root_refused_before_reading_sources(tmp_path: Path) -> None:
    container = {"name": "c", "image": "busybox", "securityContext": {"runAsNonRoot": True},
                 "envFrom": [{"configMapRef": {"name": "cfg"}}]}
    source = FakeSource()
    with pytest.raises(ConfigError, match="image will run as root"):
        await build(make_pod(container), container, root=tmp_path, source=source)
    assert source.reads == []


async def test_missing_config_map_is_a_config_error(tmp_path: Path) -> None:
    container = {"name": "c", "image": "busybox", "envFrom": [{"configMapRef": {"name": "cfg"}}]}
    with pytest.raises(ConfigError) as caught:
        await build(make_pod(container), container, root=tmp_path)
    assert (str(caught.value), caught.value.reason) == ('configmap "cfg" not found', "CreateContainerConfigError")


async def test_no_termination_mount_when_path_is_empty_or_taken(tmp_path: Path) -> None:
    container = {"name": "c", "image": "busybox", "terminationMessagePath": ""}
    assert [m.container_path for m in (await build(make_pod(container), container, root=tmp_path)).mounts] == ["/data"]
    container = {"name": "c", "image": "busybox", "terminationMessagePath": "/data"}
    assert [m.container_path for m in (await build(make_pod(container), container, root=tmp_path)).mounts] == ["/data"]


def test_hash_is_stable_and_sensitive() -> None:
    same = json.loads(json.dumps(APP))
    assert container_hash(same) == container_hash(APP)
    assert container_hash(dict(reversed(list(APP.items())))) == container_hash(APP)  # key order does not matter
    changed = {**APP, "image": "busybox:2"}
    assert container_hash(changed) != container_hash(APP)
    assert all(c in "0123456789abcdef" for c in container_hash(APP))
