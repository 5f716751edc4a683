"""The actions that remake or move a server, through the Nova API on a cloud of four fake hosts,
each to Nova's end state with Placement's allocations where Nova puts them: rebuild, createImage
(a snapshot in the image service), resize with confirm and revert, cold migration, live
migration (the migration row, the ports' binding), shelve/unshelve, evacuate from a host that is
down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from mcloud.compute.models import Migration

from tests.api.compute_helpers import ComputeWorld, uniq
from tests.api.test_compute_lifecycle import events_of, own_cloud_world, wait_for


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ComputeWorld]:
    async with own_cloud_world(database, tmp_path_factory.mktemp("moves")) as world:
        yield world


async def boot(w: ComputeWorld, **server: Any) -> dict[str, Any]:
    body = {"name": uniq("vm"), "imageRef": w.image_id, "flavorRef": w.flavor_id,
            "networks": [{"uuid": w.network_id}], **server}
    r = await w["member"].post("/servers", {"server": body}, expect=202)
    return await wait_for(w.admin, r.json()["server"]["id"], "ACTIVE")


async def allocations(w: ComputeWorld, consumer: str) -> dict[str, dict[str, int]]:
    """host -> resources of the consumer's allocations."""
    found = await w.cloud.placement.consumer_allocations(consumer)
    if not found:
        return {}
    names = {rp.uuid: rp.name for rp in await w.cloud.placement.list_providers()}
    return {names[rp]: v["resources"] for rp, v in found["providers"].items()}


async def port_hosts(w: ComputeWorld, sid: str) -> list[str]:
    ports = (await w.neutron["admin"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"]
    return [p["binding:host_id"] for p in ports]


async def gone(w: ComputeWorld, sid: str) -> None:
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await wait_for(w["member"], sid, gone=True)
    assert await w.cloud.placement.consumer_allocations(sid) is None


async def guest_only_on(w: ComputeWorld, sid: str, host: str, not_on: str) -> None:
    """The fake hypervisors: the guest exists on ``host`` and not on ``not_on``."""
    agents = w.cloud.compute.hosts.agents
    assert sid in agents[host].driver.instances and sid not in agents[not_on].driver.instances


async def migrations_of(w: ComputeWorld, sid: str) -> list[dict[str, Any]]:
    """The server's migration rows, newest first (read from the table os-migrations shows)."""
    async with w.cloud.db.read() as session:
        rows = (await session.execute(sa.select(Migration).where(Migration.instance_uuid == sid)
                                      .order_by(Migration.id.desc()))).scalars()
        return [{c: getattr(r, c) for c in ("uuid", "status", "migration_type", "source_compute", "dest_compute")}
                for r in rows]


async def confirm(nova: Any, sid: str) -> None:
    await nova.action(sid, "confirmResize", None, expect=204)


ONE = {"VCPU": 1, "MEMORY_MB": 64, "DISK_GB": 1}
TWO = {"VCPU": 2, "MEMORY_MB": 64, "DISK_GB": 2}


async def test_rebuild_with_another_image_and_a_stopped_server_stays_stopped(w: ComputeWorld) -> None:
    s = await boot(w)
    other = await w.image()
    await w["member"].action(s["id"], "rebuild", {"imageRef": other}, expect=202)
    server = await wait_for(w.admin, s["id"], "ACTIVE")
    assert server["image"]["id"] == other and server["OS-EXT-SRV-ATTR:host"] == s["OS-EXT-SRV-ATTR:host"]
    assert ("compute_rebuild_instance", "Success") in (await events_of(w, s["id"]))["rebuild"]
    await w["member"].action(s["id"], "os-stop", None, expect=202)
    await wait_for(w.admin, s["id"], "SHUTOFF")
    await w["member"].action(s["id"], "rebuild", {"imageRef": w.image_id}, expect=202)
    server = await wait_for(w.admin, s["id"], "SHUTOFF")
    assert server["image"]["id"] == w.image_id and server["OS-EXT-STS:power_state"] == 4
    await gone(w, s["id"])


async def test_create_image_uploads_a_snapshot(w: ComputeWorld) -> None:
    s = await boot(w)
    r = await w["member"].action(s["id"], "createImage", {"name": "snap"}, expect=202)
    image_id = r.json()["image_id"]
    await wait_for(w.admin, s["id"], "ACTIVE")
    h = {"X-Auth-Token": w["member"].token}
    image = (await w.ks.client.get(f"/image/v2/images/{image_id}", headers=h)).json()
    assert image["status"] == "active" and image["size"] > 0, image
    data = (await w.ks.client.get(f"/image/v2/images/{image_id}/file", headers=h)).content
    assert s["id"].encode() in data  # the fake driver's snapshot names its instance
    assert ("compute_snapshot_instance", "Success") in (await events_of(w, s["id"]))["createImage"]
    await gone(w, s["id"])


async def test_resize_confirm_and_revert_move_the_allocations_as_nova(w: ComputeWorld) -> None:
    s = await boot(w)
    sid, source = s["id"], s["OS-EXT-SRV-ATTR:host"]
    await w["member"].action(sid, "resize", {"flavorRef": w.flavor2}, expect=202)
    server = await wait_for(w.admin, sid, "VERIFY_RESIZE")
    dest = server["OS-EXT-SRV-ATTR:host"]
    assert server["flavor"]["vcpus"] == 2 and server["OS-EXT-STS:power_state"] == 1
    assert await allocations(w, sid) == {dest: TWO}
    mig = (await migrations_of(w, sid))[0]
    assert mig["status"] == "finished" and mig["migration_type"] == "resize" and mig["source_compute"] == source
    # the source's allocation is held by the migration until the resize is confirmed
    assert await allocations(w, mig["uuid"]) == {source: ONE}
    await confirm(w["member"], sid)
    server = await wait_for(w.admin, sid, "ACTIVE")
    assert server["flavor"]["vcpus"] == 2 and await allocations(w, mig["uuid"]) == {}
    # and back: revert
    await w["member"].action(sid, "resize", {"flavorRef": w.flavor_id}, expect=400)  # smaller disk: Nova refuses
    big = (await w.admin.post("/flavors", {"flavor": {"name": uniq("f"), "vcpus": 3, "ram": 64, "disk": 2}},
                              expect=200)).json()["flavor"]["id"]
    await w["member"].action(sid, "resize", {"flavorRef": big}, expect=202)
    server = await wait_for(w.admin, sid, "VERIFY_RESIZE")
    await w["member"].action(sid, "revertResize", None, expect=202)
    server = await wait_for(w.admin, sid, "ACTIVE")
    assert server["flavor"]["vcpus"] == 2 and server["OS-EXT-SRV-ATTR:host"] == dest
    assert await allocations(w, sid) == {dest: TWO}
    assert await port_hosts(w, sid) == [dest]
    events = await events_of(w, sid)
    assert ("compute_revert_resize", "Success") in events["revertResize"]
    await gone(w, sid)


async def test_cold_migration_of_a_stopped_server(w: ComputeWorld) -> None:
    s = await boot(w)
    sid, source = s["id"], s["OS-EXT-SRV-ATTR:host"]
    await w["member"].action(sid, "os-stop", None, expect=202)
    await wait_for(w.admin, sid, "SHUTOFF")
    await w.admin.action(sid, "migrate", None, expect=202)
    server = await wait_for(w.admin, sid, "VERIFY_RESIZE")
    dest = server["OS-EXT-SRV-ATTR:host"]
    assert dest != source and server["OS-EXT-STS:power_state"] == 4
    assert await port_hosts(w, sid) == [dest]
    await confirm(w.admin, sid)
    server = await wait_for(w.admin, sid, "SHUTOFF")
    assert await allocations(w, sid) == {dest: ONE}
    await guest_only_on(w, sid, dest, source)
    await gone(w, sid)


async def test_live_migration_moves_the_running_server(w: ComputeWorld, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcloud.compute.conductor")
    s = await boot(w)
    sid, source = s["id"], s["OS-EXT-SRV-ATTR:host"]
    target = next(h for h in sorted(w.cloud.compute.hosts.agents) if h != source)
    await w.admin.action(sid, "os-migrateLive", {"host": target, "block_migration": "auto"}, expect=202)
    server = await wait_for(w.admin, sid, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == target and server["OS-EXT-STS:power_state"] == 1
    assert await allocations(w, sid) == {target: ONE}
    assert await port_hosts(w, sid) == [target]
    mig = (await migrations_of(w, sid))[0]
    assert mig["migration_type"] == "live-migration"
    assert (mig["status"], mig["source_compute"], mig["dest_compute"]) == ("completed", source, target)
    # the driver's figures (the fake copies the flavor's 64 MB once, no disk) in Nova's columns
    async with w.cloud.db.read() as session:
        row = (await session.execute(sa.select(Migration).where(Migration.uuid == mig["uuid"]))).scalar_one()
    assert (row.memory_total, row.memory_processed, row.memory_remaining) == (64 << 20, 64 << 20, 0)
    assert (row.disk_total, row.disk_processed, row.disk_remaining) == (0, 0, 0)
    assert any(mig["uuid"] in r.getMessage() and "downtime 5 ms" in r.getMessage() for r in caplog.records)
    await guest_only_on(w, sid, target, source)
    assert ("compute_live_migration", "Success") in (await events_of(w, sid))["live-migration"]
    await gone(w, sid)


async def test_live_migration_to_a_host_unknown_or_down_is_refused_up_front(w: ComputeWorld) -> None:
    s = await boot(w)
    sid, source = s["id"], s["OS-EXT-SRV-ATTR:host"]
    r = await w.admin.action(sid, "os-migrateLive", {"host": "no-such-host", "block_migration": "auto"})
    assert r.status_code == 400 and "Compute host no-such-host could not be found." in r.text, r.text
    target = next(h for h in sorted(w.cloud.compute.hosts.agents) if h != source)
    services = (await w.admin.get("/os-services", params={"binary": "nova-compute", "host": target},
                                  expect=200)).json()["services"]
    await w.admin.put(f"/os-services/{services[0]['id']}", {"forced_down": True}, expect=200)
    try:
        r = await w.admin.action(sid, "os-migrateLive", {"host": target, "block_migration": "auto"})
        assert r.status_code == 400 and f"Compute service of {target} is unavailable" in r.text, r.text
    finally:
        await w.admin.put(f"/os-services/{services[0]['id']}", {"forced_down": False}, expect=200)
    # nothing was started: the server stays where it was, with no migration
    server = await wait_for(w.admin, sid, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == source and await migrations_of(w, sid) == []
    await gone(w, sid)


async def test_shelve_offloads_and_unshelve_schedules_again(w: ComputeWorld) -> None:
    s = await boot(w)
    sid = s["id"]
    await w["member"].action(sid, "shelve", None, expect=202)
    server = await wait_for(w.admin, sid, "SHELVED_OFFLOADED")
    assert server["OS-EXT-SRV-ATTR:host"] is None and server["OS-EXT-STS:power_state"] == 0
    assert await allocations(w, sid) == {}
    assert await port_hosts(w, sid) == [""]
    await w["member"].action(sid, "unshelve", None, expect=202)
    server = await wait_for(w.admin, sid, "ACTIVE")
    host = server["OS-EXT-SRV-ATTR:host"]
    assert host and await allocations(w, sid) == {host: ONE} and await port_hosts(w, sid) == [host]
    assert server["image"]["id"] == w.image_id
    await gone(w, sid)


async def test_evacuate_from_a_host_that_is_down(w: ComputeWorld) -> None:
    s = await boot(w)
    sid, source = s["id"], s["OS-EXT-SRV-ATTR:host"]
    services = (await w.admin.get("/os-services", params={"binary": "nova-compute", "host": source},
                                  expect=200)).json()["services"]
    await w.admin.put(f"/os-services/{services[0]['id']}", {"forced_down": True}, expect=200)
    try:
        await w.admin.at("2.94").action(sid, "evacuate", {}, expect=200)
        server = await wait_for(w.admin, sid, "ACTIVE")  # before 2.95 an evacuated server runs
        dest = server["OS-EXT-SRV-ATTR:host"]
        assert dest != source and await allocations(w, sid) == {dest: ONE}
        assert await port_hosts(w, sid) == [dest]
    finally:
        await w.admin.put(f"/os-services/{services[0]['id']}", {"forced_down": False}, expect=200)
    await gone(w, sid)


async def test_a_host_that_comes_back_destroys_what_was_evacuated_or_deleted(w: ComputeWorld) -> None:
    """Nova's _destroy_evacuated_instances and the reaping of deleted guests: the host was down,
    one server evacuated elsewhere and one deleted; when its agent starts again (its driver
    still has both guests, as qemu processes outlive the host process) both are destroyed."""
    from mcloud.compute.agent import Agent, LocalTransport

    hosts = w.cloud.compute.hosts
    kept = await boot(w)
    sid, source = kept["id"], kept["OS-EXT-SRV-ATTR:host"]
    r = await w["member"].post("/servers", {"server": {
        "name": uniq("vm"), "imageRef": w.image_id, "flavorRef": w.flavor_id, "networks": [{"uuid": w.network_id}]},
        "os:scheduler_hints": {"same_host": [sid]}}, expect=202)
    doomed = (await wait_for(w.admin, r.json()["server"]["id"], "ACTIVE"))["id"]
    services = (await w.admin.get("/os-services", params={"binary": "nova-compute", "host": source},
                                  expect=200)).json()["services"]
    await w.admin.put(f"/os-services/{services[0]['id']}", {"forced_down": True}, expect=200)
    try:
        await w.admin.at("2.94").action(sid, "evacuate", {}, expect=200)
        dest = (await wait_for(w.admin, sid, "ACTIVE"))["OS-EXT-SRV-ATTR:host"]
        await w["member"].delete(f"/servers/{doomed}", expect=204)
        await wait_for(w["member"], doomed, gone=True)
    finally:
        await w.admin.put(f"/os-services/{services[0]['id']}", {"forced_down": False}, expect=200)
    old = hosts.agents[source]
    assert {sid, doomed} <= set(old.driver.instances)  # the host never heard of either
    await old.close()
    agent = Agent(source, old.driver, LocalTransport(hosts), hosts.config, images=old.images, heartbeat=False)
    hosts.agents[source] = agent
    await agent.start()
    for _ in range(100):
        if not {sid, doomed} & set(agent.driver.instances):
            break
        await asyncio.sleep(0.05)
    assert not {sid, doomed} & set(agent.driver.instances)
    assert ("destroy", sid) in agent.driver.calls and ("destroy", doomed) in agent.driver.calls
    await guest_only_on(w, sid, dest, source)
    server = (await w.admin.get(f"/servers/{sid}", expect=200)).json()["server"]
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", dest)
    evacuation = next(m for m in await migrations_of(w, sid) if m["migration_type"] == "evacuation")
    assert evacuation["status"] == "completed"  # as Nova marks it once the source cleaned up
    await gone(w, sid)


async def test_a_failed_live_migration_leaves_the_server_running_on_its_source(w: ComputeWorld) -> None:
    s = await boot(w)
    sid, source = s["id"], s["OS-EXT-SRV-ATTR:host"]
    agents = w.cloud.compute.hosts.agents
    target = next(h for h in sorted(agents) if h != source)
    agents[source].driver.inject("live_migrate", "injected: the stream broke", uuid=sid)
    await w.admin.action(sid, "os-migrateLive", {"host": target, "block_migration": "auto"}, expect=202)
    server = await wait_for(w.admin, sid, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == source and server["OS-EXT-STS:power_state"] == 1
    assert await allocations(w, sid) == {source: ONE} and await port_hosts(w, sid) == [source]
    mig = (await migrations_of(w, sid))[0]
    assert mig["status"] == "error" and await allocations(w, mig["uuid"]) == {}
    await guest_only_on(w, sid, source, target)  # aborted there
    assert ("compute_live_migration", "Error") in (await events_of(w, sid))["live-migration"]
    await gone(w, sid)


async def test_a_failed_resize_is_error_with_the_claim_given_back(w: ComputeWorld) -> None:
    s = await boot(w)
    sid = s["id"]
    for agent in w.cloud.compute.hosts.agents.values():
        agent.driver.inject("resize", "injected: the disk would not grow", uuid=sid)
    await w["member"].action(sid, "resize", {"flavorRef": w.flavor2}, expect=202)
    server = await wait_for(w.admin, sid, "ERROR")
    assert server["fault"]["message"] == "injected: the disk would not grow"
    # the guest is where the failure left it (moved, or not), claimed there with the flavor it has
    assert server["flavor"]["vcpus"] == 1
    assert await allocations(w, sid) == {server["OS-EXT-SRV-ATTR:host"]: ONE}
    assert sid in w.cloud.compute.hosts.agents[server["OS-EXT-SRV-ATTR:host"]].driver.instances
    mig = (await migrations_of(w, sid))[0]
    assert mig["status"] == "error" and await allocations(w, mig["uuid"]) == {}
    await gone(w, sid)


async def test_a_failed_snapshot_deletes_its_image_and_keeps_the_server(w: ComputeWorld) -> None:
    s = await boot(w)
    sid = s["id"]
    w.cloud.compute.hosts.agents[s["OS-EXT-SRV-ATTR:host"]].driver.inject("snapshot", "injected: no room", uuid=sid)
    r = await w["member"].action(sid, "createImage", {"name": "snap"}, expect=202)
    image_id = r.json()["image_id"]
    server = await wait_for(w.admin, sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    h = {"X-Auth-Token": w["member"].token}
    assert (await w.ks.client.get(f"/image/v2/images/{image_id}", headers=h)).status_code == 404
    assert ("compute_snapshot_instance", "Error") in (await events_of(w, sid))["createImage"]
    await gone(w, sid)


async def test_direct_kernel_boot_images_reach_the_host_and_snapshots_keep_them(w: ComputeWorld) -> None:
    """An image naming a kernel (aki) and a ramdisk (ari) with os_command_line: the host's image
    cache brings both, the driver is given them (spawn, rebuild, rescue), the server shows them
    (OS-EXT-SRV-ATTR:kernel_id/ramdisk_id) and its snapshot names them too, as Nova's do. A
    kernel the image service does not have is Nova's 400 at the API, and a build's fault when
    it goes between the API and the host."""
    kernel = await w.image(data=b"K" * 2048, disk_format="aki", container_format="aki")
    ramdisk = await w.image(data=b"R" * 1024, disk_format="ari", container_format="ari")
    boot_props = {"kernel_id": kernel, "ramdisk_id": ramdisk, "os_command_line": "console=ttyS0 quiet"}
    image = await w.image(**boot_props)
    s = await boot(w, imageRef=image)
    driver = w.cloud.compute.hosts.agents[s["OS-EXT-SRV-ATTR:host"]].driver
    spec = driver.instances[s["id"]].spec.image
    assert (spec.kernel_id, spec.ramdisk_id) == (kernel, ramdisk)
    assert spec.kernel.read_bytes() == b"K" * 2048 and spec.ramdisk.read_bytes() == b"R" * 1024
    assert spec.properties["os_command_line"] == "console=ttyS0 quiet"
    shown = (await w.admin.at("2.3").get(f"/servers/{s['id']}", expect=200)).json()["server"]
    assert (shown["OS-EXT-SRV-ATTR:kernel_id"], shown["OS-EXT-SRV-ATTR:ramdisk_id"]) == (kernel, ramdisk)
    # the snapshot names the same kernel and ramdisk (and command line): a server of it boots the same way
    r = await w["member"].action(s["id"], "createImage", {"name": "snap"}, expect=202)
    await wait_for(w.admin, s["id"], "ACTIVE")
    h = {"X-Auth-Token": w["member"].token}
    snap = (await w.ks.client.get(f"/image/v2/images/{r.json()['image_id']}", headers=h)).json()
    assert {k: snap.get(k) for k in boot_props} == boot_props
    from_snap = await boot(w, imageRef=snap["id"])
    assert w.cloud.compute.hosts.agents[from_snap["OS-EXT-SRV-ATTR:host"]].driver.instances[
        from_snap["id"]].spec.image.kernel_id == kernel
    # rescue hands the driver the rescue image with its kernel; rebuild to a disk image drops it
    await w["member"].action(s["id"], "rescue", {"rescue_image_ref": image}, expect=200)
    await wait_for(w.admin, s["id"], "RESCUE")
    await w["member"].action(s["id"], "unrescue", None, expect=202)
    await wait_for(w.admin, s["id"], "ACTIVE")
    await w["member"].action(s["id"], "rebuild", {"imageRef": w.image_id}, expect=202)
    await wait_for(w.admin, s["id"], "ACTIVE")
    assert driver.instances[s["id"]].spec.image.kernel_id is None
    shown = (await w.admin.at("2.3").get(f"/servers/{s['id']}", expect=200)).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:kernel_id"] == ""
    # a kernel image that is not there: 400 at the API, for a boot and for a rebuild
    nowhere = "9c3a7a2e-2a41-4a36-8d0b-5b1f8ad1c0de"
    lost = await w.image(kernel_id=nowhere)
    body = {"name": uniq("vm"), "imageRef": lost, "flavorRef": w.flavor_id, "networks": [{"uuid": w.network_id}]}
    r = await w["member"].post("/servers", {"server": body}, expect=400)
    assert r.json()["badRequest"]["message"] == f"Image {nowhere} could not be found."
    r = await w["member"].action(s["id"], "rebuild", {"imageRef": lost}, expect=400)
    assert r.json()["badRequest"]["message"] == f"Image {nowhere} could not be found."
    # ... and one deleted while the server builds: the build aborts with Nova's fault, nothing held
    doomed = await w.image(data=b"K", disk_format="aki", container_format="aki")
    agents = w.cloud.compute.hosts.agents
    for agent in agents.values():  # the first try fails, its host's cleanup takes a moment: the kernel goes then
        agent.driver.inject("spawn", "injected: the first try fails", count=1)
        agent.driver.delay = 0.5
    try:
        body["imageRef"] = await w.image(kernel_id=doomed)
        sid = (await w["member"].post("/servers", {"server": body}, expect=202)).json()["server"]["id"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not any(("spawn", sid) in a.driver.calls for a in agents.values()):
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        r = await w.ks.client.delete(f"/image/v2/images/{doomed}", headers={"X-Auth-Token": w.admin.token})
        assert r.status_code == 204, r.text
        server = await wait_for(w.admin, sid, "ERROR")
    finally:
        for agent in agents.values():
            agent.driver.delay = 0.0
            agent.driver._injected.clear()  # noqa: SLF001 - the other host's failure was not used
    assert server["fault"]["message"] == f"Build of instance {sid} aborted: Image {doomed} could not be found."
    assert await w.cloud.placement.consumer_allocations(sid) is None
    assert (await w.neutron["admin"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"] == []
    for sid in (s["id"], from_snap["id"], sid):
        await gone(w, sid)
