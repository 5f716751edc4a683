"""Cinder's backups API on the fake volume backend and the file backup driver (real chunk files
under the cloud's data dir): create full and incremental backups (of a volume, of a snapshot,
of an in-use volume with force), what the views show at each microversion, the statuses the
volume goes through, restore to a new and to an existing volume (the data comes back), delete
rules (a parent of incrementals, a backup in progress), the admin's reset-status and force
delete, isolation between projects, quota, and Cinder's 400s for bad input."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from mcloud.volume.models_backups import Backup

from tests.api.volume_helpers import VolumeWorld, assert_fault, uniq, volume_world, wait_volume

pytestmark = pytest.mark.asyncio(loop_scope="session")

MB = 1 << 20


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        for project in world.projects.values():  # the tests make more than Cinder's default 10
            await world.admin.put(f"/os-quota-sets/{project}", {"quota_set": {
                "volumes": -1, "gigabytes": -1, "snapshots": -1, "backups": -1, "backup_gigabytes": -1}},
                expect=200)
        yield world


def backend_of(w: VolumeWorld, vol: dict[str, Any]) -> Any:
    return w.cloud.volume.backends.for_host(vol["os-vol-host-attr:host"])


async def host_of(w: VolumeWorld, volume_id: str) -> dict[str, Any]:
    return (await w.admin.at("latest").get(f"/volumes/{volume_id}", expect=200)).json()["volume"]


async def put_data(w: VolumeWorld, volume_id: str, data: bytes) -> None:
    """Write ``data`` into the volume through its backend (as a guest would)."""
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await backend_of(w, await host_of(w, volume_id)).write(volume_id, chunks())


async def assert_data(w: VolumeWorld, volume_id: str, expected: bytes) -> None:
    """The volume holds ``expected``, then only zeros (read through its backend)."""
    backend = backend_of(w, await host_of(w, volume_id))
    data = b"".join([c async for c in backend.read(volume_id)])
    assert data[:len(expected)] == expected and not any(data[len(expected):])


async def backup(w: VolumeWorld, who: str = "member", wait: str | None = "available", version: str = "3.0",
                 **fields: Any) -> dict[str, Any]:
    body = {"backup": {"name": uniq("bak"), **fields}}
    r = await w[who].at(version).post("/backups", body, expect=202)
    made = r.json()["backup"]
    assert set(made) == {"id", "name", "links"}, made
    if wait is None:
        return made
    return await wait_volume(w[who].at(version), made["id"], wait, collection="backups")


async def test_full_backup_restore_to_new_volume(w: VolumeWorld) -> None:
    vol = await w.volume(metadata={"kept": "yes"})
    data = os.urandom(3 * MB + 5)
    await put_data(w, vol["id"], data)
    b = await backup(w, volume_id=vol["id"], description="first")
    assert b["status"] == "available" and b["size"] == 1 and b["volume_id"] == vol["id"]
    assert b["is_incremental"] is False and b["has_dependent_backups"] is False
    assert b["container"] == "volumebackups" and b["object_count"] == 1  # one 4 MiB chunk holds it
    assert b["description"] == "first" and b["fail_reason"] is None and b["snapshot_id"] is None
    assert b["data_timestamp"] and b["created_at"]
    assert "metadata" not in b and "os-backup-project-attr:project_id" not in b
    assert (await wait_volume(w["member"], vol["id"], "available"))["status"] == "available"
    # the chunk files are in the data dir
    root = w.cloud.config.data_dir / "backups" / "volumebackups" / b["id"]
    assert sorted(p.name for p in root.iterdir()) == ["00000000", "metadata"]

    r = await w["member"].post(f"/backups/{b['id']}/restore", {"restore": {"name": "from-backup"}}, expect=202)
    out = r.json()["restore"]
    assert out["backup_id"] == b["id"] and out["volume_name"] == "from-backup"
    restored = await wait_volume(w["member"], out["volume_id"], "available", timeout=30)
    assert restored["size"] == 1 and restored["name"] == "from-backup"
    assert restored["metadata"] == {"kept": "yes"}  # the volume's metadata comes back, as Cinder's
    await assert_data(w, out["volume_id"], data)
    assert (await wait_volume(w["member"], b["id"], "available", collection="backups"))["status"] == "available"


async def test_restore_to_existing_volume_and_its_checks(w: VolumeWorld) -> None:
    src = await w.volume()
    await put_data(w, src["id"], b"old data" * 1000)
    b = await backup(w, volume_id=src["id"])
    target = await w.volume()
    await put_data(w, target["id"], b"x" * 5000)
    r = await w["member"].post(f"/backups/{b['id']}/restore", {"restore": {"volume_id": target["id"]}},
                               expect=202)
    assert r.json()["restore"] == {"backup_id": b["id"], "volume_id": target["id"], "volume_name": target["name"]}
    await wait_volume(w["member"], target["id"], "available")
    await assert_data(w, target["id"], b"old data" * 1000)

    # too small, not available, not found
    bigger = await w.volume(size=2)
    big_backup = await backup(w, volume_id=bigger["id"])
    assert_fault(await w["member"].post(f"/backups/{big_backup['id']}/restore",
                                        {"restore": {"volume_id": target["id"]}}), 400,
                 contains="volume size 1 is too small to restore backup of size 2")
    attached_like = await w.volume()
    await w.admin.action(attached_like["id"], "os-reset_status", {"status": "error"}, expect=202)
    assert_fault(await w["member"].post(f"/backups/{b['id']}/restore",
                                        {"restore": {"volume_id": attached_like["id"]}}), 400,
                 contains="must be available")
    assert_fault(await w["member"].post(f"/backups/{b['id']}/restore",
                                        {"restore": {"volume_id": "00000000-0000-0000-0000-000000000000"}}), 404)
    assert_fault(await w["member"].post("/backups/00000000-0000-0000-0000-000000000000/restore",
                                        {"restore": {}}), 404, contains="Backup")
    assert_fault(await w["member"].post(f"/backups/{b['id']}/restore", {"restore": {"bogus": 1}}), 400)


async def test_incremental_backups_and_delete_order(w: VolumeWorld) -> None:
    vol = await w.volume()
    assert_fault(await w["member"].post("/backups", {"backup": {"volume_id": vol["id"], "incremental": True}}),
                 400, contains="No backups available to do an incremental backup")
    first = os.urandom(9 * MB)
    await put_data(w, vol["id"], first)
    full = await backup(w, volume_id=vol["id"])
    assert full["object_count"] == 3
    second = bytearray(first)
    second[5 * MB] ^= 1  # one 4 MiB chunk changes
    await put_data(w, vol["id"], bytes(second))
    incr = await backup(w, volume_id=vol["id"], incremental=True)
    assert incr["is_incremental"] is True and incr["object_count"] == 1
    full = (await w["member"].get(f"/backups/{full['id']}", expect=200)).json()["backup"]
    assert full["has_dependent_backups"] is True

    # a parent cannot go first
    assert_fault(await w["member"].delete(f"/backups/{full['id']}"), 400,
                 contains="Incremental backups exist for this backup.")
    assert_fault(await w.admin.post(f"/backups/{full['id']}/action", {"os-force_delete": {}}), 400,
                 contains="Incremental backups exist")

    # the incremental restores the second data through the full backup's chunks
    target = await w.volume()
    await w["member"].post(f"/backups/{incr['id']}/restore", {"restore": {"volume_id": target["id"]}}, expect=202)
    await wait_volume(w["member"], target["id"], "available")
    await assert_data(w, target["id"], bytes(second))

    await w["member"].delete(f"/backups/{incr['id']}", expect=202)
    await wait_volume(w["member"], incr["id"], "deleted", collection="backups")
    await w["member"].delete(f"/backups/{full['id']}", expect=202)
    await wait_volume(w["member"], full["id"], "deleted", collection="backups")
    assert not (w.cloud.config.data_dir / "backups" / "volumebackups" / full["id"]).exists()


async def test_backup_of_snapshot_and_of_in_use_volume(w: VolumeWorld) -> None:
    vol = await w.volume()
    await put_data(w, vol["id"], b"snapshot me")
    snap = (await w["member"].post("/snapshots", {"snapshot": {"volume_id": vol["id"]}}, expect=202)).json()
    snap = await wait_volume(w["member"], snap["snapshot"]["id"], "available", collection="snapshots")
    await put_data(w, vol["id"], b"later data")
    b = await backup(w, volume_id=vol["id"], snapshot_id=snap["id"])
    assert b["snapshot_id"] == snap["id"]
    target = await w.volume()
    await w["member"].post(f"/backups/{b['id']}/restore", {"restore": {"volume_id": target["id"]}}, expect=202)
    await wait_volume(w["member"], target["id"], "available")
    await assert_data(w, target["id"], b"snapshot me")
    assert (await w["member"].get(f"/snapshots/{snap['id']}", expect=200)).json()["snapshot"]["status"] == "available"

    other = await w.volume()
    assert_fault(await w["member"].post("/backups", {"backup": {"volume_id": other["id"], "snapshot_id": snap["id"]}}),
                 400, contains="does not match with snapshot.volume_id")

    # in-use: refused without force; with force it reads a temporary snapshot that goes afterwards
    await w.admin.action(vol["id"], "os-reset_status", {"status": "in-use"}, expect=202)
    assert_fault(await w["member"].post("/backups", {"backup": {"volume_id": vol["id"]}}), 400,
                 contains="Backing up an in-use volume must use the force flag.")
    b2 = await backup(w, volume_id=vol["id"], force=True)
    assert (await wait_volume(w["member"], vol["id"], "in-use"))["status"] == "in-use"
    assert (await wait_volume(w["member"], b2["id"], "available", collection="backups"))["size"] == 1
    # the temporary snapshot is gone: the backend holds only the volumes and snapshots with rows
    assert await w.cloud.volume.manager.orphans() == {}
    await w.admin.action(vol["id"], "os-reset_status", {"status": "available"}, expect=202)


async def test_views_filters_pages_and_microversions(w: VolumeWorld) -> None:
    vol = await w.volume()
    made = [await backup(w, version="3.43", volume_id=vol["id"], name=f"page-{i}", metadata={"k": str(i)})
            for i in range(3)]
    member = w["member"].at("3.45")
    listed = (await member.get("/backups", params={"volume_id": vol["id"]}, expect=200)).json()
    made.sort(key=lambda b: (b["created_at"], b["id"]), reverse=True)  # Cinder's order: newest first, then id
    assert [b["id"] for b in listed["backups"]] == [b["id"] for b in made]
    assert set(listed["backups"][0]) == {"id", "name", "links"}
    assert listed["backups"][0]["links"][0]["href"].endswith(f"/volume/v3/backups/{made[0]['id']}")
    page = (await member.get("/backups/detail", params={"volume_id": vol["id"], "limit": 2, "with_count": "true"},
                             expect=200)).json()
    assert len(page["backups"]) == 2 and page["count"] == 3
    assert "marker=" in page["backups_links"][0]["href"]
    rest = (await member.get("/backups/detail", params={"volume_id": vol["id"], "limit": 2,
                                                        "marker": page["backups"][-1]["id"]}, expect=200)).json()
    assert [b["id"] for b in rest["backups"]] == [made[2]["id"]]
    named = (await member.get("/backups/detail", params={"name": "page-1"}, expect=200)).json()["backups"]
    assert [b["name"] for b in named] == ["page-1"] and named[0]["metadata"] == {"k": "1"}
    asc = (await member.get("/backups", params={"volume_id": vol["id"], "sort": "name:asc"}, expect=200)).json()
    assert [b["name"] for b in asc["backups"]] == ["page-0", "page-1", "page-2"]
    assert_fault(await w["member"].at("3.33").get("/backups", params={"bogus": "1"}), 400,
                 contains="Invalid filters bogus")
    assert (await w["member"].at("3.32").get("/backups", params={"bogus": "1"}, expect=200)).json()["backups"]
    assert_fault(await member.get("/backups", params={"marker": "00000000-0000-0000-0000-000000000000"}), 404)

    # update: 3.9+, metadata 3.43+
    made.sort(key=lambda b: b["name"])
    assert_fault(await w["member"].put(f"/backups/{made[0]['id']}", {"backup": {"name": "x"}}), 404)
    r = await w["member"].at("3.9").put(f"/backups/{made[0]['id']}", {"backup": {"name": " renamed ",
                                                                                  "description": "d"}}, expect=200)
    assert r.json()["backup"]["name"] == "renamed"
    assert_fault(await w["member"].at("3.9").put(f"/backups/{made[0]['id']}", {"backup": {"metadata": {}}}), 400)
    await w["member"].at("3.43").put(f"/backups/{made[0]['id']}", {"backup": {"metadata": {"a": "b"}}}, expect=200)
    shown = (await w["member"].at("3.43").get(f"/backups/{made[0]['id']}", expect=200)).json()["backup"]
    assert shown["metadata"] == {"a": "b"} and shown["description"] == "d"

    # the admin sees project and user from 3.18 / 3.56, and everyone's with all_tenants
    admin = (await w.admin.at("3.56").get(f"/backups/{made[0]['id']}", expect=200)).json()["backup"]
    assert admin["os-backup-project-attr:project_id"] == w.projects["a"] and admin["user_id"] == w["member"].user_id
    assert "user_id" not in (await w["member"].at("3.56").get(f"/backups/{made[0]['id']}")).json()["backup"]
    everyone = (await w.admin.get("/backups", params={"all_tenants": "1", "volume_id": vol["id"]},
                                  expect=200)).json()["backups"]
    assert len(everyone) == 3
    assert (await w.admin.get("/backups", params={"volume_id": vol["id"]}, expect=200)).json()["backups"] == []


async def test_isolation_and_policy(w: VolumeWorld) -> None:
    vol = await w.volume()
    b = await backup(w, volume_id=vol["id"])
    for call in (w["other"].get(f"/backups/{b['id']}"), w["other"].delete(f"/backups/{b['id']}"),
                 w["other"].post(f"/backups/{b['id']}/restore", {"restore": {}})):
        assert_fault(await call, 404)
    assert_fault(await w["other"].post("/backups", {"backup": {"volume_id": vol["id"]}}), 404)
    assert (await w["other"].get("/backups", expect=200)).json()["backups"] == []
    assert (await w["reader"].get(f"/backups/{b['id']}", expect=200)).json()["backup"]["id"] == b["id"]
    assert_fault(await w["reader"].post("/backups", {"backup": {"volume_id": vol["id"]}}), 403)
    assert_fault(await w["reader"].delete(f"/backups/{b['id']}"), 403)
    assert_fault(await w["member"].post(f"/backups/{b['id']}/action", {"os-reset_status": {"status": "error"}}), 403)
    assert_fault(await w["member"].post(f"/backups/{b['id']}/action", {"os-force_delete": {}}), 403)


async def test_admin_reset_status_and_force_delete(w: VolumeWorld) -> None:
    vol = await w.volume()
    b = await backup(w, volume_id=vol["id"])
    await w.admin.post(f"/backups/{b['id']}/action", {"os-reset_status": {"status": "error"}}, expect=202)
    assert (await w["member"].get(f"/backups/{b['id']}")).json()["backup"]["status"] == "error"
    assert_fault(await w.admin.post(f"/backups/{b['id']}/action", {"os-reset_status": {"status": "creating"}}), 400)
    assert_fault(await w.admin.post(f"/backups/{b['id']}/action", {"os-bogus": {}}), 400)
    await w.admin.post(f"/backups/{b['id']}/action", {"os-reset_status": {"status": "available"}}, expect=202)
    await w.admin.post(f"/backups/{b['id']}/action", {"os-reset_status": {"status": "error"}}, expect=202)
    await w["member"].delete(f"/backups/{b['id']}", expect=202)  # error: deletable
    await wait_volume(w["member"], b["id"], "deleted", collection="backups")
    b = await backup(w, volume_id=vol["id"])
    async with w.cloud.volume.db.write() as session:  # caught while creating, as after a crash
        (await session.get(Backup, b["id"])).status = "creating"
    assert_fault(await w["member"].delete(f"/backups/{b['id']}"), 400,
                 contains="Backup status must be available or error")
    await w.admin.post(f"/backups/{b['id']}/action", {"os-force_delete": {}}, expect=202)
    await wait_volume(w["member"], b["id"], "deleted", collection="backups")
    assert not (w.cloud.config.data_dir / "backups" / "volumebackups" / b["id"]).exists()


async def test_volume_state_rules_and_bad_input(w: VolumeWorld) -> None:
    vol = await w.volume()
    await w.admin.action(vol["id"], "os-reset_status", {"status": "error"}, expect=202)
    assert_fault(await w["member"].post("/backups", {"backup": {"volume_id": vol["id"]}}), 400,
                 contains='must be available or in-use, but the current status is "error"')
    await w.admin.action(vol["id"], "os-reset_status", {"status": "available"}, expect=202)
    for body in ({}, {"backup": {}}, {"backup": {"volume_id": "not-a-uuid"}},
                 {"backup": {"volume_id": vol["id"], "incremental": "maybe"}},
                 {"backup": {"volume_id": vol["id"], "name": "x" * 256}},
                 {"backup": {"volume_id": vol["id"], "metadata": {"a": "b"}}},  # 3.43+ only
                 {"backup": {"volume_id": vol["id"], "bogus": 1}}):
        assert_fault(await w["member"].post("/backups", body), 400)
    assert_fault(await w["member"].post("/backups", {"backup": {"volume_id": "00000000-0000-0000-0000-000000000000"}}),
                 404, contains="Volume 00000000-0000-0000-0000-000000000000 could not be found.")
    assert_fault(await w["member"].get("/backups/00000000-0000-0000-0000-000000000000"), 404,
                 contains="Backup 00000000-0000-0000-0000-000000000000 could not be found.")
    assert (await w["member"].get(f"/volumes/{vol['id']}")).json()["volume"]["status"] == "available"


async def test_backup_quota(w: VolumeWorld) -> None:
    vol = await w.volume(who="other")
    await w.admin.put(f"/os-quota-sets/{w.projects['b']}", {"quota_set": {"backups": 1}}, expect=200)
    try:
        await backup(w, who="other", volume_id=vol["id"])
        r = await w["other"].post("/backups", {"backup": {"volume_id": vol["id"]}})
        assert_fault(r, 413, contains="backups")
        assert (await w["other"].get(f"/volumes/{vol['id']}")).json()["volume"]["status"] == "available"
    finally:
        await w.admin.put(f"/os-quota-sets/{w.projects['b']}", {"quota_set": {"backups": -1}}, expect=200)


async def test_volume_from_backup_3_47(w: VolumeWorld) -> None:
    vol = await w.volume()
    await put_data(w, vol["id"], b"for a new volume")
    await w["member"].action(vol["id"], "os-set_bootable", {"bootable": True}, expect=200)
    b = await backup(w, volume_id=vol["id"])
    r = await w["member"].at("3.47").post("/volumes", {"volume": {"backup_id": b["id"], "size": 1}}, expect=202)
    made = await wait_volume(w["member"], r.json()["volume"]["id"], "available", timeout=30)
    await assert_data(w, made["id"], b"for a new volume")
    assert made["bootable"] == "true"  # the volume's facts come back with its data, as Cinder's restore
    r = await w["member"].post(f"/backups/{b['id']}/restore", {"restore": {}}, expect=202)
    restored = await wait_volume(w["member"], r.json()["restore"]["volume_id"], "available")
    assert restored["bootable"] == "true" and restored["name"] == f"restore_backup_{b['id']}"
    assert (await w["member"].get(f"/backups/{b['id']}")).json()["backup"]["status"] == "available"


async def test_export_and_import_record(w: VolumeWorld) -> None:
    vol = await w.volume()
    await put_data(w, vol["id"], b"exported")
    b = await backup(w, volume_id=vol["id"])
    assert_fault(await w["member"].get(f"/backups/{b['id']}/export_record"), 403)
    record = (await w.admin.get(f"/backups/{b['id']}/export_record", expect=200)).json()["backup-record"]
    assert record["backup_service"] == "cinder.backup.drivers.posix"
    decoded = json.loads(base64.b64decode(record["backup_url"]))
    assert decoded["id"] == b["id"] and decoded["size"] == 1
    body = {"backup-record": record}
    assert_fault(await w.admin.post("/backups/import_record", body), 400, contains="already exists")
    new_id = str(uuid.uuid4())
    url = base64.b64encode(json.dumps({**decoded, "id": new_id}).encode()).decode()
    r = await w.admin.post("/backups/import_record", {"backup-record": {**record, "backup_url": url}}, expect=201)
    assert r.json()["backup"]["id"] == new_id
    imported = (await w.admin.get(f"/backups/{new_id}", expect=200)).json()["backup"]
    assert imported["status"] == "available" and imported["volume_id"] == "00000000-0000-0000-0000-000000000000"
    # the imported record restores the same data; deleting it leaves the original's chunks alone
    target = await w.volume(who="admin")
    await w.admin.post(f"/backups/{new_id}/restore", {"restore": {"volume_id": target["id"]}}, expect=202)
    await wait_volume(w.admin, target["id"], "available")
    await assert_data(w, target["id"], b"exported")
    await w.admin.delete(f"/backups/{new_id}", expect=202)
    await wait_volume(w.admin, new_id, "deleted", collection="backups")
    again = await w.volume()
    await w["member"].post(f"/backups/{b['id']}/restore", {"restore": {"volume_id": again["id"]}}, expect=202)
    await wait_volume(w["member"], again["id"], "available")
    await assert_data(w, again["id"], b"exported")
    for bad in ({**record, "backup_service": "cinder.backup.drivers.swift"}, {**record, "backup_url": "!!"},
                {**record, "backup_url": base64.b64encode(b'{"size": 1}').decode()}):
        assert_fault(await w.admin.post("/backups/import_record", {"backup-record": bad}), 400)
