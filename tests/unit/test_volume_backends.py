"""The volume backends' registry, capacity accounting and scheduler, on SQLite and PostgreSQL:
pools filtered by ``volume_backend_name``, capabilities (Cinder's extra-spec operators) and zone,
weighed by free virtual space; claims atomic (many creates at once never overcommit a pool),
grown on extend, released on delete; the fake backend's state survives a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mcloud import migrations
from mcloud.core.db import Database
from mcloud.volume.backends import Backends, NoValidBackend, backend_of, capabilities_match, spec_matches
from mcloud.volume.config import VolumeConfig
from mcloud.volume.drivers.base import BackendError
from mcloud.volume.drivers.fake import Backend as FakeBackend


@dataclasses.dataclass
class Volume:
    """What Backends needs of the volume service."""

    db: Database
    config: VolumeConfig
    data_dir: Path


@pytest.fixture
async def db(database: str) -> AsyncIterator[Database]:
    migrations.upgrade(database)
    d = Database(database)
    yield d
    await d.dispose()


async def started(db: Database, tmp_path: Path, tables: dict[str, dict[str, Any]], **config: Any) -> Backends:
    """Backends over ``tables``; each test names its own backends (the PostgreSQL database is shared)."""
    prefix = uuid.uuid4().hex[:6]
    cfg = VolumeConfig(backends={f"{prefix}-{k}": v for k, v in tables.items()}, **config)
    b = Backends(Volume(db, cfg, tmp_path))
    b.host = "testhost"
    await b.start()
    b.prefix = prefix  # type: ignore[attr-defined]
    return b


def short(b: Backends, pool: str) -> str:
    return (backend_of(pool) or "").split("-", 1)[1]


def test_extra_spec_operators_as_cinder() -> None:
    assert spec_matches(True, "<is> True") and not spec_matches(False, "<is> True")
    assert spec_matches("True", "<is> True")
    assert spec_matches("ceph", "<or> file <or> ceph") and not spec_matches("nfs", "<or> file <or> ceph")
    assert spec_matches("Open Source", "<in> Source")
    assert spec_matches(100, ">= 50") and not spec_matches(10, ">= 50")
    assert spec_matches("abc", "s== abc") and not spec_matches("abd", "s== abc")
    assert spec_matches("gold", "gold") and not spec_matches("gold", "silver")
    caps = {"vendor_name": "Open Source", "storage_protocol": "ceph", "multiattach": False}
    assert capabilities_match(caps, {"vendor_name": "Open Source", "capabilities:storage_protocol": "ceph"}) is None
    assert capabilities_match(caps, {"RESKEY:availability_zones": "x", "qos:read": "1"}) is None  # not scheduler keys
    assert capabilities_match(caps, {"multiattach": "<is> True"}) == "multiattach"
    assert capabilities_match(caps, {"tier": "gold"}) == "tier"  # a capability the pool lacks fails


async def test_type_picks_backend_by_name_capability_and_zone(db: Database, tmp_path: Path) -> None:
    b = await started(db, tmp_path, {
        "nvme": {"driver": "fake", "volume_backend_name": "fast", "total_gb": 100},
        "sas": {"driver": "fake", "volume_backend_name": "slow", "total_gb": 1000,
                "capabilities": {"tier": "bulk"}, "availability_zone": "az2"}})
    try:
        async with db.write() as s:
            assert short(b, await b.schedule(s, str(uuid.uuid4()), 10, {"volume_backend_name": "fast"})) == "nvme"
            assert short(b, await b.schedule(s, str(uuid.uuid4()), 10, {"tier": "bulk"})) == "sas"
            assert short(b, await b.schedule(s, str(uuid.uuid4()), 10, {}, "az2")) == "sas"
            # no type constraint: the pool with the most free virtual space
            pool = await b.schedule(s, str(uuid.uuid4()), 10, {})
            assert short(b, pool) == "sas" and pool == f"testhost@{b.prefix}-sas#{b.prefix}-sas"  # type: ignore[attr-defined]
            for specs, zone in (({"volume_backend_name": "none"}, None), ({"tier": "gold"}, None),
                                ({"volume_backend_name": "fast"}, "az2"), ({}, "nowhere")):
                with pytest.raises(NoValidBackend, match="No valid backend was found."):
                    await b.schedule(s, str(uuid.uuid4()), 1, specs, zone)
        views = {short(b, p.name): p for p in await b.pools() if p.backend.startswith(b.prefix)}  # type: ignore[attr-defined]
        assert views["nvme"].allocated_gb == 10 and views["sas"].allocated_gb == 30
        assert views["sas"].capabilities["storage_protocol"] == "fake"
        assert views["sas"].capabilities["volume_backend_name"] == "slow"
        assert views["nvme"].total_gb == 100
    finally:
        await b.close()


async def test_thin_capacity_ratio_reserved_grow_and_release(db: Database, tmp_path: Path) -> None:
    b = await started(db, tmp_path, {"p": {"driver": "fake", "total_gb": 10, "max_over_subscription_ratio": 2,
                                           "reserved_percentage": 10}})
    try:
        a, c = str(uuid.uuid4()), str(uuid.uuid4())
        async with db.write() as s:
            await b.schedule(s, a, 10)  # (10 - 1 reserved) x 2 = 18 GB of room
            with pytest.raises(NoValidBackend):
                await b.schedule(s, c, 9)
            await b.schedule(s, c, 8)
            assert await b.schedule(s, c, 8) == await b.schedule(s, c, 1)  # a claim held is kept (resumed task)
            with pytest.raises(NoValidBackend, match="extend"):
                await b.grow(s, a, 11)
        async with db.write() as s:
            await b.release(s, c)
            await b.grow(s, a, 18)
            assert (await b.claim_of(s, a)).size_gb == 18  # type: ignore[union-attr]
    finally:
        await b.close()


async def test_concurrent_claims_never_overcommit(db: Database, tmp_path: Path) -> None:
    """40 creates of 1 GB race for a pool of 10 GB (ratio 1) and another of 15 GB: exactly 25
    get a pool, each pool full to the GB, the other 15 'No valid backend'."""
    b = await started(db, tmp_path, {"small": {"driver": "fake", "total_gb": 10},
                                     "big": {"driver": "fake", "total_gb": 15}}, max_over_subscription_ratio=1.0)
    # a second registry over the same database: the claims of two processes race too
    b2 = Backends(Volume(db, b.config, tmp_path))
    b2.host = "testhost"
    await b2.start()

    async def one(registry: Backends) -> str | None:
        try:
            async with db.write() as s:
                pool = await registry.schedule(s, str(uuid.uuid4()), 1)
                await asyncio.sleep(0)  # let the others run while this transaction is open
                return pool
        except NoValidBackend:
            return None

    try:
        results = await asyncio.gather(*(one(b if i % 2 else b2) for i in range(40)))
        placed = [r for r in results if r]
        assert len(placed) == 25
        assert sorted(short(b, p) for p in placed).count("small") == 10
        views = {short(b, p.name): p for p in await b.pools() if p.backend.startswith(b.prefix)}  # type: ignore[attr-defined]
        assert views["small"].allocated_gb == 10 and views["big"].allocated_gb == 15
    finally:
        await b.close()
        await b2.close()


async def test_fake_backend_keeps_its_state_and_fails_on_demand(tmp_path: Path) -> None:
    be = FakeBackend("f", {"total_gb": 50}, tmp_path)
    await be.start()
    await be.create("v1", 2)
    await be.create("v1", 2)  # idempotent
    await be.write("v1", _chunks([b"hello ", b"world"]))
    await be.create_snapshot("s1", "v1")
    await be.create_from_snapshot("v2", 3, "s1", "v1")
    assert b"".join([c async for c in be.read("v2")]) == b"hello world"
    be.fail_next("create")
    with pytest.raises(BackendError, match="told to fail create"):
        await be.create("v3", 1)
    await be.create("v3", 1)
    again = FakeBackend("f", {"total_gb": 50}, tmp_path)  # a restarted process sees the same store
    await again.start()
    assert await again.list_ids() == {"volume-v1", "volume-v2", "volume-v3", "snapshot-s1"}
    assert (await again.capacity()).free_gb == 50 - 6
    await again.delete("v1")
    await again.delete("v1")
    assert again.size_of("v1") is None and again.size_of("v2") == 3


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p
