"""The manager's moves on a cloud of its own with two real-enough backends: ``file`` (qcow2 files
through the real qemu-img) and ``fake``, each behind a type by ``volume_backend_name``, and
``[volume] host = "storage1"``. Retype with ``migration_policy=on-demand`` moves the data to the
other backend (host, type and claim move; the old copy goes), ``never`` leaves the volume where it
is; upload to an image (seam 1, as VOLUMES' os-volume_upload_image submits it) gives an image
holding the volume's data: qcow2 from both backends, raw from the fake (raw from the file
backend, a whole GiB, in tests/real/test_volume_rbd_cli.py). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.api.test_volume_scheduling import volume_cloud
from tests.api.volume_helpers import VolumeWorld, uniq, wait_volume

MIB = 1 << 20
HOST = "storage1"
BACKENDS = {"file": {"driver": "file"}, "fake": {"driver": "fake"}}
TYPES = {"file": "on-file", "fake": "on-fake"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[VolumeWorld]:
    async with volume_cloud(database, tmp_path_factory.mktemp("volmoves"), {"host": HOST, "backends": BACKENDS},
                            {name: backend for backend, name in TYPES.items()}) as world:
        yield world


def backend(w: VolumeWorld, name: str) -> Any:
    return w.cloud.volume.backends.get(name)


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def head(w: VolumeWorld, name: str, volume_id: str, length: int = MIB) -> bytes:
    out = bytearray()
    async for chunk in backend(w, name).read(volume_id):
        out += chunk
        if len(out) >= length:
            break
    return bytes(out[:length]).ljust(length, b"\0")


async def volume_on(w: VolumeWorld, name: str, data: bytes) -> dict[str, Any]:
    """An available volume of project a on backend ``name`` holding ``data`` (as a guest wrote it)."""
    vol = await w.volume(volume_type=TYPES[name])
    await backend(w, name).write(vol["id"], chunks(data))
    return vol


async def host_of(w: VolumeWorld, volume_id: str) -> str | None:
    return (await w.admin.get(f"/volumes/{volume_id}", expect=200)).json()["volume"]["os-vol-host-attr:host"]


async def allocated(w: VolumeWorld) -> dict[str, float]:
    r = await w.admin.get("/scheduler-stats/get_pools", params={"detail": "True"}, expect=200)
    return {p["name"]: p["capabilities"]["allocated_capacity_gb"] for p in r.json()["pools"]}


async def test_pools_and_services_are_named_by_the_configured_host(w: VolumeWorld) -> None:
    assert set(await allocated(w)) == {f"{HOST}@file#file", f"{HOST}@fake#fake"}
    r = await w.admin.get("/os-services", params={"binary": "cinder-volume"}, expect=200)
    assert {s["host"] for s in r.json()["services"]} == {f"{HOST}@file", f"{HOST}@fake"}
    vol = await w.volume(volume_type=TYPES["fake"])
    assert await host_of(w, vol["id"]) == f"{HOST}@fake#fake"
    await w["member"].delete(f"/volumes/{vol['id']}", expect=202)
    await wait_volume(w["member"], vol["id"], "deleted")


async def retype(w: VolumeWorld, volume_id: str, to: str, policy: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"new_type": TYPES[to]}
    if policy:
        body["migration_policy"] = policy
    await w["member"].action(volume_id, "os-retype", body, expect=202)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        vol = (await w.admin.get(f"/volumes/{volume_id}", expect=200)).json()["volume"]
        if vol["status"] != "retyping":
            return vol
        assert loop.time() < deadline, vol
        await asyncio.sleep(0.05)


async def test_retype_moves_the_data_on_demand_and_never_stays(w: VolumeWorld) -> None:
    data = os.urandom(MIB) + b"\0" * MIB + b"tail" * 1024
    vol = await volume_on(w, "file", data)
    vid = vol["id"]
    before = await allocated(w)
    # never (also Cinder's default): the new type needs another backend, the volume stays as it was
    for policy in ("never", None):
        vol = await retype(w, vid, "fake", policy)
        assert (vol["status"], vol["volume_type"], vol["os-vol-host-attr:host"]) == (
            "available", TYPES["file"], f"{HOST}@file#file")
        assert vol["os-vol-mig-status-attr:migstat"] is None
    assert f"volume-{vid}" in await backend(w, "file").list_ids()
    # on-demand: the data, the host, the type and the claim move; the old copy goes
    for src, dst in (("file", "fake"), ("fake", "file")):
        vol = await retype(w, vid, dst, "on-demand")
        assert (vol["status"], vol["volume_type"], vol["os-vol-host-attr:host"]) == (
            "available", TYPES[dst], f"{HOST}@{dst}#{dst}")
        assert vol["os-vol-mig-status-attr:migstat"] == "success"
        assert await head(w, dst, vid, len(data)) == data
        assert f"volume-{vid}" not in await backend(w, src).list_ids()
        now = await allocated(w)
        assert now[f"{HOST}@{dst}#{dst}"] == before[f"{HOST}@{dst}#{dst}"] + (1 if dst == "fake" else 0)
        assert now[f"{HOST}@{src}#{src}"] == before[f"{HOST}@{src}#{src}"] - (1 if src == "file" else 0)
    # a retype to the type's own backend only changes the type
    await w.admin.post("/types", {"volume_type": {"name": "file-too", "extra_specs": {
        "volume_backend_name": "file"}}}, expect=200)
    await w["member"].action(vid, "os-retype", {"new_type": "file-too", "migration_policy": "never"}, expect=202)
    vol = await wait_volume(w["member"], vid, "available")
    assert vol["volume_type"] == "file-too" and await host_of(w, vid) == f"{HOST}@file#file"
    await w["member"].delete(f"/volumes/{vid}", expect=202)
    await wait_volume(w["member"], vid, "deleted")
    assert await w.cloud.volume.manager.orphans() == {}


async def image_file(w: VolumeWorld, image_id: str, dest: Path) -> Path:
    """The image's data, once active, streamed into ``dest``."""
    h = {"X-Auth-Token": w.admin.token}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while (image := (await w.ks.client.get(f"/image/v2/images/{image_id}", headers=h)).json())["status"] != "active":
        assert image["status"] in ("queued", "saving") and loop.time() < deadline, image
        await asyncio.sleep(0.05)
    async with w.ks.client.stream("GET", f"/image/v2/images/{image_id}/file", headers=h) as r:
        assert r.status_code == 200
        with dest.open("wb") as out:
            async for chunk in r.aiter_bytes(4 * MIB):
                if chunk.count(0) == len(chunk):
                    out.seek(len(chunk), os.SEEK_CUR)
                else:
                    out.write(chunk)
            out.truncate()
    return dest


def holds(path: Path, data: bytes, size: int) -> bool:
    """Whether the raw disk ``path`` is ``size`` bytes: ``data``, then zeros."""
    if path.stat().st_size != size:
        return False
    with path.open("rb") as f:
        if f.read(len(data)) != data:
            return False
        while chunk := f.read(16 * MIB):
            if chunk.count(0) != len(chunk):
                return False
    return True


async def upload(w: VolumeWorld, volume_id: str, disk_format: str) -> str:
    """What os-volume_upload_image does (seam 1): a queued image, the volume ``uploading``, the
    manager's task; the image id once the volume is available again."""
    h = {"X-Auth-Token": w.admin.token}
    r = await w.ks.client.post("/image/v2/images", headers=h, json={
        "name": uniq("up"), "disk_format": disk_format, "container_format": "bare"})
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    volume = w.cloud.volume
    async with volume.db.write() as session:
        row = await volume.manager._volume(session, volume_id, lock=True)
        row.previous_status, row.status = row.status, "uploading"
        await volume.manager.upload_to_image(session, row, image_id, disk_format, previous_status="available")
    await wait_volume(w["member"], volume_id, "available", timeout=60)
    return image_id


@pytest.mark.parametrize("name", ["fake", "file"])
async def test_upload_to_image(w: VolumeWorld, name: str, tmp_path: Path) -> None:
    data = os.urandom(64 * 1024) + b"\0" * MIB + b"end!" * 128  # whole sectors (qcow2 rounds up)
    vol = await volume_on(w, name, data)
    full = 1 << 30 if name == "file" else len(data)  # the fake holds only what was written
    if name == "fake":  # a raw image of a file volume is its whole GiB: tests/real/test_volume_rbd_cli.py
        raw = await image_file(w, await upload(w, vol["id"], "raw"), tmp_path / "image.img")
        assert holds(raw, data, full)
    qcow2 = await image_file(w, await upload(w, vol["id"], "qcow2"), tmp_path / "image.qcow2")
    assert qcow2.stat().st_size < 4 * MIB  # only the data, not the zeros
    converted = tmp_path / "image.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(qcow2), str(converted)], check=True)
    assert holds(converted, data, full)
    await w["member"].delete(f"/volumes/{vol['id']}", expect=202)
    await wait_volume(w["member"], vol["id"], "deleted")
