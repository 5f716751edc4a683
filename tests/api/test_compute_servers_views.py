"""What Nova answers, exactly, where clients (Tempest's response schemas, novaclient) check it:
the smaller body of PUT /servers/{id} and rebuild before 2.75 and the whole one from 2.75,
``server_groups`` from 2.71, access IPs in their normal form, the ``x-compute-request-id``
header, the status codes of confirmResize (204), rescue and evacuate (200), and Nova's image
proxy (``/images`` up to 2.35) over the image service: a createImage snapshot read, its
metadata changed and deleted through it. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, assert_fault, boot_server, compute_world, uniq, wait_for


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


boot = boot_server


# the keys of Nova's update/rebuild body before 2.75 (views/servers.py show() with the extras off)
SMALL = {"id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor", "created",
         "updated", "addresses", "accessIPv4", "accessIPv6", "links", "OS-DCF:diskConfig", "progress"}


async def test_update_and_rebuild_bodies_per_microversion(w: ComputeWorld) -> None:
    member = w["member"]
    sid = await boot(w)
    old = (await member.at("2.1").put(f"/servers/{sid}", {"server": {"name": "renamed"}}, expect=200)).json()
    assert set(old["server"]) == SMALL, set(old["server"]) ^ SMALL
    for entries in old["server"]["addresses"].values():
        assert all(set(a) == {"version", "addr"} for a in entries)
    at74 = (await member.at("2.74").put(f"/servers/{sid}", {"server": {"name": "again"}}, expect=200)).json()
    assert set(at74["server"]) == SMALL | {"locked", "description", "tags", "trusted_image_certificates",
                                          "locked_reason", "server_groups"}
    assert at74["server"]["server_groups"] == []
    full = (await member.at("2.75").put(f"/servers/{sid}", {"server": {"name": "third"}}, expect=200)).json()
    shown = (await member.at("2.75").get(f"/servers/{sid}", expect=200)).json()
    assert set(full["server"]) == set(shown["server"]) and "OS-EXT-STS:vm_state" in full["server"]
    assert shown["server"]["server_groups"] == []
    # the list's detail has no server_groups (Nova shows them for one server only)
    listed = (await member.at("2.75").get("/servers/detail", params={"uuid": sid}, expect=200)).json()
    assert all("server_groups" not in s for s in listed["servers"])
    # rebuild: 202, the small body plus adminPass (and key_name from 2.54, user_data from 2.57)
    r = await member.at("2.1").action(sid, "rebuild", {"imageRef": w.image_id}, expect=202)
    assert set(r.json()["server"]) == SMALL | {"adminPass"}
    await wait_for(member, sid, "ACTIVE")
    r = await member.at("2.57").action(sid, "rebuild", {"imageRef": w.image_id}, expect=202)
    keys = set(r.json()["server"])
    assert {"key_name", "user_data", "adminPass"} <= keys and "OS-EXT-STS:vm_state" not in keys
    await wait_for(member, sid, "ACTIVE")
    r = await w.admin.at("2.75").action(sid, "rebuild", {"imageRef": w.image_id}, expect=202)
    body = r.json()["server"]
    assert "user_data" in body and "OS-EXT-SRV-ATTR:user_data" not in body and "OS-EXT-SRV-ATTR:host" in body
    await wait_for(member, sid, "ACTIVE")


async def test_server_groups_shown_from_2_71(w: ComputeWorld) -> None:
    member = w["member"]
    group = (await member.at("2.64").post("/os-server-groups", {"server_group": {
        "name": uniq("g"), "policy": "anti-affinity"}}, expect=200)).json()["server_group"]
    body = {"server": {"name": uniq("vm"), "flavorRef": w.flavor_id, "imageRef": w.image_id, "networks": "none"},
            "os:scheduler_hints": {"group": group["id"]}}
    sid = (await member.post("/servers", body, expect=202)).json()["server"]["id"]
    await wait_for(member, sid, "ACTIVE")
    assert (await member.at("2.71").get(f"/servers/{sid}", expect=200)).json()["server"]["server_groups"] == \
        [group["id"]]
    assert "server_groups" not in (await member.at("2.70").get(f"/servers/{sid}", expect=200)).json()["server"]


async def test_access_ips_in_normal_form_and_request_id_header(w: ComputeWorld) -> None:
    member = w["member"]
    r = await member.post("/servers", {"server": {
        "name": uniq("vm"), "flavorRef": w.flavor_id, "imageRef": w.image_id, "networks": "none",
        "accessIPv4": "1.1.1.1", "accessIPv6": "0000:0000:0000:0000:0000:babe:220.12.22.2"}}, expect=202)
    # Nova sends its request id twice; the create's action carries it
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]
    sid = r.json()["server"]["id"]
    server = await wait_for(member, sid, "ACTIVE")
    assert server["accessIPv6"] == "::babe:dc0c:1602" and server["accessIPv4"] == "1.1.1.1"
    action = (await member.get(f"/servers/{sid}/os-instance-actions/{r.headers['x-compute-request-id']}",
                               expect=200)).json()["instanceAction"]
    assert action["action"] == "create"
    updated = (await member.put(f"/servers/{sid}", {"server": {"accessIPv6": "2001:DB8:0:0:0:0:0:1",
                                                               "accessIPv4": ""}}, expect=200)).json()["server"]
    assert updated["accessIPv6"] == "2001:db8::1" and updated["accessIPv4"] == ""
    assert_fault(await member.put(f"/servers/{sid}", {"server": {"accessIPv6": "not-an-ip"}}), 400)
    # errors carry the header too
    r = await member.get("/servers/6b8a2b0f-1a2b-4c3d-9e8f-000000000000")
    assert r.status_code == 404 and r.headers["x-compute-request-id"].startswith("req-")


async def test_action_status_codes(w: ComputeWorld) -> None:
    member = w["member"]
    sid = await boot(w, networks="none")
    r = await member.action(sid, "rescue", None, expect=200)
    assert r.json()["adminPass"]
    await wait_for(member, sid, "RESCUE")
    await member.action(sid, "unrescue", None, expect=202)
    await wait_for(member, sid, "ACTIVE")
    flavor = (await w.admin.post("/flavors", {"flavor": {"name": uniq("f"), "vcpus": 1, "ram": 512, "disk": 2}},
                                 expect=200)).json()["flavor"]["id"]
    await member.action(sid, "resize", {"flavorRef": flavor}, expect=202)
    await wait_for(member, sid, "VERIFY_RESIZE")
    r = await member.action(sid, "confirmResize", None, expect=204)
    assert r.content == b""
    server = await wait_for(member, sid, "ACTIVE")
    assert server["flavor"]["disk"] == 2


async def test_image_proxy_until_2_35(w: ComputeWorld) -> None:
    member = w["member"].at("2.1")
    sid = await boot(w, networks="none")
    r = await member.action(sid, "createImage", {"name": uniq("snap"), "metadata": {"image_type": "test"}},
                            expect=202)
    image_id = r.headers["location"].rsplit("/", 1)[-1]
    await wait_for(w["member"], sid, "ACTIVE")
    image = (await member.get(f"/images/{image_id}", expect=200)).json()["image"]
    assert image["status"] in ("SAVING", "ACTIVE") and image["metadata"]["image_type"] == "test"
    assert image["server"]["id"] == sid and image["metadata"]["instance_uuid"] == sid
    assert {"minRam", "minDisk", "progress", "created", "updated", "OS-EXT-IMG-SIZE:size"} <= set(image)
    assert [link["rel"] for link in image["links"]] == ["self", "bookmark", "alternate"]
    # the source image through the proxy: ACTIVE, 100 %
    source = (await member.get(f"/images/{w.image_id}", expect=200)).json()["image"]
    assert source["status"] == "ACTIVE" and source["progress"] == 100 and "server" not in source
    listed = (await member.get("/images", params={"server": sid}, expect=200)).json()["images"]
    assert [i["id"] for i in listed] == [image_id]
    detail = (await member.get("/images/detail", params={"limit": 1}, expect=200)).json()
    assert len(detail["images"]) == 1 and detail["images_links"][0]["rel"] == "next"
    # metadata
    meta = (await member.post(f"/images/{image_id}/metadata", {"metadata": {"k1": "v1"}}, expect=200)).json()
    assert meta["metadata"]["k1"] == "v1" and meta["metadata"]["image_type"] == "test"
    await member.put(f"/images/{image_id}/metadata/k2", {"meta": {"k2": "v2"}}, expect=200)
    assert (await member.get(f"/images/{image_id}/metadata/k2", expect=200)).json() == {"meta": {"k2": "v2"}}
    await member.delete(f"/images/{image_id}/metadata/k2", expect=204)
    assert_fault(await member.get(f"/images/{image_id}/metadata/k2"), 404)
    replaced = (await member.put(f"/images/{image_id}/metadata", {"metadata": {"only": "x"}}, expect=200)).json()
    assert replaced["metadata"] == {"only": "x"}
    # another project neither sees it nor changes the public source image
    assert_fault(await w["other"].at("2.1").get(f"/images/{image_id}"), 404)
    assert_fault(await w["other"].at("2.1").delete(f"/images/{w.image_id}"), 403)
    await member.delete(f"/images/{image_id}", expect=204)
    assert_fault(await member.get(f"/images/{image_id}"), 404)
    # gone from 2.36, as Nova's proxies
    assert_fault(await w["member"].at("2.36").get(f"/images/{w.image_id}"), 404)


async def test_security_group_proxy_and_server_groups(w: ComputeWorld) -> None:
    member = w["member"].at("2.1")
    name = uniq("sg")
    group = (await member.post("/os-security-groups", {"security_group": {"name": name, "description": "d"}},
                               expect=200)).json()["security_group"]
    assert group["tenant_id"] == w.projects["a"] and group["rules"] == []
    gid = group["id"]
    rule = (await member.post("/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}},
        expect=200)).json()["security_group_rule"]
    assert rule["ip_range"] == {"cidr": "10.0.0.0/8"} and rule["from_port"] == 22 and rule["group"] == {}
    icmp = (await member.post("/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "icmp", "group_id": gid}}, expect=200)).json()["security_group_rule"]
    assert (icmp["from_port"], icmp["to_port"]) == (-1, -1) and icmp["group"] == {"name": name,
                                                                                   "tenant_id": w.projects["a"]}
    # Nova's checks before Neutron's
    for bad, text in (({"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}, "already exists"),
                      ({"ip_protocol": "tcp", "from_port": 30, "to_port": 20}, "cannot be greater"),
                      ({"ip_protocol": "tcp", "from_port": 0, "to_port": 20}, "between 1-65535"),
                      ({"ip_protocol": "gre", "from_port": 1, "to_port": 2}, "Invalid IP protocol"),
                      ({"ip_protocol": "tcp", "from_port": "x", "to_port": 2}, "must be integers"),
                      ({"cidr": "10.0.0.0/8"}, "Not enough parameters")):
        assert_fault(await member.post("/os-security-group-rules", {"security_group_rule": {
            "parent_group_id": gid, **bad}}), 400, contains=text)
    assert_fault(await member.post("/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": "6b8a2b0f-1a2b-4c3d-9e8f-000000000000", "ip_protocol": "tcp", "from_port": 1,
        "to_port": 2}}), 404)
    shown = (await member.get(f"/os-security-groups/{gid}", expect=200)).json()["security_group"]
    assert {r["id"] for r in shown["rules"]} == {rule["id"], icmp["id"]}
    listed = (await member.get("/os-security-groups", expect=200)).json()["security_groups"]
    assert {"default", name} <= {g["name"] for g in listed}
    assert name not in {g["name"] for g in (await w["other"].at("2.1").get("/os-security-groups",
                                                                          expect=200)).json()["security_groups"]}
    assert_fault(await w["other"].at("2.1").get(f"/os-security-groups/{gid}"), 404)
    assert_fault(await member.get("/os-security-groups/not-a-uuid"), 400)
    renamed = (await member.put(f"/os-security-groups/{gid}", {"security_group": {"name": name + "x",
                                                                                 "description": "e"}},
                                expect=200)).json()["security_group"]
    assert renamed["name"] == name + "x" and renamed["description"] == "e"
    await member.delete(f"/os-security-group-rules/{rule['id']}", expect=202)
    # a server's groups: those of its ports
    sid = await boot(w, security_groups=[{"name": name + "x"}])
    groups = (await w["member"].get(f"/servers/{sid}/os-security-groups", expect=200)).json()["security_groups"]
    assert [g["name"] for g in groups] == [name + "x"] and groups[0]["rules"][0]["id"] == icmp["id"]
    assert_fault(await w["other"].get(f"/servers/{sid}/os-security-groups"), 404)
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await wait_for(w["member"], sid, "DELETED")
    await member.delete(f"/os-security-groups/{gid}", expect=202)
    assert_fault(await member.get(f"/os-security-groups/{gid}"), 404)
    assert_fault(await w["member"].at("2.36").get("/os-security-groups"), 404)
