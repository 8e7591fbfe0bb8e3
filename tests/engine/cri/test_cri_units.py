"""Pure pieces of the CRI server: config parsing, result reading, filters, conversions, mapping."""

from __future__ import annotations

import base64
from pathlib import Path

import grpc
import pytest

from engine.containers.errors import Conflict
from engine.containers.errors import NotFound as ContainerNotFound
from engine.containers.record import Container, State, Status
from engine.cri import cni, container_config, convert, errors, filters, podfiles
from engine.cri.image_service import credentials_of
from engine.cri.proto import api_pb2 as pb
from engine.cri.sandboxes import Sandbox
from engine.images.errors import ImageNotFound, InvalidReference, RegistryUnavailable

# ------------------------------------------------------------------------------------- CNI config


def test_conflist_and_single_conf_parse():
    listed = cni.parse_network(b'{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}, '
                               b'{"type": "portmap", "capabilities": {"portMappings": true}}]}')
    assert (listed.name, listed.cni_version, [p["type"] for p in listed.plugins]) == ("n", "1.0.0",
                                                                                      ["bridge", "portmap"])
    single = cni.parse_network(b'{"cniVersion": "0.4.0", "name": "old", "type": "bridge", "bridge": "b0"}')
    assert single.plugins == ({"type": "bridge", "bridge": "b0"},)


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"cniVersion": "1.0.0", "plugins": [{"type": "x"}]}', "no network name"),
        (b'{"name": "n", "plugins": [{"type": "x"}]}', "no cniVersion"),
        (b'{"name": "n", "cniVersion": "1.0.0", "plugins": []}', "lists no plugins"),
        (b'{"name": "n", "cniVersion": "1.0.0", "plugins": [{"type": "../../bin/sh"}]}', "plain 'type'"),
        (b'{"name": "n", "cniVersion": "x.y"}', "neither"),
    ],
)
def test_bad_configs_are_invalid_argument(doc: bytes, words: str):
    with pytest.raises(errors.InvalidArgument, match=words):
        cni.parse_network(doc, source="f.conflist")


def test_load_network_takes_the_first_file_in_lexical_order(tmp_path: Path):
    (tmp_path / "20-b.conflist").write_text('{"cniVersion": "1.0.0", "name": "b", "plugins": [{"type": "x"}]}')
    (tmp_path / "10-a.conf").write_text('{"cniVersion": "1.0.0", "name": "a", "type": "x"}')
    (tmp_path / "05-ignored.txt").write_text("nothing")
    assert cni.load_network(tmp_path).name == "a"
    with pytest.raises(errors.NetworkError, match="no CNI config dir"):
        cni.load_network(tmp_path / "missing-dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.NetworkError, match="no CNI network config"):
        cni.load_network(tmp_path / "empty")


def test_plugin_config_injects_name_version_prev_result_and_declared_capabilities():
    network = cni.parse_network(b'{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}, '
                                b'{"type": "portmap", "capabilities": {"portMappings": true}}]}')
    caps = {"portMappings": [{"hostPort": 80, "containerPort": 8080}], "bandwidth": {"x": 1}}
    first = cni.plugin_config(network, network.plugins[0], prev_result=None, capability_args=caps)
    assert first == {"type": "a", "name": "n", "cniVersion": "1.0.0"}
    second = cni.plugin_config(network, network.plugins[1], prev_result={"ips": []}, capability_args=caps)
    assert second["prevResult"] == {"ips": []}
    assert second["runtimeConfig"] == {"portMappings": caps["portMappings"]}


def test_result_ips_keep_the_pods_addresses_ipv4_first():
    result = {
        "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/ns/x"}],
        "ips": [
            {"address": "fd00::5/64", "interface": 2},
            {"address": "10.1.0.1/24", "interface": 0, "gateway": "10.1.0.1"},
            {"address": "10.1.0.5/24", "interface": 2},
        ],
    }
    assert cni.result_ips(result, netns="/run/ns/x") == ("10.1.0.5", "fd00::5")
    assert cni.result_ips({"ip4": {"ip": "10.2.0.3/16"}}) == ("10.2.0.3",)
    with pytest.raises(errors.NetworkError, match="invalid address"):
        cni.result_ips({"ips": [{"address": "nonsense"}]})


def test_find_plugin_searches_the_bin_dirs_in_order(tmp_path: Path):
    first, second = tmp_path / "a", tmp_path / "b"
    for d in (first, second):
        d.mkdir()
        (d / "tool").write_text("#!/bin/sh\n")
        (d / "tool").chmod(0o755)
    (first / "notexec").write_text("")
    assert cni.find_plugin("tool", [str(first), str(second)]) == str(first / "tool")
    with pytest.raises(errors.NetworkError, match="not found"):
        cni.find_plugin("notexec", [str(first)])


# -------------------------------------------------------------------------------- small helpers


def test_resolve_id_takes_unique_prefixes():
    ids = ["abc123", "abd456", "xyz"]
    assert filters.resolve_id("abc", ids, what="container") == "abc123"
    assert filters.resolve_id("xyz", ids, what="container") == "xyz"
    with pytest.raises(errors.InvalidArgument, match="ambiguous"):
        filters.resolve_id("ab", ids, what="container")
    with pytest.raises(errors.NotFound, match="container 'q' not found"):
        filters.resolve_id("q", ids, what="container")
    assert filters.labels_match({"a": "1", "b": "2"}, {"a": "1"})
    assert not filters.labels_match({"a": "1"}, {"a": "2"})


def test_resolv_conf_text_and_validation():
    text = podfiles.resolv_conf(servers=["10.0.0.10", "fd00::a"], searches=["ns.svc.cluster.local"],
                                options=["ndots:5"])
    assert text == "search ns.svc.cluster.local\nnameserver 10.0.0.10\nnameserver fd00::a\noptions ndots:5\n"
    with pytest.raises(errors.InvalidArgument, match="not an IP address"):
        podfiles.resolv_conf(servers=["dns.example"], searches=[], options=[])
    with pytest.raises(errors.InvalidArgument, match="whitespace"):
        podfiles.resolv_conf(servers=[], searches=["a b"], options=[])
    assert "10.1.2.3\tweb" in podfiles.hosts_file(hostname="web", ips=["10.1.2.3"])


def test_iso_times_become_nanoseconds():
    assert convert.iso_to_ns("1970-01-01T00:00:01.000000002Z") == 1_000_000_002
    assert convert.iso_to_ns("1970-01-01T00:00:03Z") == 3_000_000_000
    assert convert.iso_to_ns("1970-01-01T01:00:00.5+01:00") == 500_000_000
    assert convert.iso_to_ns("") == 0 and convert.iso_to_ns("garbage") == 0


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (ImageNotFound("x"), grpc.StatusCode.NOT_FOUND),
        (InvalidReference("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (ContainerNotFound("x"), grpc.StatusCode.NOT_FOUND),
        (Conflict("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (RegistryUnavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (ValueError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (RuntimeError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_errors_map_to_grpc_codes(exc: Exception, code: grpc.StatusCode):
    assert errors.status_of(exc) == code


def test_auth_config_becomes_credentials_for_the_images_registry():
    auth = pb.AuthConfig(auth=base64.b64encode(b"me:secret").decode())
    creds = credentials_of(auth, "registry.example:5000/app:1")
    assert list(creds) == ["registry.example:5000"]
    assert (creds["registry.example:5000"].username, creds["registry.example:5000"].password) == ("me", "secret")
    assert credentials_of(pb.AuthConfig(), "busybox") is None
    with pytest.raises(errors.InvalidArgument):
        credentials_of(pb.AuthConfig(auth="!!!"), "busybox")


def test_exit_reasons():
    def exited(code: int, oom: bool = False) -> Container:
        state = State(status=Status.EXITED, exit_code=code, oom_killed=oom)
        return Container(id="c", config=None, state=state, paths=None)  # type: ignore[arg-type]

    assert [convert.exit_reason(exited(0)), convert.exit_reason(exited(1)), convert.exit_reason(exited(137, True))] \
        == ["Completed", "Error", "OOMKilled"]


# ----------------------------------------------------------------------- container config mapping


def _sandbox(tmp_path: Path, *, host_network: bool = False) -> Sandbox:
    config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="web", namespace="ns", uid="u-1"),
                                 log_directory=str(tmp_path / "logs"))
    config.linux.sysctls["net.ipv4.ip_unprivileged_port_start"] = "0"
    namespaces = {} if host_network else {"net": "/run/x/netns/s", "ipc": "/run/x/ipcns/s", "uts": "/run/x/utsns/s"}
    if host_network:
        namespaces = {"ipc": "/run/x/ipcns/s"}
    return Sandbox(id="s" * 64, config=config, dir=tmp_path / "sb", created_at=1, namespaces=namespaces,
                   host_network=host_network, hostname="web")


def test_translate_maps_kubernetes_semantics(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    cfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="app", attempt=2),
        image=pb.ImageSpec(image="busybox"),
        command=["httpd"],
        args=["-f"],
        envs=[pb.KeyValue(key="A", value="1")],
        working_dir="/srv",
        mounts=[pb.Mount(container_path="/data", host_path=str(data), readonly=True,
                         propagation=pb.PROPAGATION_HOST_TO_CONTAINER),
                pb.Mount(container_path="/etc/hosts", host_path=str(data))],
        labels={"l": "v"},
        log_path="app/2.log",
    )
    cfg.linux.resources.memory_limit_in_bytes = 64 << 20
    cfg.linux.resources.cpu_quota = 50_000
    cfg.linux.resources.cpu_period = 100_000
    ctx = cfg.linux.security_context
    ctx.run_as_user.value = 1000
    ctx.run_as_group.value = 2000
    ctx.capabilities.add_capabilities.append("NET_ADMIN")
    ctx.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
    ctx.namespace_options.pid = pb.CONTAINER
    sandbox = _sandbox(tmp_path)
    out = container_config.translate(cfg, sandbox, image="sha256:" + "a" * 64)
    assert (out.entrypoint, out.command) == (["httpd"], ["-f"])
    assert out.name == "k8s_app_web_ns_u-1_2"
    assert (out.env, out.workdir, out.user) == (["A=1"], "/srv", "1000:2000")
    assert out.network == "/run/x/netns/s"
    assert out.namespace_paths == {"uts": "/run/x/utsns/s", "ipc": "/run/x/ipcns/s"}
    by_dest = {m.destination: m for m in out.mounts}
    assert by_dest["/data"].readonly and by_dest["/data"].propagation == "rslave"
    assert by_dest["/etc/hosts"].source == str(data)  # the container's own mount wins
    assert by_dest["/etc/resolv.conf"].source == str(sandbox.resolv_conf)
    assert (out.resources.memory, out.resources.cpu_quota, out.resources.cpu_shares) == (64 << 20, 50_000, None)
    assert (out.seccomp, out.cap_add) == ("default", ["NET_ADMIN"])
    assert out.sysctls == {"net.ipv4.ip_unprivileged_port_start": "0"}
    info = container_config.CriInfo.from_extra(out.extra)
    assert (info.sandbox_id, info.name, info.attempt) == (sandbox.id, "app", 2)
    assert info.log_path == str(tmp_path / "logs" / "app/2.log")
    assert info.image_spec.image == "busybox"


def test_translate_defaults_and_host_network(tmp_path: Path):
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="app"), image=pb.ImageSpec(image="x"), args=["a"])
    out = container_config.translate(cfg, _sandbox(tmp_path, host_network=True), image="x")
    assert (out.entrypoint, out.command) == (None, ["a"])
    assert out.network == "host" and out.namespace_paths["uts"] == "host" and out.hostname is None
    assert out.seccomp == "unconfined"  # the CRI's default when no profile is given


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c.devices.append(pb.Device(container_path="/dev/x", host_path="/dev/null")), "devices"),
        (lambda c: c.mounts.append(pb.Mount(container_path="/m", image=pb.ImageSpec(image="i"))), "image volume"),
        (lambda c: setattr(c.linux.security_context.seccomp, "profile_type", pb.SecurityProfile.Localhost),
         "localhost seccomp"),
        (lambda c: c.linux.security_context.run_as_group.CopyFrom(pb.Int64Value(value=1)), "run_as_group needs"),
        (lambda c: setattr(c, "log_path", "/abs.log"), "relative"),
        (lambda c: c.metadata.Clear(), "metadata with a name"),
    ],
)
def test_translate_refuses_what_it_cannot_honour(tmp_path: Path, change, words: str):
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="app"), image=pb.ImageSpec(image="x"))
    change(cfg)
    with pytest.raises(errors.InvalidArgument, match=words):
        container_config.translate(cfg, _sandbox(tmp_path), image="x")
