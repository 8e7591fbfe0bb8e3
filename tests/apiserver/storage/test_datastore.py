"""``--datastore`` parsing: good values become configs, bad ones one clear ValueError."""

from __future__ import annotations

import pytest

from apiserver.storage import datastore
from apiserver.storage.etcd import EtcdStorage
from apiserver.storage.sqlite import SqliteStorage


def test_sqlite_is_the_embedded_store(tmp_path):
    parsed = datastore.parse("sqlite")
    assert parsed.kind == "sqlite" and parsed.etcd is None
    backend = parsed.open(data_dir=tmp_path)
    assert isinstance(backend, SqliteStorage) and "state.db" in repr(backend)


@pytest.mark.parametrize(("value", "endpoints"), [
    ("etcd://127.0.0.1:2379", (("127.0.0.1", 2379),)),
    ("etcd://etcd-0.local:12379,etcd-1.local:22379", (("etcd-0.local", 12379), ("etcd-1.local", 22379))),
    ("etcd://[::1]:2380,10.0.0.2", (("::1", 2380), ("10.0.0.2", 2379))),
    (" etcd://localhost ", (("localhost", 2379),)),
])
def test_etcd_endpoints(value, endpoints):
    parsed = datastore.parse(value)
    assert parsed.kind == "etcd"
    assert parsed.etcd is not None
    assert parsed.etcd.endpoints == endpoints and parsed.etcd.prefix == ""
    assert not parsed.etcd.tls
    assert isinstance(parsed.open(data_dir=None), EtcdStorage)  # type: ignore[arg-type]


def test_tls_files_are_checked_and_turn_tls_on(tmp_path):
    ca, cert, key = (tmp_path / n for n in ("ca.crt", "c.crt", "c.key"))
    for f in (ca, cert, key):
        f.write_text("x")
    parsed = datastore.parse("etcd://h:1", cafile=str(ca), certfile=str(cert), keyfile=str(key))
    assert parsed.etcd is not None and parsed.etcd.tls
    assert parsed.etcd.describe() == "https://h:1"
    with pytest.raises(ValueError, match=r"--etcd-cafile .*no such file"):
        datastore.parse("etcd://h:1", cafile=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="go together"):
        datastore.parse("etcd://h:1", certfile=str(cert))
    with pytest.raises(ValueError, match="not to --datastore sqlite"):
        datastore.parse("sqlite", cafile=str(ca))


@pytest.mark.parametrize(("value", "says"), [
    ("etcd://nonsense:port", "port 'port' of endpoint 'nonsense:port' is not a number"),
    ("etcd://h:0", "is not a TCP port"),
    ("etcd://h:70000", "is not a TCP port"),
    ("etcd://", "empty endpoint"),
    ("etcd://a:1,,b:2", "empty endpoint"),
    ("etcd://:2379", "has no host"),
    ("etcd://::1:2379", "IPv6 address in brackets"),
    ("etcd://[::1:2379", "no closing ']'"),
    ("etcd://[nothex]:1", "is not an IPv6 address"),
    ("etcd://[::1]x", "expected ':PORT'"),
    ("etcd://bad_host!:1", "is not a host name or IP address"),
    ("etcd://h:1/registry", "a path after the endpoints is not supported"),
])
def test_malformed_values_say_what_is_wrong(value, says):
    with pytest.raises(ValueError) as err:
        datastore.parse(value)
    message = str(err.value)
    assert says in message and "\n" not in message
    assert message.startswith("invalid --datastore")


@pytest.mark.parametrize("value", ["mysql://h:1", "http://127.0.0.1:2379", "", "SQLite"])
def test_other_stores_are_unsupported(value):
    with pytest.raises(ValueError, match=r"^unsupported --datastore .*expected 'sqlite' or 'etcd://"):
        datastore.parse(value)
