"""Routers through the API as Neutron serves them: external gateway (SNAT, admin-only knobs),
interfaces added and removed by subnet or by port with Neutron's answers and conflicts, extra
routes (also atomically), revision numbers with If-Match, lists with fields, filters, sorting
and pages, and what a reader or another project may do."""

from __future__ import annotations


from tests.api.network_l3_helpers import L3World, neutron_error, world_fixture

w = world_fixture()


async def test_router_lifecycle_with_gateway(w: L3World) -> None:
    a = w.alice.neutron
    router = await a.router(name="r1", admin_state_up=False, external_gateway_info={"network_id": w.public["id"]})
    assert router["admin_state_up"] is False and router["status"] == "ACTIVE" and router["routes"] == []
    gw = router["external_gateway_info"]
    assert gw["network_id"] == w.public["id"] and gw["enable_snat"] is True
    assert [ip["subnet_id"] for ip in gw["external_fixed_ips"]] == [w.public_subnet["id"]]
    assert router["project_id"] == router["tenant_id"] == w.alice.id and router["revision_number"] == 1
    shown = (await w.alice.reader.get(f"/routers/{router['id']}", expect=200)).json()["router"]
    assert shown["external_gateway_info"] == gw
    listed = (await a.get("/routers", expect=200)).json()["routers"]
    assert router["id"] in [r["id"] for r in listed]
    updated = (await a.put(f"/routers/{router['id']}", {"router": {"name": "r1b"}}, expect=200)).json()["router"]
    assert updated["name"] == "r1b" and updated["revision_number"] == 2
    # the gateway port is a real port on the external network, owned by the router
    ports = (await w.admin.get("/ports", params={"device_id": router["id"]}, expect=200)).json()["ports"]
    assert [p["device_owner"] for p in ports] == ["network:router_gateway"]
    # unset the gateway
    cleared = (await a.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {}}},
                           expect=200)).json()["router"]
    assert cleared["external_gateway_info"] is None
    assert (await w.admin.get("/ports", params={"device_id": router["id"]})).json()["ports"] == []
    await a.delete(f"/routers/{router['id']}", expect=204)
    neutron_error(await a.get(f"/routers/{router['id']}"), 404, "RouterNotFound")


async def test_gateway_errors_and_admin_only_knobs(w: L3World) -> None:
    a = w.alice.neutron
    router = await a.router(name="gw-errors")
    neutron_error(await a.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": router["id"]}}}), 404, "NetworkNotFound")
    neutron_error(await a.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": w.alice.network["id"]}}}), 400)
    # enable_snat and external_fixed_ips are the admin's (Neutron's defaults)
    neutron_error(await a.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": w.public["id"], "enable_snat": False}}}), 403)
    no_snat = (await w.admin.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": w.public["id"], "enable_snat": False}}}, expect=200)).json()["router"]
    assert no_snat["external_gateway_info"]["enable_snat"] is False
    for bad in ("non_exist_router-123", "00000000-0000-0000-0000-000000000000"):
        neutron_error(await a.get(f"/routers/{bad}"), 404)
        neutron_error(await a.put(f"/routers/{bad}", {"router": {"name": "x"}}), 404)
        neutron_error(await a.delete(f"/routers/{bad}"), 404)
    neutron_error(await a.post("/routers", {"router": {"name": "x", "distributed": True}}), 400)
    neutron_error(await a.post("/routers", {"router": {"status": "DOWN"}}), 400)
    await w.admin.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {}}}, expect=200)
    await a.delete(f"/routers/{router['id']}", expect=204)


async def test_interfaces_by_subnet_and_by_port(w: L3World) -> None:
    a = w.alice.neutron
    router = await a.router(name="ifaces")
    rid = router["id"]
    iface = (await a.put(f"/routers/{rid}/add_router_interface", {"subnet_id": w.alice.subnet["id"]},
                         expect=200)).json()
    assert set(iface) >= {"id", "port_id", "subnet_id", "subnet_ids", "network_id", "tenant_id", "project_id"}
    assert iface["id"] == rid and iface["subnet_id"] == w.alice.subnet["id"]
    port = (await w.alice.reader.get(f"/ports/{iface['port_id']}", expect=200)).json()["port"]
    assert (port["device_id"], port["device_owner"]) == (rid, "network:router_interface")
    assert port["fixed_ips"][0]["ip_address"] == w.alice.subnet["gateway_ip"]
    assert (await a.get("/ports", params={"device_id": rid})).json()["ports"][0]["id"] == iface["port_id"]
    # one port per subnet, no overlapping subnets, the interface port is the router's
    neutron_error(await a.put(f"/routers/{rid}/add_router_interface", {"subnet_id": w.alice.subnet["id"]}), 400)
    other = await a.network(name="overlap")
    overlapping = await a.subnet(other["id"], cidr=w.alice.subnet["cidr"])
    neutron_error(await a.put(f"/routers/{rid}/add_router_interface", {"subnet_id": overlapping["id"]}), 400)
    neutron_error(await a.delete(f"/ports/{iface['port_id']}"), 409, "L3PortInUse")
    neutron_error(await a.delete(f"/routers/{rid}"), 409, "RouterInUse")
    neutron_error(await a.delete(f"/subnets/{w.alice.subnet['id']}"), 409)
    neutron_error(await a.put(f"/routers/{rid}/add_router_interface", {}), 400)
    neutron_error(await a.put(f"/routers/{rid}/add_router_interface", {"subnet_id": w.alice.subnet["id"],
                                                                       "port_id": iface["port_id"]}), 400)
    neutron_error(await a.put(f"/routers/{rid}/add_router_interface", {"subnet_id": "nope"}), 400)
    # by port: a port the project made
    net2 = await a.network(name="second")
    sub2 = await a.subnet(net2["id"])
    mine = await a.port(net2["id"])
    by_port = (await a.put(f"/routers/{rid}/add_router_interface", {"port_id": mine["id"]}, expect=200)).json()
    assert (by_port["port_id"], by_port["subnet_id"]) == (mine["id"], sub2["id"])
    shown = (await a.get(f"/ports/{mine['id']}")).json()["port"]
    assert (shown["device_id"], shown["device_owner"]) == (rid, "network:router_interface")
    neutron_error(await a.put(f"/routers/{rid}/add_router_interface", {"port_id": mine["id"]}), 409, "PortInUse")
    # remove: by port, then by subnet; a wrong one is 404
    removed = (await a.put(f"/routers/{rid}/remove_router_interface", {"port_id": mine["id"]},
                           expect=200)).json()
    assert removed["port_id"] == mine["id"] and removed["subnet_id"] == sub2["id"]
    neutron_error(await a.get(f"/ports/{mine['id']}"), 404)
    neutron_error(await a.put(f"/routers/{rid}/remove_router_interface", {"subnet_id": sub2["id"]}), 404,
                  "RouterInterfaceNotFoundForSubnet")
    neutron_error(await a.put(f"/routers/{rid}/remove_router_interface", {"port_id": mine["id"]}), 404,
                  "RouterInterfaceNotFound")
    await a.put(f"/routers/{rid}/remove_router_interface", {"subnet_id": w.alice.subnet["id"]}, expect=200)
    await a.delete(f"/routers/{rid}", expect=204)


async def test_extra_routes(w: L3World) -> None:
    a = w.alice.neutron
    rid = (await a.router(name="routes"))["id"]
    net = await a.network(name="routes-net")
    sub = await a.subnet(net["id"])
    await a.put(f"/routers/{rid}/add_router_interface", {"subnet_id": sub["id"]}, expect=200)
    base = sub["cidr"].rsplit(".", 1)[0]
    routes = [{"destination": "192.168.10.0/24", "nexthop": f"{base}.10"},
              {"destination": "192.168.11.0/24", "nexthop": f"{base}.11"}]
    got = (await a.put(f"/routers/{rid}", {"router": {"routes": routes}}, expect=200)).json()["router"]
    assert sorted(got["routes"], key=lambda r: r["destination"]) == routes
    neutron_error(await a.put(f"/routers/{rid}", {"router": {"routes": [
        {"destination": "192.168.12.0/24", "nexthop": "203.0.113.9"}]}}), 400, "InvalidRoutes")
    neutron_error(await a.put(f"/routers/{rid}", {"router": {"routes": [{"destination": "x", "nexthop": "y"}]}}), 400)
    added = (await a.put(f"/routers/{rid}/add_extraroutes", {"router": {"routes": [
        {"destination": "192.168.13.0/24", "nexthop": f"{base}.13"}]}}, expect=200)).json()["router"]
    assert len(added["routes"]) == 3
    left = (await a.put(f"/routers/{rid}/remove_extraroutes", {"router": {"routes": routes}},
                        expect=200)).json()["router"]
    assert left["routes"] == [{"destination": "192.168.13.0/24", "nexthop": f"{base}.13"}]
    neutron_error(await a.put(f"/routers/{rid}/remove_router_interface", {"subnet_id": sub["id"]}), 409,
                  "RouterInterfaceInUse")
    cleared = (await a.put(f"/routers/{rid}", {"router": {"routes": None}}, expect=200)).json()["router"]
    assert cleared["routes"] == []
    await a.put(f"/routers/{rid}/remove_router_interface", {"subnet_id": sub["id"]}, expect=200)
    await a.delete(f"/routers/{rid}", expect=204)


async def test_if_match_lists_and_roles(w: L3World) -> None:
    a = w.alice.neutron
    made = [await a.router(name=f"list-{i}") for i in range(3)]
    rid = made[0]["id"]
    neutron_error(await a.put(f"/routers/{rid}", {"router": {"name": "x"}},
                              headers={"If-Match": "revision_number=7"}), 412)
    await a.put(f"/routers/{rid}", {"router": {"name": "list-0"}}, headers={"If-Match": "revision_number=1"},
                expect=200)
    names = (await a.get("/routers", params={"fields": "name", "sort_key": "name", "sort_dir": "desc",
                                             "name": ["list-0", "list-1", "list-2"]}, expect=200)).json()["routers"]
    assert names == [{"name": "list-2"}, {"name": "list-1"}, {"name": "list-0"}]
    page = (await a.get("/routers", params={"limit": 2, "sort_key": "name", "name": ["list-0", "list-1", "list-2"]},
                        expect=200)).json()
    assert [r["name"] for r in page["routers"]] == ["list-0", "list-1"]
    assert [link["rel"] for link in page["routers_links"]] == ["next"]
    neutron_error(await a.get("/routers", params={"colour": "red"}), 400)
    neutron_error(await a.get("/routers", params={"sort_key": "colour"}), 400)
    neutron_error(await a.get("/routers", params={"limit": "-1"}), 400)
    # a reader reads but does not write; another project sees nothing
    neutron_error(await w.alice.reader.put(f"/routers/{rid}", {"router": {"name": "r"}}), 403)
    neutron_error(await w.alice.reader.post("/routers", {"router": {"name": "r"}}), 403)
    assert rid not in [r["id"] for r in (await w.bob.neutron.get("/routers")).json()["routers"]]
    neutron_error(await w.bob.neutron.get(f"/routers/{rid}"), 404)
    neutron_error(await w.bob.neutron.put(f"/routers/{rid}/add_router_interface",
                                          {"subnet_id": w.bob.subnet["id"]}), 404)
    # nor may it attach another project's subnet to its own router
    bobs = await w.bob.neutron.router(name="bobs")
    neutron_error(await w.bob.neutron.put(f"/routers/{bobs['id']}/add_router_interface",
                                          {"subnet_id": w.alice.subnet["id"]}), 404)
    for r in [*made, bobs]:
        await w.admin.delete(f"/routers/{r['id']}", expect=204)
