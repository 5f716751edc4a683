"""IPAM: addresses and MACs, never one given twice, without scanning a subnet per allocation.

An allocated address is a row of ``network_ip_allocation`` keyed by (subnet, address key), so
the database refuses a second holder: two writers that pick the same address race to insert
it, one wins and the other retries with the next candidate (inside a savepoint, so its
transaction stays usable). On SQLite writers are serialized anyway; on PostgreSQL the loser
blocks on the winner's uncommitted key and then fails, and retries.

Choosing an address costs one indexed range query in the common case: each subnet keeps a
cursor (the key after the last address handed out); the allocator reads the allocated keys
from the cursor on, in key order and a window at a time, and takes the first gap inside an
allocation pool (allocators of one subnet take turns on its row lock). The cursor wraps around to the start of the pools once, so freed addresses
are reused when the pools run out.

The key of an address is its integer value as 32 hex digits, so that SQL sorts keys the way
addresses sort (IPv6 addresses do not fit a BIGINT).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network import models as m
from mcloud.network.errors_core import bad_request, conflict, invalid_input

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Neutron's default base_mac: fa:16:3e plus three random bytes
BASE_MAC = (0xFA, 0x16, 0x3E)
WINDOW = 256
RETRIES = 50
_alloc = m.IPAllocation.__table__


def key(address: IPAddress | int) -> str:
    return format(int(address), "032x")


def ip_of(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


# ---------------------------------------------------------------------- validation


def parse_ip(text: Any, attribute: str = "ip_address") -> IPAddress:
    if not isinstance(text, str) or not text or text != text.strip() or "/" in text:
        raise bad_request(f"Invalid input for {attribute}. Reason: '{text}' is not a valid IP address.")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise bad_request(f"Invalid input for {attribute}. Reason: '{text}' is not a valid IP address.") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id:
        raise bad_request(f"Invalid input for {attribute}. Reason: '{text}' is not a valid IP address.")
    return addr


def parse_cidr(text: Any, attribute: str = "cidr", strict: bool = True) -> IPNetwork:
    """A subnet CIDR as Neutron's validators accept it ('10.0.0.0/24'; a host address is refused)."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise bad_request(f"Invalid input for {attribute}. Reason: '{text}' is not a valid IP subnet.")
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise bad_request(f"Invalid input for {attribute}. Reason: '{text}' is not a valid IP subnet.") from None
    if "/" not in text or (strict and int(ipaddress.ip_interface(text).ip) != int(net.network_address)):
        raise bad_request(f"Invalid input for {attribute}. Reason: '{text}' isn't a recommended CIDR, "
                          f"'{net}' should be used instead.")
    return net


def first_host(net: IPNetwork) -> IPAddress:
    return net.network_address + 1


def last_host(net: IPNetwork) -> IPAddress:
    """The last address a port may hold: the broadcast address is not one in IPv4."""
    if net.version == 4 and net.prefixlen < 31:
        return net.broadcast_address - 1
    return net.broadcast_address


def usable(net: IPNetwork, addr: IPAddress) -> bool:
    """In the subnet, and neither its network address nor (IPv4) its broadcast address."""
    if addr.version != net.version or addr not in net:
        return False
    if net.version == 4 and net.prefixlen < 31:
        return addr not in (net.network_address, net.broadcast_address)
    if net.version == 6 and net.prefixlen < 127:
        return addr != net.network_address
    return True


def default_pools(net: IPNetwork, gateway: IPAddress | None) -> list[tuple[IPAddress, IPAddress]]:
    """Neutron's default allocation pools: every usable address but the gateway."""
    lo, hi = int(first_host(net)), int(last_host(net))
    if net.prefixlen >= (31 if net.version == 4 else 127):
        lo, hi = int(net.network_address), int(net.broadcast_address)
    if lo > hi:
        return []
    ranges = [(lo, hi)]
    if gateway is not None and lo <= int(gateway) <= hi:
        g = int(gateway)
        ranges = [(a, b) for a, b in ((lo, g - 1), (g + 1, hi)) if a <= b]
    return [(ip_of(net.version, a), ip_of(net.version, b)) for a, b in ranges]


def check_pools(net: IPNetwork, pools: Sequence[tuple[IPAddress, IPAddress]], gateway: IPAddress | None) -> None:
    """Neutron's checks of allocation pools against the CIDR, each other and the gateway."""
    for start, end in pools:
        if start.version != net.version or end.version != net.version or int(start) > int(end):
            raise bad_request(f"The allocation pool {start}-{end} is not valid.", "InvalidAllocationPool")
        if start not in net or end not in net or not usable(net, start) or not usable(net, end):
            raise bad_request(f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.",
                              "OutOfBoundsAllocationPool")
    ordered = sorted(pools, key=lambda p: int(p[0]))
    for (s1, e1), (s2, e2) in zip(ordered, ordered[1:]):
        if int(s2) <= int(e1):
            raise conflict("OverlappingAllocationPools",
                           f"Found overlapping allocation pools: {s1}-{e1} and {s2}-{e2} for subnet {net}.")
    if gateway is not None:
        for start, end in pools:
            if int(start) <= int(gateway) <= int(end):
                raise conflict("GatewayConflictWithAllocationPools",
                               f"Gateway ip {gateway} conflicts with allocation pool {start}-{end}.")


def pools_of(subnet: m.Subnet) -> list[tuple[int, int]]:
    return sorted((int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b))) for a, b in subnet.allocation_pools)


def eui64(net: IPNetwork, mac: str) -> ipaddress.IPv6Address:
    """The SLAAC address of ``mac`` in the /64 ``net`` (modified EUI-64)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return ipaddress.IPv6Address(int(net.network_address) | int.from_bytes(bytes(iid), "big"))


def is_auto_address(subnet: m.Subnet) -> bool:
    """An IPv6 subnet whose addresses hosts make themselves from their MAC (SLAAC, stateless)."""
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in ("slaac", "dhcpv6-stateless")


def random_mac() -> str:
    tail = random.getrandbits(24)
    return "%02x:%02x:%02x:%02x:%02x:%02x" % (*BASE_MAC, tail >> 16, (tail >> 8) & 0xFF, tail & 0xFF)


def normalize_mac(text: Any) -> str:
    """A MAC as Neutron keeps it (lower case, colons); 400 for anything else, multicast or zero."""
    if isinstance(text, str):
        raw = text.strip().lower().replace("-", ":")
        parts = raw.split(":")
        if len(parts) == 6 and all(len(p) in (1, 2) and all(c in "0123456789abcdef" for c in p) for p in parts):
            value = ":".join(p.zfill(2) for p in parts)
            first = int(parts[0], 16)
            if value != "00:00:00:00:00:00" and not first & 1:
                return value
    raise bad_request(f"Invalid input for mac_address. Reason: '{text}' is not a valid MAC address.")


# ---------------------------------------------------------------------- allocation


def serialized(session: AsyncSession) -> bool:
    """SQLite: one writer at a time, so what a write transaction read stays true until it ends."""
    return session.get_bind().dialect.name == "sqlite"


async def insert_unique(session: AsyncSession, statement: Any) -> bool:
    """Run an INSERT that a unique key may refuse; False when it did. Inside a savepoint, so the
    transaction goes on, except on SQLite, where writers run one at a time and a refusal is
    rare enough (a duplicate the caller asked for) to pay with a failed statement instead."""
    try:
        if serialized(session):
            await session.execute(statement)
        else:
            async with session.begin_nested():
                await session.execute(statement)
    except IntegrityError:
        return False
    return True


async def _insert(session: AsyncSession, subnet: m.Subnet, addr: IPAddress, port_id: str) -> bool:
    """Insert one allocation; False when someone else holds the address."""
    return await insert_unique(session, sa.insert(_alloc).values(
        subnet_id=subnet.id, ip_key=key(addr), ip_address=str(addr), port_id=port_id, network_id=subnet.network_id))


async def allocate_specific(session: AsyncSession, subnet: m.Subnet, addr: IPAddress, port_id: str) -> str:
    if not await _insert(session, subnet, addr, port_id):
        raise conflict("IpAddressAlreadyAllocated",
                       f"IP address {addr} already allocated in subnet {subnet.id}")
    return str(addr)


async def _first_free(session: AsyncSession, subnet_id: str, lo: int, hi: int) -> int | None:
    """The lowest unallocated address in [lo, hi], reading allocated keys a window at a time."""
    candidate = lo
    while candidate <= hi:
        rows = (await session.execute(
            sa.select(_alloc.c.ip_key).where(_alloc.c.subnet_id == subnet_id, _alloc.c.ip_key >= key(candidate),
                                             _alloc.c.ip_key <= key(hi))
            .order_by(_alloc.c.ip_key).limit(WINDOW))).scalars().all()
        for held in rows:
            value = int(held, 16)
            if value != candidate:
                return candidate
            candidate += 1
        if len(rows) < WINDOW:
            return candidate if candidate <= hi else None
    return None


def _segments(pools: list[tuple[int, int]], cursor: int | None) -> Iterable[tuple[int, int]]:
    """The pools from the cursor to their end, then from their start up to the cursor."""
    if cursor is None:
        yield from pools
        return
    for lo, hi in pools:
        if hi >= cursor:
            yield max(lo, cursor), hi
    for lo, hi in pools:
        if lo < cursor:
            yield lo, min(hi, cursor - 1)


async def allocate_any(session: AsyncSession, subnet: m.Subnet, port_id: str) -> str | None:
    """The next free address of the subnet's pools, held for ``port_id``; None when full.

    The subnet's row is locked first (PostgreSQL; SQLite serializes writers anyway), so the
    allocators of one subnet take turns and read the cursor their predecessor left; the
    unique key remains the guarantee should anything else race."""
    if not serialized(session):
        await session.refresh(subnet, ["ipam_cursor"], with_for_update=True)
    pools = pools_of(subnet)
    cursor = int(subnet.ipam_cursor, 16) if subnet.ipam_cursor else None
    for _ in range(RETRIES):
        found = None
        for lo, hi in _segments(pools, cursor):
            found = await _first_free(session, subnet.id, lo, hi)
            if found is not None:
                break
        if found is None:
            return None
        addr = ip_of(subnet.ip_version, found)
        if await _insert(session, subnet, addr, port_id):
            subnet.ipam_cursor = key(found + 1)
            return str(addr)
        cursor = found + 1  # taken by a concurrent writer since we looked: try the next one
    raise conflict("IpAddressGenerationFailure",
                   f"No more IP addresses available on network {subnet.network_id}.")


def check_fixed_ip(subnet: m.Subnet, addr: IPAddress) -> None:
    net = ipaddress.ip_network(subnet.cidr)
    if not usable(net, addr):
        raise bad_request(f"IP address {addr} is not a valid IP for the specified subnet.", "InvalidIpForSubnet")


def overlapping(cidr: IPNetwork, others: Iterable[str]) -> str | None:
    for other in others:
        net = ipaddress.ip_network(other)
        if net.version == cidr.version and net.overlaps(cidr):
            return other
    return None


__all__ = ["allocate_any", "allocate_specific", "check_fixed_ip", "check_pools", "default_pools", "eui64",
           "invalid_input", "is_auto_address", "key", "normalize_mac", "overlapping", "parse_cidr", "parse_ip",
           "random_mac", "usable"]
