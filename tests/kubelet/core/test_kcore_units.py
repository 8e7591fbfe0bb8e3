"""Pieces of the kubelet core that need no cluster: back-off interplay, pull policy, node facts, flags."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from kubelet import node
from kubelet.backoff import Backoff
from kubelet.config import KubeletConfig
from kubelet.cri import pb
from kubelet.images import default_pull_policy
from kubelet.main import build_config, configure, parse_labels
from kubelet.network import conflist_for, write_conflist
from kubelet.pod_worker import PodWorker, grace_period, should_restart

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": {"containers": [{"name": "web"}]}}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: dict, *, reason: str, message: str, warning: bool = False, field_path: str = "") -> None:
        self.events.append((reason, message))


def exited(cid: str, *, finished: float, ran: float = 1.0) -> pb.ContainerStatus:
    return pb.ContainerStatus(id=cid, metadata=pb.ContainerMetadata(name="web"), state=pb.CONTAINER_EXITED,
                              exit_code=1, started_at=int((finished - ran) * 1e9), finished_at=int(finished * 1e9))


async def test_crash_backoff_follows_upstream() -> None:
    """First crash restarts at once; the next waits 10 s, then 20 s; the message names the delay."""
    recorder = Recorder()
    deps = SimpleNamespace(backoff=Backoff(), image_backoff=Backoff(), recorder=recorder, cri=None)
    worker = PodWorker(uid="u1", deps=deps, on_done=lambda _uid: None)  # type: ignore[arg-type]
    now = time.time()
    assert worker._backoff_passed(POD, "web", exited("c1", finished=now))
    assert worker._backoff_passed(POD, "web", exited("c1", finished=now))  # same exit: already counted
    assert not worker._backoff_passed(POD, "web", exited("c2", finished=now))
    assert worker.waiting["web"] == ("CrashLoopBackOff",
                                     "back-off 10s restarting failed container=web pod=p_ns(u1)")
    assert ("BackOff", "Back-off restarting failed container web in pod p_ns(u1)") in recorder.events
    assert worker._backoff_passed(POD, "web", exited("c2", finished=now - 11))  # 10 s have passed
    assert not worker._backoff_passed(POD, "web", exited("c3", finished=now))
    assert worker.waiting["web"][1].startswith("back-off 20s ")
    assert worker._timer is not None
    worker._timer.cancel()


async def test_long_run_resets_backoff() -> None:
    deps = SimpleNamespace(backoff=Backoff(), image_backoff=Backoff(), recorder=Recorder(), cri=None)
    worker = PodWorker(uid="u1", deps=deps, on_done=lambda _uid: None)  # type: ignore[arg-type]
    now = time.time()
    assert worker._backoff_passed(POD, "web", exited("c1", finished=now))
    assert not worker._backoff_passed(POD, "web", exited("c2", finished=now))
    assert worker._backoff_passed(POD, "web", exited("c3", finished=now, ran=700))
    worker._timer.cancel()


@pytest.mark.parametrize(("image", "policy"), [("busybox", "Always"), ("busybox:latest", "Always"),
                                                ("busybox:1.36", "IfNotPresent"), ("reg:5000/x", "Always"),
                                                ("reg:5000/x:v1", "IfNotPresent"),
                                                ("x@sha256:" + "a" * 64, "IfNotPresent")])
def test_default_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


def test_restart_policy_and_grace() -> None:
    assert should_restart("Always", 0) and should_restart("OnFailure", 1)
    assert not should_restart("OnFailure", 0) and not should_restart("Never", 1)
    assert grace_period({"spec": {}}) == 30
    assert grace_period({"spec": {"terminationGracePeriodSeconds": 5}}) == 5
    deleting = {"metadata": {"deletionGracePeriodSeconds": 0}, "spec": {"terminationGracePeriodSeconds": 5}}
    assert grace_period(deleting) == 0


def test_node_conditions_and_transitions() -> None:
    first = node.conditions(ready=False, reason="NetworkReady=false reason:NetworkPluginNotReady message:no conf",
                            old=[], stamp="2026-01-01T00:00:00Z")
    ready = {c["type"]: c for c in first}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "KubeletNotReady"
    assert ready["message"].startswith("container runtime network not ready: NetworkReady=false")
    again = node.conditions(ready=True, reason="", old=first, stamp="2026-01-01T00:00:10Z")
    by_type = {c["type"]: c for c in again}
    assert by_type["Ready"]["reason"] == "KubeletReady"
    assert by_type["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:10Z"
    assert by_type["MemoryPressure"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert by_type["DiskPressure"]["reason"] == "KubeletHasNoDiskPressure"
    assert by_type["PIDPressure"]["status"] == "False"


def test_capacity_and_labels(tmp_path: Path) -> None:
    config = KubeletConfig(node_name="n1", kubeconfig="", cri_socket="", root_dir=tmp_path / "root",
                           node_labels={"tier": "edge"}, max_pods=42)
    cap, alloc = node.capacity(config)
    assert cap["pods"] == "42" and cap["cpu"].isdigit() and cap["memory"].endswith("Ki")
    assert int(alloc["memory"][:-2]) == int(cap["memory"][:-2]) - 100 * 1024
    labels = node.node_labels(config)
    assert labels["kubernetes.io/hostname"] == "n1" and labels["tier"] == "edge"
    assert labels["kubernetes.io/arch"] == labels["beta.kubernetes.io/arch"] == node.architecture()
    info = node.node_info("pinnace://0.1.0")
    assert info["kubeletVersion"].startswith("v1.32.") and info["operatingSystem"] == "linux"


def test_conflist_written_once(tmp_path: Path) -> None:
    config = KubeletConfig(node_name="n1", kubeconfig="", cri_socket="", cni_conf_dir=tmp_path / "net.d",
                           cni_bridge="kt0", cni_ipam_dir=tmp_path / "ipam")
    doc = conflist_for(config, "10.244.3.0/24")
    bridge = doc["plugins"][0]
    assert bridge["bridge"] == "kt0" and bridge["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24"}]]
    assert doc["plugins"][-1]["capabilities"] == {"portMappings": True}
    path = write_conflist(config, "10.244.3.0/24")
    assert path is not None and path.name == "10-pinnace.conflist"
    stamp = path.stat().st_mtime_ns
    write_conflist(config, "10.244.3.0/24")
    assert path.stat().st_mtime_ns == stamp
    assert write_conflist(KubeletConfig(node_name="n", kubeconfig="", cri_socket=""), "10.0.0.0/24") is None


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    configure(p)
    return p.parse_args(list(argv))


def test_flags() -> None:
    config = build_config(_args("--node-name", "n1", "--cluster-dns", "10.96.0.10", "--node-labels", "a=1,b=",
                                "--root-dir", "/tmp/x", "--port", "0"))
    assert config.cluster_dns == ("10.96.0.10",) and config.node_labels == {"a": "1", "b": ""}
    assert config.log_dir == Path("/tmp/x/logs") and config.port == 0
    with pytest.raises(ValueError, match="--node-ip"):
        build_config(_args("--node-ip", "nope"))
    with pytest.raises(ValueError, match="key=value"):
        parse_labels("a=1,broken")
    with pytest.raises(ValueError, match="out of range"):
        build_config(_args("--port", "70000"))
