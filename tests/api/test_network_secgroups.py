"""Security groups and rules through the API: the default group each project gets on first
need, Neutron's validation of rules (the cases Tempest's negative tests send, with Neutron's
messages), duplicates, bulk creation, ports using groups, and isolation between projects."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.api.conftest import admin_keystone
from tests.api.network_l3_helpers import L3Neutron, L3World, neutron_error, world_fixture

w = world_fixture()


def rule(group_id: str, **kw: Any) -> dict[str, Any]:
    return {"security_group_rule": {"security_group_id": group_id, "direction": "ingress", **kw}}


async def test_default_group_and_crud(w: L3World) -> None:
    a = w.alice.neutron
    groups = (await w.alice.reader.get("/security-groups", expect=200)).json()["security_groups"]
    default = next(g for g in groups if g["name"] == "default")
    assert default["description"] == "Default security group" and default["stateful"] is True
    kinds = sorted((r["direction"], r["ethertype"], r["remote_group_id"] is not None)
                   for r in default["security_group_rules"])
    assert kinds == [("egress", "IPv4", False), ("egress", "IPv6", False), ("ingress", "IPv4", True),
                     ("ingress", "IPv6", True)]
    assert all(r["belongs_to_default_sg"] for r in default["security_group_rules"])
    made = (await a.post("/security-groups", {"security_group": {"name": "web", "description": "d"}},
                         expect=201)).json()["security_group"]
    assert [r["direction"] for r in made["security_group_rules"]] == ["egress", "egress"]
    upd = (await a.put(f"/security-groups/{made['id']}", {"security_group": {"name": "web2", "description": "e"}},
                       expect=200)).json()["security_group"]
    assert (upd["name"], upd["description"]) == ("web2", "e")
    neutron_error(await a.post("/security-groups", {"security_group": {"name": "default"}}), 409)
    neutron_error(await a.put(f"/security-groups/{made['id']}", {"security_group": {"name": "default"}}), 409)
    neutron_error(await a.put(f"/security-groups/{default['id']}", {"security_group": {"name": "x"}}), 409)
    neutron_error(await a.delete(f"/security-groups/{default['id']}"), 409)
    await a.delete(f"/security-groups/{made['id']}", expect=204)
    neutron_error(await a.get(f"/security-groups/{made['id']}"), 404, "SecurityGroupNotFound")
    neutron_error(await a.delete(f"/security-groups/{uuid.uuid4()}"), 404)
    neutron_error(await a.get(f"/security-group-rules/{uuid.uuid4()}"), 404, "SecurityGroupRuleNotFound")


async def test_rule_crud_and_what_neutron_refuses(w: L3World) -> None:
    a = w.alice.neutron
    gid = (await a.post("/security-groups", {"security_group": {"name": "rules"}}, expect=201)).json()[
        "security_group"]["id"]
    other = (await a.post("/security-groups", {"security_group": {"name": "peer"}}, expect=201)).json()[
        "security_group"]["id"]
    for protocol in ("tcp", "udp", "icmp"):
        made = (await a.post("/security-group-rules", rule(gid, protocol=protocol, ethertype="IPv4"),
                             expect=201)).json()["security_group_rule"]
        shown = (await a.get(f"/security-group-rules/{made['id']}", expect=200)).json()["security_group_rule"]
        assert shown == made and made["protocol"] == protocol
        await a.delete(f"/security-group-rules/{made['id']}", expect=204)
    r = (await a.post("/security-group-rules", rule(gid, protocol=17), expect=201)).json()["security_group_rule"]
    assert r["protocol"] == "17" and r["ethertype"] == "IPv4"
    r = (await a.post("/security-group-rules", rule(gid, protocol="udp", port_range_min=50, port_range_max=55,
                                                    remote_group_id=other), expect=201)).json()["security_group_rule"]
    assert (r["remote_group_id"], r["port_range_min"], r["port_range_max"]) == (other, 50, 55)
    r = (await a.post("/security-group-rules", rule(gid, protocol="tcp", port_range_min=76, port_range_max=77,
                                                    remote_ip_prefix="10.5.0.0/16"),
                      expect=201)).json()["security_group_rule"]
    assert (r["remote_ip_prefix"], r["normalized_cidr"]) == ("10.5.0.0/16", "10.5.0.0/16")
    for icmp_type, code in ((3, 2), (3, 0), (8, 0), (0, 0), (11, None)):
        r = (await a.post("/security-group-rules", rule(gid, protocol="ipv6-icmp", ethertype="IPv6",
                                                        port_range_min=icmp_type, port_range_max=code),
                          expect=201)).json()["security_group_rule"]
        assert (r["port_range_min"], r["port_range_max"]) == (icmp_type, code)
    dup = rule(gid, protocol="tcp", port_range_min=66, port_range_max=67)
    await a.post("/security-group-rules", dup, expect=201)
    neutron_error(await a.post("/security-group-rules", dup), 409, "SecurityGroupRuleExists")
    # the cases Tempest's negative tests send, and Neutron's words for them
    neutron_error(await a.post("/security-group-rules", rule(gid, protocol="bad_protocol_name")), 400)
    neutron_error(await a.post("/security-group-rules", rule(gid, protocol="udp", ethertype="bad_ethertype")), 400)
    for prefix in ("192.168.1./24", "192.168.1.1/33", "bad_prefix", "256"):
        neutron_error(await a.post("/security-group-rules", rule(gid, protocol="tcp", remote_ip_prefix=prefix)), 400)
    for remote in ("bad_group_id", str(uuid.uuid4())):
        neutron_error(await a.post("/security-group-rules", rule(gid, protocol="tcp", remote_group_id=remote)), 404)
    neutron_error(await a.post("/security-group-rules", rule(gid, protocol="tcp", remote_group_id=other,
                                                             remote_ip_prefix="10.0.0.0/8")), 400)
    cases = [("tcp", -16, 80, "Invalid value for port -16"),
             ("tcp", 80, 79, "port_range_min must be <= port_range_max"),
             ("tcp", 80, 65536, "Invalid value for port 65536"),
             ("tcp", None, 6, "port_range_min must be <= port_range_max"),
             ("icmp", 1, 256, "Invalid value for ICMP code"),
             ("icmp", -1, 25, "Invalid value"),
             ("icmp", None, 6, "ICMP type (port-range-min) is missing"),
             ("icmp", 300, 1, "Invalid value for ICMP type")]
    for protocol, low, high, message in cases:
        err = neutron_error(await a.post("/security-group-rules", rule(gid, protocol=protocol, port_range_min=low,
                                                                       port_range_max=high)), 400)
        assert message in err["message"], (protocol, low, high, err)
    err = neutron_error(await a.post("/security-group-rules", rule(gid, protocol="tcp", ethertype="IPv6",
                                                                   remote_ip_prefix="10.0.0.0/8")), 400)
    assert "Conflicting value ethertype" in err["message"]
    neutron_error(await a.post("/security-group-rules", rule(str(uuid.uuid4()))), 404)
    neutron_error(await a.post("/security-group-rules", rule(gid, protocol="tcp", colour="red")), 400)
    neutron_error(await a.post("/security-group-rules", {"security_group_rule": {"direction": "ingress"}}), 400)
    # a bulk of rules is made whole or not at all
    bulk = {"security_group_rules": [rule(gid, protocol="tcp", port_range_min=1000, port_range_max=1000)[
        "security_group_rule"], rule(gid, protocol="tcp", port_range_min=1000, port_range_max=1000)[
        "security_group_rule"]]}
    neutron_error(await a.post("/security-group-rules", bulk), 409)
    bulk["security_group_rules"][1]["port_range_min"] = bulk["security_group_rules"][1]["port_range_max"] = 1001
    made = (await a.post("/security-group-rules", bulk, expect=201)).json()["security_group_rules"]
    assert [m["port_range_min"] for m in made] == [1000, 1001]
    # listing filters by the group and protocol
    listed = (await a.get("/security-group-rules", params={"security_group_id": gid, "protocol": "tcp",
                                                           "port_range_min": 1000}, expect=200)).json()
    assert [r["id"] for r in listed["security_group_rules"]] == [made[0]["id"]]
    # deleting a group takes its rules along, and rules naming it as remote
    await a.delete(f"/security-groups/{other}", expect=204)
    remaining = (await a.get("/security-group-rules", params={"security_group_id": gid})).json()
    assert all(r["remote_group_id"] != other for r in remaining["security_group_rules"])
    await a.delete(f"/security-groups/{gid}", expect=204)
    assert (await a.get("/security-group-rules", params={"security_group_id": gid})).json()[
        "security_group_rules"] == []


async def test_ports_use_groups_and_projects_stay_apart(w: L3World) -> None:
    a, b = w.alice.neutron, w.bob.neutron
    g1 = (await a.post("/security-groups", {"security_group": {"name": "g1"}}, expect=201)).json()["security_group"]
    g2 = (await a.post("/security-groups", {"security_group": {"name": "g2"}}, expect=201)).json()["security_group"]
    port = await a.port(w.alice.network["id"])
    default = next(g["id"] for g in (await a.get("/security-groups", params={"name": "default"})).json()[
        "security_groups"])
    assert port["security_groups"] == [default]
    upd = (await a.put(f"/ports/{port['id']}", {"port": {"security_groups": [g1["id"], g2["id"]]}},
                       expect=200)).json()["port"]
    assert sorted(upd["security_groups"]) == sorted([g1["id"], g2["id"]])
    assert [p["id"] for p in (await a.get("/ports", params={"security_groups": g1["id"]})).json()["ports"]] == \
        [port["id"]]
    neutron_error(await a.delete(f"/security-groups/{g1['id']}"), 409, "SecurityGroupInUse")
    neutron_error(await a.put(f"/ports/{port['id']}", {"port": {"port_security_enabled": False}}), 409)
    none = (await a.put(f"/ports/{port['id']}", {"port": {"security_groups": [], "port_security_enabled": False}},
                        expect=200)).json()["port"]
    assert none["security_groups"] == [] and none["port_security_enabled"] is False
    neutron_error(await a.post("/ports", {"port": {"network_id": w.alice.network["id"],
                                                   "port_security_enabled": False,
                                                   "security_groups": [g1["id"]]}}), 400)
    # another project neither sees the groups nor puts its ports in them
    bobs = [g["id"] for g in (await b.get("/security-groups")).json()["security_groups"]]
    assert g1["id"] not in bobs and default not in bobs
    neutron_error(await b.get(f"/security-groups/{g1['id']}"), 404)
    neutron_error(await b.put(f"/security-groups/{g1['id']}", {"security_group": {"name": "mine"}}), 404)
    neutron_error(await b.post("/security-group-rules", rule(g1["id"], protocol="tcp")), 404)
    neutron_error(await b.post("/ports", {"port": {"network_id": w.bob.network["id"],
                                                   "security_groups": [g1["id"]]}}), 404)
    assert not [r for r in (await b.get("/security-group-rules")).json()["security_group_rules"]
                if r["security_group_id"] == g1["id"]]
    # a reader may look, not change
    neutron_error(await w.alice.reader.post("/security-groups", {"security_group": {"name": "r"}}), 403)
    assert (await w.alice.reader.get(f"/security-groups/{g2['id']}")).status_code == 200
    await a.delete(f"/ports/{port['id']}", expect=204)
    for g in (g1, g2):
        await a.delete(f"/security-groups/{g['id']}", expect=204)


async def test_stateless_groups(w: L3World) -> None:
    a = w.alice.neutron
    stateless = (await a.post("/security-groups", {"security_group": {"name": "sl", "stateful": False}},
                              expect=201)).json()["security_group"]
    stateful = (await a.post("/security-groups", {"security_group": {"name": "sf"}}, expect=201)).json()[
        "security_group"]
    assert (stateless["stateful"], stateful["stateful"]) == (False, True)
    neutron_error(await a.post("/ports", {"port": {"network_id": w.alice.network["id"],
                                                   "security_groups": [stateless["id"], stateful["id"]]}}), 409)
    port = await a.port(w.alice.network["id"], security_groups=[stateless["id"]])
    neutron_error(await a.put(f"/security-groups/{stateless['id']}", {"security_group": {"stateful": True}}), 409)
    await a.delete(f"/ports/{port['id']}", expect=204)
    await a.put(f"/security-groups/{stateless['id']}", {"security_group": {"stateful": True}}, expect=200)
    for g in (stateless, stateful):
        await a.delete(f"/security-groups/{g['id']}", expect=204)


async def test_one_default_group_under_concurrency(w: L3World, cloud: Any) -> None:
    """Ten first requests of a new project at once: one default group comes out."""
    async with admin_keystone(cloud) as (ks, _admin):
        _user, proj, token = await ks.member("member")
        fresh = L3Neutron(ks.client, token, proj["id"])
        answers = await asyncio.gather(*[fresh.get("/security-groups") for _ in range(10)])
        assert {r.status_code for r in answers} == {200}
        groups = (await fresh.get("/security-groups", expect=200)).json()["security_groups"]
        assert [g["name"] for g in groups] == ["default"]
        assert {r.json()["security_groups"][0]["id"] for r in answers} == {groups[0]["id"]}
