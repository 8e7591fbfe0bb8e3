"""IPv4/IPv6 addresses and prefixes for the plugin, as (family, int) values parsed by the C socket module.

The standard ``ipaddress`` module costs about 5 ms of import (``functools``, ``re`` on first use) in a
process whose whole budget is ~20 ms, and the plugin needs only a little of it: parse and print
addresses, a prefix's first/last address, membership, and address + prefix-length pairs ("10.1.0.5/24",
the CNI result's form). ``_socket.inet_pton`` parses in C; IPv6 is printed per RFC 5952, as Go's
plugins and ``ipaddress`` print it (``inet_ntop`` would write ``::1:0`` as ``::0.1.0.0``).
"""

from __future__ import annotations

import _socket

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
BITS = {AF_INET: 32, AF_INET6: 128}
BYTES = {AF_INET: 4, AF_INET6: 16}


class AddressError(ValueError):
    """Text that is not an IP address or prefix of the expected form."""


class IP:
    """One address: its family and its value as an integer (so ranges are arithmetic)."""

    __slots__ = ("family", "value")

    def __init__(self, family: int, value: int) -> None:
        self.family = family
        self.value = value

    @classmethod
    def parse(cls, text: object) -> IP:
        if not isinstance(text, str):
            raise AddressError(f"{text!r} is not an IP address")
        family = AF_INET6 if ":" in text else AF_INET
        try:
            packed = _socket.inet_pton(family, text)
        except (OSError, ValueError):
            raise AddressError(f"{text!r} is not an IP address") from None
        return cls(family, int.from_bytes(packed, "big"))

    @classmethod
    def from_bytes(cls, family: int, packed: bytes) -> IP:
        return cls(family, int.from_bytes(packed, "big"))

    @property
    def version(self) -> int:
        return 4 if self.family == AF_INET else 6

    @property
    def packed(self) -> bytes:
        return self.value.to_bytes(BYTES[self.family], "big")

    def __add__(self, offset: int) -> IP:
        return IP(self.family, self.value + offset)

    def __str__(self) -> str:
        if self.family == AF_INET:
            return _socket.inet_ntop(AF_INET, self.packed)
        return _format_v6(self.value)

    def __repr__(self) -> str:
        return f"IP({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IP) and (self.family, self.value) == (other.family, other.value)

    def __lt__(self, other: IP) -> bool:
        return (self.family, self.value) < (other.family, other.value)

    def __hash__(self) -> int:
        return hash((self.family, self.value))


def _format_v6(value: int) -> str:
    """RFC 5952 text: lower-case hex, the longest run of two or more zero groups as "::" (the first on a
    tie), never a dotted quad (inet_ntop prints ::/96 addresses as "::1.2.3.4")."""
    groups = [(value >> shift) & 0xFFFF for shift in range(112, -16, -16)]
    best_start, best_len, start = -1, 1, None
    for i, group in enumerate([*groups, 1]):
        if group == 0 and start is None:
            start = i
        elif group != 0 and start is not None:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = None
    text = [f"{g:x}" for g in groups]
    if best_start < 0:
        return ":".join(text)
    return ":".join(text[:best_start]) + "::" + ":".join(text[best_start + best_len:])


class Prefix:
    """An address with a prefix length: a network ("10.1.0.0/24") or an interface address ("10.1.0.5/24")."""

    __slots__ = ("ip", "length")

    def __init__(self, ip: IP, length: int) -> None:
        self.ip = ip
        self.length = length

    @classmethod
    def parse(cls, text: object, *, strict: bool = False) -> Prefix:
        """``strict`` refuses host bits (for subnets); a bare address means a single-address prefix."""
        if not isinstance(text, str):
            raise AddressError(f"{text!r} is not an IP prefix")
        address, slash, length_text = text.partition("/")
        ip = IP.parse(address)
        bits = BITS[ip.family]
        if not slash:
            length = bits
        elif length_text.isascii() and length_text.isdigit() and int(length_text) <= bits:
            length = int(length_text)
        else:
            raise AddressError(f"{text!r} has an invalid prefix length")
        prefix = cls(ip, length)
        if strict and prefix.ip != prefix.network:
            raise AddressError(f"{text!r} has host bits set (network is {prefix.network}/{length})")
        return prefix

    @property
    def family(self) -> int:
        return self.ip.family

    @property
    def _host_mask(self) -> int:
        return (1 << (BITS[self.ip.family] - self.length)) - 1

    @property
    def network(self) -> IP:
        return IP(self.ip.family, self.ip.value & ~self._host_mask)

    @property
    def last(self) -> IP:
        return IP(self.ip.family, self.ip.value | self._host_mask)

    @property
    def size(self) -> int:
        return self._host_mask + 1

    def masked(self) -> Prefix:
        return Prefix(self.network, self.length)

    def contains(self, ip: IP) -> bool:
        return ip.family == self.ip.family and (ip.value & ~self._host_mask) == self.network.value

    def __str__(self) -> str:
        return f"{self.ip}/{self.length}"

    def __repr__(self) -> str:
        return f"Prefix({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prefix) and (self.ip, self.length) == (other.ip, other.length)

    def __hash__(self) -> int:
        return hash((self.ip, self.length))
