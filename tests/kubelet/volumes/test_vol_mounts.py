"""container_mounts: volumeMounts -> CRI mounts, subPath handling and its safety checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubelet.cri import pb
from kubelet.volumes import VolumeError, container_mounts
from kubelet.volumes.mounts import expand


def _pod(volumes: list[str], configmaps: tuple[str, ...] = ()) -> dict:
    vols = [{"name": v, "configMap": {"name": v}} if v in configmaps else {"name": v, "emptyDir": {}}
            for v in volumes]
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}, "spec": {"volumes": vols}}


def test_plain_mounts_readonly_and_propagation(tmp_path: Path) -> None:
    paths = {"data": str(tmp_path / "data"), "cfg": str(tmp_path / "cfg")}
    container = {"name": "c", "volumeMounts": [
        {"name": "data", "mountPath": "/data", "mountPropagation": "HostToContainer"},
        {"name": "data", "mountPath": "/ro", "readOnly": True, "recursiveReadOnly": "Enabled"},
        {"name": "data", "mountPath": "/bi", "mountPropagation": "Bidirectional"},
        {"name": "cfg", "mountPath": "/etc/app"},
    ]}
    mounts = container_mounts(_pod(["data", "cfg"], ("cfg",)), container, paths)
    assert [(m.container_path, m.host_path, m.readonly, m.propagation, m.recursive_read_only) for m in mounts] == [
        ("/data", paths["data"], False, pb.PROPAGATION_HOST_TO_CONTAINER, False),
        ("/ro", paths["data"], True, pb.PROPAGATION_PRIVATE, True),
        ("/bi", paths["data"], False, pb.PROPAGATION_BIDIRECTIONAL, False),
        ("/etc/app", paths["cfg"], True, pb.PROPAGATION_PRIVATE, False),  # configMaps are always read-only
    ]


def test_sub_path_is_created_with_the_volume_mode(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    os.chmod(vol, 0o750)
    container = {"name": "c", "env": [{"name": "SUB", "value": "logs"},
                                      {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                 "volumeMounts": [{"name": "v", "mountPath": "/a", "subPath": "x/y"},
                                  {"name": "v", "mountPath": "/b", "subPathExpr": "$(SUB)/$(POD)"}]}
    a, b = container_mounts(_pod(["v"]), container, {"v": str(vol)})
    assert a.host_path == str(vol / "x" / "y") and (vol / "x" / "y").is_dir()
    assert (vol / "x" / "y").stat().st_mode & 0o777 == 0o750
    assert b.host_path == str(vol / "logs" / "web") and (vol / "logs" / "web").is_dir()


@pytest.mark.parametrize(("mount", "message"), [
    ({"name": "nope", "mountPath": "/x"}, 'cannot find volume "nope" to mount into container "c"'),
    ({"name": "v", "mountPath": "/x", "subPath": "../etc"}, "must be a relative path"),
    ({"name": "v", "mountPath": "/x", "subPath": "/etc"}, "must be a relative path"),
    ({"name": "v", "mountPath": "/x", "subPath": "link/inner"}, "not within volume path"),
    ({"name": "v", "mountPath": "/x", "mountPropagation": "Sideways"}, "invalid MountPropagation mode"),
    ({"name": "v", "mountPath": "/x", "recursiveReadOnly": "Enabled"}, "recursiveReadOnly requires readOnly"),
])
def test_bad_mounts(tmp_path: Path, mount: dict, message: str) -> None:
    vol, outside = tmp_path / "vol", tmp_path / "outside"
    vol.mkdir()
    outside.mkdir()
    os.symlink(outside, vol / "link")
    with pytest.raises(VolumeError, match=message):
        container_mounts(_pod(["v"]), {"name": "c", "volumeMounts": [mount]}, {"v": str(vol)})
    assert not (outside / "inner").exists()


def test_expand() -> None:
    assert expand("$(A)/$(B)/$$(A)", {"A": "1"}) == "1/$(B)/$(A)"
