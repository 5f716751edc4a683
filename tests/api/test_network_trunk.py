"""Trunks through the API: a parent port and VLAN-tagged subports (add_subports,
remove_subports, get_subports), the port's trunk_details, Neutron's conflicts, isolation."""

from __future__ import annotations

import uuid

from tests.api.network_l3_helpers import L3World, neutron_error, world_fixture

w = world_fixture()


async def test_trunk_lifecycle(w: L3World) -> None:
    a = w.alice.neutron
    parent, sub1, sub2 = [await a.port(w.alice.network["id"]) for _ in range(3)]
    trunk = (await a.post("/trunks", {"trunk": {"name": "t", "port_id": parent["id"], "sub_ports": [
        {"port_id": sub1["id"], "segmentation_type": "vlan", "segmentation_id": 100}]}}, expect=201)).json()["trunk"]
    assert (trunk["status"], trunk["admin_state_up"], trunk["port_id"]) == ("DOWN", True, parent["id"])
    assert trunk["sub_ports"] == [{"port_id": sub1["id"], "segmentation_type": "vlan", "segmentation_id": 100}]
    details = (await a.get(f"/ports/{parent['id']}")).json()["port"]["trunk_details"]
    assert details["trunk_id"] == trunk["id"] and details["sub_ports"][0]["mac_address"] == sub1["mac_address"]
    sub_port = (await a.get(f"/ports/{sub1['id']}")).json()["port"]
    assert (sub_port["device_owner"], sub_port["device_id"]) == ("trunk:subport", trunk["id"])
    base = f"/trunks/{trunk['id']}"
    added = (await a.put(f"{base}/add_subports", {"sub_ports": [
        {"port_id": sub2["id"], "segmentation_type": "vlan", "segmentation_id": 200}]}, expect=200)).json()
    assert sorted(s["segmentation_id"] for s in added["sub_ports"]) == [100, 200]
    got = (await w.alice.reader.get(f"{base}/get_subports", expect=200)).json()["sub_ports"]
    assert sorted(s["port_id"] for s in got) == sorted([sub1["id"], sub2["id"]])
    # conflicts: a VLAN twice, a port twice, the parent as a subport, ports in use
    spare = await a.port(w.alice.network["id"])
    neutron_error(await a.put(f"{base}/add_subports", {"sub_ports": [
        {"port_id": spare["id"], "segmentation_type": "vlan", "segmentation_id": 100}]}), 409, "DuplicateSubPort")
    neutron_error(await a.put(f"{base}/add_subports", {"sub_ports": [
        {"port_id": sub1["id"], "segmentation_type": "vlan", "segmentation_id": 300}]}), 409)
    neutron_error(await a.put(f"{base}/add_subports", {"sub_ports": [
        {"port_id": parent["id"], "segmentation_type": "vlan", "segmentation_id": 300}]}), 409)
    neutron_error(await a.put(f"{base}/add_subports", {"sub_ports": [
        {"port_id": spare["id"], "segmentation_type": "vlan", "segmentation_id": 5000}]}), 400)
    neutron_error(await a.put(f"{base}/add_subports", {"sub_ports": [
        {"port_id": spare["id"], "segmentation_type": "qinq", "segmentation_id": 5}]}), 400)
    neutron_error(await a.put(f"{base}/add_subports", {"sub_ports": [{"port_id": spare["id"]}]}), 400)
    neutron_error(await a.post("/trunks", {"trunk": {"port_id": parent["id"]}}), 409, "TrunkPortInUse")
    neutron_error(await a.post("/trunks", {"trunk": {"port_id": sub1["id"]}}), 409)
    neutron_error(await a.post("/trunks", {"trunk": {"port_id": str(uuid.uuid4())}}), 404)
    neutron_error(await a.delete(f"/ports/{parent['id']}"), 409, "PortInUseAsTrunkParent")
    neutron_error(await a.delete(f"/ports/{sub2['id']}"), 409, "PortInUseAsSubPort")
    neutron_error(await a.put(f"{base}/remove_subports", {"sub_ports": [{"port_id": spare["id"]}]}), 404,
                  "SubPortNotFound")
    # disabled trunks keep their subports
    await a.put(base, {"trunk": {"admin_state_up": False, "name": "t2"}}, expect=200)
    neutron_error(await a.put(f"{base}/remove_subports", {"sub_ports": [{"port_id": sub2["id"]}]}), 409,
                  "TrunkDisabled")
    await a.put(base, {"trunk": {"admin_state_up": True}}, expect=200)
    left = (await a.put(f"{base}/remove_subports", {"sub_ports": [{"port_id": sub2["id"]}]}, expect=200)).json()
    assert [s["port_id"] for s in left["sub_ports"]] == [sub1["id"]]
    assert (await a.get(f"/ports/{sub2['id']}")).json()["port"]["device_owner"] == ""
    # another project sees none of it
    neutron_error(await w.bob.neutron.get(base), 404, "TrunkNotFound")
    neutron_error(await w.bob.neutron.post("/trunks", {"trunk": {"port_id": spare["id"]}}), 404)
    assert trunk["id"] not in [t["id"] for t in (await w.bob.neutron.get("/trunks")).json()["trunks"]]
    await a.delete(base, expect=204)
    assert "trunk_details" not in (await a.get(f"/ports/{parent['id']}")).json()["port"]
    for p in (parent, sub1, sub2, spare):
        await a.delete(f"/ports/{p['id']}", expect=204)
