"""The plugin's start-up-light codecs against the standard library: JSON (``cni.jsonio``) and IP
addresses (``cni.ipnet``) must agree with ``json`` and ``ipaddress`` on everything the plugin meets."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cni import jsonio
from cni.ipnet import IP, AddressError, Prefix

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20)


@given(json_values)
def test_json_round_trips_like_the_standard_library(value: object) -> None:
    text = jsonio.dumps(value)
    assert json.loads(text) == value
    assert jsonio.loads(text) == value
    assert jsonio.loads(json.dumps(value, indent=2).encode()) == value


@pytest.mark.parametrize("text", [b"", b"  ", b"{", b'{"a": }', b'{"a": 1} x', b"NaN", b'{"a": Infinity}',
                                  b"\xff\xfe", b'"unterminated', b"[1,]", b"{'a': 1}"])
def test_invalid_json_is_one_error_type(text: bytes) -> None:
    with pytest.raises(jsonio.JsonError):
        jsonio.loads(text)


def test_values_json_cannot_hold_are_refused() -> None:
    for value in (float("nan"), {"a": object()}, {1j: 2}):
        with pytest.raises(jsonio.JsonError):
            jsonio.dumps(value)


ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(lambda v: ipaddress.IPv4Address(v))
ipv6 = st.integers(min_value=0, max_value=2**128 - 1).map(lambda v: ipaddress.IPv6Address(v))


@given(st.one_of(ipv4, ipv6), st.data())
def test_addresses_and_prefixes_agree_with_ipaddress(address: ipaddress._BaseAddress, data: st.DataObject) -> None:
    ip = IP.parse(str(address))
    assert str(ip) == str(address) and ip.value == int(address) and ip.version == address.version
    assert IP.parse(str(ip)) == ip and hash(IP.parse(str(ip))) == hash(ip)
    length = data.draw(st.integers(min_value=0, max_value=address.max_prefixlen))
    reference = ipaddress.ip_interface(f"{address}/{length}")
    prefix = Prefix.parse(f"{address}/{length}")
    assert str(prefix) == str(reference)
    assert str(prefix.network) == str(reference.network.network_address)
    assert str(prefix.last) == str(reference.network.broadcast_address)
    assert prefix.size == reference.network.num_addresses
    assert str(prefix.masked()) == str(reference.network)
    other = data.draw(st.one_of(ipv4, ipv6))
    assert prefix.contains(IP.parse(str(other))) == (other.version == address.version and other in reference.network)


@pytest.mark.parametrize("text", ["", "10.0.0", "10.0.0.256", "1.2.3.4.5", "fe80::1::2", "10.0.0.1/33",
                                  "::1/129", "10.0.0.1/", "10.0.0.1/x", "10.0.0.1/²", None, 42])
def test_malformed_addresses_raise_address_error(text: object) -> None:
    with pytest.raises(AddressError):
        Prefix.parse(text)


def test_strict_prefixes_refuse_host_bits() -> None:
    assert str(Prefix.parse("10.1.0.0/16", strict=True)) == "10.1.0.0/16"
    with pytest.raises(AddressError, match="host bits"):
        Prefix.parse("10.1.0.5/16", strict=True)
    assert str(Prefix.parse("fd00::5")) == "fd00::5/128"
