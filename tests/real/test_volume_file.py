"""The file volume backend with real qemu-img (and a real qemu process holding a volume open):
snapshots and clones as backing chains, volumes from images as overlays on one cached image,
a forced snapshot while qemu writes to the volume, deletes that never break a dependant and
leave nothing behind, extend, revert, raw reads and writes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mcloud.volume.drivers.base import BackendError, ImageSource
from mcloud.volume.drivers.file import GIB, Backend
from tests.harness import missing, wait_for

pytestmark = pytest.mark.real
MIB = 1 << 20


@pytest.fixture
async def be(tmp_path: Path) -> AsyncIterator[Backend]:
    if shutil.which("qemu-img") is None or shutil.which("qemu-io") is None:
        missing("qemu-img (qemu-utils)")
    b = Backend("files", {"path": str(tmp_path / "vols")}, tmp_path)
    await b.start()
    yield b


def qemu_io(path: Path, command: str, fmt: str = "qcow2", force_share: bool = False) -> str:
    args = ["qemu-io", "-f", fmt] + (["-U"] if force_share else []) + ["-c", command, str(path)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "error" not in r.stdout.lower() and "fail" not in r.stdout.lower(), r.stdout + r.stderr
    return r.stdout


def has_pattern(path: Path, byte: int, offset: int = 0, length: int = MIB) -> bool:
    r = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-U", "-c", f"read -P {byte:#x} {offset} {length}", str(path)],
                       capture_output=True, text=True, timeout=60)
    return r.returncode == 0 and "Pattern verification failed" not in r.stdout


async def read_all(b: Backend, volume_id: str, snapshot_id: str | None = None, limit: int | None = None) -> bytes:
    """The raw data (its first ``limit`` bytes)."""
    out = bytearray()
    async with contextlib.aclosing(b.read(volume_id, snapshot_id)) as chunks:
        async for chunk in chunks:
            out += chunk
            if limit is not None and len(out) >= limit:
                return bytes(out[:limit])
    return bytes(out)


async def test_snapshots_and_clones_are_chains_and_deletes_never_break_dependants(be: Backend) -> None:
    await be.create("a", 1)
    await be.create("a", 1)  # a resumed task: nothing changes
    qemu_io(be.volume_path("a"), "write -P 0x11 0 1M")
    await be.create_snapshot("s1", "a")
    await be.create_snapshot("s1", "a")
    frozen = await be.backing(be.snapshot_path("s1"))
    assert frozen and frozen.startswith(".frozen-")
    assert await be.backing(be.volume_path("a")) == frozen  # no data copied: a chain
    assert (be.root / frozen).stat().st_size < 2 * MIB
    qemu_io(be.volume_path("a"), "write -P 0x22 0 1M")
    assert has_pattern(be.snapshot_path("s1"), 0x11) and has_pattern(be.volume_path("a"), 0x22)

    await be.create_from_snapshot("b", 2, "s1", "a")
    assert has_pattern(be.volume_path("b"), 0x11)
    assert int((await be.info(be.volume_path("b")))["virtual-size"]) == 2 * GIB
    await be.clone("c", 1, "a")
    assert has_pattern(be.volume_path("c"), 0x22)
    qemu_io(be.volume_path("c"), "write -P 0x33 0 1M")
    assert has_pattern(be.volume_path("a"), 0x22)  # a clone's writes stay its own
    assert await be.list_ids() == {"volume-a", "volume-b", "volume-c", "snapshot-s1"}

    # the source and its snapshot go; what b and c are made of stays
    await be.delete_snapshot("s1", "a")
    await be.delete("a")
    await be.delete("a")
    assert has_pattern(be.volume_path("b"), 0x11) and has_pattern(be.volume_path("c"), 0x33)
    assert len(list(be.root.glob(".frozen-*"))) == 2
    await be.delete("b")
    await be.delete("c")
    assert list(be.root.iterdir()) == []  # nothing left behind


async def test_volumes_from_an_image_share_one_cached_copy(be: Backend, tmp_path: Path) -> None:
    image_file = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image_file), "64M"], check=True)
    qemu_io(image_file, "write -P 0x5a 0 2M")
    image = ImageSource(id="img1", disk_format="qcow2", size=image_file.stat().st_size, checksum="abc123",
                        path=str(image_file))
    assert await be.create_from_image("v1", 1, image) == "overlay"
    assert await be.create_from_image("v2", 2, image) == "overlay"
    cached = list(be.root.glob(".image-*"))
    assert [p.name for p in cached] == [".image-img1-abc123"]
    assert cached[0].stat().st_ino == image_file.stat().st_ino  # a hard link: not even one copy
    for v in ("v1", "v2"):
        assert await be.backing(be.volume_path(v)) == cached[0].name
        assert has_pattern(be.volume_path(v), 0x5a, 0, 2 * MIB)
    assert int((await be.info(be.volume_path("v2")))["virtual-size"]) == 2 * GIB
    qemu_io(be.volume_path("v1"), "write -P 0x01 0 1M")
    assert has_pattern(image_file, 0x5a, 0, MIB)  # the image is never written

    # a streamed raw image (another store) is cached from the stream; a vmdk is copied
    raw = bytes([7]) * MIB

    async def stream() -> AsyncIterator[bytes]:
        yield raw

    streamed = ImageSource(id="img2", disk_format="raw", size=MIB, checksum="def", open=stream)
    assert await be.create_from_image("v3", 1, streamed) == "overlay"
    assert await read_all(be, "v3", limit=MIB) == raw
    vmdk = tmp_path / "image.vmdk"
    subprocess.run(["qemu-img", "convert", "-q", "-O", "vmdk", str(image_file), str(vmdk)], check=True)
    assert await be.create_from_image("v4", 1, ImageSource(id="img3", disk_format="vmdk", size=1, path=str(vmdk))) \
        == "copy"
    assert await be.backing(be.volume_path("v4")) is None and has_pattern(be.volume_path("v4"), 0x5a, 0, 2 * MIB)
    with pytest.raises(BackendError, match="does not fit"):
        await be.create_from_image("v5", 0, image)
    assert {p.name for p in be.root.glob(".image-*")} == {".image-img1-abc123", ".image-img2-def"}

    for v in ("v1", "v2", "v3", "v4"):
        await be.delete(v)
    assert list(be.root.iterdir()) == []  # the cache goes with the last volume that needed it
    assert image_file.exists()


@pytest.fixture
def held(be: Backend, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A volume held open read-write by a real qemu (qemu-storage-daemon, as a guest's qemu holds
    its disk) that exports it over NBD: (volume file, NBD socket) — writes go through qemu."""
    if shutil.which("qemu-storage-daemon") is None:
        missing("qemu-storage-daemon (qemu-system-common)")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(be.volume_path("busy")), "64M"], check=True)
    sock = tmp_path / "nbd.sock"
    proc = subprocess.Popen(
        ["qemu-storage-daemon", "--blockdev", f"driver=file,filename={be.volume_path('busy')},node-name=f",
         "--blockdev", "driver=qcow2,file=f,node-name=d",
         "--nbd-server", f"addr.type=unix,addr.path={sock}", "--export", "type=nbd,id=e,node-name=d,writable=on"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: sock.exists() or proc.poll() is not None, 10, 0.05, "the NBD socket")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        yield be.volume_path("busy"), sock
    finally:
        proc.terminate()
        proc.wait(10)


def nbd_write(sock: Path, command: str) -> None:
    r = subprocess.run(["qemu-io", "-f", "raw", "-c", command, f"nbd+unix:///d?socket={sock}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "error" not in r.stdout.lower(), r.stdout + r.stderr


async def test_forced_snapshot_while_qemu_holds_the_volume(be: Backend, held: tuple[Path, Path]) -> None:
    path, sock = held
    nbd_write(sock, "write -P 0x44 0 1M")
    assert await be.in_use(path)
    inode = path.stat().st_ino
    await be.create_snapshot("hot", "busy")
    assert path.stat().st_ino == inode  # the file qemu has open is still the volume
    nbd_write(sock, "write -P 0x55 0 1M")  # the guest goes on writing
    assert has_pattern(be.snapshot_path("hot"), 0x44)
    await be.create_from_snapshot("fromhot", 1, "hot", "busy")
    assert has_pattern(be.volume_path("fromhot"), 0x44)
    await be.clone("clonehot", 1, "busy")  # a clone of an in-use volume is a copy too
    assert has_pattern(be.volume_path("clonehot"), 0x55)
    assert await read_all(be, "busy", limit=MIB) == bytes([0x55]) * MIB  # raw reads share too
    with pytest.raises(BackendError, match="in use"):
        await be.extend("busy", 1)
    with pytest.raises(BackendError, match="in use"):
        await be.revert_to_snapshot("busy", "hot")


async def test_extend_revert_and_raw_data(be: Backend) -> None:
    await be.create("r", 1)
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    await be.write("r", _chunks(data, 1 << 20))
    back = await read_all(be, "r")
    assert len(back) == GIB and back[:len(data)] == data and back[len(data):].count(0) == GIB - len(data)
    del back
    await be.create_snapshot("rs", "r")
    qemu_io(be.volume_path("r"), "write -P 0x66 0 1M")
    await be.extend("r", 2)
    assert int((await be.info(be.volume_path("r")))["virtual-size"]) == 2 * GIB
    await be.revert_to_snapshot("r", "rs")
    assert await read_all(be, "r", None, len(data)) == data
    assert await read_all(be, "r", "rs", len(data)) == data
    with pytest.raises(BackendError, match="larger"):
        await be.write("r", _chunks(bytes(MIB), MIB, count=2049))
    info = await be.connection_info("r", {})
    assert info["driver_volume_type"] == "file" and info["data"]["path"] == str(be.volume_path("r").resolve())
    assert info["data"]["format"] == "qcow2"
    await be.delete_snapshot("rs", "r")
    await be.delete("r")
    assert list(be.root.iterdir()) == []


async def test_capacity_of_a_configured_size(tmp_path: Path) -> None:
    b = Backend("small", {"path": str(tmp_path / "s"), "total_gb": 5}, tmp_path)
    await b.start()
    cap = await b.capacity()
    assert cap.total_gb == 5 and 4.9 < cap.free_gb <= 5
    await asyncio.sleep(0)


async def _chunks(data: bytes, size: int, count: int | None = None) -> AsyncIterator[bytes]:
    if count is not None:  # ``data`` ``count`` times
        for _ in range(count):
            yield data
        return
    for at in range(0, len(data), size):
        yield data[at:at + size]
