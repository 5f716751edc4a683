"""Volume types through the Cinder API: the __DEFAULT__ type every cloud starts with, create/show/
list/update/delete with Cinder's views per caller, extra specs (user-visible ones for members),
private types and their access lists, project default types (3.62), and Cinder's faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.volume_helpers import VolumeWorld, assert_fault, uniq, volume_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


async def test_default_type_and_views(w: VolumeWorld) -> None:
    default = (await w["member"].get("/types/default", expect=200)).json()["volume_type"]
    assert default["name"] == "__DEFAULT__" and default["description"] == "Default Volume Type"
    assert default["is_public"] is True and default["extra_specs"] == {}
    assert "qos_specs_id" not in default and default["os-volume-type-access:is_public"] is True
    admin_view = (await w.admin.get(f"/types/{default['id']}", expect=200)).json()["volume_type"]
    assert admin_view["qos_specs_id"] is None
    names = [t["name"] for t in (await w["reader"].get("/types", expect=200)).json()["volume_types"]]
    assert "__DEFAULT__" in names
    # the default type cannot go
    r = await w.admin.delete(f"/types/{default['id']}")
    assert_fault(r, 400, contains="is a default volume type and cannot be deleted")


async def test_create_update_delete_with_extra_specs(w: VolumeWorld) -> None:
    name = uniq("type")
    body = {"volume_type": {"name": name, "description": "fast", "extra_specs": {
        "volume_backend_name": "file", "multiattach": "<is> True"}}}
    made = (await w.admin.post("/types", body, expect=200)).json()["volume_type"]
    assert made["name"] == name and made["extra_specs"]["volume_backend_name"] == "file" and made["is_public"]
    # the create response is Cinder's types_manage view (Tempest's schema): no qos_specs_id, the access flag
    assert "qos_specs_id" not in made and made["os-volume-type-access:is_public"] is True
    tid = made["id"]
    # members see only the user-visible specs
    seen = (await w["member"].get(f"/types/{tid}", expect=200)).json()["volume_type"]
    assert seen["extra_specs"] == {"multiattach": "<is> True"}
    assert (await w["member"].get(f"/types/{tid}/extra_specs", expect=200)).json() == {
        "extra_specs": {"multiattach": "<is> True"}}
    # Cinder's conflicts and bad input
    assert_fault(await w.admin.post("/types", body), 409, contains=f"Volume Type {name} already exists.")
    assert_fault(await w.admin.post("/types", {"volume_type": {"description": "x"}}), 400, "badRequest")
    assert_fault(await w.admin.post("/types", {"volume_type": {"name": "x", "bogus": 1}}), 400)
    assert_fault(await w["member"].post("/types", {"volume_type": {"name": uniq("t")}}), 403, "forbidden")
    # extra specs CRUD
    r = await w.admin.post(f"/types/{tid}/extra_specs", {"extra_specs": {"RESKEY:availability_zones": "nova"}},
                           expect=200)
    assert r.json() == {"extra_specs": {"RESKEY:availability_zones": "nova"}}
    assert (await w.admin.get(f"/types/{tid}/extra_specs/volume_backend_name", expect=200)).json() == {
        "volume_backend_name": "file"}
    assert (await w.admin.put(f"/types/{tid}/extra_specs/volume_backend_name", {"volume_backend_name": "rbd"},
                              expect=200)).json() == {"volume_backend_name": "rbd"}
    assert_fault(await w.admin.put(f"/types/{tid}/extra_specs/a", {"b": "1"}), 400,
                 contains="Request body and URI mismatch")
    assert_fault(await w.admin.put(f"/types/{tid}/extra_specs/a", {"a": "1", "b": "2"}), 400,
                 contains="Request body contains too many items")
    assert_fault(await w.admin.post(f"/types/{tid}/extra_specs", {"extra_specs": {"cacheable": "<is> True"}}), 400,
                 contains="cacheable cannot be set with multiattach.")
    await w.admin.delete(f"/types/{tid}/extra_specs/volume_backend_name", expect=202)
    assert_fault(await w.admin.get(f"/types/{tid}/extra_specs/volume_backend_name"), 404,
                 contains=f"Volume Type {tid} has no extra specs with key volume_backend_name.")
    assert_fault(await w.admin.delete(f"/types/{tid}/extra_specs/volume_backend_name"), 404)
    # update
    new_name = uniq("renamed")
    upd = (await w.admin.put(f"/types/{tid}", {"volume_type": {"name": new_name, "description": "slow"}},
                             expect=200)).json()["volume_type"]
    assert (upd["name"], upd["description"]) == (new_name, "slow")
    assert set(upd) == {"id", "name", "is_public", "extra_specs", "description"}
    assert_fault(await w.admin.put(f"/types/{tid}", {"volume_type": {}}), 400,
                 contains="Specify volume type name, description, is_public or a combination thereof.")
    assert_fault(await w.admin.put(f"/types/{tid}", {"volume_type": {"name": "__DEFAULT__"}}), 409)
    # filters and sorting
    listed = (await w.admin.get(f"/types?name={new_name}", expect=200)).json()["volume_types"]
    assert [t["id"] for t in listed] == [tid]
    spec_filter = '{"multiattach": "<is> True"}'
    listed = (await w["member"].at("3.52").get("/types", params={"extra_specs": spec_filter})).json()
    assert tid in [t["id"] for t in listed["volume_types"]]
    assert_fault(await w.admin.get("/types?sort=bogus:asc"), 400)
    await w.admin.delete(f"/types/{tid}", expect=202)
    assert_fault(await w.admin.get(f"/types/{tid}"), 404, "itemNotFound",
                 contains=f"Volume type {tid} could not be found.")
    assert_fault(await w.admin.delete(f"/types/{tid}"), 404)


async def test_private_types_and_access(w: VolumeWorld) -> None:
    body = {"volume_type": {"name": uniq("private"), "os-volume-type-access:is_public": False}}
    tid = (await w.admin.post("/types", body, expect=200)).json()["volume_type"]["id"]
    a, b = w.projects["a"], w.projects["b"]
    assert_fault(await w["member"].get(f"/types/{tid}"), 404)
    assert tid not in [t["id"] for t in (await w["member"].get("/types")).json()["volume_types"]]
    await w.admin.post(f"/types/{tid}/action", {"addProjectAccess": {"project": a}}, expect=202)
    assert_fault(await w.admin.post(f"/types/{tid}/action", {"addProjectAccess": {"project": a}}), 409,
                 contains=f"Volume type access for {tid} / {a} combination already exists.")
    assert (await w["member"].get(f"/types/{tid}", expect=200)).json()["volume_type"]["is_public"] is False
    assert tid in [t["id"] for t in (await w["member"].get("/types")).json()["volume_types"]]
    assert_fault(await w["other"].get(f"/types/{tid}"), 404)
    access = (await w.admin.get(f"/types/{tid}/os-volume-type-access", expect=200)).json()
    assert access == {"volume_type_access": [{"volume_type_id": tid, "project_id": a}]}
    assert_fault(await w["member"].get(f"/types/{tid}/os-volume-type-access"), 403)
    assert_fault(await w.admin.post(f"/types/{tid}/action", {"removeProjectAccess": {"project": b}}), 404,
                 contains=f"Volume type access not found for {tid} / {b} combination.")
    await w.admin.post(f"/types/{tid}/action", {"removeProjectAccess": {"project": a}}, expect=202)
    assert_fault(await w["member"].get(f"/types/{tid}"), 404)
    # the admin lists private types with is_public=false / none
    assert tid in [t["id"] for t in (await w.admin.get("/types?is_public=false")).json()["volume_types"]]
    assert tid not in [t["id"] for t in (await w.admin.get("/types")).json()["volume_types"]]
    public = (await w.admin.get("/types/default")).json()["volume_type"]["id"]
    assert_fault(await w.admin.post(f"/types/{public}/action", {"addProjectAccess": {"project": a}}), 400,
                 contains="Type access modification is not applicable to public volume type.")
    assert_fault(await w.admin.post(f"/types/{tid}/action", {"bogus": {}}), 400)
    await w.admin.delete(f"/types/{tid}", expect=202)


async def test_project_default_types(w: VolumeWorld) -> None:
    a = w.projects["a"]
    name = uniq("dflt")
    tid = (await w.admin.post("/types", {"volume_type": {"name": name}}, expect=200)).json()["volume_type"]["id"]
    admin = w.admin.at("3.62")
    assert_fault(await w.admin.at("3.61").put(f"/default-types/{a}", {"default_type": {"volume_type": name}}), 404)
    r = await admin.put(f"/default-types/{a}", {"default_type": {"volume_type": name}}, expect=200)
    assert r.json() == {"default_type": {"project_id": a, "volume_type_id": tid}}
    assert (await admin.get(f"/default-types/{a}", expect=200)).json()["default_type"]["volume_type_id"] == tid
    assert {"project_id": a, "volume_type_id": tid} in (await admin.get("/default-types")).json()["default_types"]
    # the project's default is what /types/default shows its members, and it cannot be deleted
    assert (await w["member"].get("/types/default")).json()["volume_type"]["id"] == tid
    assert (await w["other"].get("/types/default")).json()["volume_type"]["name"] == "__DEFAULT__"
    assert_fault(await w.admin.delete(f"/types/{tid}"), 400, contains="is a default volume type")
    assert_fault(await w["member"].at("3.62").get(f"/default-types/{a}"), 403)
    assert_fault(await admin.put(f"/default-types/{a}", {"default_type": {"volume_type": "no-such"}}), 404)
    await admin.delete(f"/default-types/{a}", expect=204)
    assert_fault(await admin.get(f"/default-types/{a}"), 404, contains=f"Default type for project {a} not found.")
    await w.admin.delete(f"/types/{tid}", expect=202)


async def test_resolve_for_other_parts(w: VolumeWorld) -> None:
    """seam 2: volume.types.resolve by id, by name, and None for the default."""
    from mcloud.core.errors import NotFound
    from mcloud.volume.service import Caller

    volume = w.cloud.volume
    name = uniq("seam")
    tid = (await w.admin.post("/types", {"volume_type": {"name": name, "extra_specs": {"k": "v"}}},
                              expect=200)).json()["volume_type"]["id"]
    caller = Caller(user_id="u", project_id=w.projects["a"])
    async with volume.db.read() as session:
        by_id = await volume.types.resolve(session, caller, tid)
        by_name = await volume.types.resolve(session, caller, name)
        default = await volume.types.resolve(session, caller, None)
        assert by_id == by_name and by_id.extra_specs == {"k": "v"} and default.name == "__DEFAULT__"
        try:
            await volume.types.resolve(session, caller, "no-such-type")
        except NotFound as e:
            assert str(e) == "Volume type with name no-such-type could not be found."
        else:
            raise AssertionError("resolved a type that does not exist")
    await w.admin.delete(f"/types/{tid}", expect=202)
