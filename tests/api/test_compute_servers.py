"""Servers through the in-process app (fake hypervisor, fake network data plane), on every
database the session runs: create in each request form, Nova's 400s for bad input, the body
and its OS-EXT attributes, isolation between projects, lists with filters and pages, update,
metadata, tags, actions with Nova's state checks and locks, instance actions, delete."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world, uniq, wait_for


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


def server_body(w: ComputeWorld, **fields: Any) -> dict[str, Any]:
    return {"server": {"name": uniq("vm"), "flavorRef": w.flavor_id, "imageRef": w.image_id,
                       "networks": [{"uuid": w.network_id}], **fields}}


async def boot(w: ComputeWorld, who: str = "member", wait: bool = True, **fields: Any) -> dict[str, Any]:
    r = await w[who].post("/servers", server_body(w, **fields), expect=202)
    sid = r.json()["server"]["id"]
    return await wait_for(w[who], sid, "ACTIVE") if wait else r.json()["server"]


async def test_create_answers_202_and_reaches_active(w: ComputeWorld) -> None:
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    r = await w["member"].post("/servers", server_body(w, metadata={"role": "web"}, user_data=user_data,
                                                      tags=["a", "b"], description="first"), expect=202)
    created = r.json()["server"]
    sid = created["id"]
    assert r.headers["location"].endswith(f"/compute/v2.1/servers/{sid}")
    assert created["OS-DCF:diskConfig"] == "MANUAL" and created["adminPass"]
    assert created["security_groups"] == [{"name": "default"}]
    assert {link["rel"] for link in created["links"]} == {"self", "bookmark"}
    first = (await w["member"].get(f"/servers/{sid}", expect=200)).json()["server"]
    assert first["status"] in ("BUILD", "ACTIVE")
    server = await wait_for(w["member"], sid, "ACTIVE")
    assert server["OS-EXT-STS:vm_state"] == "active" and server["OS-EXT-STS:power_state"] == 1
    assert server["metadata"] == {"role": "web"} and server["tags"] == ["a", "b"]
    assert server["description"] == "first" and server["tenant_id"] == w.projects["a"]
    assert server["user_id"] == w["member"].user_id
    assert server["flavor"]["original_name"] == "m1.tiny" and server["flavor"]["ram"] == 512
    assert server["image"]["id"] == w.image_id and server["hostId"]
    assert server["OS-SRV-USG:launched_at"] and server["OS-EXT-AZ:availability_zone"]
    assert server["locked"] is False and server["progress"] == 0
    # a project member does not see the host attributes; the admin does
    assert "OS-EXT-SRV-ATTR:host" not in server
    admin_view = (await w.admin.get(f"/servers/{sid}", expect=200)).json()["server"]
    assert admin_view["OS-EXT-SRV-ATTR:host"] and admin_view["OS-EXT-SRV-ATTR:instance_name"].startswith("instance-")
    assert admin_view["OS-EXT-SRV-ATTR:user_data"] == user_data
    # addresses come from the network service's ports with device_id = the server
    (net_name, addrs), = server["addresses"].items()
    assert addrs[0]["version"] == 4 and addrs[0]["OS-EXT-IPS:type"] == "fixed"
    assert addrs[0]["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e")
    ips = (await w["member"].get(f"/servers/{sid}/ips", expect=200)).json()["addresses"]
    assert ips == {net_name: [{"version": 4, "addr": addrs[0]["addr"]}]}
    one = (await w["member"].get(f"/servers/{sid}/ips/{net_name}", expect=200)).json()
    assert one == {net_name: ips[net_name]}
    assert_fault(await w["member"].get(f"/servers/{sid}/ips/nonet"), 404)
    ports = (await w.neutron["member"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"]
    assert len(ports) == 1 and ports[0]["device_owner"].startswith("compute:")
    # the create is an instance action with the request's id
    actions = (await w["member"].get(f"/servers/{sid}/os-instance-actions", expect=200)).json()["instanceActions"]
    assert [a["action"] for a in actions] == ["create"]
    assert actions[0]["request_id"] == r.headers["x-openstack-request-id"]
    shown = (await w["member"].get(f"/servers/{sid}/os-instance-actions/{actions[0]['request_id']}",
                                   expect=200)).json()["instanceAction"]
    assert shown["events"] and all(e["result"] == "Success" for e in shown["events"])
    # older microversions show the flavor as a link and no tags/description
    old = (await w["member"].at("2.1").get(f"/servers/{sid}", expect=200)).json()["server"]
    assert set(old["flavor"]) == {"id", "links"} and "tags" not in old and "description" not in old


async def test_bad_input_is_novas_400(w: ComputeWorld) -> None:
    member = w["member"]
    unknown = "6b8a2b0f-1a2b-4c3d-9e8f-000000000000"
    cases = [
        (server_body(w, flavorRef="no-such-flavor"), "Flavor no-such-flavor could not be found."),
        (server_body(w, imageRef=unknown), f"Image {unknown} could not be found."),
        (server_body(w, imageRef="not-a-uuid"), "Invalid imageRef provided."),
        (server_body(w, networks=[{"uuid": unknown}]), f"Network {unknown} could not be found."),
        (server_body(w, networks=[{"uuid": "bad"}]), "Bad networks format: network uuid is not in proper format (bad)"),
        (server_body(w, networks=[{"port": unknown}]), f"Port {unknown} could not be found."),
        (server_body(w, user_data="not base64!"), "user_data"),
        (server_body(w, min_count=3, max_count=2), "min_count must be <= max_count"),
        (server_body(w, key_name="no-such-key"), "Invalid key_name provided."),
        (server_body(w, name=" padded "), "name"),
        (server_body(w, bogus=1), "Additional properties are not allowed ('bogus' was unexpected)"),
        (server_body(w, security_groups=[{"name": "no-such-group"}]), "no-such-group"),
        (server_body(w, availability_zone="no-such-zone"), "The requested availability zone is not available"),
        ({"server": {"name": "x", "flavorRef": w.flavor_id, "imageRef": w.image_id}}, "'networks' is a required"),
        ({"servers": {}}, "'server' is a required property"),
    ]
    for body, text in cases:
        assert_fault(await member.post("/servers", body), 400, "badRequest", contains=text)
    assert_fault(await member.post("/servers", content=b"{not json", headers={"Content-Type": "application/json"}),
                 400)
    # tags only from 2.52, description from 2.19
    assert_fault(await member.at("2.51").post("/servers", server_body(w, tags=["x"])), 400, contains="tags")
    # nothing half-made: no server of these requests exists
    names = {s["name"] for s in (await member.get("/servers", expect=200)).json()["servers"]}
    assert not names & {"x", " padded "}


async def test_isolation(w: ComputeWorld) -> None:
    server = await boot(w)
    sid = server["id"]
    other = w["other"]
    for path in (f"/servers/{sid}", f"/servers/{sid}/ips", f"/servers/{sid}/metadata", f"/servers/{sid}/tags",
                 f"/servers/{sid}/os-instance-actions"):
        assert_fault(await other.get(path), 404, "itemNotFound", contains=sid if path.endswith(sid) else None)
    assert sid not in {s["id"] for s in (await other.get("/servers/detail", expect=200)).json()["servers"]}
    assert_fault(await other.delete(f"/servers/{sid}"), 404)
    assert_fault(await other.action(sid, "os-stop"), 404)
    assert_fault(await other.put(f"/servers/{sid}", {"server": {"name": "stolen"}}), 404)
    # a reader of the owning project sees but may not change
    await w["reader"].get(f"/servers/{sid}", expect=200)
    assert_fault(await w["reader"].delete(f"/servers/{sid}"), 403, "forbidden")
    assert_fault(await w["reader"].action(sid, "os-stop"), 403)
    # the admin sees it with all_tenants
    listed = (await w.admin.get("/servers", params={"all_tenants": "1"}, expect=200)).json()["servers"]
    assert sid in {s["id"] for s in listed}
    listed = (await w.admin.get("/servers", params={"all_tenants": "1", "tenant_id": w.projects["a"]},
                                expect=200)).json()["servers"]
    assert sid in {s["id"] for s in listed}
    # without all_tenants Nova ignores tenant_id: the admin's own project only
    listed = (await w.admin.get("/servers", params={"tenant_id": w.projects["a"]}, expect=200)).json()["servers"]
    assert sid not in {s["id"] for s in listed}
    assert_fault(await w["member"].get("/servers/not-a-uuid"), 404, contains="Instance not-a-uuid could not be found.")


async def test_list_filters_and_pages(w: ComputeWorld) -> None:
    member = w["member"]
    stem = uniq("lst")
    made = []
    for i in range(3):
        r = await member.post("/servers", server_body(w, name=f"{stem}-{i}", networks="none",
                                                     tags=["even"] if i % 2 == 0 else ["odd"]), expect=202)
        made.append(r.json()["server"]["id"])
    for sid in made:
        await wait_for(member, sid, "ACTIVE")
    named = (await member.get("/servers", params={"name": f"^{stem}-[02]$"}, expect=200)).json()["servers"]
    assert {s["id"] for s in named} == {made[0], made[2]}
    assert set(named[0]) == {"id", "name", "links"}
    page1 = (await member.get("/servers/detail", params={"name": stem, "limit": 2}, expect=200)).json()
    assert len(page1["servers"]) == 2 and page1["servers_links"][0]["rel"] == "next"
    assert "marker=" in page1["servers_links"][0]["href"]
    # newest first by default
    assert [s["id"] for s in page1["servers"]] == [made[2], made[1]]
    page2 = (await member.get("/servers/detail", params={"name": stem, "limit": 2,
                                                         "marker": page1["servers"][-1]["id"]}, expect=200)).json()
    assert [s["id"] for s in page2["servers"]] == [made[0]] and "servers_links" not in page2
    asc = (await member.get("/servers", params={"name": stem, "sort_key": "display_name", "sort_dir": "asc"},
                            expect=200)).json()["servers"]
    assert [s["id"] for s in asc] == made
    tagged = (await member.get("/servers", params={"name": stem, "tags": "even"}, expect=200)).json()["servers"]
    assert {s["id"] for s in tagged} == {made[0], made[2]}
    not_tagged = (await member.get("/servers", params={"name": stem, "not-tags": "even"}, expect=200)).json()
    assert {s["id"] for s in not_tagged["servers"]} == {made[1]}
    active = (await member.get("/servers", params={"name": stem, "status": "ACTIVE"}, expect=200)).json()["servers"]
    assert len(active) == 3
    assert (await member.get("/servers", params={"name": stem, "status": "SHUTOFF"}, expect=200)).json()[
        "servers"] == []
    assert (await member.get("/servers", params={"status": "NO-SUCH"}, expect=200)).json()["servers"] == []
    assert_fault(await member.get("/servers", params={"marker": "6b8a2b0f-1a2b-4c3d-9e8f-000000000000"}), 400)
    assert_fault(await member.get("/servers", params={"limit": "-1"}), 400)
    assert_fault(await member.get("/servers", params={"sort_key": "host"}), 403)
    assert_fault(await member.get("/servers", params={"bogus": "1"}), 400)  # 2.75+: unknown parameters
    await member.at("2.74").get("/servers", params={"bogus": "1"}, expect=200)


async def test_update_metadata_tags(w: ComputeWorld) -> None:
    member = w["member"]
    sid = (await boot(w, wait=False, networks="none"))["id"]
    message = assert_fault(await member.put(f"/servers/{sid}/tags", {"tags": ["early"]}), 409)
    assert message == f"Cannot 'update tags' instance {sid} while it is in vm_state building"
    await wait_for(member, sid, "ACTIVE")
    r = await member.put(f"/servers/{sid}", {"server": {"name": "renamed", "description": "d"}}, expect=200)
    assert r.json()["server"]["name"] == "renamed" and r.json()["server"]["description"] == "d"
    assert_fault(await member.put(f"/servers/{sid}", {"server": {"flavorRef": "1"}}), 400)
    await member.post(f"/servers/{sid}/metadata", {"metadata": {"a": "1", "b": "2"}}, expect=200)
    await member.put(f"/servers/{sid}/metadata/c", {"meta": {"c": "3"}}, expect=200)
    assert_fault(await member.put(f"/servers/{sid}/metadata/c", {"meta": {"d": "3"}}), 400)
    got = (await member.get(f"/servers/{sid}/metadata", expect=200)).json()["metadata"]
    assert got == {"a": "1", "b": "2", "c": "3"}
    assert (await member.get(f"/servers/{sid}/metadata/a", expect=200)).json() == {"meta": {"a": "1"}}
    await member.delete(f"/servers/{sid}/metadata/a", expect=204)
    assert_fault(await member.get(f"/servers/{sid}/metadata/a"), 404)
    r = await member.put(f"/servers/{sid}/metadata", {"metadata": {"only": "this"}}, expect=200)
    assert r.json()["metadata"] == {"only": "this"}
    await member.put(f"/servers/{sid}/tags", {"tags": ["x", "y"]}, expect=200)
    await member.put(f"/servers/{sid}/tags/z", expect=201)
    await member.put(f"/servers/{sid}/tags/z", expect=204)
    await member.get(f"/servers/{sid}/tags/z", expect=204)
    assert (await member.get(f"/servers/{sid}/tags", expect=200)).json()["tags"] == ["x", "y", "z"]
    await member.delete(f"/servers/{sid}/tags/x", expect=204)
    assert_fault(await member.delete(f"/servers/{sid}/tags/x"), 404)
    await member.delete(f"/servers/{sid}/tags", expect=204)
    assert (await member.get(f"/servers/{sid}/tags", expect=200)).json()["tags"] == []
    assert_fault(await member.at("2.25").get(f"/servers/{sid}/tags"), 404)


async def test_actions_state_checks_and_locks(w: ComputeWorld) -> None:
    member = w["member"]
    sid = (await boot(w, networks="none"))["id"]
    await member.action(sid, "os-stop", expect=202)
    server = await wait_for(member, sid, "SHUTOFF")
    assert server["OS-EXT-STS:power_state"] == 4
    message = assert_fault(await member.action(sid, "os-stop"), 409, "conflictingRequest")
    assert message == f"Cannot 'stop' instance {sid} while it is in vm_state stopped"
    assert_fault(await member.action(sid, "pause"), 409, contains="while it is in vm_state stopped")
    await member.action(sid, "os-start", expect=202)
    await wait_for(member, sid, "ACTIVE")
    await member.action(sid, "reboot", {"type": "HARD"}, expect=202)
    await wait_for(member, sid, "ACTIVE")
    assert_fault(await member.action(sid, "reboot", {"type": "sideways"}), 400)
    assert_fault(await member.action(sid, "no-such-action", {}), 400, contains="There is no such action")
    # lock: the owner's actions and delete are refused, the admin's pass
    await member.action(sid, "lock", {"locked_reason": "maintenance"}, expect=202)
    shown = (await member.get(f"/servers/{sid}", expect=200)).json()["server"]
    assert shown["locked"] is True and shown["locked_reason"] == "maintenance"
    assert_fault(await member.action(sid, "os-stop"), 409, contains=f"Instance {sid} is locked")
    assert_fault(await member.delete(f"/servers/{sid}"), 409, contains="is locked")
    locked = (await member.get("/servers", params={"locked": "true"}, expect=200)).json()["servers"]
    assert sid in {s["id"] for s in locked}
    await member.action(sid, "unlock", expect=202)
    await member.action(sid, "pause", expect=202)
    await wait_for(member, sid, "PAUSED")
    await member.action(sid, "unpause", expect=202)
    await wait_for(member, sid, "ACTIVE")
    names = [a["action"] for a in (await member.get(f"/servers/{sid}/os-instance-actions",
                                                    expect=200)).json()["instanceActions"]]
    assert names == ["unpause", "pause", "unlock", "lock", "reboot", "start", "stop", "create"]
    # admin-only actions
    assert_fault(await member.action(sid, "os-resetState", {"state": "error"}), 403)
    await w.admin.action(sid, "os-resetState", {"state": "error"}, expect=202)
    assert (await member.get(f"/servers/{sid}", expect=200)).json()["server"]["status"] == "ERROR"
    await member.delete(f"/servers/{sid}", expect=204)
    await wait_for(member, sid, "DELETED")
    assert_fault(await member.get(f"/servers/{sid}"), 404)
    deleted = (await w.admin.get("/servers/detail", params={"deleted": "true", "all_tenants": "1",
                                                            "uuid": sid}, expect=200)).json()["servers"]
    assert [s["status"] for s in deleted] == ["DELETED"]


async def test_multiple_create_and_reservation(w: ComputeWorld) -> None:
    member = w["member"]
    stem = uniq("multi")
    r = await member.post("/servers", server_body(w, name=stem, networks="none", min_count=2, max_count=2,
                                                  return_reservation_id=True), expect=202)
    reservation = r.json()["reservation_id"]
    assert reservation.startswith("r-")
    listed = (await member.get("/servers", params={"reservation_id": reservation}, expect=200)).json()["servers"]
    assert sorted(s["name"] for s in listed) == [f"{stem}-1", f"{stem}-2"]
    for s in listed:
        await wait_for(member, s["id"], "ACTIVE")
        await member.delete(f"/servers/{s['id']}", expect=204)
