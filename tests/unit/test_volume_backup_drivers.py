"""The chunked backup driver on real files (``file``) and in memory (``fake``): data comes back
as it went in, zero chunks take no object, an incremental stores only the chunks that changed
and restores through its parent's objects, damage is found by the sha256 check, and a delete
removes only the backup's own objects (a cut-short backup's too)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcloud.volume.backup_drivers import BackupError, load_backup_driver
from mcloud.volume.backup_drivers.chunked import ZERO, prefix_of, rechunk

CHUNK = 64 << 10


async def stream(data: bytes, piece: int = 50_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i:i + piece]


async def restored(driver, meta) -> bytes:
    """The restored data, zero-padded to the backup's size as a backend's write leaves it."""
    data = b"".join([c async for c in driver.restore(meta)])
    return data + bytes(meta["size"] - len(data))


@pytest.fixture(params=["file", "fake"])
async def driver(request, tmp_path: Path):
    d = load_backup_driver({"driver": request.param, "chunk_size": CHUNK}, tmp_path)
    await d.start()
    yield d
    await d.close()


def volume_data(chunks: int) -> bytearray:
    """Random chunks with every third one zeros, as a thin volume reads."""
    data = bytearray()
    for i in range(chunks):
        data += bytes(CHUNK) if i % 3 == 1 else os.urandom(CHUNK)
    return data


async def test_full_backup_round_trip_skips_zero_chunks(driver, tmp_path: Path) -> None:
    data = volume_data(9) + os.urandom(1000)  # a last, short chunk
    seen = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    meta = await driver.backup("b1", "volumebackups", stream(bytes(data)), len(data), progress=progress)
    assert len(meta["chunks"]) == 10
    assert [c[0] == ZERO for c in meta["chunks"]] == [i % 3 == 1 for i in range(9)] + [False]
    assert meta["object_count"] == 7
    assert meta["chunks"][0][0] == hashlib.sha256(data[:CHUNK]).hexdigest()
    assert seen[-1] == (len(data), len(data))
    assert await restored(driver, meta) == bytes(data)
    names = await driver.object_names()
    assert len(names) == 8 and f"{prefix_of('volumebackups', 'b1')}metadata" in names
    if driver.name == "file":
        files = [p for p in (tmp_path / "backups").rglob("*") if p.is_file()]
        assert len(files) == 8
        assert sum(p.stat().st_size for p in files if p.name != "metadata") == 6 * CHUNK + 1000


async def test_incremental_stores_only_changed_chunks(driver) -> None:
    data = volume_data(6)
    full = await driver.backup("full", "c", stream(bytes(data)), len(data))
    changed = bytearray(data)
    changed[2 * CHUNK + 5] ^= 0xFF             # chunk 2 changes
    changed[4 * CHUNK:5 * CHUNK] = bytes(CHUNK)  # chunk 4 becomes zeros
    changed[1 * CHUNK] = 7                     # chunk 1 (was zeros) gets data
    incr = await driver.backup("incr", "c", stream(bytes(changed)), len(changed), parent=full)
    assert incr["object_count"] == 2
    assert incr["chunks"][0][1] == full["chunks"][0][1]  # unchanged: the parent's object
    assert incr["chunks"][2][1].startswith(prefix_of("c", "incr"))
    assert incr["chunks"][4] == [ZERO, None]
    assert await restored(driver, incr) == bytes(changed)
    assert await restored(driver, full) == bytes(data)
    # a second incremental on the first: nothing changed, nothing stored
    again = await driver.backup("incr2", "c", stream(bytes(changed)), len(changed), parent=incr)
    assert again["object_count"] == 0
    assert await restored(driver, again) == bytes(changed)
    # deleting the newest removes its own objects only; the chain still restores
    before = await driver.object_names()
    await driver.delete("incr2", "c")
    assert before - await driver.object_names() == {f"{prefix_of('c', 'incr2')}metadata"}
    assert await restored(driver, incr) == bytes(changed)


async def test_damaged_or_missing_chunk_fails_restore(driver, tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK)
    meta = await driver.backup("b", "x", stream(data), len(data))
    name = meta["chunks"][1][1]
    await driver.store.put(name, b"\0" + (await driver.store.get(name))[1:])
    with pytest.raises(BackupError, match="chunk 1 .* sha256"):
        await restored(driver, meta)
    await driver.store.delete_prefix(prefix_of("x", "b"))
    with pytest.raises(BackupError, match="missing"):
        await restored(driver, meta)


async def test_delete_cleans_up_a_cut_short_backup(driver) -> None:
    async def dies() -> AsyncIterator[bytes]:
        yield os.urandom(CHUNK)
        yield os.urandom(CHUNK)
        raise RuntimeError("the volume went away")

    with pytest.raises(RuntimeError):
        await driver.backup("cut", "c", dies(), 4 * CHUNK)
    assert await driver.object_names()  # chunks were written, no metadata
    await driver.delete("cut", "c")
    assert await driver.object_names() == set()
    await driver.delete("cut", "c")  # again: nothing there, no error


async def test_container_names_stay_inside_the_store(tmp_path: Path) -> None:
    d = load_backup_driver({"driver": "file", "chunk_size": CHUNK}, tmp_path)
    await d.start()
    for container in ("..", "../../etc", "a/b", ""):
        meta = await d.backup("b", container, stream(b"x" * 10), 10)
        assert await restored(d, meta) == b"x" * 10
        await d.delete("b", container)
    assert not any(p.is_file() for p in tmp_path.rglob("*") if "backups" not in p.parts)
    assert list((tmp_path / "backups").rglob("*")) == []


async def test_short_stream_and_trailing_zeros_take_nothing(driver) -> None:
    """A volume whose data stops early (a thin backend reads only what was written) backs up as
    its data plus zero chunks; a restore stops after the last chunk with data."""
    size = 100 * CHUNK
    data = os.urandom(CHUNK + 10)
    meta = await driver.backup("thin", "c", stream(data), size)
    assert len(meta["chunks"]) == 100 and meta["object_count"] == 2
    assert all(c == [ZERO, None] for c in meta["chunks"][2:])
    out = b"".join([c async for c in driver.restore(meta)])
    assert out == data + bytes(CHUNK - 10)
    assert await restored(driver, meta) == data + bytes(size - len(data))


async def test_rechunk_pads_and_cuts() -> None:
    out = [c async for c in rechunk(stream(b"a" * 10, 3), 25, 8)]
    assert [len(c) for c in out] == [8, 8, 8, 1]
    assert b"".join(out) == b"a" * 10 + bytes(15)
    out = [c async for c in rechunk(stream(b"b" * 30, 7), 16, 8)]
    assert b"".join(out) == b"b" * 16
    out = [c async for c in rechunk(stream(b"c" * 10, 3), 25, 8, pad=False)]
    assert [len(c) for c in out] == [8, 8]


def test_unknown_driver_or_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="driver must be one of"):
        load_backup_driver({"driver": "swift"}, tmp_path)
    with pytest.raises(ValueError, match="unknown options"):
        load_backup_driver({"driver": "file", "pool": "x"}, tmp_path)
