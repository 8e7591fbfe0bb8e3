"""securityContext mapping and the runAsNonRoot check."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from kubelet.containers import ConfigError
from kubelet.containers.security import container_security, sandbox_security, verify_run_as_non_root
from kubelet.cri import pb
from tests.kubelet.containers.kctr_env import make_pod


def pod_with(pod_sc: dict | None, ctr_sc: dict | None, **spec: Any) -> tuple[dict, dict]:
    container = {"name": "app", "securityContext": ctr_sc} if ctr_sc is not None else {"name": "app"}
    return make_pod(container, securityContext=pod_sc or {}, **spec), container


WHERE = '(pod: "web_default(u-1)", container: app)'


@pytest.mark.parametrize(("pod_sc", "ctr_sc", "image_user", "message"), [
    ({"runAsNonRoot": True}, None, "", f"container has runAsNonRoot and image will run as root {WHERE}"),
    ({"runAsNonRoot": True}, None, "0", f"container has runAsNonRoot and image will run as root {WHERE}"),
    (None, {"runAsNonRoot": True}, "nobody",
     f"container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root {WHERE}"),
    ({"runAsNonRoot": True}, {"runAsUser": 0}, "1000", f"container's runAsUser breaks non-root policy {WHERE}"),
    ({"runAsNonRoot": True}, None, "1000", None),
    ({"runAsNonRoot": True}, None, "4294967294", "container has runAsNonRoot and image has an invalid user id "
     f"(4294967294). (Must be 1-(2147483647)): must be between 0 and 2147483647, inclusive {WHERE}"),
    ({"runAsNonRoot": True}, None, "1000:1000", None),
    ({"runAsNonRoot": True, "runAsUser": 1000}, None, "", None),
    ({"runAsNonRoot": True}, {"runAsUser": 5}, "nobody", None),
    ({"runAsNonRoot": True}, {"runAsNonRoot": False}, "", None),  # the container's setting wins
    (None, None, "", None),
])
def test_run_as_non_root(pod_sc: dict | None, ctr_sc: dict | None, image_user: str, message: str | None) -> None:
    pod, container = pod_with(pod_sc, ctr_sc)
    if message is None:
        verify_run_as_non_root(pod, container, image_user=image_user)
        return
    with pytest.raises(ConfigError) as caught:
        verify_run_as_non_root(pod, container, image_user=image_user)
    assert str(caught.value) == message
    assert caught.value.reason == "CreateContainerConfigError"


@pytest.mark.parametrize(("pod_sc", "ctr_sc", "image_user", "expected"), [
    (None, None, "", {"run_as_user": {}, "seccomp": {"profile_type": "Unconfined"}}),  # {}: set, to 0 (root)
    (None, None, "nobody", {"run_as_username": "nobody", "seccomp": {"profile_type": "Unconfined"}}),
    ({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4, 5],
      "seccompProfile": {"type": "RuntimeDefault"}}, {"runAsUser": 1001}, "nobody",
     {"run_as_user": {"value": "1001"}, "run_as_group": {"value": "3000"}, "supplemental_groups": ["2000", "4", "5"],
      "seccomp": {}}),  # RuntimeDefault is the enum's zero
    (None, {"readOnlyRootFilesystem": True, "privileged": True, "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
            "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}, "7",
     {"run_as_user": {"value": "7"}, "readonly_rootfs": True, "privileged": True, "no_new_privs": True,
      "capabilities": {"add_capabilities": ["NET_ADMIN"], "drop_capabilities": ["ALL"]},
      "seccomp": {"profile_type": "Localhost", "localhost_ref": "/var/lib/kubelet/seccomp/p.json"}}),
    (None, {"allowPrivilegeEscalation": True}, "1", {"run_as_user": {"value": "1"},
                                                     "seccomp": {"profile_type": "Unconfined"}}),
])
def test_container_security(pod_sc: dict | None, ctr_sc: dict | None, image_user: str, expected: dict) -> None:
    pod, container = pod_with(pod_sc, ctr_sc)
    ctx = container_security(pod, container, image_user=image_user)
    got = json_format.MessageToDict(ctx, preserving_proto_field_name=True)
    got.pop("namespace_options")  # see test_namespaces
    if got.get("capabilities") == {}:
        del got["capabilities"]
    assert got == expected


@pytest.mark.parametrize(("spec", "network", "pid", "ipc"), [
    ({}, pb.POD, pb.CONTAINER, pb.POD),
    ({"hostNetwork": True}, pb.NODE, pb.CONTAINER, pb.POD),
    ({"hostPID": True, "hostIPC": True}, pb.POD, pb.NODE, pb.NODE),
    ({"shareProcessNamespace": True}, pb.POD, pb.POD, pb.POD),
])
def test_namespaces(spec: dict, network: int, pid: int, ipc: int) -> None:
    pod, container = pod_with(None, None, **spec)
    for ctx in (sandbox_security(pod), container_security(pod, container, image_user="")):
        opts = ctx.namespace_options
        assert (opts.network, opts.pid, opts.ipc) == (network, pid, ipc)


def test_sandbox_security() -> None:
    pod = make_pod({"name": "a"}, {"name": "b", "securityContext": {"privileged": True}},
                   securityContext={"runAsUser": 10, "runAsGroup": 20, "fsGroup": 30,
                                    "seccompProfile": {"type": "RuntimeDefault"}})
    ctx = sandbox_security(pod)
    assert ctx.privileged
    assert (ctx.run_as_user.value, ctx.run_as_group.value, list(ctx.supplemental_groups)) == (10, 20, [30])
    assert ctx.seccomp.profile_type == pb.SecurityProfile.RuntimeDefault
    plain = sandbox_security(make_pod({"name": "a"}))
    assert not plain.privileged and not plain.HasField("run_as_user")
