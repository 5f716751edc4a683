"""Quotas and tags of the L3 resources through CORE's quota and tag APIs: a project over its
router, floating IP, security group or rule quota gets Neutron's 409 OverQuota, the usage counts
what it has, and routers, floating IPs, security groups, QoS policies and trunks take tags and
are filtered by them."""

from __future__ import annotations


from tests.api.network_l3_helpers import L3World, neutron_error, world_fixture

w = world_fixture()


async def test_quotas_count_and_limit_l3_resources(w: L3World) -> None:
    b = w.bob.neutron
    await w.admin.put(f"/quotas/{w.bob.id}", {"quota": {"router": 1, "floatingip": 1, "security_group": 2,
                                                        "security_group_rule": 7}}, expect=200)
    router = await b.router(name="only")
    neutron_error(await b.post("/routers", {"router": {"name": "second"}}), 409, "OverQuota")
    fip = (await b.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"]}},
                        expect=201)).json()["floatingip"]
    neutron_error(await b.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"]}}), 409,
                  "OverQuota")
    # the default group (4 rules) and one more group (2 rules) fill the groups; one rule is left
    group = (await b.post("/security-groups", {"security_group": {"name": "g"}}, expect=201)).json()[
        "security_group"]
    neutron_error(await b.post("/security-groups", {"security_group": {"name": "h"}}), 409, "OverQuota")
    await b.post("/security-group-rules", {"security_group_rule": {"security_group_id": group["id"],
                                                                   "direction": "ingress", "protocol": "tcp"}},
                 expect=201)
    neutron_error(await b.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "protocol": "udp"}}), 409, "OverQuota")
    details = (await w.admin.get(f"/quotas/{w.bob.id}/details", expect=200)).json()["quota"]
    assert details["router"]["used"] == 1 and details["floatingip"]["used"] == 1
    assert details["security_group"]["used"] == 2 and details["security_group_rule"]["used"] == 7
    defaults = (await w.admin.get(f"/quotas/{w.bob.id}/default", expect=200)).json()["quota"]
    assert (defaults["router"], defaults["floatingip"], defaults["security_group"],
            defaults["security_group_rule"]) == (10, 50, 10, 100)
    await b.delete(f"/routers/{router['id']}", expect=204)
    await b.delete(f"/floatingips/{fip['id']}", expect=204)
    await b.delete(f"/security-groups/{group['id']}", expect=204)
    await w.admin.delete(f"/quotas/{w.bob.id}", expect=204)


async def test_tags_on_l3_resources(w: L3World) -> None:
    a = w.alice.neutron
    port = await a.port(w.alice.network["id"])
    made = {
        "routers": (await a.router(name="tagged"))["id"],
        "floatingips": (await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"]}},
                                     expect=201)).json()["floatingip"]["id"],
        "security-groups": (await a.post("/security-groups", {"security_group": {"name": "tagged"}},
                                         expect=201)).json()["security_group"]["id"],
        "trunks": (await a.post("/trunks", {"trunk": {"port_id": port["id"]}}, expect=201)).json()["trunk"]["id"],
        "qos/policies": (await w.admin.post("/qos/policies", {"policy": {"name": "tagged", "project_id": w.alice.id,
                                                                         "tags": ["blue"]}},
                                            expect=201)).json()["policy"]["id"],
    }
    for collection, rid in made.items():
        tag_collection = "policies" if collection == "qos/policies" else collection
        who = w.admin if collection == "qos/policies" else a
        await who.put(f"/{tag_collection}/{rid}/tags/red", expect=201)
        shown = (await a.get(f"/{collection}/{rid}", expect=200)).json()
        assert "red" in next(iter(shown.values()))["tags"], collection
        key = collection.split("/")[-1].replace("-", "_")
        assert [x["id"] for x in (await a.get(f"/{collection}", params={"tags": "red"})).json()[key]] == [rid]
        assert rid not in [x["id"] for x in (await a.get(f"/{collection}", params={"not-tags": "red"})).json()[key]]
        neutron_error(await w.bob.neutron.put(f"/{tag_collection}/{rid}/tags/mine"), 404)
    created = (await a.post("/routers", {"router": {"name": "born-tagged", "tags": ["x", "y"]}}, expect=201)).json()
    assert created["router"]["tags"] == ["x", "y"]
    await a.delete(f"/routers/{created['router']['id']}", expect=204)
    await a.delete(f"/trunks/{made['trunks']}", expect=204)
    await a.delete(f"/routers/{made['routers']}", expect=204)
    await a.delete(f"/floatingips/{made['floatingips']}", expect=204)
    await a.delete(f"/security-groups/{made['security-groups']}", expect=204)
    await w.admin.delete(f"/qos/policies/{made['qos/policies']}", expect=204)
    await a.delete(f"/ports/{port['id']}", expect=204)
