"""QoS specs through the Cinder API: create/list/show/update/delete keys, associations with volume
types, in-use deletes, admin-only policy and Cinder's faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.volume_helpers import VolumeWorld, assert_fault, uniq, volume_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


async def test_qos_specs_lifecycle_and_associations(w: VolumeWorld) -> None:
    name = uniq("qos")
    r = await w.admin.post("/qos-specs", {"qos_specs": {"name": name, "consumer": "front-end",
                                                         "read_iops_sec": "100"}}, expect=200)
    qos = r.json()["qos_specs"]
    assert (qos["name"], qos["consumer"], qos["specs"]) == (name, "front-end", {"read_iops_sec": "100"})
    assert r.json()["links"][0]["href"].endswith(f"/volume/v3/qos-specs/{qos['id']}")
    qid = qos["id"]
    assert_fault(await w.admin.post("/qos-specs", {"qos_specs": {"name": name}}), 409,
                 contains=f"QoS Specs {name} already exists.")
    assert_fault(await w.admin.post("/qos-specs", {"qos_specs": {"name": uniq("q"), "consumer": "nowhere"}}), 400)
    assert_fault(await w.admin.post("/qos-specs", {"qos_specs": {}}), 400)
    assert_fault(await w["member"].get("/qos-specs"), 403, "forbidden")
    assert qid in [q["id"] for q in (await w.admin.get("/qos-specs", expect=200)).json()["qos_specs"]]
    assert (await w.admin.put(f"/qos-specs/{qid}", {"qos_specs": {"write_iops_sec": "50"}}, expect=200)).json() \
        == {"qos_specs": {"write_iops_sec": "50"}}
    shown = (await w.admin.get(f"/qos-specs/{qid}", expect=200)).json()["qos_specs"]
    assert shown["specs"] == {"read_iops_sec": "100", "write_iops_sec": "50"}
    await w.admin.put(f"/qos-specs/{qid}/delete_keys", {"keys": ["read_iops_sec"]}, expect=202)
    assert_fault(await w.admin.put(f"/qos-specs/{qid}/delete_keys", {"keys": ["nope"]}), 404,
                 contains=f"QoS spec {qid} has no spec with key nope.")
    # associations
    tid = (await w.admin.post("/types", {"volume_type": {"name": uniq("qt")}}, expect=200)).json()["volume_type"]["id"]
    await w.admin.get(f"/qos-specs/{qid}/associate?vol_type_id={tid}", expect=202)
    assert (await w.admin.get(f"/types/{tid}")).json()["volume_type"]["qos_specs_id"] == qid
    assert (await w.admin.get(f"/qos-specs/{qid}/associations", expect=200)).json() == {
        "qos_associations": [{"association_type": "volume_type", "name": (await w.admin.get(f"/types/{tid}")).json()[
            "volume_type"]["name"], "id": tid}]}
    other = (await w.admin.post("/qos-specs", {"qos_specs": {"name": uniq("q2")}}, expect=200)).json()["qos_specs"]
    assert_fault(await w.admin.get(f"/qos-specs/{other['id']}/associate?vol_type_id={tid}"), 400,
                 contains="is already associated with another qos specs")
    assert_fault(await w.admin.get(f"/qos-specs/{qid}/associate"), 400, contains="Volume Type id must not be None.")
    assert_fault(await w.admin.get(f"/qos-specs/{qid}/associate?vol_type_id=no-such"), 404)
    assert_fault(await w.admin.delete(f"/qos-specs/{qid}"), 400, contains="Qos specs still in use.")
    await w.admin.get(f"/qos-specs/{qid}/disassociate?vol_type_id={tid}", expect=202)
    assert (await w.admin.get(f"/qos-specs/{qid}/associations")).json() == {"qos_associations": []}
    await w.admin.get(f"/qos-specs/{qid}/associate?vol_type_id={tid}", expect=202)
    await w.admin.get(f"/qos-specs/{qid}/disassociate_all", expect=202)
    assert (await w.admin.get(f"/types/{tid}")).json()["volume_type"]["qos_specs_id"] is None
    await w.admin.get(f"/qos-specs/{qid}/associate?vol_type_id={tid}", expect=202)
    await w.admin.delete(f"/qos-specs/{qid}?force=true", expect=202)
    assert_fault(await w.admin.get(f"/qos-specs/{qid}"), 404, "itemNotFound", contains=f"No such QoS spec {qid}.")
    assert (await w.admin.get(f"/types/{tid}")).json()["volume_type"]["qos_specs_id"] is None
    await w.admin.delete(f"/qos-specs/{other['id']}", expect=202)
    await w.admin.delete(f"/types/{tid}", expect=202)
