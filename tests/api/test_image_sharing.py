"""Who sees and changes which image: visibility (public, private, shared, community), members
and their accept/reject, and Glance's secure-RBAC defaults (a reader cannot write).

Callers: ``member`` and ``reader`` of project A, ``other`` (member of B), ``third`` (member of C)
and the cloud ``admin``.
"""

from __future__ import annotations

from tests.api.test_image_common import assert_fault, uniq, world  # noqa: F401


async def test_private_image_is_invisible_to_other_projects(world):
    owner, other = world["member"], world["other"]
    image = await owner.active(b"secret", visibility="private")
    url = f"/v2/images/{image['id']}"
    for path in (url, url + "/file", url + "/members", url + "/tasks"):
        assert_fault(await other.get(path), 404)
    assert_fault(await other.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}]), 404)
    assert_fault(await other.delete(url), 404)
    assert_fault(await other.put(url + "/tags/x"), 404)
    assert_fault(await other.post(url + "/actions/deactivate"), 404)
    assert image["id"] not in await other.list_ids(limit=1000)
    assert image["id"] not in await other.list_ids(visibility="all", limit=1000)
    # the reader of the owning project sees it; the admin sees everything
    assert (await world["reader"].show(image["id"]))["id"] == image["id"]
    assert image["id"] in await world.admin.list_ids(limit=1000, owner=world.projects["a"])


async def test_reader_cannot_write(world):
    owner, reader = world["member"], world["reader"]
    image = await owner.create()
    url = f"/v2/images/{image['id']}"
    assert_fault(await reader.post("/v2/images", {"name": "nope"}), 403)
    assert_fault(await reader.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}]), 403)
    assert_fault(await reader.upload(image["id"], b"data", expect=None), 403)
    assert_fault(await reader.stage(image["id"], b"data", expect=None), 403)
    assert_fault(await reader.put(url + "/tags/x"), 403)
    assert_fault(await reader.delete(url), 403)
    assert_fault(await reader.post(url + "/members", {"member": world.projects["b"]}), 403)
    assert_fault(await reader.post(url + "/import", {"method": {"name": "glance-direct"}}), 403)
    assert (await owner.show(image["id"]))["status"] == "queued"
    # reading metadata is fine; downloading data takes the member role (Glance's download_image)
    assert image["id"] in await reader.list_ids(limit=1000)
    assert (await reader.show(image["id"]))["id"] == image["id"]
    assert_fault(await reader.get(url + "/file"), 403)


async def test_shared_image_only_for_accepted_members(world):
    owner, other, third = world["member"], world["other"], world["third"]
    image = await owner.active(b"shared data")
    iid, url = image["id"], f"/v2/images/{image['id']}"
    b = world.projects["b"]
    # not a member yet: invisible
    assert_fault(await other.get(url), 404)
    member = (await owner.post(url + "/members", {"member": b}, expect=200)).json()
    assert member == {"created_at": member["created_at"], "image_id": iid, "member_id": b,
                      "schema": "/v2/schemas/member", "status": "pending", "updated_at": member["updated_at"]}
    assert_fault(await owner.post(url + "/members", {"member": b}), 409)
    # pending: the member may see it by id, but it is not in its default list
    assert (await other.show(iid))["id"] == iid
    assert iid not in await other.list_ids(limit=1000)
    assert iid in await other.list_ids(member_status="pending", limit=1000)
    assert iid in await other.list_ids(member_status="all", visibility="shared", limit=1000)
    # only the member decides its status; the owner cannot accept for it
    assert_fault(await owner.put(url + f"/members/{b}", {"status": "accepted"}), 403)
    assert_fault(await other.put(url + f"/members/{b}", {"status": "maybe"}), 400)
    assert_fault(await other.put(url + f"/members/{b}", {}), 400)
    accepted = (await other.put(url + f"/members/{b}", {"status": "accepted"}, expect=200)).json()
    assert accepted["status"] == "accepted"
    assert iid in await other.list_ids(limit=1000)
    assert iid not in await other.list_ids(member_status="pending", limit=1000)
    assert (await other.get(url + "/file", expect=200)).content == b"shared data"
    # a member sees only its own membership; the owner sees all; others see nothing
    await owner.post(url + "/members", {"member": world.projects["c"]}, expect=200)
    assert [m["member_id"] for m in (await other.get(url + "/members", expect=200)).json()["members"]] == [b]
    assert len((await owner.get(url + "/members", expect=200)).json()["members"]) == 2
    assert (await third.get(url + f"/members/{world.projects['c']}", expect=200)).json()["status"] == "pending"
    assert_fault(await third.get(url + f"/members/{b}"), 404)
    # a member cannot change or share the image
    assert_fault(await other.patch(iid, [{"op": "replace", "path": "/name", "value": "mine"}]), 403)
    assert_fault(await other.post(url + "/members", {"member": world.projects["c"]}), 403)
    assert_fault(await other.delete(url + f"/members/{world.projects['c']}"), 403)
    assert_fault(await other.delete(url), 403)
    # rejected: gone from the list again
    await other.put(url + f"/members/{b}", {"status": "rejected"}, expect=200)
    assert iid not in await other.list_ids(limit=1000)
    assert iid in await other.list_ids(member_status="rejected", limit=1000)
    # removed: invisible
    await owner.delete(url + f"/members/{b}", expect=204)
    assert_fault(await other.get(url), 404)
    assert_fault(await owner.delete(url + f"/members/{b}"), 404)


async def test_only_shared_images_have_members(world):
    owner = world["member"]
    for visibility in ("private", "community"):
        image = await owner.create(visibility=visibility)
        assert_fault(await owner.post(f"/v2/images/{image['id']}/members", {"member": world.projects["b"]}), 403)
    image = await owner.create()
    for body in ({}, {"member": ""}, {"member": 5}, ["x"]):
        assert_fault(await owner.post(f"/v2/images/{image['id']}/members", body), 400)
    # making a shared image private hides it from its members again
    await owner.post(f"/v2/images/{image['id']}/members", {"member": world.projects["b"]}, expect=200)
    await world["other"].put(f"/v2/images/{image['id']}/members/{world.projects['b']}", {"status": "accepted"},
                             expect=200)
    assert (await world["other"].show(image["id"]))["id"] == image["id"]
    await owner.patch(image["id"], [{"op": "replace", "path": "/visibility", "value": "private"}], expect=200)
    assert_fault(await world["other"].get(f"/v2/images/{image['id']}"), 404)


async def test_community_image_is_visible_but_not_editable(world):
    owner, other = world["member"], world["other"]
    image = await owner.active(b"community", visibility="community")
    iid, url = image["id"], f"/v2/images/{image['id']}"
    assert (await other.show(iid))["visibility"] == "community"
    assert (await other.get(url + "/file", expect=200)).content == b"community"
    # not in the default list of others, but listed with visibility=community (and all)
    assert iid not in await other.list_ids(limit=1000)
    assert iid in await other.list_ids(visibility="community", limit=1000)
    assert iid in await other.list_ids(visibility="all", limit=1000)
    assert iid in await owner.list_ids(limit=1000)  # the owner sees its own in the default list
    assert_fault(await other.patch(iid, [{"op": "replace", "path": "/name", "value": "taken"}]), 403)
    assert_fault(await other.delete(url), 403)
    assert_fault(await other.put(url + "/tags/mine"), 403)
    assert_fault(await other.post(url + "/actions/deactivate"), 403)
    assert (await owner.show(iid))["name"] == image["name"]


async def test_public_image_is_everyones_to_read_and_admins_to_change(world):
    image = await world.admin.active(b"public", visibility="public", name=uniq("pub"))
    for who in ("member", "reader", "other", "third"):
        g = world[who]
        assert image["id"] in await g.list_ids(name=image["name"])
        assert_fault(await g.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}]), 403)
    assert (await world["other"].get(f"/v2/images/{image['id']}/file", expect=200)).content == b"public"
    # the owner cannot make its own image public; the admin can
    mine = await world["member"].create()
    assert_fault(await world["member"].patch(mine["id"], [{"op": "replace", "path": "/visibility",
                                                           "value": "public"}]), 403)
    await world.admin.patch(mine["id"], [{"op": "replace", "path": "/visibility", "value": "public"}], expect=200)
    assert mine["id"] in await world["other"].list_ids(visibility="public", limit=1000)
