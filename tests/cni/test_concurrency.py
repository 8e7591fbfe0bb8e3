"""50 ADDs at once on one node (separate processes and namespaces): distinct addresses, clean DELs."""

from __future__ import annotations

import ipaddress

from netns_kit import Namespaces, Node, needs_net, pod_addresses

pytestmark = needs_net
PODS = 50


def test_fifty_concurrent_adds_get_distinct_ips_and_dels_empty_the_store(node: Node, namespaces: Namespaces) -> None:
    pods = [namespaces.create(f"p{i}") for i in range(PODS)]
    conf = node.bridge_conf(ipMasq=True)
    started = [node.start("pinnace-bridge", "ADD", config=conf, container_id=f"c{i}", netns=pod)
               for i, pod in enumerate(pods)]
    answers = [node.finish(p) for p in started]
    failed = [a for a in answers if a.status != 0]
    assert not failed, failed[:3]
    addresses = [a.result["ips"][0]["address"] for a in answers]
    assert len(set(addresses)) == PODS, "no address handed out twice"
    subnet = ipaddress.ip_network(node.subnet)
    assert all(ipaddress.ip_interface(a).network == subnet for a in addresses)
    assert str(subnet[1]) not in {a.split("/")[0] for a in addresses}, "the gateway is never leased"
    assert sorted(node.leases()) == sorted(a.split("/")[0] for a in addresses)
    for pod, address in zip(pods[::10], addresses[::10], strict=True):
        assert pod_addresses(pod) == [address]
    ports = [link for link in node.links() if link.get("master") == node.bridge]
    assert len(ports) == PODS

    started = [node.start("pinnace-bridge", "DEL", config=conf, container_id=f"c{i}", netns=pod)
               for i, pod in enumerate(pods)]
    answers = [node.finish(p) for p in started]
    assert all(a.status == 0 for a in answers), [a for a in answers if a.status][:3]
    assert node.store_files() == [], "all DELs leave the IPAM store empty (no leases, no owner indexes)"
    assert [link for link in node.links() if link.get("master") == node.bridge] == []
