"""The ``rbd`` backup driver against a real Ceph cluster (tests/ceph.py): a volume's data read
from a real RBD image is backed up as RADOS objects in a second pool (``backups``), an
incremental after a write stores only the changed chunks, each backup restores into a new RBD
image bit for bit, a chunk damaged in the pool is caught, and deletes leave the pool empty."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from mcloud.volume.backup_drivers import BackupError, load_backup_driver
from tests.ceph import CephCluster
from tests.real.test_rbd_store import ceph_libs  # noqa: F401 (the bindings fixture)

pytestmark = pytest.mark.real

CHUNK = 1 << 20
SIZE = 8 * CHUNK


@pytest.fixture(scope="module")
def pools(ceph: CephCluster, ceph_libs: tuple[Any, Any]) -> Iterator[tuple[str, str]]:
    for pool in ("backup-volumes", "backups"):
        if pool not in ceph.pools:
            ceph.create_pool(pool)
    yield "backup-volumes", "backups"


@pytest.fixture(scope="module")
def volumes(ceph: CephCluster, pools: tuple[str, str]) -> Iterator[Any]:
    with ceph.ioctx(pools[0]) as ctx:
        yield ctx


async def read_image(libs: tuple[Any, Any], ioctx: Any, name: str, snapshot: str | None = None
                     ) -> AsyncIterator[bytes]:
    """How a backend's ``read`` streams an RBD image (or its snapshot)."""
    with libs[1].Image(ioctx, name, snapshot=snapshot, read_only=True) as image:
        size = image.size()
        for at in range(0, size, CHUNK):
            yield await asyncio.to_thread(image.read, at, min(CHUNK, size - at))


async def write_image(libs: tuple[Any, Any], ioctx: Any, name: str, chunks: AsyncIterator[bytes]) -> None:
    with libs[1].Image(ioctx, name) as image:
        at = 0
        async for chunk in chunks:
            await asyncio.to_thread(image.write, chunk, at)
            at += len(chunk)


def image_bytes(libs: tuple[Any, Any], ioctx: Any, name: str) -> bytes:
    with libs[1].Image(ioctx, name, read_only=True) as image:
        return image.read(0, image.size())


async def test_rbd_backups_full_incremental_restore_delete(ceph: CephCluster, ceph_libs: tuple[Any, Any],
                                                          pools: tuple[str, str], volumes: Any) -> None:
    libs = ceph_libs
    rbd = libs[1].RBD()
    vol = f"volume-{uuid.uuid4()}"
    rbd.create(volumes, vol, SIZE, old_format=False, features=1)
    data = bytearray(SIZE)
    data[0:CHUNK] = os.urandom(CHUNK)
    data[3 * CHUNK:5 * CHUNK] = os.urandom(2 * CHUNK)  # chunks 1, 2, 5.. stay zeros (thin)
    with libs[1].Image(volumes, vol) as image:
        image.write(bytes(data), 0)
        image.create_snap("s1")
    driver = load_backup_driver({"driver": "rbd", "pool": pools[1], "ceph_conf": str(ceph.conf),
                                 "chunk_size": CHUNK}, ceph.root)
    await driver.start()
    try:
        full = await driver.backup("full", "volumebackups", read_image(libs, volumes, vol, "s1"), SIZE)
        assert full["object_count"] == 3
        with ceph.ioctx(pools[1]) as backups:
            assert len([o.key for o in backups.list_objects()]) == 4  # 3 chunks + metadata

        # the guest writes one chunk; the incremental stores that chunk only
        with libs[1].Image(volumes, vol) as image:
            image.write(os.urandom(100), 4 * CHUNK + 7)
            changed = image.read(0, SIZE)
        incr = await driver.backup("incr", "volumebackups", read_image(libs, volumes, vol), SIZE, parent=full)
        assert incr["object_count"] == 1
        assert sum(1 for c in incr["chunks"] if c[1] and c[1].startswith("volumebackups/full/")) == 2

        for name, meta, expected in (("r-full", full, bytes(data)), ("r-incr", incr, changed)):
            target = f"volume-{name}-{uuid.uuid4()}"
            rbd.create(volumes, target, SIZE, old_format=False, features=1)
            await write_image(libs, volumes, target, driver.restore(meta))
            assert image_bytes(libs, volumes, target) == expected
            rbd.remove(volumes, target)

        # a chunk damaged in the pool: the restore refuses it
        with ceph.ioctx(pools[1]) as backups:
            name = incr["chunks"][4][1]
            backups.write(name, b"\xff", 10)
        with pytest.raises(BackupError, match="sha256"):
            async for _ in driver.restore(incr):
                pass

        await driver.delete("incr", "volumebackups")
        await driver.delete("full", "volumebackups")
        assert await driver.object_names() == set()
    finally:
        await driver.close()
        with libs[1].Image(volumes, vol) as image:
            image.remove_snap("s1")
        rbd.remove(volumes, vol)
