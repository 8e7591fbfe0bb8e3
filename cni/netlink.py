"""The plugin's one seam over the kernel's routing netlink (rtnetlink): links, addresses, routes.

Why not pyroute2 here: pyroute2 0.9 builds on asyncio, and importing even its message classes costs
30-40 ms (100-150 ms for ``IPRoute``) on this machine, while the reference plugin's entire ADD takes
~20 ms; a plugin is a fresh process per pod, so that import would dominate every ADD and DEL. The
plugin needs a dozen fixed requests, so this module encodes them with ``struct`` on a raw
``AF_NETLINK`` socket: one request, read until its ACK/DONE, kernel errors (with the kernel's
extended-ack text) raised as ``NetlinkError``. pyroute2 stays where a long-lived process uses netlink
(``cni.routes`` for the node agent) and in the tests, as an independent reader of what this wrote.

A ``Rtnl`` socket belongs to the network namespace that was current when it was opened, so the
bridge plugin opens one on the host, then enters the pod's namespace and opens a second.
"""

from __future__ import annotations

import _socket
import _struct
import errno as _errno

from cni.ipnet import AF_INET, AF_INET6, BITS, IP, Prefix

# message types, flags and attribute numbers from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x100, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # in an error reply
NLA_F_NESTED, NLA_TYPE_MASK = 0x8000, 0x3FFF
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
NLMSGERR_ATTR_MSG = 1
AF_UNSPEC, AF_BRIDGE = 0, 7
IFF_UP, IFF_PROMISC = 0x1, 0x100
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_PROTINFO, IFLA_LINKINFO, IFLA_NET_NS_FD = 12, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFLA_BRPORT_MODE = 4  # hairpin
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS = 1, 2, 4, 8
IFA_F_NODAD, IFA_F_PERMANENT = 0x02, 0x80
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253

_HEADER = _struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_IFINFO = _struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = _struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = _struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_ATTR = _struct.Struct("=HH")
_U32 = _struct.Struct("=I")
_I32 = _struct.Struct("=i")
RECV_BUFFER = 1 << 18
TIMEOUT = 10.0  # seconds; the kernel answers in microseconds, so this only turns a hang into an error


class NetlinkError(OSError):
    """The kernel refused a request; ``errno`` is its error number, the text says which request."""


class Link:
    """What the plugin reads back about a network interface."""

    __slots__ = ("flags", "index", "kind", "mac", "master", "mtu", "name")

    def __init__(self, *, index: int, name: str, flags: int, mtu: int, mac: bytes, master: int,
                 kind: str) -> None:
        self.index, self.name, self.flags, self.mtu = index, name, flags, mtu
        self.mac, self.master, self.kind = mac, master, kind

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def mac_text(self) -> str:
        return ":".join(f"{byte:02x}" for byte in self.mac)


class Route:
    """One route of a dump: enough to check or reconcile what the plugin installed."""

    __slots__ = ("dst", "gateway", "oif", "protocol", "table")

    def __init__(self, *, dst: Prefix, gateway: IP | None, oif: int, table: int, protocol: int) -> None:
        self.dst, self.gateway, self.oif, self.table, self.protocol = dst, gateway, oif, table, protocol


def attr(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return _ATTR.pack(length, kind) + data + b"\0" * (-length % 4)


def nest(kind: int, *parts: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def name_attr(name: str) -> bytes:
    return attr(IFLA_IFNAME, name.encode() + b"\0")


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attribute type → value (the first of each type), from ``offset`` to the end of ``data``."""
    found: dict[int, bytes] = {}
    end = len(data)
    while offset + 4 <= end:
        length, kind = _ATTR.unpack_from(data, offset)
        if length < 4:
            break
        found.setdefault(kind & NLA_TYPE_MASK, data[offset + 4:offset + length])
        offset += (length + 3) & ~3
    return found


def _text(value: bytes | None) -> str:
    return value.split(b"\0", 1)[0].decode(errors="replace") if value else ""


def _u32_of(value: bytes | None) -> int:
    return _U32.unpack_from(value)[0] if value else 0


def parse_link(payload: bytes) -> Link:
    _family, _type, index, flags, _change = _IFINFO.unpack_from(payload)
    attrs = parse_attrs(payload, _IFINFO.size)
    info = parse_attrs(attrs[IFLA_LINKINFO]) if IFLA_LINKINFO in attrs else {}
    return Link(index=index, name=_text(attrs.get(IFLA_IFNAME)), flags=flags, mtu=_u32_of(attrs.get(IFLA_MTU)),
                mac=attrs.get(IFLA_ADDRESS, b""), master=_u32_of(attrs.get(IFLA_MASTER)),
                kind=_text(info.get(IFLA_INFO_KIND)))


def parse_address(payload: bytes) -> tuple[int, Prefix]:
    family, prefixlen, _flags, _scope, index = _IFADDR.unpack_from(payload)
    attrs = parse_attrs(payload, _IFADDR.size)
    packed = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS) or b""
    return index, Prefix(IP.from_bytes(family, packed), prefixlen)


def parse_route(payload: bytes) -> Route:
    family, dst_len, _src, _tos, table, protocol, _scope, _type, _flags = _RTMSG.unpack_from(payload)
    attrs = parse_attrs(payload, _RTMSG.size)
    dst_bytes = attrs.get(RTA_DST) or bytes(BITS[family] // 8)
    gateway = attrs.get(RTA_GATEWAY)
    return Route(dst=Prefix(IP.from_bytes(family, dst_bytes), dst_len),
                 gateway=IP.from_bytes(family, gateway) if gateway else None,
                 oif=_u32_of(attrs.get(RTA_OIF)), table=_u32_of(attrs.get(RTA_TABLE)) or table, protocol=protocol)


def _ifinfo(*, family: int = AF_UNSPEC, index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


def _up_flags(up: bool | None) -> tuple[int, int]:
    return (IFF_UP if up else 0, IFF_UP if up is not None else 0)


class Rtnl:
    """A NETLINK_ROUTE socket in the namespace current when it was opened; blocking, one request at a time."""

    def __init__(self) -> None:
        self._sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, 0)
        for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
            try:
                self._sock.setsockopt(SOL_NETLINK, option, 1)
            except OSError:  # older kernels: errors lose their text, nothing else
                pass
        self._sock.bind((0, 0))
        self._sock.settimeout(TIMEOUT)
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------------

    def request(self, msg_type: int, body: bytes, *, flags: int = 0, dump: bool = False, what: str) -> list[bytes]:
        """Send one request and collect the payloads of its replies, up to its ACK (or a dump's DONE)."""
        self._seq += 1
        seq = self._seq
        flags |= NLM_F_DUMP if dump else NLM_F_ACK
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body)
        replies: list[bytes] = []
        while True:
            try:
                data = self._sock.recv(RECV_BUFFER)
            except TimeoutError:
                raise NetlinkError(_errno.ETIMEDOUT, f"{what}: no answer from the kernel") from None
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, reply_flags, reply_seq, _pid = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise NetlinkError(_errno.EPROTO, f"{what}: malformed netlink reply")
                payload = data[offset + _HEADER.size:offset + length]
                offset += (length + 3) & ~3
                if reply_seq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    code = -_I32.unpack_from(payload)[0]
                    if code:
                        raise NetlinkError(code, f"{what}: {_errno_text(code)}{_ext_ack(payload, reply_flags)}")
                    return replies
                if kind == NLMSG_DONE:
                    code = -_I32.unpack_from(payload)[0] if len(payload) >= 4 else 0
                    if code > 0:
                        raise NetlinkError(code, f"{what}: {_errno_text(code)}")
                    return replies
                replies.append(payload)

    # -- links ---------------------------------------------------------------------------------------

    def link(self, name: str) -> Link | None:
        """The interface called ``name``, or None when there is none."""
        try:
            replies = self.request(RTM_GETLINK, _ifinfo() + name_attr(name), what=f"get link {name}")
        except NetlinkError as exc:
            if exc.errno in (_errno.ENODEV, _errno.ENOENT):
                return None
            raise
        return parse_link(replies[0]) if replies else None

    def links(self) -> list[Link]:
        return [parse_link(p) for p in self.request(RTM_GETLINK, _ifinfo(), dump=True, what="dump links")]

    def add_bridge(self, name: str, *, mac: bytes | None = None, mtu: int | None = None) -> None:
        """Create a Linux bridge, up; EEXIST when the name is taken."""
        attrs = [name_attr(name), nest(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge"))]
        if mac:
            attrs.append(attr(IFLA_ADDRESS, mac))
        if mtu:
            attrs.append(u32(IFLA_MTU, mtu))
        self.request(RTM_NEWLINK, _ifinfo(flags=IFF_UP, change=IFF_UP) + b"".join(attrs),
                     flags=NLM_F_CREATE | NLM_F_EXCL, what=f"create bridge {name}")

    def add_veth(self, name: str, *, peer_name: str, peer_netns_fd: int, mac: bytes, peer_mac: bytes,
                 mtu: int | None = None, master: int | None = None) -> None:
        """A veth pair whose peer is born inside another namespace (no move: the kernel's slow path).

        The host end comes up and joins ``master`` (a bridge index) in the same request; the peer must be
        brought up from inside its namespace (the kernel refuses to open it before its other end exists).
        """
        peer = [name_attr(peer_name), u32(IFLA_NET_NS_FD, peer_netns_fd), attr(IFLA_ADDRESS, peer_mac)]
        host = [name_attr(name), attr(IFLA_ADDRESS, mac)]
        if mtu:
            peer.append(u32(IFLA_MTU, mtu))
            host.append(u32(IFLA_MTU, mtu))
        if master:
            host.append(u32(IFLA_MASTER, master))
        info = nest(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth"),
                    nest(IFLA_INFO_DATA, nest(VETH_INFO_PEER, _ifinfo(), *peer)))
        self.request(RTM_NEWLINK, _ifinfo(flags=IFF_UP, change=IFF_UP) + b"".join(host) + info,
                     flags=NLM_F_CREATE | NLM_F_EXCL, what=f"create veth {name} with peer {peer_name}")

    def set_link(self, index: int, *, up: bool | None = None, promisc: bool | None = None) -> None:
        flags, change = _up_flags(up)
        if promisc is not None:
            change |= IFF_PROMISC
            flags |= IFF_PROMISC if promisc else 0
        self.request(RTM_SETLINK, _ifinfo(index=index, flags=flags, change=change), what=f"set link #{index}")

    def set_hairpin(self, index: int, enabled: bool = True) -> None:
        """Let frames leave a bridge port they came in on (a pod reaching itself through a service)."""
        body = _ifinfo(family=AF_BRIDGE, index=index) + nest(IFLA_PROTINFO, attr(IFLA_BRPORT_MODE, bytes([enabled])))
        self.request(RTM_SETLINK, body, what=f"set hairpin on link #{index}")

    def delete_link(self, name: str) -> bool:
        """Delete the interface (a veth takes its peer along); False when it was already gone."""
        try:
            self.request(RTM_DELLINK, _ifinfo() + name_attr(name), what=f"delete link {name}")
        except NetlinkError as exc:
            if exc.errno in (_errno.ENODEV, _errno.ENOENT):
                return False
            raise
        return True

    # -- addresses and routes ------------------------------------------------------------------------

    def add_address(self, index: int, address: Prefix, *, nodad: bool = False) -> None:
        """Add ``address`` (host address + prefix length) to a link; EEXIST when it is already there."""
        family = address.family
        flags = IFA_F_PERMANENT | (IFA_F_NODAD if nodad else 0)
        attrs = [attr(IFA_LOCAL, address.ip.packed), attr(IFA_ADDRESS, address.ip.packed), u32(IFA_FLAGS, flags)]
        if family == AF_INET and address.length < 31:
            attrs.append(attr(IFA_BROADCAST, address.last.packed))
        self.request(RTM_NEWADDR, _IFADDR.pack(family, address.length, flags & 0xFF, 0, index) + b"".join(attrs),
                     flags=NLM_F_CREATE | NLM_F_EXCL, what=f"add address {address} to link #{index}")

    def addresses(self, index: int | None = None) -> list[Prefix]:
        """Addresses of one link (or all links), as host address + prefix length."""
        replies = self.request(RTM_GETADDR, _IFADDR.pack(AF_UNSPEC, 0, 0, 0, 0), dump=True,
                               what="dump addresses")
        found = (parse_address(payload) for payload in replies)
        return [address for link_index, address in found if index is None or link_index == index]

    def add_route(self, dst: Prefix, *, gateway: IP | None = None, oif: int | None = None,
                  table: int = RT_TABLE_MAIN, protocol: int = RTPROT_BOOT, replace: bool = False) -> None:
        """A unicast route; via ``gateway`` (universe scope) or straight out of ``oif`` (link scope)."""
        scope = RT_SCOPE_UNIVERSE if gateway is not None else RT_SCOPE_LINK
        body = _RTMSG.pack(dst.family, dst.length, 0, 0, table if table < 256 else 0, protocol, scope, RTN_UNICAST, 0)
        attrs = [u32(RTA_TABLE, table)]
        if dst.length:
            attrs.append(attr(RTA_DST, dst.network.packed))
        if gateway is not None:
            attrs.append(attr(RTA_GATEWAY, gateway.packed))
        if oif:
            attrs.append(u32(RTA_OIF, oif))
        flags = NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL)
        via = f" via {gateway}" if gateway is not None else ""
        self.request(RTM_NEWROUTE, body + b"".join(attrs), flags=flags, what=f"add route {dst.masked()}{via}")

    def routes(self, family: int = AF_UNSPEC) -> list[Route]:
        body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        return [parse_route(p) for p in self.request(RTM_GETROUTE, body, dump=True, what="dump routes")
                if _RTMSG.unpack_from(p)[0] in (AF_INET, AF_INET6)]


def _errno_text(code: int) -> str:
    import posix

    return posix.strerror(code)


def _ext_ack(payload: bytes, flags: int) -> str:
    """The kernel's own explanation of an error (extended ACK), when it sent one."""
    if not flags & NLM_F_ACK_TLVS or len(payload) < 4 + _HEADER.size:
        return ""
    offset = 4 + (_HEADER.size if flags & NLM_F_CAPPED else _HEADER.unpack_from(payload, 4)[0])
    message = parse_attrs(payload, offset).get(NLMSGERR_ATTR_MSG)
    return f" ({_text(message)})" if message else ""
