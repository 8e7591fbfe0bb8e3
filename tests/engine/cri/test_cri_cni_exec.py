"""CNI invocation against fake plugins (shell scripts that record how they were called).

Checks what the CNI spec asks of a runtime: the CNI_* environment, the config on stdin with name,
cniVersion and prevResult, ADD in order with chaining, DEL in reverse with the cached result, a
plugin's error JSON becoming a NetworkError, and a plugin that hangs being killed at the timeout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cri.cni import CNI, Attachment, parse_network
from engine.cri.errors import NetworkError

PLUGIN = """#!/bin/sh
echo "$CNI_COMMAND {name}" >> {log}/calls
env | grep '^CNI_' | sort > {log}/{name}.$CNI_COMMAND.env
cat > {log}/{name}.$CNI_COMMAND.stdin
{body}
"""
RESULT_ONE = '{"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/ns"}], ' \
             '"ips": [{"address": "10.9.0.5/24", "interface": 0}]}'
RESULT_TWO = '{"cniVersion": "1.0.0", "ips": [{"address": "10.9.0.5/24"}, {"address": "fd00::5/64"}]}'
ERROR = '{"cniVersion": "1.0.0", "code": 11, "msg": "no more addresses", "details": "range full"}'


def _plugin(bin_dir: Path, log: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(PLUGIN.format(name=name, log=log, body=body))
    path.chmod(0o755)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    log.mkdir()
    _plugin(bin_dir, log, "one", f"[ \"$CNI_COMMAND\" = ADD ] && echo '{RESULT_ONE}'\nexit 0")
    _plugin(bin_dir, log, "two", f"[ \"$CNI_COMMAND\" = ADD ] && echo '{RESULT_TWO}'\nexit 0")
    _plugin(bin_dir, log, "quiet", "exit 0")
    _plugin(bin_dir, log, "broken", f"echo '{ERROR}'\nexit 1")
    _plugin(bin_dir, log, "garbage", "echo 'not json'\nexit 0")
    _plugin(bin_dir, log, "hang", "exec sleep 30")
    return bin_dir, log


def _network(*types: str, version: str = "1.0.0") -> bytes:
    return json.dumps({"cniVersion": version, "name": "fake", "plugins": [{"type": t, "k": t} for t in types]}).encode()


ATTACH = Attachment(container_id="c0ffee", netns="/ns", args={"K8S_POD_NAME": "web", "IgnoreUnknown": "1"})


async def test_add_chains_results_and_sets_the_environment(dirs: tuple[Path, Path]):
    bin_dir, log = dirs
    cni = CNI(conf_dir=bin_dir, bin_dirs=[str(bin_dir)])
    result = await cni.add(parse_network(_network("one", "quiet", "two")), ATTACH)
    assert result.ips == ("10.9.0.5", "fd00::5")  # the last plugin's result is the pod's
    assert (log / "calls").read_text().splitlines() == ["ADD one", "ADD quiet", "ADD two"]
    env = dict(line.split("=", 1) for line in (log / "one.ADD.env").read_text().splitlines())
    assert env == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c0ffee", "CNI_NETNS": "/ns", "CNI_IFNAME": "eth0",
                   "CNI_ARGS": "K8S_POD_NAME=web;IgnoreUnknown=1", "CNI_PATH": str(bin_dir)}
    first = json.loads((log / "one.ADD.stdin").read_text())
    assert first == {"type": "one", "k": "one", "name": "fake", "cniVersion": "1.0.0"}
    # "quiet" printed nothing: "two" still sees "one"'s result as prevResult
    assert json.loads((log / "two.ADD.stdin").read_text())["prevResult"] == json.loads(RESULT_ONE)


async def test_del_runs_in_reverse_with_the_cached_result(dirs: tuple[Path, Path]):
    bin_dir, log = dirs
    cni = CNI(conf_dir=bin_dir, bin_dirs=[str(bin_dir)])
    network = parse_network(_network("one", "two"))
    await cni.delete(network, ATTACH, prev_result=json.loads(RESULT_TWO))
    assert (log / "calls").read_text().splitlines() == ["DEL two", "DEL one"]
    assert json.loads((log / "one.DEL.stdin").read_text())["prevResult"] == json.loads(RESULT_TWO)
    await cni.delete(network, ATTACH, prev_result=None)  # after a failed ADD: no prevResult at all
    assert "prevResult" not in json.loads((log / "one.DEL.stdin").read_text())


async def test_check_is_skipped_before_0_4_0(dirs: tuple[Path, Path]):
    bin_dir, log = dirs
    cni = CNI(conf_dir=bin_dir, bin_dirs=[str(bin_dir)])
    await cni.check(parse_network(_network("one"), ), ATTACH, prev_result={})
    await cni.check(parse_network(_network("two", version="0.3.1")), ATTACH, prev_result={})
    assert (log / "calls").read_text().splitlines() == ["CHECK one"]


async def test_plugin_errors(dirs: tuple[Path, Path]):
    bin_dir, log = dirs
    cni = CNI(conf_dir=bin_dir, bin_dirs=[str(bin_dir)], timeout=0.5)
    with pytest.raises(NetworkError, match=r"broken ADD failed: no more addresses: range full \(CNI error code 11\)"):
        await cni.add(parse_network(_network("one", "broken")), ATTACH)
    with pytest.raises(NetworkError, match="not JSON"):
        await cni.add(parse_network(_network("garbage")), ATTACH)
    with pytest.raises(NetworkError, match="'missing' not found"):
        await cni.add(parse_network(_network("missing")), ATTACH)
    with pytest.raises(NetworkError, match="timed out"):
        await cni.add(parse_network(_network("hang")), ATTACH)
    # DEL tries every plugin even when one fails, then reports the failure
    (log / "calls").unlink()
    with pytest.raises(NetworkError, match="broken DEL failed"):
        await cni.delete(parse_network(_network("one", "broken", "two")), ATTACH, prev_result=None)
    assert (log / "calls").read_text().splitlines() == ["DEL two", "DEL broken", "DEL one"]
