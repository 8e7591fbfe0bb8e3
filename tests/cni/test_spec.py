"""``cni.spec`` and ``cni.main.run`` without a network: environment and config validation, error codes,
VERSION, result down-conversion, and which plugin a type name reaches."""

from __future__ import annotations

import json

import pytest

from cni import main, spec

CONFIG = {"cniVersion": "1.0.0", "name": "net1", "type": "pinnace-bridge"}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
       "CNI_PATH": "/opt/cni/bin:/usr/lib/cni", "CNI_ARGS": "K8S_POD_NAME=web;IgnoreUnknown=1"}


def parse(env: dict | None = None, config: object = CONFIG) -> spec.Invocation:
    raw = config if isinstance(config, bytes) else json.dumps(config).encode()
    return spec.parse_invocation({**ENV, **(env or {})}, raw)


def code_of(env: dict | None = None, config: object = CONFIG) -> int:
    with pytest.raises(spec.CniError) as info:
        parse(env, config)
    return info.value.code


def test_a_good_invocation_is_parsed_whole() -> None:
    inv = parse()
    assert (inv.command, inv.container_id, inv.netns, inv.ifname) == ("ADD", "abc", "/run/netns/x", "eth0")
    assert inv.path == ["/opt/cni/bin", "/usr/lib/cni"] and inv.network == "net1" and inv.version == "1.0.0"
    assert inv.args == {"K8S_POD_NAME": "web", "IgnoreUnknown": "1"}
    assert inv.prev_result is None and inv.environ["CNI_COMMAND"] == "ADD"


@pytest.mark.parametrize(("env", "code"), [
    ({"CNI_COMMAND": ""}, 4), ({"CNI_COMMAND": "add"}, 4), ({"CNI_CONTAINERID": ""}, 4),
    ({"CNI_NETNS": ""}, 4), ({"CNI_IFNAME": ""}, 4), ({"CNI_CONTAINERID": "_starts-badly"}, 4),
    ({"CNI_CONTAINERID": "has space"}, 4), ({"CNI_IFNAME": "a" * 16}, 4), ({"CNI_IFNAME": "et/h0"}, 4),
    ({"CNI_IFNAME": ".."}, 4), ({"CNI_ARGS": "novalue"}, 4),
])
def test_environment_problems_are_code_4(env: dict, code: int) -> None:
    assert code_of(env) == code


def test_del_does_not_need_the_namespace_but_check_does() -> None:
    assert parse({"CNI_COMMAND": "DEL", "CNI_NETNS": ""}).netns == ""
    assert code_of({"CNI_COMMAND": "CHECK", "CNI_NETNS": ""}) == 4


@pytest.mark.parametrize(("config", "code"), [
    (b"not json", 6), (b"[]", 6), (b"\xff", 6), ({**CONFIG, "cniVersion": "0.2.0"}, 1),
    ({**CONFIG, "cniVersion": "2.0"}, 1), ({**CONFIG, "cniVersion": 1}, 7), ({"name": "n", "type": "t"}, 7),
    ({**CONFIG, "name": ""}, 7), ({**CONFIG, "name": "-bad"}, 7), ({**CONFIG, "type": None}, 7),
    ({**CONFIG, "prevResult": []}, 7),
])
def test_config_problems_have_the_spec_codes(config: object, code: int) -> None:
    if isinstance(config, dict) and "prevResult" in config:
        with pytest.raises(spec.CniError) as info:
            _ = parse(config=config).prev_result
        assert info.value.code == code
    else:
        assert code_of(config=config) == code


def test_commands_need_a_new_enough_version() -> None:
    assert code_of({"CNI_COMMAND": "CHECK"}, {**CONFIG, "cniVersion": "0.3.1"}) == 1
    assert code_of({"CNI_COMMAND": "GC"}, CONFIG) == 1
    assert parse({"CNI_COMMAND": "GC"}, {**CONFIG, "cniVersion": "1.1.0"}).command == "GC"
    with pytest.raises(spec.CniError) as info:
        parse({"CNI_COMMAND": "GC"}, {**CONFIG, "cniVersion": "1.1.0"}).valid_attachments()
    assert info.value.code == 7
    inv = parse({"CNI_COMMAND": "GC"}, {**CONFIG, "cniVersion": "1.1.0", "cni.dev/attachments": [
        {"containerID": "a", "ifname": "eth0"}]})
    assert inv.valid_attachments() == {("a", "eth0")}


def test_errors_have_the_spec_shape() -> None:
    error = spec.CniError(spec.INVALID_CONFIG, "the details")
    assert error.to_json("1.0.0") == {"cniVersion": "1.0.0", "code": 7, "msg": "Invalid network configuration",
                                      "details": "the details"}
    assert "the details" in str(error)
    custom = spec.CniError(spec.TRY_AGAIN_LATER, "x", msg="IP range exhausted")
    assert custom.to_json("1.0.0")["msg"] == "IP range exhausted"


def test_version_command_answers_without_a_config() -> None:
    for stdin, expected in ((b"", spec.LATEST), (b'{"cniVersion": "0.4.0"}', "0.4.0"),
                            (b'{"cniVersion": "0.1.0"}', spec.LATEST)):
        status, out = main.run("pinnace-bridge", environ={"CNI_COMMAND": "VERSION"}, stdin=stdin)
        assert status == 0
        assert json.loads(out) == {"cniVersion": expected, "supportedVersions": list(spec.SUPPORTED_VERSIONS)}


def test_results_are_converted_down_for_old_configs() -> None:
    result = {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24", "interface": 0},
                                              {"address": "fd00::2/64", "interface": 0}], "dns": {}}
    old = spec.format_result(result, "0.4.0")
    assert old["cniVersion"] == "0.4.0" and [ip["version"] for ip in old["ips"]] == ["4", "6"]
    assert spec.format_result(result, "1.0.0") == result


def test_main_turns_every_failure_into_error_json() -> None:
    status, out = main.run("pinnace-unknown", environ=ENV, stdin=json.dumps(CONFIG).encode())
    assert status == 1 and json.loads(out)["code"] == 7 and "pinnace-bridge" in json.loads(out)["details"]
    status, out = main.run("pinnace-host-local", environ={**ENV, "CNI_COMMAND": "ADD"},
                           stdin=json.dumps({**CONFIG, "type": "pinnace-host-local"}).encode())
    assert status == 1 and json.loads(out)["code"] == 7 and "ipam" in json.loads(out)["details"]
