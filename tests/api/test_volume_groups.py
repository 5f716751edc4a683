"""Generic volume groups through the Cinder API: group types and specs (3.11), groups (3.13:
create, show, list, update with add/remove volumes, delete with its volumes; 3.14 from a group
snapshot or a source group; 3.20 reset status), group snapshots (3.14; 3.19 reset status),
replication refused, isolation, policies and bad input."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mcloud.volume.service_groups import groups_of
from tests.api.volume_helpers import Cinder, VolumeWorld, assert_fault, uniq, volume_world, wait_volume

pytestmark = pytest.mark.asyncio(loop_scope="session")

MISSING = "9b7a1f9e-0000-4000-8000-00000000000a"
V = "3.20"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


def at(w: VolumeWorld, who: str, version: str = V) -> Cinder:
    return w[who].at(version)


async def group_type(w: VolumeWorld, **fields: object) -> dict:
    body = {"group_type": {"name": uniq("gtype"), **fields}}
    return (await at(w, "admin").post("/group_types", body, expect=202)).json()["group_type"]


async def volume_type(w: VolumeWorld, **fields: object) -> dict:
    body = {"volume_type": {"name": uniq("vtype"), **fields}}
    return (await w["admin"].post("/types", body, expect=200)).json()["volume_type"]


async def wait_group(c: Cinder, group_id: str, status: str, collection: str = "groups") -> dict:
    return await wait_volume(c, group_id, status, collection=collection)


async def make_group(w: VolumeWorld, gtype: dict, vtypes: list[dict], who: str = "member", **fields: object) -> dict:
    body = {"group": {"group_type": gtype["id"], "volume_types": [t["id"] for t in vtypes], "name": uniq("grp"),
                      **fields}}
    r = (await at(w, who).post("/groups", body, expect=202)).json()["group"]
    assert set(r) == {"id", "name"}
    return await wait_group(at(w, who), r["id"], "available")


async def member_volume(w: VolumeWorld, group: dict, vtype: dict, who: str = "member") -> dict:
    """A volume of ``vtype`` put into ``group`` (created, then added with the group update)."""
    vol = await w.volume(who, volume_type=vtype["id"])
    await at(w, who).put(f"/groups/{group['id']}", {"group": {"add_volumes": vol["id"]}}, expect=202)
    return vol


def backend_object(w: VolumeWorld, volume_id: str, name: str) -> dict:
    """The fake backend's record ``name`` on the backend that holds volume ``volume_id``."""
    backends = w.cloud.volume.backends
    for backend_name in backends.names():
        obj = backends.get(backend_name).objects.get(name)
        if obj is not None:
            return obj
    raise AssertionError(f"{name} (of volume {volume_id}) is on no backend")


async def group_volumes(c: Cinder, group_id: str) -> list[str]:
    return (await c.at("3.25").get(f"/groups/{group_id}?list_volume=true", expect=200)).json()["group"]["volumes"]


async def test_group_types_and_specs(w: VolumeWorld) -> None:
    admin, member = at(w, "admin", "3.11"), at(w, "member", "3.11")
    gt = await group_type(w, description="d", group_specs={"consistent_group_snapshot_enabled": "<is> False"},
                          is_public=True)
    assert gt["description"] == "d" and gt["is_public"] is True
    assert gt["group_specs"] == {"consistent_group_snapshot_enabled": "<is> False"}
    # before 3.11 the route does not exist
    assert_fault(await w["admin"].at("3.10").get("/group_types"), 404, "itemNotFound", "not supported")
    # update, show, list
    r = await admin.put(f"/group_types/{gt['id']}", {"group_type": {"name": gt["name"] + "-2",
                                                                   "description": "d2"}}, expect=200)
    assert r.json()["group_type"]["name"] == gt["name"] + "-2" and r.json()["group_type"]["description"] == "d2"
    shown = (await admin.get(f"/group_types/{gt['id']}", expect=200)).json()["group_type"]
    assert shown["name"] == gt["name"] + "-2" and shown["group_specs"] == gt["group_specs"]
    # a member sees public types without their specs, and cannot manage them
    seen = {t["id"]: t for t in (await member.get("/group_types", expect=200)).json()["group_types"]}
    assert gt["id"] in seen and "group_specs" not in seen[gt["id"]]
    assert_fault(await member.post("/group_types", {"group_type": {"name": uniq("x")}}), 403, "forbidden")
    private = await group_type(w, is_public=False)
    assert private["id"] not in {t["id"] for t in (await member.get("/group_types", expect=200)).json()["group_types"]}
    assert_fault(await member.get(f"/group_types/{private['id']}"), 404, "itemNotFound")
    admin_public = {t["id"] for t in (await admin.get("/group_types", expect=200)).json()["group_types"]}
    admin_all = {t["id"] for t in (await admin.get("/group_types?is_public=None", expect=200)).json()["group_types"]}
    assert private["id"] not in admin_public and private["id"] in admin_all
    # Cinder's conflicts and refusals
    assert_fault(await admin.post("/group_types", {"group_type": {"name": private["name"]}}), 409,
                 "conflictingRequest", "already exists")
    assert_fault(await admin.put(f"/group_types/{gt['id']}", {"group_type": {}}), 400, "badRequest",
                 "Specify group type name, description")
    assert_fault(await admin.put(f"/group_types/{gt['id']}", {"group_type": {"name": " "}}), 400, "badRequest",
                 "can not be empty")
    assert_fault(await admin.get("/group_types/default"), 404, "itemNotFound", "Default group type can not be found")
    assert_fault(await admin.get(f"/group_types/{MISSING}"), 404, "itemNotFound",
                 f"Group type {MISSING} could not be found.")
    # group specs: create/update, show, update one, list, delete
    specs = f"/group_types/{gt['id']}/group_specs"
    assert (await admin.post(specs, {"group_specs": {"key1": "value1", "key2": "value2"}}, expect=202)).json() == {
        "group_specs": {"key1": "value1", "key2": "value2"}}
    await admin.post(specs, {"group_specs": {"key2": "value2-updated", "key3": "value3"}}, expect=202)
    assert (await admin.get(f"{specs}/key2", expect=200)).json() == {"key2": "value2-updated"}
    assert (await admin.put(f"{specs}/key3", {"key3": "v3"}, expect=200)).json() == {"key3": "v3"}
    assert_fault(await admin.put(f"{specs}/key3", {"key1": "v"}), 400, "badRequest", "Request body and URI mismatch")
    assert (await admin.get(specs, expect=200)).json()["group_specs"] == {
        "consistent_group_snapshot_enabled": "<is> False", "key1": "value1", "key2": "value2-updated", "key3": "v3"}
    for key in ("key1", "key2", "key3"):
        await admin.delete(f"{specs}/key{key[-1]}", expect=202)
        assert_fault(await admin.get(f"{specs}/{key}"), 404, "itemNotFound", "has no extra spec with key")
    assert_fault(await admin.delete(f"{specs}/key1"), 404, "itemNotFound", "has no specs with key key1")
    assert_fault(await member.get(specs), 403, "forbidden")
    assert_fault(await admin.post(specs, {"group_specs": {"bad key!": "v"}}), 400, "badRequest")
    # delete (a type in use cannot go: see test_group_lifecycle)
    await admin.delete(f"/group_types/{private['id']}", expect=202)
    assert_fault(await admin.get(f"/group_types/{private['id']}"), 404, "itemNotFound")


async def test_group_lifecycle(w: VolumeWorld) -> None:
    m, admin = at(w, "member"), at(w, "admin")
    gt, vt, other_vt = await group_type(w), await volume_type(w), await volume_type(w)
    grp = await make_group(w, gt, [vt], description="first")
    assert grp["group_type"] == gt["id"] and grp["volume_types"] == [vt["id"]]
    assert grp["description"] == "first" and grp["availability_zone"] == "nova"
    assert grp["group_snapshot_id"] is None and grp["source_group_id"] is None and "volumes" not in grp
    assert "replication_status" not in grp and "project_id" not in grp
    latest = (await w["admin"].at("latest").get(f"/groups/{grp['id']}", expect=200)).json()["group"]
    assert latest["replication_status"] == "disabled" and latest["project_id"] == w.projects["a"]
    # volume types by name too
    by_name = await make_group(w, gt, [{"id": vt["name"]}])
    assert by_name["volume_types"] == [vt["id"]]
    # lists
    assert {g["id"] for g in (await m.get("/groups", expect=200)).json()["groups"]} >= {grp["id"], by_name["id"]}
    listed = (await m.get(f"/groups/detail?name={grp['name']}", expect=200)).json()["groups"]
    assert [g["id"] for g in listed] == [grp["id"]] and listed[0]["volume_types"] == [vt["id"]]
    assert (await m.get("/groups?bogus=1", expect=200)).json()["groups"]  # ignored before 3.33
    assert_fault(await at(w, "member", "3.33").get("/groups?bogus=1"), 400, "badRequest", "Invalid filters bogus are provided.")
    assert (await m.get("/groups?limit=1", expect=200)).json().get("group_links")
    # isolation: another project sees nothing, an admin sees all with all_tenants
    assert_fault(await at(w, "other").get(f"/groups/{grp['id']}"), 404, "itemNotFound",
                 f"Group {grp['id']} could not be found.")
    assert grp["id"] not in {g["id"] for g in (await at(w, "other").get("/groups", expect=200)).json()["groups"]}
    assert grp["id"] in {g["id"] for g in (await admin.get("/groups?all_tenants=1", expect=200)).json()["groups"]}
    assert_fault(await at(w, "reader").post("/groups", {"group": {"group_type": gt["id"], "volume_types": [
        vt["id"]]}}), 403, "forbidden")
    # members: add and remove with Cinder's checks
    v1 = await member_volume(w, grp, vt)
    v2 = await w.volume(volume_type=vt["id"])
    wrong = await w.volume(volume_type=other_vt["id"])
    theirs = await w.volume("other", volume_type=vt["id"])
    path = f"/groups/{grp['id']}"
    assert_fault(await m.put(path, {"group": {"add_volumes": wrong["id"]}}), 400, "badRequest",
                 f"because volume type {other_vt['id']} is not supported by the group")
    assert_fault(await m.put(path, {"group": {"add_volumes": theirs["id"]}}), 400, "badRequest",
                 "because volume cannot be found")
    assert_fault(await m.put(f"/groups/{by_name['id']}", {"group": {"add_volumes": v1["id"]}}), 400, "badRequest",
                 f"because it is already in group {grp['id']}")
    assert_fault(await m.put(path, {"group": {"remove_volumes": v2["id"]}}), 400, "badRequest",
                 "because it is not in the group")
    assert_fault(await m.put(path, {"group": {"add_volumes": v2["id"], "remove_volumes": v2["id"]}}), 400,
                 "badRequest", "are in both add and remove volume list")
    assert_fault(await m.put(path, {"group": {"name": grp["name"]}}), 400, "badRequest", "no valid name")
    assert_fault(await m.put(path, {"group": {}}), 400, "badRequest")
    await m.put(path, {"group": {"name": "renamed", "description": "d2", "add_volumes": v2["id"] + ","}},
                expect=202)
    shown = await wait_group(m, grp["id"], "available")
    assert shown["name"] == "renamed" and shown["description"] == "d2"
    assert sorted(await group_volumes(m, grp["id"])) == sorted([v1["id"], v2["id"]])
    assert (await m.get(f"/volumes/{v1['id']}", expect=200)).json()["volume"]
    assert (await m.at("3.13").get(f"/volumes/{v1['id']}", expect=200)).json()["volume"]["group_id"] == grp["id"]
    await m.put(path, {"group": {"remove_volumes": v2["id"]}}, expect=202)
    assert await group_volumes(m, grp["id"]) == [v1["id"]]
    # a volume in a group cannot be deleted alone; the group type is in use
    assert_fault(await m.delete(f"/volumes/{v1['id']}"), 400, "badRequest")
    assert_fault(await admin.delete(f"/group_types/{gt['id']}"), 400, "badRequest", "Target group type is still in use.")
    # delete: volumes need delete-volumes
    assert_fault(await m.post(f"{path}/action", {"delete": {}}), 400, "badRequest",
                 "The delete-volumes flag is required to delete it.")
    assert_fault(await at(w, "other").post(f"{path}/action", {"delete": {"delete-volumes": True}}), 404,
                 "itemNotFound")
    await m.post(f"{path}/action", {"delete": {"delete-volumes": True}}, expect=202)
    await wait_volume(m, v1["id"], "deleted")
    await wait_group(m, grp["id"], "deleted")
    assert (await m.get(f"/volumes/{v2['id']}", expect=200)).json()["volume"]["status"] == "available"
    await m.post(f"/groups/{by_name['id']}/action", {"delete": {"delete-volumes": False}}, expect=202)
    assert_fault(await m.get(f"/groups/{by_name['id']}"), 404, "itemNotFound")
    await admin.delete(f"/group_types/{gt['id']}", expect=202)
    for vol in (v2, wrong):
        await m.delete(f"/volumes/{vol['id']}", expect=202)
    await at(w, "other").delete(f"/volumes/{theirs['id']}", expect=202)


async def test_group_bad_input_and_microversions(w: VolumeWorld) -> None:
    m = at(w, "member")
    gt, vt = await group_type(w), await volume_type(w)
    assert_fault(await w["member"].at("3.12").get("/groups"), 404, "itemNotFound")
    assert_fault(await m.post("/groups", {"group": {"group_type": gt["id"]}}), 400, "badRequest")
    assert_fault(await m.post("/groups", {"group": {"group_type": gt["id"], "volume_types": []}}), 400, "badRequest")
    assert_fault(await m.post("/groups", {"group": {"group_type": MISSING, "volume_types": [vt["id"]]}}), 404,
                 "itemNotFound", f"Group type {MISSING} could not be found.")
    assert_fault(await m.post("/groups", {"group": {"group_type": "nope", "volume_types": [vt["id"]]}}), 404,
                 "itemNotFound", "Group type with name nope could not be found.")
    assert_fault(await m.post("/groups", {"group": {"group_type": gt["id"], "volume_types": [MISSING]}}), 404,
                 "itemNotFound", f"Volume type {MISSING} could not be found.")
    assert_fault(await m.post("/groups", {"group": {"group_type": gt["id"], "volume_types": [vt["id"]],
                                                    "availability_zone": "mars"}}), 400, "badRequest",
                 "Availability zone 'mars' is invalid.")
    assert_fault(await m.post("/groups", {"group": {"group_type": gt["id"], "volume_types": [vt["id"]],
                                                    "bogus": 1}}), 400, "badRequest")
    assert_fault(await m.post("/groups/action", {"create-from-src": {"name": "x"}}), 400, "badRequest")
    assert_fault(await m.post("/groups/action", {"create-from-src": {"source_group_id": MISSING}}), 404,
                 "itemNotFound", f"Group {MISSING} could not be found.")
    assert_fault(await m.post("/groups/action", {"create-from-src": {"group_snapshot_id": MISSING}}), 404,
                 "itemNotFound", f"GroupSnapshot {MISSING} could not be found.")
    grp = await make_group(w, gt, [vt])
    assert_fault(await m.post("/groups/action", {"create-from-src": {"source_group_id": grp["id"]}}), 400,
                 "badRequest", "Source Group is empty. No group will be created.")
    # a volume made in the group (3.13 group_id): of one of its types, by the group's project
    vol = (await m.post("/volumes", {"volume": {"size": 1, "volume_type": vt["id"], "group_id": grp["id"]}},
                        expect=202)).json()["volume"]
    assert vol["group_id"] == grp["id"]
    await wait_volume(m, vol["id"], "available")
    other_vt = await volume_type(w)
    assert_fault(await m.post("/volumes", {"volume": {"size": 1, "volume_type": other_vt["id"],
                                                      "group_id": grp["id"]}}), 400, "badRequest",
                 "requested type must be supported by this group")
    assert_fault(await at(w, "other").post("/volumes", {"volume": {"size": 1, "volume_type": vt["id"],
                                                                   "group_id": grp["id"]}}), 404, "itemNotFound",
                 f"Group {grp['id']} could not be found.")
    await m.put(f"/groups/{grp['id']}", {"group": {"remove_volumes": vol["id"]}}, expect=202)
    await m.delete(f"/volumes/{vol['id']}", expect=202)
    # reset status: admins only, from 3.20, Cinder's statuses
    path = f"/groups/{grp['id']}/action"
    assert_fault(await m.post(path, {"reset_status": {"status": "error"}}), 403, "forbidden")
    assert_fault(await w["admin"].at("3.19").post(path, {"reset_status": {"status": "error"}}), 400, "badRequest")
    assert_fault(await at(w, "admin").post(path, {"reset_status": {"status": "bogus"}}), 400, "badRequest")
    for status in ("creating", "available", "error"):
        await at(w, "admin").post(path, {"reset_status": {"status": status}}, expect=202)
        assert (await m.get(f"/groups/{grp['id']}", expect=200)).json()["group"]["status"] == status
    # an errored empty group can be deleted; replication needs a replication group type (3.38)
    assert_fault(await w["member"].at("latest").post(path, {"enable_replication": {}}), 400, "badRequest",
                 "is not a replication group type")
    assert_fault(await m.post(path, {"enable_replication": {}}), 400, "badRequest", "no such action")
    await m.post(path, {"delete": {"delete-volumes": False}}, expect=202)
    assert_fault(await m.get(f"/groups/{grp['id']}"), 404, "itemNotFound")


async def test_group_snapshots_and_groups_from_sources(w: VolumeWorld) -> None:
    m, admin = at(w, "member"), at(w, "admin")
    gt, vt = await group_type(w), await volume_type(w)
    grp = await make_group(w, gt, [vt])
    vols = [await member_volume(w, grp, vt) for _ in range(2)]
    # group snapshot: a snapshot of each volume
    name = uniq("gsnap")
    r = (await m.post("/group_snapshots", {"group_snapshot": {"group_id": grp["id"], "name": name,
                                                              "description": "gs"}}, expect=202)).json()
    gs = r["group_snapshot"]
    assert set(gs) == {"id", "name", "group_type_id"} and gs["group_type_id"] == gt["id"]
    gs = await wait_group(m, gs["id"], "available", "group_snapshots")
    assert gs["group_id"] == grp["id"] and gs["description"] == "gs" and gs["name"] == name
    snaps = [s for s in (await m.at("3.14").get("/snapshots/detail", expect=200)).json()["snapshots"]
             if s.get("group_snapshot_id") == gs["id"]]
    assert sorted(s["volume_id"] for s in snaps) == sorted(v["id"] for v in vols)
    assert {s["status"] for s in snaps} == {"available"}
    detail = (await m.get("/group_snapshots/detail", expect=200)).json()["group_snapshots"]
    assert gs["id"] in {g["id"] for g in detail} and all("created_at" in g and "group_id" in g for g in detail)
    assert [g["id"] for g in (await m.get(f"/group_snapshots?group_id={grp['id']}", expect=200)).json()[
        "group_snapshots"]] == [gs["id"]]
    assert_fault(await at(w, "other").get(f"/group_snapshots/{gs['id']}"), 404, "itemNotFound")
    assert_fault(await at(w, "other").post("/group_snapshots", {"group_snapshot": {"group_id": grp["id"]}}), 404,
                 "itemNotFound")
    # the group cannot go while it has snapshots
    assert_fault(await m.post(f"/groups/{grp['id']}/action", {"delete": {"delete-volumes": True}}), 400,
                 "badRequest", "Group has existing snapshots.")
    # a group from the group snapshot, and one from the group
    from_snap = (await m.post("/groups/action", {"create-from-src": {"group_snapshot_id": gs["id"],
                                                                     "name": "fromsnap"}}, expect=202)).json()["group"]
    from_grp = (await m.post("/groups/action", {"create-from-src": {"source_group_id": grp["id"],
                                                                    "name": "fromgrp"}}, expect=202)).json()["group"]
    assert from_snap["name"] == "fromsnap"
    for made in (from_snap, from_grp):
        shown = await wait_group(m, made["id"], "available")
        assert shown["group_type"] == gt["id"] and shown["volume_types"] == [vt["id"]]
        new_vols = await group_volumes(m, made["id"])
        assert len(new_vols) == 2
        for vid in new_vols:
            assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "available"
    # on the backend: a snapshot of each volume, new volumes made from those snapshots / clones of the volumes
    snap_of = {s["volume_id"]: s["id"] for s in snaps}
    made = {f"{how}:{src}" for how, src in [("snapshot", snap_of[v["id"]]) for v in vols]
            + [("volume", v["id"]) for v in vols]}
    for snap in snaps:
        assert backend_object(w, snap["volume_id"], f"snapshot-{snap['id']}")["of"] == snap["volume_id"]
    new = [(await w["admin"].get(f"/volumes/{vid}", expect=200)).json()["volume"]
           for g in (from_snap, from_grp) for vid in await group_volumes(m, g["id"])]
    assert {backend_object(w, v["id"], f"volume-{v['id']}")["from"] for v in new} == made
    assert (await m.get(f"/groups/{from_snap['id']}", expect=200)).json()["group"]["group_snapshot_id"] == gs["id"]
    # the create-from-src task run again (a resumed attempt after its volumes were made) makes none twice
    await admin.post(f"/groups/{from_grp['id']}/action", {"reset_status": {"status": "creating"}}, expect=202)
    before = sorted(await group_volumes(m, from_grp["id"]))
    groups = groups_of(w.cloud.volume)
    await groups._run_from_src(types.SimpleNamespace(payload={"id": from_grp["id"]}, attempt=2))
    assert sorted(await group_volumes(m, from_grp["id"])) == before
    assert (await m.get(f"/groups/{from_grp['id']}", expect=200)).json()["group"]["status"] == "available"
    assert (await m.get(f"/groups/{from_grp['id']}", expect=200)).json()["group"]["source_group_id"] == grp["id"]
    # reset status of a group snapshot: admins, from 3.19
    path = f"/group_snapshots/{gs['id']}/action"
    assert_fault(await m.post(path, {"reset_status": {"status": "error"}}), 403, "forbidden")
    assert_fault(await w["admin"].at("3.18").post(path, {"reset_status": {"status": "error"}}), 404, "itemNotFound")
    for status in ("creating", "available", "error"):
        await admin.post(path, {"reset_status": {"status": status}}, expect=202)
        assert (await m.get(f"/group_snapshots/{gs['id']}", expect=200)).json()["group_snapshot"]["status"] == status
    # delete the group snapshot: its snapshots go with it
    await m.delete(f"/group_snapshots/{gs['id']}", expect=202)
    await wait_group(m, gs["id"], "deleted", "group_snapshots")
    for snap in snaps:
        await wait_volume(m, snap["id"], "deleted", collection="snapshots")
    assert (await m.get("/group_snapshots", expect=200)).json()["group_snapshots"] == []
    # then every group with its volumes
    for g in (grp, from_snap, from_grp):
        gone = await group_volumes(m, g["id"])
        await m.post(f"/groups/{g['id']}/action", {"delete": {"delete-volumes": True}}, expect=202)
        await wait_group(m, g["id"], "deleted")
        for vid in gone:
            await wait_volume(m, vid, "deleted")
    await admin.delete(f"/group_types/{gt['id']}", expect=202)


async def test_group_quota(w: VolumeWorld) -> None:
    admin = w["admin"]
    gt, vt = await group_type(w), await volume_type(w)
    project = w.projects["b"]
    await admin.put(f"/os-quota-sets/{project}", {"quota_set": {"groups": 1}}, expect=200)
    try:
        grp = await make_group(w, gt, [vt], who="other")
        assert_fault(await at(w, "other").post("/groups", {"group": {"group_type": gt["id"], "volume_types": [
            vt["id"]]}}), 413, "overLimit", "GroupLimitExceeded")
        usage = (await admin.get(f"/os-quota-sets/{project}?usage=true", expect=200)).json()["quota_set"]
        assert usage["groups"]["in_use"] == 1
        await at(w, "other").post(f"/groups/{grp['id']}/action", {"delete": {}}, expect=202)
        await make_group(w, gt, [vt], who="other")
    finally:
        await admin.delete(f"/os-quota-sets/{project}", expect=200)


async def test_a_failed_snapshot_leaves_the_group_snapshot_in_error(w: VolumeWorld) -> None:
    m = at(w, "member")
    gt, vt = await group_type(w), await volume_type(w)
    grp = await make_group(w, gt, [vt])
    vols = [await member_volume(w, grp, vt) for _ in range(2)]
    host = (await w["admin"].get(f"/volumes/{vols[0]['id']}", expect=200)).json()["volume"]["os-vol-host-attr:host"]
    backend = w.cloud.volume.backends.get(host.split("@")[1].split("#")[0])
    backend.fail_next("create_snapshot")
    gs = (await m.post("/group_snapshots", {"group_snapshot": {"group_id": grp["id"]}}, expect=202)).json()[
        "group_snapshot"]
    gs = await wait_group(m, gs["id"], "error", "group_snapshots")
    snaps = [s for s in (await m.at("3.14").get("/snapshots/detail", expect=200)).json()["snapshots"]
             if s.get("group_snapshot_id") == gs["id"]]
    assert sorted(s["status"] for s in snaps) == ["available", "error"]
    # a group cannot be made from it; it can be deleted, with its snapshots
    assert_fault(await m.post("/groups/action", {"create-from-src": {"group_snapshot_id": gs["id"]}}), 400,
                 "badRequest", "status must be available")
    await m.delete(f"/group_snapshots/{gs['id']}", expect=202)
    await wait_group(m, gs["id"], "deleted", "group_snapshots")
    for snap in snaps:
        await wait_volume(m, snap["id"], "deleted", collection="snapshots")
    await m.post(f"/groups/{grp['id']}/action", {"delete": {"delete-volumes": True}}, expect=202)
    await wait_group(m, grp["id"], "deleted")
    for vol in vols:
        await wait_volume(m, vol["id"], "deleted")
        assert backend.size_of(vol["id"]) is None
