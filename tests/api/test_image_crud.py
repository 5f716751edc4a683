"""Images as a user sees them through Glance v2: create, show, list (filters, sorting, pages),
update with JSON patch, tags, protection, deactivation, deletion, and the data itself
(upload, download with ranges, checksums, virtual size)."""

from __future__ import annotations

import asyncio
import hashlib

from tests.api.test_image_common import PATCH, assert_fault, qcow2_header, random_bytes, uniq, world  # noqa: F401


async def test_create_show_delete(world):
    g = world["member"]
    r = await g.post("/v2/images", {"name": "cirros", "disk_format": "qcow2", "container_format": "bare",
                                    "min_ram": 64, "tags": ["a", "b", "a"], "os_distro": "cirros",
                                    "visibility": "private"}, expect=201)
    image = r.json()
    assert r.headers["location"] == f"/v2/images/{image['id']}"
    assert r.headers["openstack-image-import-methods"] == "glance-direct,web-download"
    assert r.headers["openstack-image-store-ids"] == "file"
    assert image["status"] == "queued" and image["visibility"] == "private" and image["owner"] == g.project_id
    assert image["tags"] == ["a", "b"] and image["os_distro"] == "cirros" and image["min_ram"] == 64
    assert image["size"] is None and image["checksum"] is None and image["virtual_size"] is None
    assert image["self"] == f"/v2/images/{image['id']}" and image["file"] == image["self"] + "/file"
    assert image["schema"] == "/v2/schemas/image" and image["created_at"].endswith("Z")
    assert "stores" not in image
    assert await g.show(image["id"]) == image
    await g.delete(f"/v2/images/{image['id']}", expect=204)
    assert_fault(await g.get(f"/v2/images/{image['id']}"), 404)
    assert_fault(await g.delete(f"/v2/images/{image['id']}"), 404)


async def test_create_defaults_and_explicit_id(world):
    g = world["member"]
    image_id = "6f1a3c2e-1b2c-4d5e-8f90-123456789abc".replace("6f1a", uniq("")[1:5])
    image = await g.create(id=image_id)
    assert image["id"] == image_id and image["visibility"] == "shared" and image["protected"] is False
    assert image["os_hidden"] is False and image["min_disk"] == 0
    assert_fault(await g.post("/v2/images", {"id": image_id}), 409)


async def test_create_refuses_bad_input(world):
    g = world["member"]
    for body, code in [
        ({"name": 5}, 400), ({"disk_format": "floppy"}, 400), ({"container_format": "zip"}, 400),
        ({"visibility": "everyone"}, 400), ({"min_ram": -1}, 400), ({"min_disk": "1"}, 400),
        ({"protected": "yes"}, 400), ({"tags": "a"}, 400), ({"tags": [1]}, 400), ({"id": "nope"}, 400),
        ({"name": "x" * 256}, 400), ({"custom": 1}, 400), ({"x" * 256: "v"}, 400),
        ({"status": "active"}, 403), ({"checksum": "x"}, 403), ({"size": 1}, 403), ({"self": "x"}, 403),
        ({"location": "file:///etc/passwd"}, 403), ({"os_glance_import_task": "x"}, 403),
        ({"deleted": "1"}, 403), (["not", "an", "object"], 400),
    ]:
        assert_fault(await g.post("/v2/images", body), code)
    assert_fault(await g.request("POST", "/v2/images", content=b"{nope", headers={"Content-Type": "application/json"}),
                 400)
    assert_fault(await g.request("POST", "/v2/images", content=b""), 400)
    assert_fault(await g.post("/v2/images", {"name": "a\u0000b"}), 400)


async def test_only_admin_publicizes_and_owner_is_own(world):
    g = world["member"]
    assert_fault(await g.post("/v2/images", {"visibility": "public"}), 403)
    assert_fault(await g.post("/v2/images", {"owner": world.projects["b"]}), 403)
    assert (await g.create(visibility="community"))["visibility"] == "community"
    public = await world.admin.create(visibility="public", owner=world.projects["b"])
    assert public["owner"] == world.projects["b"]


async def test_patch_properties_and_base_fields(world):
    g = world["member"]
    image = await g.create(os_distro="ubuntu")
    ops = [{"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
           {"op": "replace", "path": "/name", "value": "renamed"},
           {"op": "replace", "path": "/os_distro", "value": "debian"},
           {"op": "replace", "path": "/min_disk", "value": 3},
           {"op": "add", "path": "/tags", "value": ["x", "y"]},
           {"op": "add", "path": "/a~1b~0c", "value": "escaped"}]
    patched = (await g.patch(image["id"], ops, expect=200)).json()
    assert patched["hw_disk_bus"] == "scsi" and patched["name"] == "renamed" and patched["os_distro"] == "debian"
    assert patched["min_disk"] == 3 and patched["tags"] == ["x", "y"] and patched["a/b~c"] == "escaped"
    assert patched["updated_at"] >= image["updated_at"]
    patched = (await g.patch(image["id"], [{"op": "remove", "path": "/hw_disk_bus"}], expect=200)).json()
    assert "hw_disk_bus" not in patched
    # the v2.0 (draft 4) patch form still works
    v20 = "application/openstack-images-v2.0-json-patch"
    patched = (await g.patch(image["id"], [{"replace": "/name", "value": "v20"}], content_type=v20, expect=200)).json()
    assert patched["name"] == "v20"
    assert (await g.show(image["id"]))["name"] == "v20"
    assert_fault(await g.patch(image["id"], [{"add": "/os_distro", "value": "x"}], content_type=v20), 409)
    # formats change only while there is no data
    active = await g.active(b"data")
    assert_fault(await g.patch(active["id"], [{"op": "replace", "path": "/disk_format", "value": "qcow2"}]), 403)
    await g.patch(active["id"], [{"op": "replace", "path": "/disk_format", "value": "raw"}], expect=200)


async def test_patch_refuses_what_glance_refuses(world):
    g = world["member"]
    image = await g.create()
    iid = image["id"]
    for ops, code in [
        ({"op": "add"}, 400),  # not a list
        (["add"], 400),  # not objects
        ([{"path": "/name", "value": "x"}], 400),  # no op
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),  # unknown op
        ([{"op": "test", "path": "/name", "value": "x"}], 400),
        ([{"op": "add", "value": "x"}], 400),  # no path
        ([{"op": "add", "path": "name", "value": "x"}], 400),  # no leading /
        ([{"op": "add", "path": "/a//b", "value": "x"}], 400),
        ([{"op": "add", "path": "/a/b", "value": "x"}], 400),  # nested
        ([{"op": "add", "path": "/a~2", "value": "x"}], 400),  # bad escape
        ([{"op": "add", "path": "/name"}], 400),  # no value
        ([{"op": "replace", "path": "/name", "value": 7}], 400),  # wrong type
        ([{"op": "replace", "path": "/min_ram", "value": "big"}], 400),
        ([{"op": "replace", "path": "/visibility", "value": "nobody"}], 400),
        ([{"op": "add", "path": "/custom", "value": 1}], 400),  # properties are strings
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),  # read-only
        ([{"op": "replace", "path": "/checksum", "value": "x"}], 403),
        ([{"op": "replace", "path": "/id", "value": "x"}], 403),
        ([{"op": "add", "path": "/os_glance_import_task", "value": "x"}], 403),  # reserved
        ([{"op": "add", "path": "/deleted", "value": "x"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),  # base properties are not removed
        ([{"op": "remove", "path": "/nope"}], 409),  # nothing to remove
        ([{"op": "replace", "path": "/nope", "value": "x"}], 409),
        ([{"op": "replace", "path": "/owner", "value": world.projects["b"]}], 403),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
    ]:
        assert_fault(await g.patch(iid, ops), code)
    assert_fault(await g.patch(iid, [], content_type="application/json"), 415)
    r = await g.patch(iid, [], content_type="application/json")
    assert "application/openstack-images-v2.1-json-patch" in r.headers["accept-patch"]
    assert_fault(await g.request("PATCH", f"/v2/images/{iid}", content=b"[{", headers={"Content-Type": PATCH}), 400)
    # nothing of a refused patch was applied
    assert await g.show(iid) == image


async def test_tags(world):
    g = world["member"]
    image = await g.create()
    await g.put(f"/v2/images/{image['id']}/tags/blue", expect=204)
    await g.put(f"/v2/images/{image['id']}/tags/blue", expect=204)  # idempotent
    await g.put(f"/v2/images/{image['id']}/tags/red%20one", expect=204)
    assert sorted((await g.show(image["id"]))["tags"]) == ["blue", "red one"]
    await g.delete(f"/v2/images/{image['id']}/tags/blue", expect=204)
    assert_fault(await g.delete(f"/v2/images/{image['id']}/tags/blue"), 404)
    assert_fault(await g.put(f"/v2/images/{image['id']}/tags/{'t' * 256}"), 400)
    assert_fault(await g.put("/v2/images/00000000-0000-0000-0000-000000000000/tags/x"), 404)
    assert (await g.show(image["id"]))["tags"] == ["red one"]


async def test_protected_images_are_not_deleted(world):
    g = world["member"]
    image = await g.create(protected=True)
    assert_fault(await g.delete(f"/v2/images/{image['id']}"), 403)
    await g.patch(image["id"], [{"op": "replace", "path": "/protected", "value": False}], expect=200)
    await g.delete(f"/v2/images/{image['id']}", expect=204)


async def test_upload_download_and_hashes(world, cloud):
    g = world["member"]
    data = random_bytes(3 * 1024 * 1024 + 17)
    image = await g.create()
    await g.upload(image["id"], data)
    shown = await g.show(image["id"])
    assert shown["status"] == "active" and shown["size"] == len(data) and shown["virtual_size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512" and shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["stores"] == "file"
    r = await g.get(f"/v2/images/{image['id']}/file", expect=200)
    assert r.content == data and r.headers["content-md5"] == shown["checksum"]
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-length"] == str(len(data))
    # a second upload is a conflict: the data of an image never changes
    assert_fault(await g.upload(image["id"], b"other", expect=None), 409)


async def test_ranged_downloads(world):
    g = world["member"]
    data = bytes(range(256)) * 40
    image = await g.active(data)
    url = f"/v2/images/{image['id']}/file"
    for spec, part in [("bytes=0-9", data[:10]), ("bytes=100-", data[100:]), ("bytes=-5", data[-5:]),
                       ("bytes=10000-20000", data[10000:])]:
        r = await g.get(url, headers={"Range": spec}, expect=206)
        assert r.content == part, spec
        first = len(data) - len(part) if spec.startswith("bytes=-") else int(spec[6:].split("-")[0])
        assert r.headers["content-range"] == f"bytes {first}-{first + len(part) - 1}/{len(data)}"
    for spec in ("bytes=20000-", "bytes=5-2", "bytes=-0"):
        r = await g.get(url, headers={"Range": spec})
        assert_fault(r, 416)
        assert r.headers["content-range"] == f"bytes */{len(data)}"
    assert_fault(await g.get(url, headers={"Range": "pages=1-2"}), 400)


async def test_download_of_an_image_without_data_is_empty(world):
    g = world["member"]
    image = await g.create()
    r = await g.get(f"/v2/images/{image['id']}/file", expect=204)
    assert r.content == b""


async def test_upload_needs_formats_and_octet_stream(world):
    g = world["member"]
    image = (await g.post("/v2/images", {"name": "bare"}, expect=201)).json()
    assert_fault(await g.upload(image["id"], b"data", expect=None), 400)
    image = await g.create()
    r = await g.request("PUT", f"/v2/images/{image['id']}/file", content=b"x",
                        headers={"Content-Type": "application/json"})
    assert_fault(r, 415)
    assert (await g.show(image["id"]))["status"] == "queued"
    body = assert_fault(await g.upload(image["id"], b"x", expect=None, **{"X-Image-Meta-Store": "nowhere"}), 400)
    assert "nowhere" in body["message"]
    await g.upload(image["id"], b"x", **{"X-Image-Meta-Store": "file"})
    assert (await g.show(image["id"]))["stores"] == "file"


async def test_virtual_size_from_headers(world):
    g = world["member"]
    image = await g.create(disk_format="qcow2")
    await g.upload(image["id"], qcow2_header(size=5 << 30))
    shown = await g.show(image["id"])
    assert shown["virtual_size"] == 5 << 30 and shown["size"] == len(qcow2_header(size=5 << 30))
    # raw accepts anything, and its virtual size is its size
    image = await g.active(qcow2_header(), disk_format="raw")
    assert image["virtual_size"] == image["size"]
    # formats nobody inspects have none
    image = await g.active(b"kernel", disk_format="aki", container_format="aki")
    assert image["virtual_size"] is None


async def test_deactivate_and_reactivate(world):
    g = world["member"]
    image = await g.active(b"payload")
    url = f"/v2/images/{image['id']}"
    await g.post(url + "/actions/deactivate", expect=204)
    await g.post(url + "/actions/deactivate", expect=204)
    assert (await g.show(image["id"]))["status"] == "deactivated"
    assert_fault(await g.get(url + "/file"), 403)
    assert (await world.admin.get(url + "/file", expect=200)).content == b"payload"
    assert_fault(await world["reader"].post(url + "/actions/reactivate"), 403)
    await g.post(url + "/actions/reactivate", expect=204)
    assert (await g.get(url + "/file", expect=200)).content == b"payload"
    queued = await g.create()
    assert_fault(await g.post(f"/v2/images/{queued['id']}/actions/deactivate"), 403)
    assert_fault(await g.post(f"/v2/images/{queued['id']}/actions/reactivate"), 403)
    assert_fault(await g.post(url + "/actions/explode"), 404)


async def test_deleting_an_image_deletes_its_data(world, cloud):
    from tests.api.test_image_common import image_files

    g = world["member"]
    image = await g.active(b"to be deleted")
    assert any(image["id"] in f for f in image_files(cloud))
    await g.delete(f"/v2/images/{image['id']}", expect=204)
    assert not any(image["id"] in f for f in image_files(cloud))


# ---------------------------------------------------------------------- listing


async def _listing_world(g) -> dict[str, dict]:
    tag = uniq("tag")
    made = {
        "small": await g.active(b"s" * 100, name=uniq("small"), tags=[tag], os_distro="alpine"),
        "big": await g.active(b"b" * 5000, name=uniq("big"), tags=[tag, "big"], container_format="ami",
                              disk_format="ami"),
        "queued": await g.create(name=uniq("queued"), tags=[tag], protected=True),
        "hidden": await g.create(name=uniq("hidden"), tags=[tag], os_hidden=True),
    }
    made["tag"] = {"value": tag}
    return made


async def test_list_filters(world):
    g = world["third"]
    w = await _listing_world(g)
    tag = w["tag"]["value"]
    mine = set(await g.list_ids(tag=tag))
    assert mine == {w["small"]["id"], w["big"]["id"], w["queued"]["id"]}  # hidden ones are not listed
    assert await g.list_ids(tag=tag, os_hidden="true") == [w["hidden"]["id"]]
    assert await g.list_ids(name=w["small"]["name"]) == [w["small"]["id"]]
    assert await g.list_ids(tag=tag, status="queued") == [w["queued"]["id"]]
    assert set(await g.list_ids(tag=tag, status="in:queued,active")) == mine
    assert await g.list_ids(tag=[tag, "big"]) == [w["big"]["id"]]
    assert await g.list_ids(tag=tag, size_min=1000) == [w["big"]["id"]]
    assert await g.list_ids(tag=tag, size_max=1000) == [w["small"]["id"]]
    assert await g.list_ids(tag=tag, os_distro="alpine") == [w["small"]["id"]]
    assert await g.list_ids(tag=tag, disk_format="ami") == [w["big"]["id"]]
    assert await g.list_ids(tag=tag, protected="true") == [w["queued"]["id"]]
    assert set(await g.list_ids(tag=tag, owner=g.project_id)) == mine
    assert await g.list_ids(tag=tag, owner=world.projects["a"]) == []
    assert await g.list_ids(tag=tag, visibility="private") == []
    assert set(await g.list_ids(tag=tag, visibility="shared")) == mine
    created = w["small"]["created_at"]
    assert set(await g.list_ids(tag=tag, updated_at=f"gte:{created}")) >= {w["big"]["id"], w["queued"]["id"]}
    assert await g.list_ids(tag=tag, created_at="lt:2000-01-01T00:00:00Z") == []
    for params in ({"size_min": "big"}, {"visibility": "everyone"}, {"member_status": "maybe"},
                   {"os_hidden": "perhaps"}, {"protected": "1"}, {"changes-since": created},
                   {"created_at": "gte:yesterday"}, {"created_at": "near:2020-01-01T00:00:00Z"},
                   {"limit": "x"}, {"limit": "-1"}, {"marker": "00000000-0000-0000-0000-000000000000"},
                   {"sort_key": "owner"}, {"sort_dir": "up"}, {"sort": "name:sideways"},
                   {"sort": "name", "sort_key": "name"}, {"sort_key": ["name", "size"], "sort_dir": ["asc"] * 3}):
        assert_fault(await g.get("/v2/images", params=params), 400)


async def test_list_sorting_and_pages(world):
    g = world["third"]
    tag = uniq("page")
    made = [await g.active(b"x" * (i * 10 + 1), name=f"{tag}-{i}", tags=[tag]) for i in range(5)]
    ids = [m["id"] for m in made]
    assert await g.list_ids(tag=tag) == ids[::-1]  # newest first
    assert await g.list_ids(tag=tag, sort_key="size", sort_dir="asc") == ids
    assert await g.list_ids(tag=tag, sort="name:desc") == ids[::-1]
    assert await g.list_ids(tag=tag, sort="size:asc,name:desc") == ids
    seen, params = [], {"tag": tag, "limit": 2, "sort_key": "name", "sort_dir": "asc"}
    r = await g.get("/v2/images", params=params, expect=200)
    while True:
        body = r.json()
        seen += [i["id"] for i in body["images"]]
        assert body["first"].startswith("/v2/images?") and "marker" not in body["first"]
        if "next" not in body:
            break
        r = await g.get(body["next"], expect=200)
    assert seen == ids


async def test_list_limit_is_capped(world, cloud):
    g = world["third"]
    default = cloud.image.config.limit_param_default
    tag = uniq("many")
    await asyncio.gather(*(g.create(tags=[tag]) for _ in range(default + 2)))
    r = (await g.get("/v2/images", params={"tag": tag}, expect=200)).json()
    assert len(r["images"]) == default and "next" in r
    assert len(await g.list_ids(tag=tag, limit=1000)) == default + 2
