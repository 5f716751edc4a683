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


async def test_rbd_volume_backed_up_to_the_backups_pool_and_restored(ceph: CephCluster, ceph_libs: tuple[Any, Any],
                                                                     pools: tuple[str, str], volumes: Any) -> None:
    """The whole path the backup task takes: the rbd volume backend's ``read`` of a forced
    (in-use) snapshot into the rbd backup driver, an incremental of the volume itself, and the
    volume backend's ``write`` of each restore into a new volume, which reads back bit for bit
    (zeros past the backup's data)."""
    from mcloud.volume.drivers.rbd import Backend

    backend = Backend("ceph", {"pool": pools[0], "ceph_conf": str(ceph.conf)}, ceph.root)
    await backend.start()
    driver = load_backup_driver({"driver": "rbd", "pool": pools[1], "ceph_conf": str(ceph.conf)}, ceph.root)
    await driver.start()
    vid, snap, new1, new2 = (str(uuid.uuid4()) for _ in range(4))

    async def stream(data: bytes) -> AsyncIterator[bytes]:
        yield data

    async def whole(volume_id: str) -> bytes:
        return b"".join([c async for c in backend.read(volume_id)])

    try:
        await backend.create(vid, 1)
        first = os.urandom(6 << 20)
        await backend.write(vid, stream(first))
        await backend.create_snapshot(snap, vid)
        full = await driver.backup("rfull", "c", backend.read(vid, snap, chunk_size=driver.chunk_size), 1 << 30)
        await backend.delete_snapshot(snap, vid)
        assert full["object_count"] == 2  # 6 MiB of data in 4 MiB chunks; the rest of the GiB is thin
        second = bytearray(first)
        second[5 << 20] ^= 0xFF
        await backend.write(vid, stream(bytes(second)))
        incr = await driver.backup("rincr", "c", backend.read(vid, chunk_size=driver.chunk_size), 1 << 30,
                                   parent=full)
        assert incr["object_count"] == 1
        for new, meta, expected in ((new1, full, first), (new2, incr, bytes(second))):
            await backend.create(new, 1)
            await backend.write(new, stream(os.urandom(8 << 20)))  # old data that the restore must cover
            await backend.write(new, driver.restore(meta))
            data = await whole(new)
            assert data[:len(expected)] == expected and not any(data[len(expected):])
        await driver.delete("rincr", "c")
        await driver.delete("rfull", "c")
        assert await driver.object_names() == set()
    finally:
        for v in (new1, new2, vid):
            await backend.delete(v)
        await driver.close()
        await backend.close()
