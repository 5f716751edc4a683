"""The rbd volume backend against the real single-node Ceph (tests/ceph.py): snapshots as
protected RBD snapshots, volumes from snapshots and volumes as clones, from an image of the image
service's rbd store as a clone of its protected snapshot (nothing copied) and from a qcow2 file
as a converted copy, deletes that flatten clones first and leave the pool empty, a forced
snapshot while qemu holds the image, extend, revert, raw reads and writes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcloud.image.drivers.base import InUse
from mcloud.image.drivers.rbd import RbdStore
from mcloud.volume.drivers.base import BackendError, ImageSource
from mcloud.volume.drivers.rbd import GIB, Backend
from tests.ceph import CephCluster
from tests.harness import missing, wait_for
from tests.real.test_rbd_store import ceph_libs  # noqa: F401 (the bindings fixture)

pytestmark = pytest.mark.real
MIB = 1 << 20
POOL = "volumes-backend"


@pytest.fixture(scope="module")
def pool(ceph: CephCluster, ceph_libs: tuple[Any, Any]) -> str:
    if POOL not in ceph.pools:
        ceph.create_pool(POOL)
    return POOL


@pytest.fixture(scope="module")
async def be(ceph: CephCluster, pool: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backend]:
    b = Backend("ceph", {"pool": pool, "ceph_conf": str(ceph.conf)}, tmp_path_factory.mktemp("rbdvol"))
    await b.start()
    yield b
    await b.close()


@pytest.fixture(scope="module")
def ioctx(ceph: CephCluster, pool: str) -> Iterator[Any]:
    with ceph.ioctx(pool) as ctx:
        yield ctx


def uid() -> str:
    return str(uuid.uuid4())


def images_in(libs: tuple[Any, Any], ioctx: Any) -> set[str]:
    return set(libs[1].RBD().list(ioctx))


def parent_of(libs: tuple[Any, Any], ioctx: Any, name: str) -> tuple[str, str, str] | None:
    with libs[1].Image(ioctx, name, read_only=True) as image:
        try:
            return tuple(image.parent_info())  # type: ignore[return-value]
        except libs[1].ImageNotFound:
            return None


async def read(b: Backend, vid: str, sid: str | None = None, limit: int = MIB) -> bytes:
    out = bytearray()
    async with contextlib.aclosing(b.read(vid, sid, chunk_size=limit)) as chunks:
        async for chunk in chunks:
            out += chunk
            if len(out) >= limit:
                break
    return bytes(out[:limit])


async def data(payload: bytes) -> AsyncIterator[bytes]:
    yield payload


async def test_snapshots_clones_and_deletes_that_flatten_first(be: Backend, ioctx: Any,
                                                             ceph_libs: tuple[Any, Any]) -> None:
    a, b, c, s1 = uid(), uid(), uid(), uid()
    await be.create(a, 1)
    await be.create(a, 1)  # idempotent
    await be.write(a, data(b"\x11" * MIB))
    await be.create_snapshot(s1, a)
    await be.create_snapshot(s1, a)
    await be.write(a, data(b"\x22" * MIB))
    assert await read(be, a, s1) == b"\x11" * MIB and await read(be, a) == b"\x22" * MIB
    await be.create_from_snapshot(b, 2, s1, a)
    assert parent_of(ceph_libs, ioctx, f"volume-{b}") == (POOL, f"volume-{a}", f"snapshot-{s1}")
    await be.clone(c, 1, a)
    assert parent_of(ceph_libs, ioctx, f"volume-{c}") == (POOL, f"volume-{a}", f"volume-{c}.clone_snap")
    assert await read(be, b) == b"\x11" * MIB and await read(be, c) == b"\x22" * MIB
    with ceph_libs[1].Image(ioctx, f"volume-{b}") as img:
        assert img.size() == 2 * GIB
    assert {f"volume-{a}", f"volume-{b}", f"volume-{c}", f"snapshot-{s1}"} <= await be.list_ids()

    # the snapshot and the source go: their clones are flattened first and keep their data
    await be.delete_snapshot(s1, a)
    assert parent_of(ceph_libs, ioctx, f"volume-{b}") is None
    await be.delete(a)
    await be.delete(a)
    assert parent_of(ceph_libs, ioctx, f"volume-{c}") is None
    assert await read(be, b) == b"\x11" * MIB and await read(be, c) == b"\x22" * MIB
    await be.delete(b)
    await be.delete(c)
    assert not {f"volume-{v}" for v in (a, b, c)} & images_in(ceph_libs, ioctx)


async def test_a_clone_snapshot_goes_with_its_clone(be: Backend, ioctx: Any, ceph_libs: tuple[Any, Any]) -> None:
    a, c = uid(), uid()
    await be.create(a, 1)
    await be.clone(c, 1, a)
    await be.delete(c)
    with ceph_libs[1].Image(ioctx, f"volume-{a}", read_only=True) as img:
        assert [s["name"] for s in img.list_snaps()] == []
    await be.delete(a)


async def test_a_source_and_its_clones_deleted_at_once(be: Backend, ioctx: Any, ceph_libs: tuple[Any, Any]) -> None:
    """`openstack volume delete SRC CLONE...`: the source's delete flattens the clones that are
    going themselves; every delete ends and nothing is left."""
    a, s1 = uid(), uid()
    clones = [uid() for _ in range(3)]
    await be.create(a, 1)
    await be.write(a, data(b"\x33" * MIB))
    await be.create_snapshot(s1, a)
    await be.create_from_snapshot(clones[0], 1, s1, a)
    for c in clones[1:]:
        await be.clone(c, 1, a)
    await asyncio.gather(be.delete(a), *(be.delete(c) for c in clones))
    assert not {f"volume-{v}" for v in (a, *clones)} & images_in(ceph_libs, ioctx)


async def test_from_an_image_in_the_cluster_is_a_clone_else_a_copy(be: Backend, ceph: CephCluster, ioctx: Any,
                                                                   ceph_libs: tuple[Any, Any], tmp_path: Path) -> None:
    store = RbdStore("rbd", pool="images", conf_path=ceph.conf, chunk_size=MIB)
    image_id = uid()
    try:
        stored = await store.add(image_id, data(b"\x5a" * (3 * MIB)))
        rbd_ref = f"images/{image_id}@snap"
        v = uid()
        src = ImageSource(id=image_id, disk_format="raw", size=3 * MIB, rbd=rbd_ref, ceph_conf=str(ceph.conf))
        assert await be.create_from_image(v, 1, src) == "clone"
        assert parent_of(ceph_libs, ioctx, f"volume-{v}") == ("images", image_id, "snap")
        assert await read(be, v, limit=3 * MIB) == b"\x5a" * (3 * MIB)
        with pytest.raises(InUse):  # the image service cannot delete data a volume is cloned from
            await store.delete(stored.location)
        await be.delete(v)
        await store.delete(stored.location)
    finally:
        await store.close()

    if shutil.which("qemu-img") is None:
        missing("qemu-img")
    qcow2 = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "16M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x7e 0 1M", str(qcow2)], check=True,
                   capture_output=True)
    w = uid()
    copy = ImageSource(id=uid(), disk_format="qcow2", size=qcow2.stat().st_size, path=str(qcow2))
    assert await be.create_from_image(w, 1, copy) == "copy"
    assert parent_of(ceph_libs, ioctx, f"volume-{w}") is None and await read(be, w) == b"\x7e" * MIB
    with pytest.raises(BackendError, match="does not fit"):
        big = tmp_path / "big.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2G"], check=True)
        await be.create_from_image(uid(), 1, ImageSource(id="big", disk_format="qcow2", size=1, path=str(big)))
    await be.delete(w)


async def test_forced_snapshot_while_qemu_holds_the_image_and_no_delete(be: Backend, ceph: CephCluster,
                                                                       tmp_path: Path) -> None:
    if shutil.which("qemu-storage-daemon") is None:
        missing("qemu-storage-daemon")
    v, s = uid(), uid()
    await be.create(v, 1)
    sock = tmp_path / "nbd.sock"
    proc = subprocess.Popen(
        ["qemu-storage-daemon", "--blockdev",
         f"driver=rbd,pool={POOL},image=volume-{v},conf={ceph.conf},node-name=d",
         "--nbd-server", f"addr.type=unix,addr.path={sock}", "--export", "type=nbd,id=e,node-name=d,writable=on"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: sock.exists() or proc.poll() is not None, 20, 0.05, "the NBD socket")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""

        def guest_write(byte: int) -> None:
            r = subprocess.run(["qemu-io", "-f", "raw", "-c", f"write -P {byte:#x} 0 1M",
                                f"nbd+unix:///d?socket={sock}"], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr

        guest_write(0x44)
        await be.create_snapshot(s, v)
        guest_write(0x55)
        assert await read(be, v, s) == b"\x44" * MIB and await read(be, v) == b"\x55" * MIB
        await be.delete_snapshot(s, v)
        with pytest.raises(BackendError, match="in use"):
            await be.delete(v)  # qemu has it open
    finally:
        proc.terminate()
        proc.wait(10)
    await be.delete(v)


async def test_extend_revert_raw_data_depth_and_connection(be: Backend, ioctx: Any,
                                                           ceph_libs: tuple[Any, Any]) -> None:
    v, s = uid(), uid()
    await be.create(v, 1)
    await be.write(v, data(b"\x01" * (2 * MIB)))
    await be.write(v, data(b"\x02" * MIB))  # a new stream: zeros after its end
    assert await read(be, v, limit=2 * MIB) == b"\x02" * MIB + bytes(MIB)
    await be.create_snapshot(s, v)
    await be.write(v, data(b"\x03" * MIB))
    await be.extend(v, 2)
    await be.revert_to_snapshot(v, s)
    assert await read(be, v) == b"\x02" * MIB
    info = await be.connection_info(v, {})
    assert info["driver_volume_type"] == "rbd" and info["data"]["name"] == f"{POOL}/volume-{v}"
    assert info["data"]["hosts"] and info["data"]["ceph_conf"] == be.conf

    # a chain of clones deeper than max_clone_depth is cut by flattening
    chain = [v]
    for _ in range(6):
        snap, nxt = uid(), uid()
        await be.create_snapshot(snap, chain[-1])
        await be.create_from_snapshot(nxt, 2, snap, chain[-1])
        chain.append(nxt)
    assert await read(be, chain[-1]) == b"\x02" * MIB
    assert parent_of(ceph_libs, ioctx, f"volume-{chain[-1]}") is None  # the 6th: flattened
    for vid in reversed(chain):
        await be.delete(vid)
    assert not {f"volume-{x}" for x in chain} & images_in(ceph_libs, ioctx)
    cap = await be.capacity()
    assert cap.total_gb > 0 and 0 < cap.free_gb <= cap.total_gb
