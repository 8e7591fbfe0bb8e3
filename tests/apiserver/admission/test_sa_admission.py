"""The ServiceAccount admission step: the kube-api-access volume on create, opt-outs respected."""

from __future__ import annotations

import copy

from apiserver.admission import TOKEN_MOUNT_PATH, VOLUME_PREFIX, service_account_token


def _pod(**spec) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                                "initContainers": [{"name": "i"}], **spec}}


def test_every_container_mounts_one_projected_volume():
    pod = _pod(volumes=[{"name": "data", "emptyDir": {}}])
    service_account_token(pod)
    volumes = pod["spec"]["volumes"]
    assert volumes[0]["name"] == "data" and len(volumes) == 2
    added = volumes[1]
    assert added["name"].startswith(VOLUME_PREFIX) and len(added["name"]) == len(VOLUME_PREFIX) + 5
    sources = added["projected"]["sources"]
    assert sources[0]["serviceAccountToken"] == {"expirationSeconds": 3607, "path": "token"}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    for c in [*pod["spec"]["containers"], *pod["spec"]["initContainers"]]:
        assert c["volumeMounts"] == [{"name": added["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]


def test_opt_out_and_own_mount_are_left_alone():
    opted = _pod(automountServiceAccountToken=False)
    before = copy.deepcopy(opted)
    service_account_token(opted)
    assert opted == before
    own = _pod()
    own["spec"]["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]
    before = copy.deepcopy(own)
    service_account_token(own)
    assert own == before
