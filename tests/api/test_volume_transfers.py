"""Cinder's volume transfers (``/os-volume-transfer`` and, from 3.55, ``/volume-transfers``):
create shows the auth key once and puts the volume in awaiting-transfer; another project accepts
with the key and gets the volume and its snapshots (or not, with no_snapshots); a wrong key,
a volume not available, a transfer of another project, quota of the receiver; delete gives the
volume back; the views at 3.55/3.57 and pages at 3.59."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.api.volume_helpers import VolumeWorld, assert_fault, volume_world, wait_volume

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


async def snapshot(w: VolumeWorld, volume_id: str) -> dict[str, Any]:
    r = await w["member"].post("/snapshots", {"snapshot": {"volume_id": volume_id}}, expect=202)
    return await wait_volume(w["member"], r.json()["snapshot"]["id"], "available", collection="snapshots")


async def test_transfer_with_snapshots_to_another_project(w: VolumeWorld) -> None:
    vol = await w.volume()
    snap = await snapshot(w, vol["id"])
    r = await w["member"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"], "name": " t1 "}},
                               expect=202)
    t = r.json()["transfer"]
    assert set(t) == {"id", "created_at", "name", "volume_id", "auth_key", "links"}
    assert t["name"] == "t1" and len(t["auth_key"]) == 16 and int(t["auth_key"], 16) >= 0
    assert t["links"][0]["href"].endswith(f"/volume/v3/os-volume-transfer/{t['id']}")
    assert (await w["member"].get(f"/volumes/{vol['id']}")).json()["volume"]["status"] == "awaiting-transfer"
    # the volume cannot be transferred twice, or deleted, while it waits
    assert_fault(await w["member"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}}), 400,
                 contains="status must be available")
    assert_fault(await w["member"].delete(f"/volumes/{vol['id']}"), 400)

    shown = (await w["member"].get(f"/os-volume-transfer/{t['id']}", expect=200)).json()["transfer"]
    assert "auth_key" not in shown and shown["volume_id"] == vol["id"]
    listed = (await w["member"].get("/os-volume-transfer", expect=200)).json()["transfers"]
    assert [x["id"] for x in listed] == [t["id"]] and set(listed[0]) == {"id", "volume_id", "name", "links"}
    # the other project neither lists nor shows it, but may accept it with the key
    assert (await w["other"].get("/os-volume-transfer", expect=200)).json()["transfers"] == []
    assert_fault(await w["other"].get(f"/os-volume-transfer/{t['id']}"), 404)
    assert_fault(await w["other"].post(f"/os-volume-transfer/{t['id']}/accept",
                                       {"accept": {"auth_key": "0" * 16}}), 400, contains="Invalid auth key")
    assert_fault(await w["reader"].post(f"/os-volume-transfer/{t['id']}/accept",
                                        {"accept": {"auth_key": t["auth_key"]}}), 403)
    r = await w["other"].post(f"/os-volume-transfer/{t['id']}/accept", {"accept": {"auth_key": t["auth_key"]}},
                              expect=202)
    assert r.json()["transfer"]["id"] == t["id"] and r.json()["transfer"]["volume_id"] == vol["id"]

    got = (await w["other"].get(f"/volumes/{vol['id']}", expect=200)).json()["volume"]
    assert got["status"] == "available" and got["user_id"] == w["other"].user_id
    assert_fault(await w["member"].get(f"/volumes/{vol['id']}"), 404)
    assert (await w["other"].get(f"/snapshots/{snap['id']}", expect=200)).json()["snapshot"]["volume_id"] == vol["id"]
    assert_fault(await w["member"].get(f"/snapshots/{snap['id']}"), 404)
    # the transfer is used up
    assert_fault(await w["member"].get(f"/os-volume-transfer/{t['id']}"), 404)
    assert_fault(await w["other"].post(f"/os-volume-transfer/{t['id']}/accept",
                                       {"accept": {"auth_key": t["auth_key"]}}), 404)


async def test_no_snapshots_history_and_new_url(w: VolumeWorld) -> None:
    vol = await w.volume()
    snap = await snapshot(w, vol["id"])
    assert_fault(await w["member"].at("3.54").get("/volume-transfers"), 404)
    m = w["member"].at("3.57")
    r = await m.post("/volume-transfers", {"transfer": {"volume_id": vol["id"], "no_snapshots": True}}, expect=202)
    t = r.json()["transfer"]
    assert t["no_snapshots"] is True and t["accepted"] is False
    assert t["source_project_id"] == w.projects["a"] and t["destination_project_id"] is None
    detail = (await m.get("/volume-transfers/detail", expect=200)).json()["transfers"]
    assert [x["id"] for x in detail] == [t["id"]] and detail[0]["no_snapshots"] is True
    assert_fault(await w["member"].at("3.54").post("/os-volume-transfer", {"transfer": {
        "volume_id": vol["id"], "no_snapshots": True}}), 400)
    await w["other"].at("3.57").post(f"/volume-transfers/{t['id']}/accept", {"accept": {"auth_key": t["auth_key"]}},
                                     expect=202)
    assert (await w["other"].get(f"/volumes/{vol['id']}", expect=200)).json()["volume"]["status"] == "available"
    # the snapshot stayed with project a
    assert (await w["member"].get(f"/snapshots/{snap['id']}", expect=200)).json()["snapshot"]["id"] == snap["id"]


async def test_delete_gives_the_volume_back_and_rules(w: VolumeWorld) -> None:
    vol = await w.volume()
    t = (await w["member"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}},
                                expect=202)).json()["transfer"]
    assert t["name"] is None
    assert_fault(await w["other"].delete(f"/os-volume-transfer/{t['id']}"), 404)
    assert_fault(await w["reader"].delete(f"/os-volume-transfer/{t['id']}"), 403)
    await w["member"].delete(f"/os-volume-transfer/{t['id']}", expect=202)
    assert (await w["member"].get(f"/volumes/{vol['id']}")).json()["volume"]["status"] == "available"
    assert_fault(await w["member"].get(f"/os-volume-transfer/{t['id']}"), 404)

    # a volume that is not available, or has a snapshot that is not, is not offered
    snap = await snapshot(w, vol["id"])
    await w.admin.post(f"/snapshots/{snap['id']}/action", {"os-reset_status": {"status": "error"}}, expect=202)
    assert_fault(await w["member"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}}), 400,
                 contains=f"snapshot: {snap['id']} status must be available")
    r = await w["member"].at("3.55").post("/volume-transfers", {"transfer": {"volume_id": vol["id"],
                                                                             "no_snapshots": "true"}}, expect=202)
    await w["member"].delete(f"/os-volume-transfer/{r.json()['transfer']['id']}", expect=202)
    await w.admin.action(vol["id"], "os-reset_status", {"status": "error"}, expect=202)
    assert_fault(await w["member"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}}), 400,
                 contains="status must be available")
    assert_fault(await w["other"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}}), 404)
    assert_fault(await w["reader"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}}), 403)
    for body in ({}, {"transfer": {}}, {"transfer": {"volume_id": "nope"}},
                 {"transfer": {"volume_id": vol["id"], "bogus": 1}}):
        assert_fault(await w["member"].post("/os-volume-transfer", body), 400)
    assert_fault(await w["member"].post("/os-volume-transfer/00000000-0000-0000-0000-000000000000/accept",
                                        {"accept": {"auth_key": "x"}}), 404)
    assert_fault(await w["member"].post("/os-volume-transfer/00000000-0000-0000-0000-000000000000/accept",
                                        {"accept": {}}), 400)


async def test_receiver_quota(w: VolumeWorld) -> None:
    vol = await w.volume()
    t = (await w["member"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}},
                                expect=202)).json()["transfer"]
    usage = (await w.admin.get(f"/os-quota-sets/{w.projects['b']}", params={"usage": "true"},
                               expect=200)).json()["quota_set"]["gigabytes"]
    await w.admin.put(f"/os-quota-sets/{w.projects['b']}", {"quota_set": {"gigabytes": usage["in_use"]}},
                      expect=200)
    try:
        assert_fault(await w["other"].post(f"/os-volume-transfer/{t['id']}/accept",
                                           {"accept": {"auth_key": t["auth_key"]}}), 413)
        # nothing changed hands
        assert (await w["member"].get(f"/volumes/{vol['id']}")).json()["volume"]["status"] == "awaiting-transfer"
    finally:
        await w.admin.put(f"/os-quota-sets/{w.projects['b']}", {"quota_set": {"gigabytes": -1}}, expect=200)
    await w["member"].delete(f"/os-volume-transfer/{t['id']}", expect=202)


async def test_admin_lists_all_and_pages(w: VolumeWorld) -> None:
    made = []
    for _ in range(3):
        vol = await w.volume()
        made.append((await w["member"].post("/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}},
                                            expect=202)).json()["transfer"])
    everyone = (await w.admin.get("/os-volume-transfer", params={"all_tenants": "true"}, expect=200)).json()
    assert {t["id"] for t in made} <= {t["id"] for t in everyone["transfers"]}
    assert (await w.admin.get("/os-volume-transfer", expect=200)).json()["transfers"] == []
    made.sort(key=lambda t: (t["created_at"], t["id"]))  # Cinder's order: created_at, then id
    m = w["member"].at("3.59")
    first = (await m.get("/volume-transfers", params={"limit": 2}, expect=200)).json()
    assert [t["id"] for t in first["transfers"]] == [t["id"] for t in made[:2]]
    assert "transfers_links" in first
    rest = (await m.get("/volume-transfers", params={"limit": 2, "marker": made[1]["id"]}, expect=200)).json()
    assert [t["id"] for t in rest["transfers"]] == [made[2]["id"]]
    for t in made:
        await w["member"].delete(f"/os-volume-transfer/{t['id']}", expect=202)
