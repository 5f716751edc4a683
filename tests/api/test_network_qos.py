"""QoS through the API: policies (shared, is_default), bandwidth-limit rules per direction and
DSCP-marking rules, rule types, binding to ports and networks (qos_policy_id and the port's
qos_network_policy_id), what is in use, and who may see and change what."""

from __future__ import annotations

import uuid

from tests.api.network_l3_helpers import L3World, neutron_error, world_fixture

w = world_fixture()


async def test_policy_rules_and_bindings(w: L3World) -> None:
    admin, a = w.admin, w.alice.neutron
    types = (await a.get("/qos/rule-types", expect=200)).json()["rule_types"]
    assert sorted(t["type"] for t in types) == ["bandwidth_limit", "dscp_marking"]
    detail = (await a.get("/qos/rule-types/bandwidth_limit", expect=200)).json()["rule_type"]
    assert {p["parameter_name"] for p in detail["drivers"][0]["supported_parameters"]} >= {"max_kbps", "direction"}
    neutron_error(await a.get("/qos/rule-types/minimum_bandwidth"), 404)
    # a member may not make policies (Neutron: admin or the project's manager)
    neutron_error(await a.post("/qos/policies", {"policy": {"name": "p"}}), 403)
    policy = (await admin.post("/qos/policies", {"policy": {"name": "gold", "project_id": w.alice.id,
                                                            "description": "fast"}}, expect=201)).json()["policy"]
    assert (policy["shared"], policy["is_default"], policy["rules"], policy["project_id"]) == \
        (False, False, [], w.alice.id)
    base = f"/qos/policies/{policy['id']}"
    bw = (await admin.post(f"{base}/bandwidth_limit_rules", {"bandwidth_limit_rule": {
        "max_kbps": 10000, "max_burst_kbps": 800}}, expect=201)).json()["bandwidth_limit_rule"]
    assert (bw["max_kbps"], bw["max_burst_kbps"], bw["direction"]) == (10000, 800, "egress")
    ingress = (await admin.post(f"{base}/bandwidth_limit_rules", {"bandwidth_limit_rule": {
        "max_kbps": 5000, "direction": "ingress"}}, expect=201)).json()["bandwidth_limit_rule"]
    neutron_error(await admin.post(f"{base}/bandwidth_limit_rules", {"bandwidth_limit_rule": {"max_kbps": 1}}), 409)
    dscp = (await admin.post(f"{base}/dscp_marking_rules", {"dscp_marking_rule": {"dscp_mark": 26}},
                             expect=201)).json()["dscp_marking_rule"]
    neutron_error(await admin.post(f"{base}/dscp_marking_rules", {"dscp_marking_rule": {"dscp_mark": 27}}), 400)
    neutron_error(await admin.post(f"{base}/bandwidth_limit_rules", {"bandwidth_limit_rule": {"max_kbps": -1}}), 400)
    neutron_error(await admin.post(f"{base}/bandwidth_limit_rules", {"bandwidth_limit_rule": {}}), 400)
    neutron_error(await admin.post(f"{base}/bandwidth_limit_rules", {"bandwidth_limit_rule": {
        "max_kbps": 1, "direction": "sideways"}}), 400)
    shown = (await w.alice.reader.get(base, expect=200)).json()["policy"]
    assert sorted((r["type"], r.get("direction")) for r in shown["rules"]) == \
        [("bandwidth_limit", "egress"), ("bandwidth_limit", "ingress"), ("dscp_marking", None)]
    upd = (await admin.put(f"{base}/bandwidth_limit_rules/{bw['id']}", {"bandwidth_limit_rule": {"max_kbps": 2000}},
                           expect=200)).json()["bandwidth_limit_rule"]
    assert upd["max_kbps"] == 2000
    listed = (await a.get(f"{base}/bandwidth_limit_rules", expect=200)).json()["bandwidth_limit_rules"]
    assert sorted(r["id"] for r in listed) == sorted([bw["id"], ingress["id"]])
    neutron_error(await admin.get(f"{base}/dscp_marking_rules/{bw['id']}"), 404)
    # bound to a network: its ports show the network's policy
    port = await a.port(w.alice.network["id"])
    await a.put(f"/networks/{w.alice.network['id']}", {"network": {"qos_policy_id": policy["id"]}}, expect=200)
    net = (await a.get(f"/networks/{w.alice.network['id']}")).json()["network"]
    assert net["qos_policy_id"] == policy["id"]
    shown_port = (await a.get(f"/ports/{port['id']}")).json()["port"]
    assert (shown_port["qos_policy_id"], shown_port["qos_network_policy_id"]) == (None, policy["id"])
    bound = (await a.put(f"/ports/{port['id']}", {"port": {"qos_policy_id": policy["id"]}}, expect=200)).json()["port"]
    assert bound["qos_policy_id"] == policy["id"]
    assert [p["id"] for p in (await a.get("/ports", params={"qos_policy_id": policy["id"]})).json()["ports"]] == \
        [port["id"]]
    neutron_error(await admin.delete(base), 409, "QosPolicyInUse")
    neutron_error(await a.put(f"/ports/{port['id']}", {"port": {"qos_policy_id": str(uuid.uuid4())}}), 404)
    await a.put(f"/ports/{port['id']}", {"port": {"qos_policy_id": None}}, expect=200)
    await a.put(f"/networks/{w.alice.network['id']}", {"network": {"qos_policy_id": None}}, expect=200)
    await admin.delete(f"{base}/dscp_marking_rules/{dscp['id']}", expect=204)
    await admin.delete(base, expect=204)
    neutron_error(await admin.get(base), 404, "QosPolicyNotFound")
    await a.delete(f"/ports/{port['id']}", expect=204)


async def test_shared_and_default_policies(w: L3World) -> None:
    admin = w.admin
    shared = (await admin.post("/qos/policies", {"policy": {"name": "shared", "shared": True}},
                               expect=201)).json()["policy"]
    private = (await admin.post("/qos/policies", {"policy": {"name": "private"}}, expect=201)).json()["policy"]
    seen = [p["id"] for p in (await w.bob.neutron.get("/qos/policies")).json()["policies"]]
    assert shared["id"] in seen and private["id"] not in seen
    neutron_error(await w.bob.neutron.get(f"/qos/policies/{private['id']}"), 404)
    neutron_error(await w.bob.neutron.put(f"/qos/policies/{shared['id']}", {"policy": {"name": "x"}}), 403)
    # another project may bind a shared policy, not a private one
    port = await w.bob.neutron.port(w.bob.network["id"], qos_policy_id=shared["id"])
    assert port["qos_policy_id"] == shared["id"]
    neutron_error(await w.bob.neutron.post("/ports", {"port": {"network_id": w.bob.network["id"],
                                                               "qos_policy_id": private["id"]}}), 404)
    # one default per project; a new network of that project takes it
    default = (await admin.post("/qos/policies", {"policy": {"name": "dflt", "is_default": True,
                                                             "project_id": w.bob.id}}, expect=201)).json()["policy"]
    neutron_error(await admin.post("/qos/policies", {"policy": {"name": "dflt2", "is_default": True,
                                                                "project_id": w.bob.id}}), 409)
    net = await w.bob.neutron.network()
    assert net["qos_policy_id"] == default["id"]
    await w.bob.neutron.delete(f"/networks/{net['id']}", expect=204)
    await w.bob.neutron.delete(f"/ports/{port['id']}", expect=204)
    for p in (shared, private, default):
        await admin.delete(f"/qos/policies/{p['id']}", expect=204)
