"""Cinder's quotas through the API: defaults with per-type resources, os-quota-sets show (with
usage) / update / delete, quota classes, identity's unified limits under block-storage, /limits,
and the seam-2 check (volume.quotas.reserve) with Cinder's 413 texts, usage counted from rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mcloud.volume.service_quotas import OverQuota
from tests.api.volume_helpers import VolumeWorld, assert_fault, uniq, volume_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


async def test_defaults_show_update_delete(w: VolumeWorld) -> None:
    a = w.projects["a"]
    shown = (await w["reader"].get(f"/os-quota-sets/{a}", expect=200)).json()["quota_set"]
    assert shown["id"] == a
    assert {k: shown[k] for k in ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "groups",
                                  "per_volume_gigabytes")} == {
        "volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10, "backup_gigabytes": 1000, "groups": 10,
        "per_volume_gigabytes": -1}
    assert shown["volumes___DEFAULT__"] == -1 and shown["gigabytes___DEFAULT__"] == -1
    assert (await w["member"].get(f"/os-quota-sets/{a}/defaults", expect=200)).json()["quota_set"]["volumes"] == 10
    assert_fault(await w["other"].get(f"/os-quota-sets/{a}"), 403, "forbidden")
    assert_fault(await w["member"].put(f"/os-quota-sets/{a}", {"quota_set": {"volumes": 1}}), 403)
    upd = (await w.admin.put(f"/os-quota-sets/{a}", {"quota_set": {"volumes": 5, "gigabytes___DEFAULT__": "20"}},
                             expect=200)).json()["quota_set"]
    assert upd["volumes"] == 5 and upd["gigabytes___DEFAULT__"] == 20 and "id" not in upd
    usage = (await w["member"].get(f"/os-quota-sets/{a}?usage=True", expect=200)).json()["quota_set"]
    assert usage["volumes"] == {"limit": 5, "in_use": 0, "reserved": 0, "allocated": 0}
    assert_fault(await w.admin.put(f"/os-quota-sets/{a}", {"quota_set": {"bogus": 1}}), 400,
                 contains="Bad key(s) in quota set: bogus")
    assert_fault(await w.admin.put(f"/os-quota-sets/{a}", {"quota_set": {"volumes": "x"}}), 400,
                 contains="volumes must be an integer")
    assert_fault(await w.admin.put(f"/os-quota-sets/{a}", {"quota_set": {"volumes": -2}}), 400,
                 contains="volumes must be >= -1")
    assert_fault(await w.admin.put(f"/os-quota-sets/{a}", {"quota_set": {}}), 400)
    await w.admin.delete(f"/os-quota-sets/{a}", expect=200)
    assert (await w.admin.get(f"/os-quota-sets/{a}")).json()["quota_set"]["volumes"] == 10


async def test_quota_classes_and_unified_limits(w: VolumeWorld) -> None:
    b = w.projects["b"]
    ks = w.ks
    services = (await ks.get("/services", params={"type": "block-storage"}, expect=200)).json()["services"]
    service_id = services[0]["id"]
    registered = (await ks.post("/registered_limits", {"registered_limits": [
        {"service_id": service_id, "resource_name": "snapshots", "default_limit": 5}]}, expect=201)).json()[
        "registered_limits"]
    own = (await ks.post("/limits", {"limits": [{"service_id": service_id, "project_id": b,
                                                "resource_name": "snapshots", "resource_limit": 3}]},
                         expect=201)).json()["limits"]
    try:
        assert (await w.admin.get(f"/os-quota-sets/{b}")).json()["quota_set"]["snapshots"] == 3
        a = w.projects["a"]
        assert (await w.admin.get(f"/os-quota-sets/{a}")).json()["quota_set"]["snapshots"] == 5
        assert (await w.admin.get(f"/os-quota-sets/{a}/defaults")).json()["quota_set"]["snapshots"] == 5
        # the project's own os-quota-sets value wins over identity's limit
        await w.admin.put(f"/os-quota-sets/{b}", {"quota_set": {"snapshots": 7}}, expect=200)
        assert (await w.admin.get(f"/os-quota-sets/{b}")).json()["quota_set"]["snapshots"] == 7
    finally:
        for limit in own:
            await ks.delete(f"/limits/{limit['id']}", expect=204)
        for limit in registered:
            await ks.delete(f"/registered_limits/{limit['id']}", expect=204)
        await w.admin.delete(f"/os-quota-sets/{b}", expect=200)
    cls = uniq("class")
    got = (await w.admin.put(f"/os-quota-class-sets/{cls}", {"quota_class_set": {"backups": 4}},
                             expect=200)).json()["quota_class_set"]
    assert got["backups"] == 4 and got["volumes"] == 10
    assert (await w.admin.get(f"/os-quota-class-sets/{cls}", expect=200)).json()["quota_class_set"]["id"] == cls
    assert_fault(await w.admin.put(f"/os-quota-class-sets/{cls}", {"quota_class_set": {"nope": 1}}), 400,
                 contains="Bad key(s) in quota class set: nope")
    assert_fault(await w["member"].get(f"/os-quota-class-sets/{cls}"), 403)


async def test_limits_and_reserve_counts_rows(w: VolumeWorld) -> None:
    from mcloud.volume.models import Volume

    a = w.projects["a"]
    volume = w.cloud.volume
    absolute = (await w["member"].get("/limits", expect=200)).json()["limits"]
    assert absolute["rate"] == []
    assert absolute["absolute"]["maxTotalVolumes"] == 10 and absolute["absolute"]["totalVolumesUsed"] == 0
    assert set(absolute["absolute"]) == {
        "maxTotalVolumes", "maxTotalSnapshots", "maxTotalVolumeGigabytes", "maxTotalBackups",
        "maxTotalBackupGigabytes", "totalVolumesUsed", "totalGigabytesUsed", "totalSnapshotsUsed",
        "totalBackupsUsed", "totalBackupGigabytesUsed"}
    await w.admin.put(f"/os-quota-sets/{a}", {"quota_set": {"volumes": 2, "gigabytes": 10,
                                                           "per_volume_gigabytes": 6}}, expect=200)
    async with volume.db.read() as session:
        default = await volume.types.default_type(session, a)
    ids = [str(uuid.uuid4()) for _ in range(2)]
    try:
        async with volume.db.write() as session:
            await volume.quotas.reserve(session, a, {"volumes": 1, "gigabytes": 4, "per_volume_gigabytes": 4})
            for vid in ids:
                session.add(Volume(id=vid, project_id=a, size=4, status="available", volume_type_id=default.id))
        async with volume.db.write() as session:
            with pytest.raises(OverQuota) as over:
                await volume.quotas.reserve(session, a, {"volumes": 1, f"volumes_{default.name}": 1})
            assert str(over.value) == ("VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for "
                                       "quota 'volumes'.")
            with pytest.raises(OverQuota) as over:
                await volume.quotas.reserve(session, a, {"gigabytes": 3})
            assert str(over.value) == ("VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds "
                                       "allowed gigabytes quota. Requested 3G, quota is 10G and 8G has been "
                                       "consumed.")
            with pytest.raises(OverQuota) as over:
                await volume.quotas.reserve(session, a, {"per_volume_gigabytes": 7})
            assert "VolumeSizeExceedsLimit: Requested volume size 7G is larger than maximum allowed limit 6G." == str(
                over.value)
            assert over.value.status == 413 and over.value.headers == {"Retry-After": "0"}
        used = (await w["member"].get(f"/os-quota-sets/{a}?usage=true")).json()["quota_set"]
        assert used["volumes"]["in_use"] == 2 and used["gigabytes"]["in_use"] == 8
        assert used[f"volumes_{default.name}"]["in_use"] == 2
        absolute = (await w["member"].get("/limits")).json()["limits"]["absolute"]
        assert (absolute["totalVolumesUsed"], absolute["totalGigabytesUsed"], absolute["maxTotalVolumes"]) == (2, 8, 2)
        # a limit below the usage is refused
        assert_fault(await w.admin.put(f"/os-quota-sets/{a}", {"quota_set": {"volumes": 1}}), 400,
                     contains="Quota volumes limit must be equal or greater than existing resources. Current usage "
                              "is 2 and the requested limit is 1.")
        # a type with volumes is in use: no deletes, no extra spec changes
        tid = (await w.admin.post("/types", {"volume_type": {"name": uniq("used")}}, expect=200)).json()[
            "volume_type"]["id"]
        async with volume.db.write() as session:
            (await session.get(Volume, ids[0])).volume_type_id = tid
        assert_fault(await w.admin.delete(f"/types/{tid}"), 400, contains="Target volume type is still in use.")
        assert_fault(await w.admin.post(f"/types/{tid}/extra_specs", {"extra_specs": {"a": "b"}}), 400,
                     contains="Volume Type is currently in use.")
    finally:
        async with volume.db.write() as session:
            for vid in ids:
                await session.delete(await session.get(Volume, vid))
        await w.admin.delete(f"/os-quota-sets/{a}", expect=200)
