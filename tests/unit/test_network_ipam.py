"""IPAM's pieces on their own: address keys, pools, CIDR and MAC parsing, EUI-64, and allocation
against a real (SQLite) database: the cursor, wrapping around, the window, and that an allocation
costs a bounded number of queries however full the subnet is."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from mcloud import migrations
from mcloud.core.db import Database
from mcloud.network import ipam
from mcloud.network import models as m
from mcloud.network.errors_core import NeutronError


def test_keys_sort_like_addresses() -> None:
    addrs = [ipaddress.ip_address(a) for a in ("10.0.0.2", "10.0.0.10", "10.0.1.1", "9.255.255.255")]
    assert sorted(addrs) == sorted(addrs, key=ipam.key)
    v6 = [ipaddress.ip_address(a) for a in ("fd00::2", "fd00::10", "fd00::1:0")]
    assert sorted(v6) == sorted(v6, key=ipam.key) and len(ipam.key(v6[0])) == 32


def test_default_pools_leave_out_network_broadcast_and_gateway() -> None:
    net = ipaddress.ip_network("10.0.0.0/24")
    assert ipam.default_pools(net, ipaddress.ip_address("10.0.0.1")) == [
        (ipaddress.ip_address("10.0.0.2"), ipaddress.ip_address("10.0.0.254"))]
    assert ipam.default_pools(net, ipaddress.ip_address("10.0.0.100")) == [
        (ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.99")),
        (ipaddress.ip_address("10.0.0.101"), ipaddress.ip_address("10.0.0.254"))]
    assert ipam.default_pools(net, None)[0][0] == ipaddress.ip_address("10.0.0.1")
    v6 = ipaddress.ip_network("fd00::/64")
    (start, end), = ipam.default_pools(v6, ipaddress.ip_address("fd00::1"))
    assert start == ipaddress.ip_address("fd00::2") and end == v6.broadcast_address
    assert len(ipam.default_pools(ipaddress.ip_network("10.0.0.0/31"), None)) == 1


def test_pool_checks() -> None:
    net = ipaddress.ip_network("10.0.0.0/24")
    ip = ipaddress.ip_address
    ipam.check_pools(net, [(ip("10.0.0.2"), ip("10.0.0.9"))], ip("10.0.0.1"))
    with pytest.raises(NeutronError) as e:
        ipam.check_pools(net, [(ip("10.0.0.0"), ip("10.0.0.9"))], None)
    assert e.value.status == 400
    with pytest.raises(NeutronError) as e:
        ipam.check_pools(net, [(ip("10.0.0.2"), ip("10.0.0.9")), (ip("10.0.0.9"), ip("10.0.0.20"))], None)
    assert e.value.type == "OverlappingAllocationPools"
    with pytest.raises(NeutronError) as e:
        ipam.check_pools(net, [(ip("10.0.0.1"), ip("10.0.0.9"))], ip("10.0.0.5"))
    assert e.value.type == "GatewayConflictWithAllocationPools"


@pytest.mark.parametrize("text", ["10.0.0.1/24", "10.0.0.0", "x", "10.0.0.0/33", " 10.0.0.0/24", "fd00::1/64"])
def test_bad_cidrs(text: str) -> None:
    with pytest.raises(NeutronError) as e:
        ipam.parse_cidr(text)
    assert e.value.status == 400


def test_macs() -> None:
    assert ipam.normalize_mac("FA-16-3E-0A-0B-0C") == "fa:16:3e:0a:0b:0c"
    for bad in ("01:00:00:00:00:01", "00:00:00:00:00:00", "fa:16:3e:0a:0b", "gg:16:3e:0a:0b:0c", None):
        with pytest.raises(NeutronError):
            ipam.normalize_mac(bad)
    macs = {ipam.random_mac() for _ in range(200)}
    assert all(m.startswith("fa:16:3e:") for m in macs) and len(macs) > 190
    assert str(ipam.eui64(ipaddress.ip_network("fd00::/64"), "fa:16:3e:0a:0b:0c")) == "fd00::f816:3eff:fe0a:b0c"


# ---------------------------------------------------------------------- allocation on a database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path / 'ipam.db'}"
    migrations.upgrade(url)
    database = Database(url)
    async with database.write() as session:
        session.add(m.Network(id="n", project_id="p", mtu=1500))
        session.add(m.Subnet(id="s", project_id="p", network_id="n", ip_version=4, cidr="10.0.0.0/16",
                             gateway_ip="10.0.0.1", allocation_pools=[["10.0.0.2", "10.0.255.254"]]))
        session.add(m.Subnet(id="t", project_id="p", network_id="n", ip_version=4, cidr="10.1.0.0/29",
                             gateway_ip="10.1.0.1", allocation_pools=[["10.1.0.2", "10.1.0.6"]]))
    yield database
    await database.dispose()


async def _port(session, port_id: str) -> None:
    session.add(m.Port(id=port_id, project_id="p", network_id="n", mac_address=port_id))
    await session.flush()


async def test_cursor_wraps_and_reuses_freed_addresses(db: Database) -> None:
    got = []
    async with db.write() as session:
        subnet = await session.get(m.Subnet, "t")
        for i in range(5):
            await _port(session, f"p{i}")
            got.append(await ipam.allocate_any(session, subnet, f"p{i}"))
        await _port(session, "late")
        assert await ipam.allocate_any(session, subnet, "late") is None
    assert got == [f"10.1.0.{i}" for i in range(2, 7)]
    async with db.write() as session:
        await session.execute(sa.delete(m.IPAllocation).where(m.IPAllocation.ip_address == "10.1.0.4"))
    async with db.write() as session:
        subnet = await session.get(m.Subnet, "t")
        assert await ipam.allocate_any(session, subnet, "late") == "10.1.0.4"
        with pytest.raises(NeutronError) as e:
            await ipam.allocate_specific(session, subnet, ipaddress.ip_address("10.1.0.4"), "p0")
        assert e.value.type == "IpAddressAlreadyAllocated"


async def test_an_allocation_costs_few_queries_however_full(db: Database) -> None:
    """10,000 addresses held, most of them below the cursor: the next allocation reads the
    allocations table a bounded number of times and never walks the subnet."""
    async with db.write() as session:
        await _port(session, "bulk")
        rows = [{"subnet_id": "s", "ip_key": ipam.key(ipaddress.ip_address("10.0.0.2") + i),
                 "ip_address": str(ipaddress.ip_address("10.0.0.2") + i), "port_id": "bulk", "network_id": "n"}
                for i in range(10_000)]
        await session.execute(sa.insert(m.IPAllocation.__table__), rows)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.write() as session:
            subnet = await session.get(m.Subnet, "s")
            subnet.ipam_cursor = ipam.key(ipaddress.ip_address("10.0.0.2"))  # worst case: at the start
            await _port(session, "next")
            statements.clear()
            got = await ipam.allocate_any(session, subnet, "next")
            first = len(statements)
            statements.clear()
            await _port(session, "after")
            statements.clear()
            again = await ipam.allocate_any(session, subnet, "after")
            second = len(statements)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert got == str(ipaddress.ip_address("10.0.0.2") + 10_000)
    assert again == str(ipaddress.ip_address("10.0.0.3") + 10_000)
    # from the start of a full range: one window read per 256 held addresses; then one read
    assert first <= 10_000 // ipam.WINDOW + 6
    assert second <= 5

