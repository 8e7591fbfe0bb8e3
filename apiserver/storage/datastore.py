"""``--datastore``: which backend the API server stores objects in, parsed and opened.

Values:

* ``sqlite`` (default) — the embedded SQLite file ``state.db`` in the server's data dir;
* ``etcd://HOST:PORT[,HOST:PORT...]`` — an etcd v3 cluster (members tried in order; the port
  defaults to etcd's 2379; IPv6 hosts in brackets). Client TLS comes from the
  ``--etcd-cafile/--etcd-certfile/--etcd-keyfile`` options; giving any of them turns TLS on.

No key prefix (several clusters in one etcd) is offered: the watch cache waits for etcd's global
revision, which writes of another cluster would raise without ever reaching this one's watch (see
docs/etcd.md); ``EtcdConfig.prefix`` exists for tests that share one etcd.

Everything is checked here, before anything starts, and a bad value raises ValueError with a
one-line message saying what is wrong and what is expected (the CLI prints it as is).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from apiserver.storage import interface
from apiserver.storage.etcd_channel import EtcdConfig

SQLITE = "sqlite"
ETCD_SCHEME = "etcd://"
ETCD_DEFAULT_PORT = 2379
USAGE = "expected 'sqlite' or 'etcd://HOST:PORT[,HOST:PORT...]'"

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Datastore:
    """A parsed ``--datastore``: ``etcd`` is set for an etcd store, None for SQLite."""

    value: str
    etcd: EtcdConfig | None = None

    @property
    def kind(self) -> str:
        return "sqlite" if self.etcd is None else "etcd"

    def open(self, *, data_dir: Path) -> interface.Storage:
        """The (not yet started) backend; SQLite keeps its file in ``data_dir``."""
        if self.etcd is None:
            from apiserver.storage.sqlite import SqliteStorage

            return SqliteStorage(str(data_dir / "state.db"))
        from apiserver.storage.etcd import EtcdStorage

        return EtcdStorage(self.etcd)


def parse(value: str, *, cafile: str | None = None, certfile: str | None = None,
          keyfile: str | None = None) -> Datastore:
    """Check a ``--datastore`` value and the etcd TLS options that go with it (ValueError)."""
    if not isinstance(value, str):
        raise ValueError(f"unsupported --datastore {value!r}: {USAGE}")
    text = value.strip()
    if text == SQLITE:
        for flag, given in (("--etcd-cafile", cafile), ("--etcd-certfile", certfile), ("--etcd-keyfile", keyfile)):
            if given:
                raise ValueError(f"{flag} applies to an etcd datastore, not to --datastore sqlite")
        return Datastore(text)
    if not text.startswith(ETCD_SCHEME):
        raise ValueError(f"unsupported --datastore {value!r}: {USAGE}")
    hosts, slash, _ = text[len(ETCD_SCHEME):].partition("/")
    try:
        if slash:
            raise ValueError("a path after the endpoints is not supported")
        endpoints = tuple(_endpoint(item) for item in hosts.split(","))
    except ValueError as exc:
        raise ValueError(f"invalid --datastore {value!r}: {exc} ({USAGE})") from None
    _check_tls(cafile=cafile, certfile=certfile, keyfile=keyfile)
    return Datastore(text, EtcdConfig(endpoints, cafile=cafile, certfile=certfile, keyfile=keyfile))


def _endpoint(item: str) -> tuple[str, int]:
    item = item.strip()
    if not item:
        raise ValueError("empty endpoint")
    if item.startswith("["):
        host, bracket, port_text = item[1:].partition("]")
        if not bracket:
            raise ValueError(f"endpoint {item!r} has no closing ']'")
        if port_text and not port_text.startswith(":"):
            raise ValueError(f"endpoint {item!r}: expected ':PORT' after ']'")
        port_text = port_text[1:]
        _ipv6(host, item)
    else:
        host, colon, port_text = item.rpartition(":")
        if not colon:
            host, port_text = item, ""
        elif not host:
            raise ValueError(f"endpoint {item!r} has no host")
        if ":" in host:
            raise ValueError(f"endpoint {item!r}: put an IPv6 address in brackets, as [ADDRESS]:PORT")
        _hostname(host, item)
    return host, _port(port_text, item)


def _port(text: str, item: str) -> int:
    if not text:
        return ETCD_DEFAULT_PORT
    if not text.isdigit():
        raise ValueError(f"port {text!r} of endpoint {item!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} of endpoint {item!r} is not a TCP port (1-65535)")
    return port


def _ipv6(host: str, item: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{host!r} in endpoint {item!r} is not an IPv6 address") from None


def _hostname(host: str, item: str) -> None:
    try:
        ipaddress.IPv4Address(host)
        return
    except ValueError:
        pass
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise ValueError(f"{host!r} in endpoint {item!r} is not a host name or IP address")


def _check_tls(*, cafile: str | None, certfile: str | None, keyfile: str | None) -> None:
    if bool(certfile) != bool(keyfile):
        raise ValueError("--etcd-certfile and --etcd-keyfile go together: give both or neither")
    for flag, path in (("--etcd-cafile", cafile), ("--etcd-certfile", certfile), ("--etcd-keyfile", keyfile)):
        if path and not Path(path).is_file():
            raise ValueError(f"{flag} {path}: no such file")
