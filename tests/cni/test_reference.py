"""Cross-check with the reference plugins (Debian's containernetworking-plugins in /usr/lib/cni).

Same config fields where they overlap, so the same config (only the type names differ) gives results
of the same shape and the same pod-side set-up; and our bridge drives the reference host-local IPAM
through the spec's exec protocol.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from netns_kit import REFERENCE_DIR, Namespaces, Node, in_netns, needs_net, ping

pytestmark = [needs_net, pytest.mark.skipif(not (REFERENCE_DIR / "bridge").exists(),
                                            reason="reference CNI plugins not installed")]


def shared_conf(node: Node, *, ours: bool) -> dict:
    """One network config in both dialects: only the plugin type names differ."""
    return {"cniVersion": "1.0.0", "name": "pntest", "type": "pinnace-bridge" if ours else "bridge",
            "bridge": node.bridge, "isGateway": True, "isDefaultGateway": True, "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "pinnace-host-local" if ours else "host-local",
                     "ranges": [[{"subnet": node.subnet, "rangeStart": f"{node.subnet[:-4]}10"}]],
                     "routes": [{"dst": "10.200.0.0/16"}], "dataDir": str(node.data_dir / ("ours" if ours else "ref"))}}


def shape(value: object) -> object:
    """The structure of a JSON value: keys and list lengths kept, leaves replaced by their type."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def pod_routes(path: str) -> list[str]:
    """The pod's IPv4 routes, with its own address masked so two pods compare."""
    table = in_netns(path, "ip", "-4", "route", "show").stdout.decode().splitlines()
    return sorted(re.sub(r"src \S+", "src X", line.strip()) for line in table)


def test_same_config_gives_the_same_result_shape_and_pod_setup(tmp_path: Path, namespaces: Namespaces) -> None:
    ours_node = Node(namespaces, tmp_path, label="ours", subnet="10.83.0.0/24")
    ref_node = Node(namespaces, tmp_path, label="ref", subnet="10.83.0.0/24")
    ours_pod, ref_pod = namespaces.create("ourpod"), namespaces.create("refpod")
    ours = ours_node.call("pinnace-bridge", "ADD", config=shared_conf(ours_node, ours=True), container_id="c0",
                          netns=ours_pod)
    ref = ref_node.call("bridge", "ADD", config=shared_conf(ref_node, ours=False), container_id="c0", netns=ref_pod)
    assert ours.status == 0 and ref.status == 0, (ours, ref)
    assert shape(ours.result) == shape(ref.result)
    for key in ("cniVersion", "routes", "dns"):
        assert ours.result[key] == ref.result[key], key
    assert ours.result["ips"] == ref.result["ips"], "same range, same first address, same gateway"
    assert [i["name"] for i in ours.result["interfaces"]][::2] == [ours_node.bridge, "eth0"]
    assert [i["name"] for i in ref.result["interfaces"]][::2] == [ref_node.bridge, "eth0"]
    assert ours.result["interfaces"][2]["sandbox"] == ours_pod and ref.result["interfaces"][2]["sandbox"] == ref_pod
    assert pod_routes(ours_pod) == pod_routes(ref_pod)
    for node, answer in ((ours_node, ours), (ref_node, ref)):
        port = node.link(answer.result["interfaces"][1]["name"])
        assert port["master"] == node.bridge and port["linkinfo"]["info_slave_data"]["hairpin"] is True

    old_ours = {**shared_conf(ours_node, ours=True), "cniVersion": "0.4.0"}
    old_ref = {**shared_conf(ref_node, ours=False), "cniVersion": "0.4.0"}
    a = ours_node.call("pinnace-bridge", "ADD", config=old_ours, container_id="c1", netns=namespaces.create("ourpod2"))
    b = ref_node.call("bridge", "ADD", config=old_ref, container_id="c1", netns=namespaces.create("refpod2"))
    assert shape(a.result) == shape(b.result) and a.result["ips"] == b.result["ips"], "0.4.0 results match too"


def test_our_bridge_delegates_to_the_reference_host_local(node: Node, namespaces: Namespaces) -> None:
    conf = node.bridge_conf()
    conf["ipam"]["type"] = "host-local"
    pods = [namespaces.create("pod1"), namespaces.create("pod2")]
    results = []
    for i, pod in enumerate(pods):
        answer = node.call("pinnace-bridge", "ADD", config=conf, container_id=f"c{i}", netns=pod)
        assert answer.status == 0, answer
        results.append(answer.result)
    lease = node.data_dir / "pntest" / results[0]["ips"][0]["address"].split("/")[0]
    assert lease.read_bytes() == b"c0\r\neth0", "the lease file is the reference plugin's"
    assert ping(pods[0], results[1]["ips"][0]["address"].split("/")[0])
    check = node.call("pinnace-bridge", "CHECK", config={**conf, "prevResult": results[0]}, container_id="c0",
                      netns=pods[0])
    assert check.status == 0, check
    assert node.call("pinnace-bridge", "DEL", config=conf, container_id="c0", netns=pods[0]).status == 0
    assert not lease.exists()

    conf["ipam"]["type"] = "no-such-ipam"
    answer = node.call("pinnace-bridge", "ADD", config=conf, container_id="c9", netns=pods[1])
    assert answer.result["code"] == 7 and "no-such-ipam" in answer.result["details"]
    conf["ipam"] = {"type": "host-local", "ranges": [[{"subnet": "10.77.9.0/33"}]], "dataDir": str(node.data_dir)}
    answer = node.call("pinnace-bridge", "ADD", config=conf, container_id="c9", netns=pods[1])
    assert answer.status == 1 and "host-local" in answer.result["details"], "the delegate's error is passed on"
