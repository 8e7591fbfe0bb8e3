"""host-local IPAM on its own (no namespaces needed): leases, round-robin, exhaustion, release, GC,
config validation, and concurrent processes sharing one store."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cni import install, ipam_host_local, spec


def invocation(data_dir: Path, *, container_id: str = "c0", command: str = "ADD", ranges: list | None = None,
               **ipam: object) -> spec.Invocation:
    config = {"cniVersion": "1.0.0", "name": "net1", "type": "pinnace-host-local",
              "ipam": {"type": "pinnace-host-local", "ranges": ranges or [[{"subnet": "10.60.0.0/29"}]],
                       "dataDir": str(data_dir), **ipam}}
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": "/x", "CNI_IFNAME": "eth0"}
    return spec.parse_invocation(env, json.dumps(config).encode())


def leases(data_dir: Path) -> dict[str, str]:
    store = data_dir / "net1"
    return {p.name: p.read_text() for p in store.iterdir()
            if (p.name[0].isdigit() or ":" in p.name) and not p.name.startswith("owner:")}


def indexes(data_dir: Path) -> dict[str, list[str]]:
    store = data_dir / "net1"
    return {p.name: p.read_text().split() for p in store.iterdir() if p.name.startswith("owner:")}


def test_leases_skip_the_gateway_and_go_round_robin(tmp_path: Path) -> None:
    got = [ipam_host_local.allocate(invocation(tmp_path, container_id=f"c{i}")) for i in range(3)]
    assert [r["ips"] for r in got] == [[{"address": f"10.60.0.{n}/29", "gateway": "10.60.0.1"}] for n in (2, 3, 4)]
    assert leases(tmp_path)["10.60.0.2"] == "c0\neth0\n"
    ipam_host_local.release(invocation(tmp_path, container_id="c0"))
    again = ipam_host_local.allocate(invocation(tmp_path, container_id="c9"))
    assert again["ips"][0]["address"] == "10.60.0.5/29", "a freed address is not reused at once"
    same = ipam_host_local.allocate(invocation(tmp_path, container_id="c9"))
    assert same["ips"] == again["ips"], "a repeated ADD returns the lease it already holds"


def test_exhaustion_is_code_11_and_takes_nothing(tmp_path: Path) -> None:
    ranges = [[{"subnet": "10.60.0.0/30"}], [{"subnet": "fd00:60::/126", "rangeStart": "fd00:60::2",
                                              "rangeEnd": "fd00:60::2"}]]
    first = ipam_host_local.allocate(invocation(tmp_path, ranges=ranges))
    assert [ip["address"] for ip in first["ips"]] == ["10.60.0.2/30", "fd00:60::2/126"]
    ranges[0] = [{"subnet": "10.61.0.0/24"}]  # room in v4, none left in v6: the v4 lease is given back
    with pytest.raises(spec.CniError) as info:
        ipam_host_local.allocate(invocation(tmp_path, container_id="c1", ranges=ranges))
    assert info.value.code == spec.TRY_AGAIN_LATER and "fd00:60::/126" in info.value.details
    assert sorted(leases(tmp_path)) == ["10.60.0.2", "fd00:60::2"]
    with pytest.raises(spec.CniError) as info:
        ipam_host_local.ready(invocation(tmp_path, ranges=ranges))
    assert info.value.code == spec.NOT_AVAILABLE


def test_release_and_gc(tmp_path: Path) -> None:
    for i in range(4):
        ipam_host_local.allocate(invocation(tmp_path, container_id=f"c{i}"))
    ipam_host_local.release(invocation(tmp_path, container_id="c1", command="DEL"))
    ipam_host_local.release(invocation(tmp_path, container_id="c1", command="DEL"))
    assert sorted(leases(tmp_path)) == ["10.60.0.2", "10.60.0.4", "10.60.0.5"]
    gc = invocation(tmp_path, command="DEL")
    gc.config["cni.dev/valid-attachments"] = [{"containerID": "c2", "ifname": "eth0"}]
    ipam_host_local.release_stale(gc)
    assert list(leases(tmp_path)) == ["10.60.0.4"]
    ipam_host_local.release(invocation(tmp_path / "elsewhere", container_id="c1", command="DEL"))


def test_check_and_dns(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# comment\nnameserver 10.96.0.10\nsearch a.svc b.svc\noptions ndots:5\n\ndomain x\n")
    result = ipam_host_local.allocate(invocation(tmp_path, resolvConf=str(resolv), routes=[{"dst": "0.0.0.0/0"}]))
    assert result["dns"] == {"nameservers": ["10.96.0.10"], "search": ["a.svc", "b.svc"], "options": ["ndots:5"],
                             "domain": "x"}
    assert result["routes"] == [{"dst": "0.0.0.0/0"}]
    ipam_host_local.verify(invocation(tmp_path), result)
    with pytest.raises(spec.CniError) as info:
        ipam_host_local.verify(invocation(tmp_path, container_id="other"), result)
    assert info.value.code == spec.CHECK_FAILED


@pytest.mark.parametrize(("ipam", "words"), [
    ({"ranges": []}, "non-empty"), ({"ranges": [[{"subnet": "10.0.0.0/31"}]]}, "too small"),
    ({"ranges": [[{"subnet": "nope"}]]}, "not an IP"), ({"ranges": [[{"rangeStart": "10.0.0.2"}]]}, "subnet"),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.2"}]]}, "outside"),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.3"}]]}, "after"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/25"}]]}, "overlaps"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]]}, "mixes"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]], "routes": [{"dst": "x"}]}, "route"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]], "dataDir": 5}, "dataDir"),
])
def test_invalid_ipam_configs_are_code_7(tmp_path: Path, ipam: dict, words: str) -> None:
    inv = invocation(tmp_path)
    inv.config["ipam"] = {"type": "pinnace-host-local", **ipam}
    with pytest.raises(spec.CniError) as info:
        ipam_host_local.allocate(inv)
    assert info.value.code == spec.INVALID_CONFIG and words in info.value.details


def test_legacy_single_range_fields(tmp_path: Path) -> None:
    inv = invocation(tmp_path)
    inv.config["ipam"] = {"type": "pinnace-host-local", "subnet": "10.62.0.0/24", "rangeStart": "10.62.0.100",
                          "gateway": "10.62.0.254", "dataDir": str(tmp_path)}
    assert ipam_host_local.allocate(inv)["ips"] == [{"address": "10.62.0.100/24", "gateway": "10.62.0.254"}]


def test_concurrent_processes_never_share_an_address(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    install.install(str(bin_dir))
    config = {"cniVersion": "1.0.0", "name": "net1", "type": "pinnace-host-local",
              "ipam": {"type": "pinnace-host-local", "ranges": [[{"subnet": "10.63.0.0/26"}]],
                       "dataDir": str(tmp_path)}}
    processes = [subprocess.Popen([str(bin_dir / "pinnace-host-local")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  env={"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"c{i}", "CNI_NETNS": "/x",
                                       "CNI_IFNAME": "eth0"}) for i in range(40)]
    outputs = [p.communicate(json.dumps(config).encode(), timeout=60)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    addresses = [json.loads(out)["ips"][0]["address"] for out in outputs]
    assert len(set(addresses)) == 40 and len(leases(tmp_path)) == 40


def test_owner_indexes_spare_scans_but_lease_files_stay_the_truth(tmp_path: Path) -> None:
    dual = [[{"subnet": "10.64.0.0/29"}], [{"subnet": "fd00:64::/125"}]]
    for i in range(3):
        ipam_host_local.allocate(invocation(tmp_path, container_id=f"c{i}", ranges=dual))
    assert indexes(tmp_path)["owner:c1:eth0"] == ["10.64.0.3", "fd00:64::3"]
    ipam_host_local.release(invocation(tmp_path, container_id="c1", ranges=dual, command="DEL"))
    assert "owner:c1:eth0" not in indexes(tmp_path) and "10.64.0.3" not in leases(tmp_path)

    (tmp_path / "net1" / "owner:c0:eth0").unlink()  # a crash between the lease and its index
    ipam_host_local.release(invocation(tmp_path, container_id="c0", ranges=dual, command="DEL"))
    assert sorted(leases(tmp_path)) == ["10.64.0.4", "fd00:64::4"], "DEL falls back to scanning"

    (tmp_path / "net1" / "owner:c9:eth0").write_text("10.64.0.4\n")  # an index that lies
    ipam_host_local.release(invocation(tmp_path, container_id="c9", ranges=dual, command="DEL"))
    assert "10.64.0.4" in leases(tmp_path), "a lease file naming another owner is not freed"

    gc = invocation(tmp_path, command="DEL", ranges=dual)
    gc.config["cni.dev/valid-attachments"] = []
    ipam_host_local.release_stale(gc)
    assert leases(tmp_path) == {} and indexes(tmp_path) == {}
