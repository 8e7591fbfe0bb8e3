"""Pod networking through CNI plugins, as the CNI spec 1.0 says a runtime invokes them.

The engine does not build networks itself: it reads a network configuration list from a config dir
(the first ``*.conflist``, ``*.conf`` or ``*.json`` in lexical order, as libcni and containerd
pick it), finds each plugin's executable by its ``type`` in a list of bin dirs, and executes it
with ``CNI_COMMAND``/``CNI_CONTAINERID``/``CNI_NETNS``/``CNI_IFNAME``/``CNI_ARGS``/``CNI_PATH`` in
its environment and the plugin's config on stdin, with ``name`` and ``cniVersion`` of the list
injected, ``runtimeConfig`` for the capabilities the plugin declares (port mappings), and the
previous plugin's result as ``prevResult`` (chaining). ADD runs the plugins in order; DEL runs them
in reverse with the cached ADD result (or none, after a failed ADD: DEL must still clean up);
CHECK runs them in order with the cached result. A plugin's failure (non-zero exit, CNI error
JSON on stdout) is a ``NetworkError`` carrying its code and message.

Results of every version the reference plugins speak are read for their addresses: 0.3.x/0.4/1.0
``ips`` (``address`` with prefix, ``interface`` index into ``interfaces``) and 0.1/0.2 ``ip4``/``ip6``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.cri.errors import InvalidArgument, NetworkError

DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_BIN_DIRS: tuple[str, ...] = ("/opt/cni/bin", "/usr/lib/cni")
CONFIG_SUFFIXES: tuple[str, ...] = (".conflist", ".conf", ".json")
PLUGIN_TIMEOUT = 60.0  # seconds one plugin invocation may take
CHECK_MIN_VERSION = (0, 4, 0)  # CHECK exists from this spec version on
_STDERR_CAP = 2000


class Command:
    ADD = "ADD"
    DEL = "DEL"
    CHECK = "CHECK"


@dataclass(frozen=True)
class NetworkList:
    """One network configuration list: its name, spec version and plugin configs in order."""

    name: str
    cni_version: str
    plugins: tuple[Mapping[str, Any], ...]
    disable_check: bool = False
    source: str = ""


@dataclass(frozen=True)
class Attachment:
    """One container's attachment to a network: who, where, and the runtime's extra arguments."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: Mapping[str, str] = field(default_factory=dict)  # CNI_ARGS, e.g. K8S_POD_NAME
    capability_args: Mapping[str, Any] = field(default_factory=dict)  # runtimeConfig, e.g. portMappings


@dataclass(frozen=True)
class NetworkResult:
    """A finished ADD: the final result document and the pod's addresses (IPv4 first)."""

    document: Mapping[str, Any]
    ips: tuple[str, ...]

    @property
    def primary_ip(self) -> str:
        return self.ips[0] if self.ips else ""


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        raise InvalidArgument(f"invalid cniVersion {text!r}") from None


def parse_network(data: bytes, *, source: str = "") -> NetworkList:
    """A ``.conflist`` document, or a single plugin's ``.conf`` wrapped as a one-plugin list."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"CNI config {source or '<input>'} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"CNI config {source or '<input>'} is not a JSON object")
    if "plugins" in doc:
        plugins = doc["plugins"]
    elif "type" in doc:  # a single-plugin .conf
        plugins = [{k: v for k, v in doc.items() if k not in ("name", "cniVersion")}]
    else:
        raise InvalidArgument(f"CNI config {source or '<input>'} has neither 'plugins' nor 'type'")
    name, version = doc.get("name"), doc.get("cniVersion", "")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"CNI config {source or '<input>'} has no network name")
    if not isinstance(version, str) or not version:
        raise InvalidArgument(f"CNI config {source or '<input>'} has no cniVersion")
    _version_tuple(version)
    if not isinstance(plugins, list) or not plugins:
        raise InvalidArgument(f"CNI config {source or '<input>'} lists no plugins")
    for plugin in plugins:
        kind = plugin.get("type") if isinstance(plugin, dict) else None
        if not isinstance(kind, str) or not kind or "/" in kind or kind.startswith("."):
            raise InvalidArgument(f"CNI config {source or '<input>'}: every plugin needs a plain 'type' name")
    return NetworkList(
        name=name,
        cni_version=version,
        plugins=tuple(plugins),
        disable_check=bool(doc.get("disableCheck", False)),
        source=source,
    )


def load_network(conf_dir: str | os.PathLike[str]) -> NetworkList:
    """The network of ``conf_dir``: its first config file in lexical order (blocking: file reads)."""
    directory = Path(conf_dir)
    try:
        candidates = sorted(p for p in directory.iterdir() if p.suffix in CONFIG_SUFFIXES and p.is_file())
    except FileNotFoundError:
        raise NetworkError(f"no CNI config dir {directory}") from None
    if not candidates:
        raise NetworkError(f"no CNI network config found in {directory}")
    return parse_network(candidates[0].read_bytes(), source=str(candidates[0]))


def find_plugin(kind: str, bin_dirs: Sequence[str]) -> str:
    """The executable for plugin type ``kind``: the first bin dir that has it."""
    for directory in bin_dirs:
        path = os.path.join(directory, kind)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise NetworkError(f"CNI plugin {kind!r} not found in {':'.join(bin_dirs)}")


def _cni_args(args: Mapping[str, str]) -> str:
    for key, value in args.items():
        if not key or any(c in key + value for c in ";="):
            raise InvalidArgument(f"CNI argument {key}={value!r} is empty or has a ';' or '=' in it")
    return ";".join(f"{k}={v}" for k, v in args.items())


def plugin_config(
    network: NetworkList,
    plugin: Mapping[str, Any],
    *,
    prev_result: Mapping[str, Any] | None,
    capability_args: Mapping[str, Any],
) -> dict[str, Any]:
    """What one plugin reads on stdin: its own config plus the list's name and version, the
    previous result, and the runtime's values for the capabilities it declares."""
    conf = dict(plugin)
    conf["name"] = network.name
    conf["cniVersion"] = network.cni_version
    if prev_result is not None:
        conf["prevResult"] = dict(prev_result)
    wanted = plugin.get("capabilities") or {}
    runtime = {k: v for k, v in capability_args.items() if wanted.get(k)}
    if runtime:
        conf["runtimeConfig"] = runtime
    return conf


def result_ips(result: Mapping[str, Any], *, netns: str = "") -> tuple[str, ...]:
    """The addresses a result gives the container, without prefix length, IPv4 ones first.

    Addresses on an interface the result places in a sandbox (``netns`` if given) are the pod's;
    ones on host-side interfaces (a bridge's gateway address) are not. A result that names no
    sandbox interface at all is taken whole."""
    interfaces = result.get("interfaces") or []
    entries = [e for e in result.get("ips") or [] if isinstance(e, Mapping) and e.get("address")]

    def in_pod(entry: Mapping[str, Any]) -> bool:
        index = entry.get("interface")
        if not isinstance(index, int) or not 0 <= index < len(interfaces):
            return True
        sandbox = interfaces[index].get("sandbox", "")
        return bool(sandbox) and (not netns or sandbox == netns)

    found = [e["address"] for e in entries if in_pod(e)] or [e["address"] for e in entries]
    for legacy in ("ip4", "ip6"):  # 0.1.0 / 0.2.0 results
        if isinstance(result.get(legacy), Mapping) and result[legacy].get("ip"):
            found.append(result[legacy]["ip"])
    ips = []
    for address in found:
        try:
            ips.append(ipaddress.ip_interface(address).ip)
        except ValueError:
            raise NetworkError(f"CNI result has an invalid address {address!r}") from None
    ips.sort(key=lambda ip: ip.version)
    return tuple(str(ip) for ip in ips)


def _error_text(kind: str, command: str, code: int | None, stdout: bytes, stderr: bytes) -> str:
    """The plugin's CNI error (``{"code", "msg", "details"}``) or whatever it printed."""
    detail = ""
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        doc = orjson.loads(stdout)
        msg = doc.get("msg", "")
        detail = f"{msg}: {doc['details']}" if doc.get("details") else msg
        if doc.get("code") is not None:
            detail = f"{detail} (CNI error code {doc['code']})"
    if not detail:
        detail = (stderr or stdout).decode(errors="replace").strip()[-_STDERR_CAP:] or f"exit status {code}"
    return f"CNI plugin {kind} {command} failed: {detail}"


class CNI:
    """Invokes the plugins of one config dir and bin-dir list; stateless apart from those paths."""

    def __init__(
        self,
        *,
        conf_dir: str | os.PathLike[str] = DEFAULT_CONF_DIR,
        bin_dirs: Sequence[str] = DEFAULT_BIN_DIRS,
        timeout: float = PLUGIN_TIMEOUT,
    ) -> None:
        self.conf_dir = Path(conf_dir)
        self.bin_dirs = tuple(bin_dirs)
        self.timeout = timeout

    async def network(self) -> NetworkList:
        """The network pods join now (the config dir is read on each call, so edits take effect)."""
        return await asyncio.to_thread(load_network, self.conf_dir)

    async def _exec(
        self, *, kind: str, command: str, attachment: Attachment, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        binary = find_plugin(kind, self.bin_dirs)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": attachment.container_id,
            "CNI_NETNS": attachment.netns,
            "CNI_IFNAME": attachment.ifname,
            "CNI_ARGS": _cni_args(attachment.args),
            "CNI_PATH": ":".join(self.bin_dirs),
        }
        proc = await asyncio.create_subprocess_exec(
            binary,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await proc.communicate(orjson.dumps(config))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise NetworkError(f"CNI plugin {kind} {command} timed out after {self.timeout:g}s") from None
        except BaseException:  # cancelled: never leave the plugin behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            raise
        if proc.returncode != 0:
            raise NetworkError(_error_text(kind, command, proc.returncode, stdout, stderr))
        if command != Command.ADD or not stdout.strip():
            return {}
        try:
            result = orjson.loads(stdout)
        except orjson.JSONDecodeError:
            raise NetworkError(f"CNI plugin {kind} ADD printed a result that is not JSON") from None
        if not isinstance(result, dict):
            raise NetworkError(f"CNI plugin {kind} ADD printed a result that is not a JSON object")
        return result

    async def add(self, network: NetworkList, attachment: Attachment) -> NetworkResult:
        """ADD through every plugin in order, each seeing the previous one's result."""
        result: dict[str, Any] | None = None
        for plugin in network.plugins:
            conf = plugin_config(network, plugin, prev_result=result, capability_args=attachment.capability_args)
            out = await self._exec(kind=plugin["type"], command=Command.ADD, attachment=attachment, config=conf)
            result = out or result  # a plugin with nothing to add passes the previous result on
        document = result or {"cniVersion": network.cni_version}
        return NetworkResult(document=document, ips=result_ips(document, netns=attachment.netns))

    async def delete(
        self, network: NetworkList, attachment: Attachment, *, prev_result: Mapping[str, Any] | None
    ) -> None:
        """DEL through every plugin in reverse order; every plugin is tried, the first error raised."""
        first: NetworkError | None = None
        for plugin in reversed(network.plugins):
            conf = plugin_config(
                network, plugin, prev_result=prev_result, capability_args=attachment.capability_args
            )
            try:
                await self._exec(kind=plugin["type"], command=Command.DEL, attachment=attachment, config=conf)
            except NetworkError as exc:
                first = first or exc
        if first is not None:
            raise first

    async def check(
        self, network: NetworkList, attachment: Attachment, *, prev_result: Mapping[str, Any]
    ) -> None:
        """CHECK through every plugin (skipped before spec 0.4.0 and when the list disables it)."""
        if network.disable_check or _version_tuple(network.cni_version) < CHECK_MIN_VERSION:
            return
        for plugin in network.plugins:
            conf = plugin_config(
                network, plugin, prev_result=prev_result, capability_args=attachment.capability_args
            )
            await self._exec(kind=plugin["type"], command=Command.CHECK, attachment=attachment, config=conf)
