"""The bridge plugin in real namespaces: ADD/CHECK/DEL of pods on a simulated node (issue 6 acceptance)."""

from __future__ import annotations

import ipaddress
import json

from netns_kit import Namespaces, Node, needs_net, ping, pod_addresses

from cni import naming

pytestmark = needs_net


def add_pod(node: Node, pod: str, *, container_id: str, **extra: object) -> dict:
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(**extra), container_id=container_id, netns=pod)
    assert answer.status == 0, answer
    return answer.result


def test_two_pods_reach_each_other_and_the_gateway_then_check_and_del(node: Node, namespaces: Namespaces) -> None:
    pods = [namespaces.create("pod1"), namespaces.create("pod2")]
    results = [add_pod(node, pod, container_id=f"c{i}") for i, pod in enumerate(pods)]
    subnet = ipaddress.ip_network(node.subnet)
    addresses = [r["ips"][0]["address"] for r in results]
    assert len(set(addresses)) == 2
    for result, pod in zip(results, pods, strict=True):
        address = ipaddress.ip_interface(result["ips"][0]["address"])
        assert address.network == subnet and result["ips"][0]["gateway"] == str(subnet[1])
        assert pod_addresses(pod) == [str(address)], "the pod's eth0 holds exactly the leased address"
        assert result["interfaces"][2] == {"name": "eth0", "mac": result["interfaces"][2]["mac"], "sandbox": pod}
        assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": str(subnet[1])}]
    first, second = (a.split("/")[0] for a in addresses)
    assert ping(pods[0], second) and ping(pods[1], first)
    assert ping(pods[0], str(subnet[1])), "the gateway (bridge address) answers"
    assert sorted(node.leases()) == sorted(a.split("/")[0] for a in addresses)

    for i, (pod, result) in enumerate(zip(pods, results, strict=True)):
        check = node.call("pinnace-bridge", "CHECK", config={**node.bridge_conf(), "prevResult": result},
                          container_id=f"c{i}", netns=pod)
        assert check.status == 0 and check.result is None, check

    veth = result["interfaces"][1]["name"]
    assert node.link(veth) is not None
    gone = node.call("pinnace-bridge", "DEL", config=node.bridge_conf(), container_id="c1", netns=pods[1])
    assert gone.status == 0 and gone.result is None, gone
    assert node.link(veth) is None, "DEL removes the host end (and so the pair)"
    assert node.leases() == [first], "DEL frees the lease"
    assert pod_addresses(pods[1]) == []
    again = node.call("pinnace-bridge", "DEL", config=node.bridge_conf(), container_id="c1", netns=pods[1])
    assert again.status == 0, f"a second DEL succeeds: {again}"


def test_bridge_and_port_settings_follow_the_config(node: Node, namespaces: Namespaces) -> None:
    pod = namespaces.create("pod")
    result = add_pod(node, pod, container_id="c0", mtu=1400, hairpinMode=True, ipMasq=True,
                     ipMasqExclude=["10.0.0.0/8"])
    bridge, veth = node.link(node.bridge), node.link(result["interfaces"][1]["name"])
    assert bridge["linkinfo"]["info_kind"] == "bridge" and "UP" in bridge["flags"]
    assert bridge["address"] == result["interfaces"][0]["mac"]
    assert veth["master"] == node.bridge and veth["mtu"] == 1400 and veth["address"] == result["interfaces"][1]["mac"]
    assert veth["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert result["interfaces"][1]["name"] == naming.host_veth_name("pntest", container_id="c0", ifname="eth0")
    inside = json.loads(node.exec("nsenter", f"--net={pod}", "ip", "-j", "link", "show", "eth0").stdout)[0]
    assert inside["mtu"] == 1400 and inside["address"] == result["interfaces"][2]["mac"]
    assert node.exec("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == b"1", "isGateway turns forwarding on"
    rules = node.exec("nft", "list", "table", "inet", "pinnace_masq").stdout.decode()
    assert "ip saddr 10.77.0.0/24 ip daddr 10.77.0.0/24 return" in rules
    assert "ip saddr 10.77.0.0/24 ip daddr 10.0.0.0/8 return" in rules
    assert "ip saddr 10.77.0.0/24 ip daddr != 224.0.0.0/4 masquerade" in rules
    conf = {**node.bridge_conf(ipMasq=True), "prevResult": result}
    assert node.call("pinnace-bridge", "CHECK", config=conf, container_id="c0", netns=pod).status == 0
    node.exec("nft", "delete", "table", "inet", "pinnace_masq")
    broken = node.call("pinnace-bridge", "CHECK", config=conf, container_id="c0", netns=pod)
    assert broken.status == 1 and broken.result["code"] == 100 and "masquerade" in broken.result["details"]


def test_check_reports_what_went_missing(node: Node, namespaces: Namespaces) -> None:
    pod = namespaces.create("pod")
    result = add_pod(node, pod, container_id="c0")
    conf = {**node.bridge_conf(), "prevResult": result}
    node.exec("nsenter", f"--net={pod}", "ip", "addr", "flush", "dev", "eth0")
    answer = node.call("pinnace-bridge", "CHECK", config=conf, container_id="c0", netns=pod)
    assert answer.status == 1 and answer.result["code"] == 100
    assert result["ips"][0]["address"] in answer.result["details"]
    node.exec("ip", "link", "del", result["interfaces"][1]["name"])
    answer = node.call("pinnace-bridge", "CHECK", config=conf, container_id="c0", netns=pod)
    assert answer.result["code"] == 100 and "missing" in answer.result["details"]
    no_prev = node.call("pinnace-bridge", "CHECK", config=node.bridge_conf(), container_id="c0", netns=pod)
    assert no_prev.result["code"] == 7


def test_del_without_the_namespace_still_frees_everything(node: Node, namespaces: Namespaces) -> None:
    pod = namespaces.create("pod")
    result = add_pod(node, pod, container_id="c0")
    namespaces.remove(pod)  # the runtime lost the sandbox: the veth went with it, the lease did not
    assert node.leases() == [result["ips"][0]["address"].split("/")[0]]
    answer = node.call("pinnace-bridge", "DEL", config=node.bridge_conf(), container_id="c0")
    assert answer.status == 0 and node.leases() == []


def test_dual_stack_pods_get_one_address_per_family(node: Node, namespaces: Namespaces) -> None:
    ranges = [[{"subnet": "10.78.0.0/24"}], [{"subnet": "fd00:78::/64"}]]
    conf = node.bridge_conf()
    conf["ipam"]["ranges"] = ranges
    pods = [namespaces.create("pod1"), namespaces.create("pod2")]
    results = []
    for i, pod in enumerate(pods):
        answer = node.call("pinnace-bridge", "ADD", config=conf, container_id=f"c{i}", netns=pod)
        assert answer.status == 0, answer
        results.append(answer.result)
    for result in results:
        families = sorted(ipaddress.ip_interface(ip["address"]).version for ip in result["ips"])
        assert families == [4, 6]
        assert {"dst": "::/0", "gw": "fd00:78::1"} in result["routes"]
    v6 = next(ip["address"].split("/")[0] for ip in results[1]["ips"] if ":" in ip["address"])
    assert ping(pods[0], v6), "pods reach each other over IPv6"
    assert ping(pods[0], "fd00:78::1")


def test_gc_frees_leases_and_veths_of_unknown_attachments(node: Node, namespaces: Namespaces) -> None:
    pods = [namespaces.create(f"pod{i}") for i in range(3)]
    results = [add_pod(node, pod, container_id=f"c{i}") for i, pod in enumerate(pods)]
    conf = {**node.bridge_conf(), "cniVersion": "1.1.0",
            "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]}
    answer = node.call("pinnace-bridge", "GC", config=conf)
    assert answer.status == 0, answer
    assert node.leases() == [results[1]["ips"][0]["address"].split("/")[0]]
    assert node.link(results[0]["interfaces"][1]["name"]) is None
    assert node.link(results[1]["interfaces"][1]["name"]) is not None
    assert node.call("pinnace-bridge", "STATUS", config={**node.bridge_conf(), "cniVersion": "1.1.0"}).status == 0
