"""Bad input to the real plugin executables: the spec's error JSON, the right code, nothing left behind."""

from __future__ import annotations

import pytest
from netns_kit import Namespaces, Node, needs_net

pytestmark = needs_net


def assert_untouched(node: Node) -> None:
    assert node.leases() == []
    assert node.link(node.bridge) is None
    assert not [link for link in node.links() if link["ifname"].startswith("veth")]
    assert "pinnace" not in " ".join(node.nft_tables())


@pytest.mark.parametrize(("raw", "code", "words"), [
    (b"{not json", 6, "not JSON"),
    (b"[1, 2]", 6, "object"),
    (b'{"cniVersion": "1.0.0", "type": "pinnace-bridge"}', 7, "'name'"),
    (b'{"cniVersion": "1.0.0", "name": "pntest"}', 7, "'type'"),
    (b'{"cniVersion": "9.9.9", "name": "pntest", "type": "pinnace-bridge"}', 1, "9.9.9"),
    (b'{"name": "pntest", "type": "pinnace-bridge"}', 7, "'cniVersion'"),
    (b'{"cniVersion": "one", "name": "pntest", "type": "pinnace-bridge"}', 1, "'one'"),
    (b'{"cniVersion": "1.0.0", "name": "pntest", "type": "pinnace-bridge"}', 7, "ipam"),
    (b'{"cniVersion": "1.0.0", "name": "pntest", "type": "pinnace-bridge", "vlan": 5}', 2, "vlan=5"),
])
def test_undecodable_or_incomplete_configs(node: Node, namespaces: Namespaces, raw: bytes, code: int,
                                           words: str) -> None:
    pod = namespaces.create("pod")
    answer = node.call("pinnace-bridge", "ADD", raw=raw, container_id="c0", netns=pod)
    assert answer.status == 1
    assert answer.result["code"] == code and words in answer.result["details"], answer.result
    assert set(answer.result) == {"cniVersion", "code", "msg", "details"} and answer.result["msg"]
    assert "Traceback" not in answer.stderr
    assert_untouched(node)


def test_missing_environment_names_the_variables(node: Node) -> None:
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c0")
    assert answer.result["code"] == 4 and "CNI_NETNS" in answer.result["details"]
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="-bad", netns="/run/netns/x")
    assert answer.result["code"] == 4 and "CNI_CONTAINERID" in answer.result["details"]
    assert_untouched(node)


def test_a_netns_that_does_not_exist_is_code_3(node: Node) -> None:
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c0",
                       netns="/run/netns/pn-none-here")
    assert answer.status == 1 and answer.result["code"] == 3, answer
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c0", netns="/etc/hostname")
    assert answer.result["code"] == 3 and "not a network namespace" in answer.result["details"]
    assert_untouched(node)


def test_an_exhausted_range_is_reported_and_rolled_back(node: Node, namespaces: Namespaces) -> None:
    node.subnet = "10.79.0.0/30"  # .1 is the gateway, .3 broadcast: one pod fits
    first, second = namespaces.create("pod1"), namespaces.create("pod2")
    assert node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c1", netns=first).status == 0
    veths = {link["ifname"] for link in node.links()}
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c2", netns=second)
    assert answer.status == 1 and answer.result["code"] == 11, answer
    assert "10.79.0.0/30" in answer.result["details"]
    assert node.store_files() == ["10.79.0.2", "owner:c1:eth0"], "the failed ADD holds no lease"
    assert {link["ifname"] for link in node.links()} == veths, "and made no interface"
    status = node.call("pinnace-bridge", "STATUS", config={**node.bridge_conf(), "cniVersion": "1.1.0"})
    assert status.result["code"] == 50


def test_a_failure_after_the_lease_gives_it_back(node: Node, namespaces: Namespaces) -> None:
    pod = namespaces.create("pod")
    node.exec("ip", "link", "add", node.bridge, "type", "veth", "peer", "name", f"{node.bridge}x")
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c0", netns=pod)
    assert answer.result["code"] == 7 and "not a bridge" in answer.result["details"], answer
    assert node.leases() == []
    in_pod = node.exec("nsenter", f"--net={pod}", "ip", "-br", "link").stdout.decode()
    assert "eth0" not in in_pod


def test_an_interface_name_taken_in_the_pod_rolls_back(node: Node, namespaces: Namespaces) -> None:
    pod = namespaces.create("pod")
    node.exec("nsenter", f"--net={pod}", "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other")
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c0", netns=pod)
    assert answer.status == 1 and answer.result["code"] == 5 and "File exists" in answer.result["details"]
    assert node.leases() == []
    assert not [link for link in node.links() if link["ifname"].startswith("veth")]


def test_commands_and_versions_that_do_not_go_together(node: Node) -> None:
    old = {**node.bridge_conf(), "cniVersion": "0.3.1"}
    answer = node.call("pinnace-bridge", "CHECK", config=old, container_id="c0", netns="/proc/self/ns/net")
    assert answer.result["code"] == 1 and "0.4.0" in answer.result["details"]
    answer = node.call("pinnace-bridge", "GC", config=node.bridge_conf())
    assert answer.result["code"] == 1
    answer = node.call("pinnace-bridge", "FLY", config=node.bridge_conf())
    assert answer.result["code"] == 4


def test_a_second_add_without_del_is_refused_and_harms_nothing(node: Node, namespaces: Namespaces) -> None:
    pod = namespaces.create("pod")
    first = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c0", netns=pod)
    again = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id="c0", netns=pod)
    assert again.status == 1 and again.result["code"] == 5 and "already attached" in again.result["details"]
    assert node.leases() == [first.result["ips"][0]["address"].split("/")[0]]
    check = node.call("pinnace-bridge", "CHECK", config={**node.bridge_conf(), "prevResult": first.result},
                      container_id="c0", netns=pod)
    assert check.status == 0, "the first attachment is intact"
