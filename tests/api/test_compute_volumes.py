"""Volumes on servers through the in-process app (fake hypervisor, fake volume backend): Nova's
os-volume_attachments (attach, list, show, update, detach, the microversion fields), the
volume's states in Cinder as Nova drives them, os-extended-volumes:volumes_attached, boot from
volume with block_device_mapping_v2 (image → volume, existing volume; delete_on_termination at
server delete), isolation between projects and Nova's refusals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from mcloud.compute.service_servers_volumes import volume_caller
from tests.api.compute_helpers import ComputeWorld, assert_fault, boot_server, compute_world, uniq, wait_for
from tests.api.volume_helpers import Cinder, wait_volume


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        # the module's volumes add up past Cinder's default 10 (quotas are tested in test_volume_quotas)
        admin = Cinder(world.admin.client, world.admin.token, world.admin.project_id, world.admin.user_id, "3.27")
        await admin.put(f"/os-quota-sets/{world.projects['a']}", {"quota_set": UNLIMITED}, expect=200)
        yield world


UNLIMITED = {"volumes": -1, "gigabytes": -1, "snapshots": -1}


def cinder(w: ComputeWorld, who: str = "member") -> Cinder:
    nova = w[who]
    return Cinder(nova.client, nova.token, nova.project_id, nova.user_id, "3.27")


async def volume(w: ComputeWorld, who: str = "member", size: int = 1, **fields: Any) -> str:
    body = {"volume": {"size": size, "name": uniq("vol"), **fields}}
    vid = (await cinder(w, who).post("/volumes", body, expect=202)).json()["volume"]["id"]
    await wait_volume(cinder(w, who), vid, "available")
    return vid


async def attached(w: ComputeWorld, sid: str, who: str = "member") -> list[dict[str, Any]]:
    return (await w[who].get(f"/servers/{sid}/os-volume_attachments", expect=200)).json()["volumeAttachments"]


async def wait_detached(w: ComputeWorld, sid: str, vid: str, who: str = "member") -> None:
    for _ in range(200):
        if all(a["volumeId"] != vid for a in await attached(w, sid, who)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"volume {vid} stays attached to {sid}")


async def test_attach_list_show_detach(w: ComputeWorld) -> None:
    sid = await boot_server(w)
    vid = await volume(w)
    nova = w["member"].at("2.79")
    r = await nova.post(f"/servers/{sid}/os-volume_attachments",
                        {"volumeAttachment": {"volumeId": vid, "tag": "data", "delete_on_termination": False}},
                        expect=200)
    assert r.json()["volumeAttachment"] == {"id": vid, "volumeId": vid, "serverId": sid, "device": "/dev/vdb",
                                            "tag": "data", "delete_on_termination": False}
    vol = await wait_volume(cinder(w), vid, "in-use")
    assert [a["server_id"] for a in vol["attachments"]] == [sid]
    # the host opened it: the fake guest printed the disk
    out = (await w["member"].action(sid, "os-getConsoleOutput", {}, expect=200)).json()["output"]
    assert f"added 1073741824 serial {vid[:20]}" in out
    # 2.89: attachment_id and bdm_uuid, no id
    shown = (await w["member"].at("2.89").get(f"/servers/{sid}/os-volume_attachments/{vid}",
                                              expect=200)).json()["volumeAttachment"]
    assert "id" not in shown and shown["attachment_id"] == vol["attachments"][0]["attachment_id"]
    assert shown["bdm_uuid"] and shown["tag"] == "data" and shown["device"] == "/dev/vdb"
    old = (await w["member"].at("2.1").get(f"/servers/{sid}/os-volume_attachments", expect=200)).json()
    assert old == {"volumeAttachments": [{"id": vid, "volumeId": vid, "serverId": sid, "device": "/dev/vdb"}]}
    server = (await w["member"].get(f"/servers/{sid}", expect=200)).json()["server"]
    assert server["os-extended-volumes:volumes_attached"] == [{"id": vid, "delete_on_termination": False}]
    server = (await w["member"].at("2.1").get(f"/servers/{sid}", expect=200)).json()["server"]
    assert server["os-extended-volumes:volumes_attached"] == [{"id": vid}]
    # the reader sees, may not change
    assert len(await attached(w, sid, "reader")) == 1
    await w["reader"].delete(f"/servers/{sid}/os-volume_attachments/{vid}", expect=403)
    # 2.85: delete_on_termination changes in place
    await w["member"].at("2.85").put(f"/servers/{sid}/os-volume_attachments/{vid}",
                                     {"volumeAttachment": {"volumeId": vid, "delete_on_termination": True}},
                                     expect=202)
    shown = (await nova.get(f"/servers/{sid}/os-volume_attachments/{vid}", expect=200)).json()["volumeAttachment"]
    assert shown["delete_on_termination"] is True
    # an in-use volume cannot be deleted (Cinder's 400)
    r = await cinder(w).delete(f"/volumes/{vid}")
    assert r.status_code == 400, r.text
    await w["member"].delete(f"/servers/{sid}/os-volume_attachments/{vid}", expect=202)
    await wait_volume(cinder(w), vid, "available")
    await wait_detached(w, sid, vid)
    out = (await w["member"].action(sid, "os-getConsoleOutput", {}, expect=200)).json()["output"]
    assert "fake: disk vdc removed" in out
    actions = (await w["member"].get(f"/servers/{sid}/os-instance-actions", expect=200)).json()["instanceActions"]
    assert {"attach_volume", "detach_volume"} <= {a["action"] for a in actions}
    # the volume moves to another server
    other = await boot_server(w)
    await w["member"].post(f"/servers/{other}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}},
                           expect=200)
    await wait_volume(cinder(w), vid, "in-use")
    await w["member"].delete(f"/servers/{other}", expect=204)
    await wait_for(w["member"], other, "DELETED")
    await wait_volume(cinder(w), vid, "available")  # detached at delete, not deleted (delete_on_termination false)
    await w["member"].delete(f"/servers/{sid}", expect=204)


async def test_refusals_and_bad_input(w: ComputeWorld) -> None:
    sid = await boot_server(w)
    vid = await volume(w)
    url = f"/servers/{sid}/os-volume_attachments"
    m = w["member"]
    assert_fault(await m.post(url, {"volumeAttachment": {"volumeId": "not-a-uuid"}}), 400, "badRequest")
    assert_fault(await m.post(url, {"volumeAttachment": {}}), 400, "badRequest")
    assert_fault(await m.post(url, {"volume": {"volumeId": vid}}), 400, "badRequest")
    assert_fault(await m.at("2.48").post(url, {"volumeAttachment": {"volumeId": vid, "tag": "x"}}), 400)
    assert_fault(await m.at("2.78").post(url, {"volumeAttachment": {"volumeId": vid,
                                                                    "delete_on_termination": True}}), 400)
    assert_fault(await m.post(url, {"volumeAttachment": {"volumeId": vid, "device": "vdb"}}), 400)
    missing = "00000000-0000-4000-8000-000000000000"
    assert_fault(await m.post(url, {"volumeAttachment": {"volumeId": missing}}), 404,
                 contains=f"Volume {missing} could not be found.")
    assert_fault(await m.get(f"{url}/{vid}"), 404, contains=f"Instance {sid} is not attached.")
    assert_fault(await m.delete(f"{url}/{vid}"), 404, contains=f"Instance {sid} is not attached.")
    await m.post(url, {"volumeAttachment": {"volumeId": vid}}, expect=200)
    await wait_volume(cinder(w), vid, "in-use")
    assert_fault(await m.post(url, {"volumeAttachment": {"volumeId": vid}}), 400,
                 contains=f"volume {vid} already attached")
    other_server = await boot_server(w)
    assert_fault(await m.post(f"/servers/{other_server}/os-volume_attachments",
                              {"volumeAttachment": {"volumeId": vid}}), 400, contains="status must be 'available'")
    second = await volume(w)
    assert_fault(await m.get(f"{url}/{second}"), 404, contains=f"volume_id not found: {second}")
    assert_fault(await m.post(url, {"volumeAttachment": {"volumeId": second, "device": "/dev/vdb"}}), 409,
                 contains="/dev/vdb) is in use")
    # swapping to another volume is not done here
    assert_fault(await w.admin.put(f"{url}/{vid}", {"volumeAttachment": {"volumeId": second}}), 409)
    assert_fault(await m.put(f"{url}/{vid}", {"volumeAttachment": {"volumeId": second}}), 403)
    # a locked server takes no attach; a server being stopped neither
    await m.action(sid, "lock", None, expect=202)
    assert_fault(await m.post(url, {"volumeAttachment": {"volumeId": second}}), 409, contains="is locked")
    await m.action(sid, "unlock", None, expect=202)
    await cinder(w).delete(f"/volumes/{second}", expect=202)
    await m.delete(f"{url}/{vid}", expect=202)
    await wait_volume(cinder(w), vid, "available")
    for s in (sid, other_server):
        await m.delete(f"/servers/{s}", expect=204)


async def test_project_b_cannot_use_project_a_volumes(w: ComputeWorld) -> None:
    sid = await boot_server(w)
    vid = await volume(w)  # project a's
    net = await w.network("other")
    theirs = await boot_server(w, "other", networks=[{"uuid": net}])
    assert_fault(await w["other"].post(f"/servers/{theirs}/os-volume_attachments",
                                       {"volumeAttachment": {"volumeId": vid}}), 404,
                 contains=f"Volume {vid} could not be found.")
    # nor see or touch a's server's attachments
    await w["member"].post(f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}},
                           expect=200)
    await wait_volume(cinder(w), vid, "in-use")
    for r in (await w["other"].get(f"/servers/{sid}/os-volume_attachments"),
              await w["other"].delete(f"/servers/{sid}/os-volume_attachments/{vid}")):
        assert_fault(r, 404)
    # nor boot from it
    body = {"server": {"name": uniq("vm"), "flavorRef": w.flavor_id, "networks": [{"uuid": net}],
                       "block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume",
                                                    "uuid": vid, "boot_index": 0}]}}
    assert_fault(await w["other"].post("/servers", body), 400, contains=f"failed to get volume {vid}")
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await w["other"].delete(f"/servers/{theirs}", expect=204)
    await wait_volume(cinder(w), vid, "available")


def bfv(w: ComputeWorld, *bdms: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"server": {"name": uniq("bfv"), "flavorRef": w.flavor_id, "networks": [{"uuid": w.network_id}],
                       "block_device_mapping_v2": list(bdms), **fields}}


async def test_boot_from_an_image_volume_deleted_on_termination(w: ComputeWorld) -> None:
    body = bfv(w, {"source_type": "image", "destination_type": "volume", "uuid": w.image_id, "boot_index": 0,
                   "volume_size": 1, "delete_on_termination": True})
    sid = (await w["member"].post("/servers", body, expect=202)).json()["server"]["id"]
    server = await wait_for(w["member"], sid, "ACTIVE")
    assert server["image"] == ""  # a volume-backed server shows no image
    [att] = server["os-extended-volumes:volumes_attached"]
    assert att["delete_on_termination"] is True
    vol = await wait_volume(cinder(w), att["id"], "in-use")
    assert vol["bootable"] == "true" and vol["attachments"][0]["server_id"] == sid
    [shown] = await attached(w, sid)
    assert shown["device"] == "/dev/vda"
    assert_fault(await w["member"].delete(f"/servers/{sid}/os-volume_attachments/{att['id']}"), 403,
                 contains="Can't detach root device volume")
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await wait_for(w["member"], sid, "DELETED")
    await wait_volume(cinder(w), att["id"], "deleted")


async def test_boot_from_an_existing_volume_kept_after_delete(w: ComputeWorld) -> None:
    vid = await volume(w, imageRef=w.image_id)
    second = await volume(w)
    body = bfv(w, {"source_type": "volume", "destination_type": "volume", "uuid": vid, "boot_index": 0},
               {"source_type": "volume", "destination_type": "volume", "uuid": second, "boot_index": 1},
               {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
                "delete_on_termination": True})
    sid = (await w["member"].post("/servers", body, expect=202)).json()["server"]["id"]
    server = await wait_for(w["member"], sid, "ACTIVE")
    ids = [a["id"] for a in server["os-extended-volumes:volumes_attached"]]
    assert ids[:2] == [vid, second] and len(ids) == 3
    assert [a["device"] for a in await attached(w, sid)] == ["/dev/vda", "/dev/vdb", "/dev/vdc"]
    for v in ids:
        await wait_volume(cinder(w), v, "in-use")
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await wait_for(w["member"], sid, "DELETED")
    await wait_volume(cinder(w), vid, "available")
    await wait_volume(cinder(w), second, "available")
    await wait_volume(cinder(w), ids[2], "deleted")  # the blank one was delete_on_termination


async def test_block_device_mapping_refusals(w: ComputeWorld) -> None:
    m = w["member"]
    image_vol = {"source_type": "image", "destination_type": "volume", "uuid": w.image_id, "boot_index": 0}
    assert_fault(await m.post("/servers", bfv(w, image_vol)), 400, contains="need to have a non-zero size")
    assert_fault(await m.post("/servers", bfv(w, {"source_type": "blank", "destination_type": "volume",
                                                  "boot_index": 0})), 400, contains="non-zero size")
    assert_fault(await m.post("/servers", bfv(w, {**image_vol, "volume_size": 1, "boot_index": 1})), 400,
                 contains="Boot sequence")
    assert_fault(await m.post("/servers", bfv(w, {**image_vol, "volume_size": 1},
                                              {**image_vol, "volume_size": 1})), 400, contains="Boot sequence")
    assert_fault(await m.post("/servers", bfv(w, {**image_vol, "volume_size": "x"})), 400)
    assert_fault(await m.post("/servers", bfv(w, {"source_type": "volume", "destination_type": "volume",
                                                  "boot_index": 0})), 400, contains="Missing uuid")
    missing = "00000000-0000-4000-8000-000000000000"
    assert_fault(await m.post("/servers", bfv(w, {**image_vol, "uuid": missing, "volume_size": 1})), 400,
                 contains=f"Image {missing} could not be found.")
    assert_fault(await m.post("/servers", bfv(w, {"source_type": "volume", "destination_type": "volume",
                                                  "uuid": missing, "boot_index": 0})), 400,
                 contains=f"failed to get volume {missing}")
    vid = await volume(w, imageRef=w.image_id)
    assert_fault(await m.post("/servers", bfv(w, {"source_type": "volume", "destination_type": "volume",
                                                  "uuid": vid, "boot_index": 0}, max_count=2)), 400,
                 contains="multiple instances")
    # a boot volume Cinder does not mark bootable (a blank one, or one set bootable=false): Nova's 400,
    # also when the boot volume is to be made from a snapshot of it; no server is made
    blank = await volume(w)
    await cinder(w).post(f"/volumes/{vid}/action", {"os-set_bootable": {"bootable": False}}, expect=200)
    before = {s["id"] for s in (await m.get("/servers", expect=200)).json()["servers"]}
    for root in (vid, blank):
        assert_fault(await m.post("/servers", bfv(w, {"source_type": "volume", "destination_type": "volume",
                                                      "uuid": root, "boot_index": 0})), 400,
                     contains=f"Block Device {root} is not bootable.")
    snap = (await cinder(w).post("/snapshots", {"snapshot": {"volume_id": blank}}, expect=202)).json()["snapshot"]
    await wait_volume(cinder(w), snap["id"], "available", collection="snapshots")
    assert_fault(await m.post("/servers", bfv(w, {"source_type": "snapshot", "destination_type": "volume",
                                                  "uuid": snap["id"], "boot_index": 0})), 400,
                 contains=f"Block Device {blank} is not bootable.")
    assert {s["id"] for s in (await m.get("/servers", expect=200)).json()["servers"]} == before
    await cinder(w).delete(f"/snapshots/{snap['id']}", expect=202)
    await wait_volume(cinder(w), snap["id"], "deleted", collection="snapshots")
    for v in (vid, blank):
        await cinder(w).delete(f"/volumes/{v}", expect=202)


async def test_concurrent_attaches_of_one_volume(w: ComputeWorld) -> None:
    """Two servers ask for one volume at once: one gets it, the other Nova's 400, and the loser
    keeps no mapping and no task (the BDM written before the reservation is undone)."""
    from mcloud.core.tasks import PENDING

    first, second = await boot_server(w), await boot_server(w)
    vid = await volume(w)
    answers = await asyncio.gather(*(w["member"].post(f"/servers/{s}/os-volume_attachments",
                                                      {"volumeAttachment": {"volumeId": vid}})
                                      for s in (first, second)))
    assert sorted(r.status_code for r in answers) == [200, 400], [r.text for r in answers]
    winner, loser = (first, second) if answers[0].status_code == 200 else (second, first)
    assert_fault(answers[[first, second].index(loser)], 400, contains="Invalid volume")
    vol = await wait_volume(cinder(w), vid, "in-use")
    assert [a["server_id"] for a in vol["attachments"]] == [winner]
    assert await attached(w, loser) == []
    compute = w.cloud.compute
    async with compute.db.read() as s:
        tasks = [t for t in await compute.tasks.for_resource(s, loser) if t.kind == "compute.action"]
    assert all(t.status != PENDING for t in tasks)
    for s in (first, second):
        await w["member"].delete(f"/servers/{s}", expect=204)
    await wait_volume(cinder(w), vid, "available")


async def test_attach_whose_api_died_before_the_reservation_is_finished(w: ComputeWorld) -> None:
    """The process that wrote the BDM and the conductor's task was killed before it reserved the
    volume (or right after, before it kept the attachment): the task, taken by another worker,
    reserves the volume itself (or adopts the attachment the dead API made) and attaches it."""
    import datetime

    import sqlalchemy as sa

    from mcloud.compute.models_volumes import BlockDeviceMapping as BDM

    sid = await boot_server(w)
    compute = w.cloud.compute
    inst = await compute.conductor.load(sid)
    vids = [await volume(w), await volume(w)]
    # the second one: the dead API had reserved it already
    made = await compute.volume.attachments.create(volume_caller(None, inst.project_id, inst.user_id), vids[1], sid)
    long_ago = datetime.datetime.utcnow() - datetime.timedelta(minutes=5)
    async with compute.db.write() as s:
        for vid, device in zip(vids, ("/dev/vdb", "/dev/vdc"), strict=True):
            bdm = BDM(uuid=str(uuid.uuid4()), instance_uuid=sid, volume_id=vid, source_type="volume",
                      destination_type="volume", device_name=device, status="reserving", created_at=long_ago)
            s.add(bdm)
            await s.flush()
            await compute.conductor.submit_action(s, inst, "attach_volume", {
                "bdm_uuid": bdm.uuid, "volume_id": vid, "api_worker": "a-process-that-died"}, "req-dead")
    compute.tasks.wake()
    for vid in vids:
        vol = await wait_volume(cinder(w), vid, "in-use")
        assert [a["server_id"] for a in vol["attachments"]] == [sid]
    vol = (await cinder(w).get(f"/volumes/{vids[1]}", expect=200)).json()["volume"]
    assert [a["attachment_id"] for a in vol["attachments"]] == [made["id"]]  # adopted, not a second one
    assert sorted(a["volumeId"] for a in await attached(w, sid)) == sorted(vids)
    async with compute.db.read() as s:
        assert set((await s.execute(sa.select(BDM.status).where(BDM.instance_uuid == sid))).scalars()) == {"attached"}
    out = (await w["member"].action(sid, "os-getConsoleOutput", {}, expect=200)).json()["output"]
    assert all(f"serial {vid[:20]}" in out for vid in vids)
    await w["member"].delete(f"/servers/{sid}", expect=204)
    for vid in vids:
        await wait_volume(cinder(w), vid, "available")


async def test_attach_cut_short_by_a_dying_conductor_is_resumed(w: ComputeWorld) -> None:
    """A worker that dies after the attachment got its connection (volume ``attaching``) leaves
    the task running; when its lease runs out, the cloud's worker takes it again and completes."""
    from mcloud.core.tasks import RUNNING, Task, TaskQueue

    sid = await boot_server(w)
    vid = await volume(w)
    compute = w.cloud.compute
    await compute.tasks.stop()
    try:
        await w["member"].post(f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}},
                               expect=200)
        doomed = TaskQueue(compute.db, lease_seconds=0.5, worker_id="doomed")
        compute.conductor.register(doomed)
        task = await doomed.claim()
        assert task is not None and task.payload["action"] == "attach_volume"
        # it got as far as the connection before dying
        shown = (await w["member"].at("2.89").get(f"/servers/{sid}/os-volume_attachments/{vid}",
                                                  expect=200)).json()["volumeAttachment"]
        inst = await compute.conductor.load(sid)
        await compute.volume.attachments.update(volume_caller(None, inst.project_id, inst.user_id),
                                                shown["attachment_id"], {"host": inst.host})
        assert (await cinder(w).get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "attaching"
        async with compute.db.read() as s:
            assert (await s.get(Task, task.id)).status == RUNNING
    finally:
        compute.tasks.start()
    vol = await wait_volume(cinder(w), vid, "in-use", timeout=30)
    assert [a["server_id"] for a in vol["attachments"]] == [sid]
    for _ in range(100):  # the volume is in use a moment before the task is marked done
        async with compute.db.read() as s:
            t = await s.get(Task, task.id)
        if t.status != RUNNING:
            break
        await asyncio.sleep(0.05)
    assert t.attempts == 2 and t.status == "succeeded"
    out = (await w["member"].action(sid, "os-getConsoleOutput", {}, expect=200)).json()["output"]
    assert f"serial {vid[:20]}" in out
    await w["member"].delete(f"/servers/{sid}/os-volume_attachments/{vid}", expect=202)
    await wait_volume(cinder(w), vid, "available")
    await w["member"].delete(f"/servers/{sid}", expect=204)


async def test_volume_backed_create_image_boot_from_it_and_refusals(w: ComputeWorld) -> None:
    """createImage of a volume-backed server as Nova: forced snapshots of its volumes and an image
    of properties only (active, size 0, block_device_mapping/bdm_v2/root_device_name); a server
    made from that image boots from a new volume made from the root snapshot. Nova's refusals for
    volume-backed servers (createBackup, rebuild to another image, rescue); shelve offloads with
    no image and unshelve brings it back with its volume."""
    import json

    m = w["member"]
    body = bfv(w, {"source_type": "image", "destination_type": "volume", "uuid": w.image_id, "boot_index": 0,
                   "volume_size": 1, "delete_on_termination": True})
    sid = (await m.post("/servers", body, expect=202)).json()["server"]["id"]
    server = await wait_for(m, sid, "ACTIVE")
    root = server["os-extended-volumes:volumes_attached"][0]["id"]
    data = await volume(w)
    await m.post(f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": data}}, expect=200)
    await wait_volume(cinder(w), data, "in-use")
    name = uniq("vbimg")
    r = await m.at("2.45").action(sid, "createImage", {"name": name, "metadata": {"purpose": "test"}}, expect=202)
    image_id = r.json()["image_id"]
    h = {"X-Auth-Token": m.token}
    image = (await w.ks.client.get(f"/image/v2/images/{image_id}", headers=h)).json()
    assert image["status"] == "active" and image["size"] == 0 and image["disk_format"] == "raw"
    assert image["root_device_name"] == "/dev/vda" and image["bdm_v2"] == "True" and image["purpose"] == "test"
    assert image["visibility"] == "private"
    mapping = json.loads(image["block_device_mapping"])
    assert [(b["source_type"], b["destination_type"], b["boot_index"], b["device_name"]) for b in mapping] == [
        ("snapshot", "volume", 0, "/dev/vda"), ("snapshot", "volume", None, "/dev/vdb")]
    assert mapping[0]["delete_on_termination"] is True and mapping[0]["volume_size"] == 1
    snaps = [await wait_volume(cinder(w), b["snapshot_id"], "available", collection="snapshots") for b in mapping]
    assert [s["volume_id"] for s in snaps] == [root, data]
    assert {s["name"] for s in snaps} == {f"snapshot for {name}"}
    server = (await m.get(f"/servers/{sid}", expect=200)).json()["server"]
    assert server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None
    actions = (await m.get(f"/servers/{sid}/os-instance-actions", expect=200)).json()["instanceActions"]
    assert "createImage" in {a["action"] for a in actions}
    # a server from that image boots from volumes made from the snapshots
    body = {"server": {"name": uniq("fromvb"), "flavorRef": w.flavor_id, "imageRef": image_id,
                       "networks": [{"uuid": w.network_id}]}}
    child = (await m.post("/servers", body, expect=202)).json()["server"]["id"]
    made = (await wait_for(m, child, "ACTIVE"))["os-extended-volumes:volumes_attached"]
    assert len(made) == 2 and made[0]["delete_on_termination"] is True
    vols = [await wait_volume(cinder(w), v["id"], "in-use") for v in made]
    assert [v["snapshot_id"] for v in vols] == [b["snapshot_id"] for b in mapping]
    assert [a["device"] for a in await attached(w, child)] == ["/dev/vda", "/dev/vdb"]
    # Nova's refusals for a volume-backed server
    assert_fault(await m.action(sid, "createBackup", {"name": "b", "backup_type": "daily", "rotation": 1}), 400,
                 contains="Backup is not supported for volume-backed instances.")
    other_image = await w.image()
    assert_fault(await m.action(sid, "rebuild", {"imageRef": other_image}), 400,
                 contains="Unable to rebuild with a different image for a volume-backed server.")
    assert_fault(await m.action(sid, "rescue", None), 400, contains="Cannot rescue a volume-backed instance")
    assert_fault(await m.at("2.87").action(sid, "rescue", None), 400, contains="Cannot rescue a volume-backed")
    # shelve: offloaded without an image, unshelved with its volume
    await m.action(child, "shelve", None, expect=202)
    shelved = await wait_for(m, child, "SHELVED_OFFLOADED")
    assert "shelved_image_id" not in shelved.get("metadata", {})
    await m.action(child, "unshelve", None, expect=202)
    await wait_for(m, child, "ACTIVE")
    assert [a["id"] for a in (await m.get(f"/servers/{child}", expect=200)).json()["server"][
        "os-extended-volumes:volumes_attached"]] == [v["id"] for v in made]
    for s in (child, sid):
        await m.delete(f"/servers/{s}", expect=204)
        await wait_for(m, s, "DELETED")
    await wait_volume(cinder(w), made[0]["id"], "deleted")
    # the root volume stays, as in Nova: a volume with snapshots cannot be deleted at the server's delete
    await wait_volume(cinder(w), root, "available")
    for b in mapping:
        await cinder(w).delete(f"/snapshots/{b['snapshot_id']}", expect=202)
        await wait_volume(cinder(w), b["snapshot_id"], "deleted", collection="snapshots")
    for v in (made[1]["id"], data, root):
        await wait_volume(cinder(w), v, "available")
        await cinder(w).delete(f"/volumes/{v}", expect=202)
    await w.ks.client.delete(f"/image/v2/images/{image_id}", headers=h)


async def test_volume_backed_create_image_over_snapshot_quota(w: ComputeWorld) -> None:
    """Nova's 403 when the snapshots do not fit the quota; no snapshot and no image are left."""
    m = w["member"]
    body = bfv(w, {"source_type": "blank", "destination_type": "volume", "boot_index": 0, "volume_size": 1,
                   "delete_on_termination": True}, imageRef=w.image_id)
    body["server"].pop("imageRef")
    sid = (await m.post("/servers", body, expect=202)).json()["server"]["id"]
    await wait_for(m, sid, "ACTIVE")
    project = w.projects["a"]
    admin = Cinder(w.admin.client, w.admin.token, w.admin.project_id, w.admin.user_id, "3.27")
    await admin.put(f"/os-quota-sets/{project}", {"quota_set": {"snapshots": 0}}, expect=200)
    try:
        name = uniq("overquota")
        assert_fault(await m.action(sid, "createImage", {"name": name}), 403, contains="Quota exceeded")
        snaps = (await cinder(w).get("/snapshots", expect=200)).json()["snapshots"]
        assert [s for s in snaps if s["name"] == f"snapshot for {name}"] == []
        h = {"X-Auth-Token": m.token}
        images = (await w.ks.client.get(f"/image/v2/images?name={name}", headers=h)).json()["images"]
        assert images == []
    finally:
        await admin.put(f"/os-quota-sets/{project}", {"quota_set": UNLIMITED}, expect=200)
    await m.delete(f"/servers/{sid}", expect=204)


async def test_detach_when_the_guest_is_gone(w: ComputeWorld) -> None:
    """A host that lost the guest (restarted under it) still lets its volume go, as Nova's libvirt
    driver does ("During detach_volume, instance disappeared"): the volume is available again."""
    sid = await boot_server(w)
    vid = await volume(w)
    await w["member"].post(f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}},
                           expect=200)
    await wait_volume(cinder(w), vid, "in-use")
    compute = w.cloud.compute
    inst = await compute.conductor.load(sid)
    driver = compute.hosts.agents[inst.host].driver
    gone = driver.instances.pop(sid)
    try:
        await w["member"].delete(f"/servers/{sid}/os-volume_attachments/{vid}", expect=202)
        await wait_volume(cinder(w), vid, "available")
        await wait_detached(w, sid, vid)
    finally:
        driver.instances[sid] = gone
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await cinder(w).delete(f"/volumes/{vid}", expect=202)


async def test_attach_and_detach_on_a_shelved_offloaded_server(w: ComputeWorld) -> None:
    """A shelved-offloaded server has no host: an attach marks the volume in-use with no
    connection (Nova's _attach_volume_shelved_offloaded), a detach frees it at once, and the
    unshelve connects what was attached on the new host, whose guest then has the disk."""
    m = w["member"]
    sid = await boot_server(w)
    kept, dropped = await volume(w), await volume(w)
    await m.action(sid, "shelve", None, expect=202)
    await wait_for(m, sid, "SHELVED_OFFLOADED")
    for vid in (kept, dropped):
        await m.post(f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}}, expect=200)
        vol = await wait_volume(cinder(w), vid, "in-use")
        assert [a["server_id"] for a in vol["attachments"]] == [sid]
    assert {a["volumeId"] for a in await attached(w, sid)} == {kept, dropped}
    await m.delete(f"/servers/{sid}/os-volume_attachments/{dropped}", expect=202)
    await wait_volume(cinder(w), dropped, "available")
    await wait_detached(w, sid, dropped)
    await m.action(sid, "unshelve", None, expect=202)
    await wait_for(m, sid, "ACTIVE")
    [shown] = await attached(w, sid)
    assert (shown["volumeId"], shown["device"]) == (kept, "/dev/vdb")
    vol = await wait_volume(cinder(w), kept, "in-use")
    assert vol["attachments"][0]["server_id"] == sid
    # the new host's guest has the volume (the spawn opened it with the connection made at unshelve)
    compute = w.cloud.compute
    inst = await compute.conductor.load(sid)
    guest = compute.hosts.agents[inst.host].driver.instances[sid]
    assert kept in guest.volumes and dropped not in guest.volumes
    assert guest.volumes[kept].connection_info
    await m.delete(f"/servers/{sid}/os-volume_attachments/{kept}", expect=202)
    await wait_volume(cinder(w), kept, "available")
    await m.delete(f"/servers/{sid}", expect=204)
    for vid in (kept, dropped):
        await cinder(w).delete(f"/volumes/{vid}", expect=202)
