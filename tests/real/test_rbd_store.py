"""The Ceph RBD image store against a real cluster (tests/ceph.py): data in and out, the
protected snapshot that compute and volumes clone, deletion refused while clones exist, and
nothing left behind by a failed upload."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcloud.core.ceph import CephBindingsMissing, bindings
from mcloud.image.drivers.base import StoreError
from mcloud.image.drivers.rbd import AlreadyExists, InUse, RbdStore, create
from tests.ceph import CephCluster
from tests.harness import missing

pytestmark = pytest.mark.real

CHUNK = 1 << 20  # a small object size, so that a few MiB cross several blocks


@pytest.fixture(scope="module")
def ceph_libs(ceph: CephCluster) -> tuple[Any, Any]:
    try:
        return bindings()
    except CephBindingsMissing:
        missing("Ceph's Python bindings (Debian: python3-rados python3-rbd)")
        raise


@pytest.fixture(scope="module")
async def store(ceph: CephCluster, ceph_libs: tuple[Any, Any]) -> AsyncIterator[RbdStore]:
    s = RbdStore("rbd", pool="images", conf_path=ceph.conf, chunk_size=CHUNK)
    yield s
    await s.close()


@pytest.fixture(scope="module")
def ioctx(ceph: CephCluster, ceph_libs: tuple[Any, Any]) -> Iterator[Any]:
    """A client of our own, to look at the pool the way Nova or Cinder would."""
    with ceph.ioctx("images") as ctx:
        yield ctx


async def feed(data: bytes, piece: int = 100_000) -> AsyncIterator[bytes]:
    """The data in pieces of an odd size, as an HTTP body arrives."""
    for i in range(0, len(data), piece):
        yield data[i:i + piece]
        await asyncio.sleep(0)


async def read_all(store: RbdStore, location: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(location, offset, length)])


def images_in_pool(ceph_libs: tuple[Any, Any], ioctx: Any) -> set[str]:
    return set(ceph_libs[1].RBD().list(ioctx))


async def test_add_read_ranges_delete(store: RbdStore, ceph: CephCluster, ceph_libs: tuple[Any, Any],
                                      ioctx: Any) -> None:
    image_id = str(uuid.uuid4())
    data = os.urandom(3 * CHUNK + 12345)
    stored = await store.add(image_id, feed(data))
    assert stored.size == len(data)
    assert stored.location == f"rbd://{ceph.fsid}/images/{image_id}/snap"
    assert await read_all(store, stored.location) == data
    assert max([len(c) async for c in store.read(stored.location)]) <= CHUNK  # streamed, not whole
    for offset, length in [(0, 10), (CHUNK - 5, 10), (2 * CHUNK, CHUNK + 1), (len(data) - 3, None),
                           (len(data) - 3, 100), (len(data), None), (len(data) + 10, 5), (17, 0)]:
        expected = data[offset:] if length is None else data[offset:offset + length]
        assert await read_all(store, stored.location, offset, length) == expected, (offset, length)

    await store.delete(stored.location)
    assert image_id not in images_in_pool(ceph_libs, ioctx)
    await store.delete(stored.location)  # already gone: not an error
    with pytest.raises(StoreError, match="gone"):
        await read_all(store, stored.location)


async def test_image_is_a_cloneable_snapshot(store: RbdStore, ceph_libs: tuple[Any, Any], ioctx: Any) -> None:
    """What Nova and Cinder rely on: format 2 with layering, a protected snapshot `snap`, and a
    copy-on-write clone that reads the image's data while its own writes stay its own."""
    rbd = ceph_libs[1]
    image_id = str(uuid.uuid4())
    data = os.urandom(2 * CHUNK + 1)
    stored = await store.add(image_id, feed(data))
    with rbd.Image(ioctx, image_id, read_only=True) as image:
        assert not image.old_format()
        assert image.features() & rbd.RBD_FEATURE_LAYERING
        assert image.stat()["obj_size"] == CHUNK
        assert [s["name"] for s in image.list_snaps()] == ["snap"]
        assert image.is_protected_snap("snap")

    clone = f"volume-{uuid.uuid4()}"
    rbd.RBD().clone(ioctx, image_id, "snap", ioctx, clone, features=rbd.RBD_FEATURE_LAYERING)
    try:
        with rbd.Image(ioctx, clone) as vol:
            assert vol.parent_info() == ("images", image_id, "snap")
            assert vol.read(0, len(data)) == data
            vol.write(b"\xff" * 4096, CHUNK)  # the guest writes to its disk
            assert vol.read(CHUNK, 4096) == b"\xff" * 4096
        assert await read_all(store, stored.location) == data  # the image is untouched

        with pytest.raises(InUse, match=clone):
            await store.delete(stored.location)
        with rbd.Image(ioctx, image_id, read_only=True) as image:  # nothing was changed
            assert image.is_protected_snap("snap")
        assert await read_all(store, stored.location, 0, 100) == data[:100]
    finally:
        rbd.RBD().remove(ioctx, clone)
    await store.delete(stored.location)
    assert image_id not in images_in_pool(ceph_libs, ioctx)


class Rejected(Exception):
    pass


async def test_failed_upload_leaves_nothing(store: RbdStore, ceph_libs: tuple[Any, Any], ioctx: Any) -> None:
    image_id = str(uuid.uuid4())

    async def too_large() -> AsyncIterator[bytes]:  # the image service refuses the data midway
        async for chunk in feed(os.urandom(2 * CHUNK + 500)):
            yield chunk
        raise Rejected("over quota")

    with pytest.raises(Rejected):
        await store.add(image_id, too_large())
    assert image_id not in images_in_pool(ceph_libs, ioctx)
    # the id is free again: a second upload of the same image works
    stored = await store.add(image_id, feed(b"second try"))
    assert await read_all(store, stored.location) == b"second try"
    await store.delete(stored.location)


async def test_cancelled_upload_leaves_nothing(store: RbdStore, ceph_libs: tuple[Any, Any], ioctx: Any) -> None:
    """The client goes away mid-upload: the task is cancelled while a block is being written."""
    image_id = str(uuid.uuid4())
    stalled = asyncio.Event()

    async def client_stalls() -> AsyncIterator[bytes]:
        async for chunk in feed(os.urandom(CHUNK + 7)):
            yield chunk
        stalled.set()
        await asyncio.Event().wait()
        yield b""

    task = asyncio.create_task(store.add(image_id, client_stalls()))
    await stalled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert image_id not in images_in_pool(ceph_libs, ioctx)


async def test_existing_image_is_not_overwritten(store: RbdStore, ceph_libs: tuple[Any, Any], ioctx: Any) -> None:
    image_id = str(uuid.uuid4())
    first = await store.add(image_id, feed(b"first"))
    with pytest.raises(AlreadyExists):
        await store.add(image_id, feed(b"second"))
    assert await read_all(store, first.location) == b"first"
    await store.delete(first.location)


async def test_empty_and_zero_filled_images(store: RbdStore, ceph_libs: tuple[Any, Any], ioctx: Any) -> None:
    rbd = ceph_libs[1]
    empty = await store.add(str(uuid.uuid4()), feed(b""))
    assert empty.size == 0
    assert await read_all(store, empty.location) == b""
    await store.delete(empty.location)

    # a block of zeros is not written (the image stays thin) yet reads back as zeros
    image_id = str(uuid.uuid4())
    data = os.urandom(CHUNK) + bytes(CHUNK) + os.urandom(CHUNK // 2)
    stored = await store.add(image_id, feed(data))
    assert await read_all(store, stored.location) == data
    written: list[tuple[int, int]] = []
    with rbd.Image(ioctx, image_id, read_only=True) as image:
        image.diff_iterate(0, len(data), None, lambda offset, length, exists: written.append((offset, length)))
    assert sum(length for _, length in written) == len(data) - CHUNK
    assert all(not (CHUNK <= offset < 2 * CHUNK) for offset, _ in written)
    await store.delete(stored.location)


async def test_concurrent_uploads(store: RbdStore, ceph_libs: tuple[Any, Any], ioctx: Any) -> None:
    blobs = {str(uuid.uuid4()): os.urandom(CHUNK + i * 100_003) for i in range(6)}
    stored = await asyncio.gather(*(store.add(i, feed(d, piece=65536)) for i, d in blobs.items()))
    reads = await asyncio.gather(*(read_all(store, s.location) for s in stored))
    assert reads == list(blobs.values())
    assert set(blobs) <= images_in_pool(ceph_libs, ioctx)
    await asyncio.gather(*(store.delete(s.location) for s in stored))
    assert not set(blobs) & images_in_pool(ceph_libs, ioctx)


async def test_store_from_configuration(ceph: CephCluster, ceph_libs: tuple[Any, Any], tmp_path: Path) -> None:
    """The [image.rbd] table builds the store; mistakes in it are caught before any upload."""
    pool = ceph.create_pool("images-other")
    store = create("rbd", {"pool": pool, "conf": str(ceph.conf), "chunk_size": 4 << 20}, tmp_path)
    try:
        assert store.properties == {"chunk_size": 4 << 20, "pool": pool, "thin_provisioning": True}
        stored = await store.add("img-1", feed(b"x" * 1000))
        assert stored.location.endswith(f"/{pool}/img-1/snap")
        assert await read_all(store, stored.location) == b"x" * 1000
        other = stored.location.replace(ceph.fsid, str(uuid.uuid4()))
        with pytest.raises(StoreError, match="not in this store's cluster"):
            await store.delete(other)
        await store.delete(stored.location)
    finally:
        await store.close()
    with pytest.raises(ValueError, match="unknown keys: colour"):
        create("rbd", {"pool": pool, "colour": "blue"}, tmp_path)
    with pytest.raises(ValueError, match="power of two"):
        create("rbd", {"chunk_size": 3_000_000}, tmp_path)

    missing_pool = RbdStore("rbd", pool="no-such-pool", conf_path=ceph.conf)
    try:
        with pytest.raises(StoreError, match="no-such-pool does not exist"):
            await missing_pool.add("img-2", feed(b"data"))
    finally:
        await missing_pool.close()


async def test_unreachable_cluster_is_a_store_error(ceph: CephCluster, ceph_libs: tuple[Any, Any],
                                                    tmp_path: Path) -> None:
    conf = tmp_path / "dead.conf"
    conf.write_text(ceph.conf.read_text().replace(f"127.0.0.1:{ceph.port}", "127.0.0.1:9"))
    store = RbdStore("rbd", conf_path=conf, connect_timeout=1)
    with pytest.raises(StoreError, match="cannot reach the Ceph cluster"):
        await store.add("img-3", feed(b"data"))
    await store.close()


def test_bindings_come_without_the_rest_of_debians_packages(ceph_libs: tuple[Any, Any]) -> None:
    rados, rbd = ceph_libs
    assert rados.__file__.endswith(".so") and rbd.__file__.endswith(".so")
    if sys.prefix != sys.base_prefix:  # in the virtualenv: only these two modules were taken
        assert "/usr/lib/python3/dist-packages" not in sys.path
