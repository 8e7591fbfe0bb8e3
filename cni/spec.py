"""The CNI spec's shapes: versions, error codes and error JSON, the ``CNI_*`` environment, configs, results.

Every plugin of ours goes through here, so they all validate the same way and answer in the same
shapes (CNI spec 1.0.0, plus GC and STATUS from 1.1.0; results converted down to 0.3.x/0.4.0 for
older configs). The error codes are the spec's well-known ones; 100 and up are ours (docs/cni.md).
"""

from __future__ import annotations

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = SUPPORTED_VERSIONS[-1]

INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
CHECK_FAILED = 100
INTERNAL = 999

MESSAGES = {
    INCOMPATIBLE_VERSION: "Incompatible CNI version",
    UNSUPPORTED_FIELD: "Unsupported field in network configuration",
    UNKNOWN_CONTAINER: "Container unknown or does not exist",
    INVALID_ENVIRONMENT: "Invalid necessary environment variables",
    IO_FAILURE: "I/O failure",
    DECODE_FAILURE: "Failed to decode content",
    INVALID_CONFIG: "Invalid network configuration",
    TRY_AGAIN_LATER: "Try again later",
    NOT_AVAILABLE: "The plugin is not available",
    CHECK_FAILED: "Container networking is not as expected",
    INTERNAL: "Internal error",
}

# command → (environment variables it needs, first spec version that has it)
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "ADD": (("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"), "0.3.0"),
    "DEL": (("CNI_CONTAINERID", "CNI_IFNAME"), "0.3.0"),
    "CHECK": (("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"), "0.4.0"),
    "GC": ((), "1.1.0"),
    "STATUS": ((), "1.1.0"),
    "VERSION": ((), "0.3.0"),
}

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")  # libcni sends both spellings


class CniError(Exception):
    """A failure reported to the runtime as the spec's error JSON (on stdout, exit status 1)."""

    def __init__(self, code: int, details: str, *, msg: str | None = None) -> None:
        super().__init__(f"{msg or MESSAGES.get(code, MESSAGES[INTERNAL])}: {details}")
        self.code = code
        self.msg = msg or MESSAGES.get(code, MESSAGES[INTERNAL])
        self.details = details

    def to_json(self, version: str) -> dict:
        return {"cniVersion": version, "code": self.code, "msg": self.msg, "details": self.details}


def describe(exc: OSError) -> str:
    """An OSError as one line without the "[Errno N]" prefix (our errors carry the whole story in strerror)."""
    text = exc.strerror if exc.errno is not None and exc.strerror else str(exc)
    return f"{text}: {exc.filename}" if exc.filename else text


def version_key(version: object) -> tuple[int, ...]:
    parts = version.split(".") if isinstance(version, str) else []
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise CniError(INCOMPATIBLE_VERSION, f"{version!r} is not a CNI version (expected like 1.0.0)")
    return tuple(int(p) for p in parts)


def check_version(version: object) -> str:
    version_key(version)
    if version not in SUPPORTED_VERSIONS:
        raise CniError(INCOMPATIBLE_VERSION,
                       f"cniVersion {version} is not supported; supported: {', '.join(SUPPORTED_VERSIONS)}")
    return version  # type: ignore[return-value]


def version_result(requested: str | None) -> dict:
    """The VERSION answer, in the caller's version when we speak it."""
    version = requested if requested in SUPPORTED_VERSIONS else LATEST
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


def is_name(text: object) -> bool:
    """The spec's rule for network names and container ids: alphanumeric first, then [A-Za-z0-9_.-]."""
    return (isinstance(text, str) and text[:1].isascii() and text[:1].isalnum() and set(text) <= _NAME_CHARS)


def is_ifname(text: object) -> bool:
    return (isinstance(text, str) and 0 < len(text.encode()) < 16 and text not in (".", "..")
            and not any(c in "/:" or c.isspace() for c in text))


def parse_cni_args(text: str) -> dict[str, str]:
    """CNI_ARGS: "K1=V1;K2=V2"."""
    found: dict[str, str] = {}
    for item in filter(None, text.split(";")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CniError(INVALID_ENVIRONMENT, f"CNI_ARGS item {item!r} is not KEY=VALUE")
        found[key] = value
    return found


class Invocation:
    """One call of a plugin: the command, its ``CNI_*`` environment and the decoded network config."""

    __slots__ = ("args", "command", "config", "container_id", "environ", "ifname", "netns", "path", "raw",
                 "version")

    def __init__(self, *, command: str, container_id: str, netns: str, ifname: str, args: dict[str, str],
                 path: list[str], config: dict, raw: bytes, version: str, environ: dict[str, str]) -> None:
        self.command, self.container_id, self.netns, self.ifname = command, container_id, netns, ifname
        self.args, self.path, self.config, self.raw, self.version = args, path, config, raw, version
        self.environ = environ  # passed on to delegated plugins

    @property
    def network(self) -> str:
        return self.config["name"]

    @property
    def prev_result(self) -> dict | None:
        prev = self.config.get("prevResult")
        if prev is not None and not isinstance(prev, dict):
            raise CniError(INVALID_CONFIG, "prevResult must be an object")
        return prev

    def valid_attachments(self) -> set[tuple[str, str]]:
        """GC's list of attachments to keep, as (container id, ifname) pairs."""
        for key in VALID_ATTACHMENTS_KEYS:
            if key in self.config:
                items = self.config[key]
                break
        else:
            raise CniError(INVALID_CONFIG, f"GC needs {VALID_ATTACHMENTS_KEYS[0]}")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise CniError(INVALID_CONFIG, f"{VALID_ATTACHMENTS_KEYS[0]} must be a list of objects")
        return {(str(i.get("containerID", "")), str(i.get("ifname", ""))) for i in items}


def decode_config(raw: bytes) -> dict:
    from cni import jsonio

    try:
        config = jsonio.loads(raw)
    except jsonio.JsonError as exc:
        raise CniError(DECODE_FAILURE, f"network configuration on stdin is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CniError(DECODE_FAILURE, "network configuration on stdin must be a JSON object")
    return config


def parse_invocation(environ: dict[str, str], raw: bytes) -> Invocation:
    """Validate the environment and the config; raise CniError with the spec's code on the first problem."""
    command = environ.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        raise CniError(INVALID_ENVIRONMENT, f"CNI_COMMAND={command!r}: expected one of {', '.join(COMMANDS)}")
    if command == "VERSION":
        requested = decode_config(raw).get("cniVersion") if raw.strip() else None
        return Invocation(command=command, container_id="", netns="", ifname="", args={}, path=[],
                          config={}, raw=raw, version=requested if isinstance(requested, str) else LATEST,
                          environ=environ)
    needed, since = COMMANDS[command]
    missing = [name for name in needed if not environ.get(name)]
    if missing:
        raise CniError(INVALID_ENVIRONMENT, f"{command} needs {', '.join(missing)}")
    container_id, ifname = environ.get("CNI_CONTAINERID", ""), environ.get("CNI_IFNAME", "")
    if container_id and not is_name(container_id):
        raise CniError(INVALID_ENVIRONMENT, f"CNI_CONTAINERID={container_id!r} is not a valid container id")
    if ifname and not is_ifname(ifname):
        raise CniError(INVALID_ENVIRONMENT, f"CNI_IFNAME={ifname!r} is not a valid interface name")
    config = decode_config(raw)
    if not isinstance(config.get("cniVersion"), str):
        raise CniError(INVALID_CONFIG, "the network configuration needs a string field 'cniVersion'")
    version = check_version(config["cniVersion"])
    if version_key(version) < version_key(since):
        raise CniError(INCOMPATIBLE_VERSION, f"{command} needs cniVersion {since} or later (config says {version})")
    for field in ("name", "type"):
        if not isinstance(config.get(field), str) or not config[field]:
            raise CniError(INVALID_CONFIG, f"the network configuration needs a string field {field!r}")
    if not is_name(config["name"]):
        raise CniError(INVALID_CONFIG, f"network name {config['name']!r} is not valid")
    return Invocation(command=command, container_id=container_id, netns=environ.get("CNI_NETNS", ""),
                      ifname=ifname, args=parse_cni_args(environ.get("CNI_ARGS", "")),
                      path=[p for p in environ.get("CNI_PATH", "").split(":") if p], config=config, raw=raw,
                      version=version, environ=environ)


def format_result(result: dict, version: str) -> dict:
    """A result in the config's version: before 1.0.0 each IP also names its version ("4"/"6")."""
    shaped = {"cniVersion": version, **{k: v for k, v in result.items() if k != "cniVersion"}}
    if version_key(version) < (1, 0, 0):
        shaped["ips"] = [{**ip, "version": "6" if ":" in ip.get("address", "") else "4"}
                         for ip in result.get("ips", [])]
    return shaped
