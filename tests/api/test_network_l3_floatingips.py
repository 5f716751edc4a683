"""Floating IPs and their port forwardings through the API: an address from the external
network's subnet, association with a port through the router that reaches it (port_details,
status), disassociation, the conflicts Neutron reports, and isolation between projects."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.network_l3_helpers import L3World, l3_world, neutron_error


@pytest.fixture(scope="module")
async def w(cloud: Any) -> AsyncIterator[L3World]:
    async for world in l3_world(cloud):
        a = world.alice.neutron
        router = await a.router(name="fip-router", external_gateway_info={"network_id": world.public["id"]})
        await a.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": world.alice.subnet["id"]},
                    expect=200)
        world.router = router  # type: ignore[attr-defined]
        yield world


async def test_allocate_associate_disassociate(w: L3World) -> None:
    a = w.alice.neutron
    port = await a.port(w.alice.network["id"])
    fip = (await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"]}},
                        expect=201)).json()["floatingip"]
    assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network(w.public_subnet["cidr"])
    assert (fip["status"], fip["port_id"], fip["router_id"], fip["port_details"]) == ("DOWN", None, None, None)
    assert fip["port_forwardings"] == [] and fip["project_id"] == w.alice.id
    on = (await a.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}},
                      expect=200)).json()["floatingip"]
    assert (on["port_id"], on["router_id"], on["status"]) == (port["id"], w.router["id"], "ACTIVE")  # type: ignore[attr-defined]
    assert on["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert on["port_details"]["mac_address"] == port["mac_address"]
    assert on["port_details"]["network_id"] == w.alice.network["id"]
    assert (await a.get("/floatingips", params={"port_id": port["id"]})).json()["floatingips"][0]["id"] == fip["id"]
    # a second floating IP for the same fixed IP is a conflict; the router's gateway is needed
    other = (await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"]}},
                          expect=201)).json()["floatingip"]
    neutron_error(await a.put(f"/floatingips/{other['id']}", {"floatingip": {"port_id": port["id"]}}), 409,
                  "FloatingIPPortAlreadyAssociated")
    neutron_error(await a.put(f"/routers/{w.router['id']}", {"router": {"external_gateway_info": {}}}), 409)  # type: ignore[attr-defined]
    neutron_error(await a.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"],
                                                                           "fixed_ip_address": "10.99.99.99"}}), 400)
    off = (await a.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": None}}, expect=200)).json()[
        "floatingip"]
    assert (off["port_id"], off["router_id"], off["fixed_ip_address"], off["status"]) == (None, None, None, "DOWN")
    # associated at creation; deleting the port lets the floating IP go
    both = (await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"],
                                                         "port_id": port["id"]}}, expect=201)).json()["floatingip"]
    assert both["status"] == "ACTIVE"
    await a.delete(f"/ports/{port['id']}", expect=204)
    assert (await a.get(f"/floatingips/{both['id']}")).json()["floatingip"]["port_id"] is None
    # its own port cannot be deleted directly
    fip_ports = (await w.admin.get("/ports", params={"device_id": fip["id"]})).json()["ports"]
    assert [p["device_owner"] for p in fip_ports] == ["network:floatingip"]
    neutron_error(await w.admin.delete(f"/ports/{fip_ports[0]['id']}"), 409)
    for f in (fip, other, both):
        await a.delete(f"/floatingips/{f['id']}", expect=204)
    neutron_error(await a.get(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
    assert (await w.admin.get("/ports", params={"device_id": fip["id"]})).json()["ports"] == []


async def test_bad_requests(w: L3World) -> None:
    a = w.alice.neutron
    neutron_error(await a.post("/floatingips", {"floatingip": {"floating_network_id": w.alice.network["id"]}}), 400)
    neutron_error(await a.post("/floatingips", {"floatingip": {"floating_network_id": str(uuid.uuid4())}}), 404)
    neutron_error(await a.post("/floatingips", {"floatingip": {}}), 400)
    neutron_error(await a.post("/floatingips", {"floatingip": {"floating_network_id": "x"}}), 400)
    neutron_error(await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"],
                                                               "status": "ACTIVE"}}), 400)
    # an unreachable subnet: no router joins it to the external network
    lonely = await a.network(name="lonely")
    await a.subnet(lonely["id"])
    port = await a.port(lonely["id"])
    neutron_error(await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"],
                                                               "port_id": port["id"]}}), 404,
                  "ExternalGatewayForFloatingIPNotFound")
    # a chosen address is the admin's (or a manager's) to ask for
    wanted = str(list(ipaddress.ip_network(w.public_subnet["cidr"]).hosts())[-2])
    neutron_error(await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"],
                                                               "floating_ip_address": wanted}}), 403)
    fip = (await w.admin.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"],
                                                              "floating_ip_address": wanted}},
                              expect=201)).json()["floatingip"]
    assert fip["floating_ip_address"] == wanted
    neutron_error(await w.admin.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"],
                                                                     "floating_ip_address": wanted}}), 409)
    await w.admin.delete(f"/floatingips/{fip['id']}", expect=204)
    await a.delete(f"/ports/{port['id']}", expect=204)


async def test_projects_stay_apart(w: L3World) -> None:
    a, b = w.alice.neutron, w.bob.neutron
    alices_port = await a.port(w.alice.network["id"])
    fip = (await b.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"]}},
                        expect=201)).json()["floatingip"]
    neutron_error(await b.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": alices_port["id"]}}), 404)
    neutron_error(await a.get(f"/floatingips/{fip['id']}"), 404)
    neutron_error(await a.delete(f"/floatingips/{fip['id']}"), 404)
    assert fip["id"] not in [f["id"] for f in (await a.get("/floatingips")).json()["floatingips"]]
    await b.delete(f"/floatingips/{fip['id']}", expect=204)
    await a.delete(f"/ports/{alices_port['id']}", expect=204)


async def test_port_forwardings(w: L3World) -> None:
    a = w.alice.neutron
    port = await a.port(w.alice.network["id"])
    address = port["fixed_ips"][0]["ip_address"]
    fip = (await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"]}},
                        expect=201)).json()["floatingip"]
    base = f"/floatingips/{fip['id']}/port_forwardings"
    pf = (await a.post(base, {"port_forwarding": {"protocol": "tcp", "internal_ip_address": address,
                                                  "internal_port": 22, "external_port": 2222,
                                                  "internal_port_id": port["id"], "description": "ssh"}},
                       expect=201)).json()["port_forwarding"]
    assert (pf["external_port"], pf["internal_port"], pf["protocol"], pf["description"]) == (2222, 22, "tcp", "ssh")
    shown = (await a.get(f"/floatingips/{fip['id']}", expect=200)).json()["floatingip"]
    assert shown["router_id"] == w.router["id"] and shown["port_forwardings"][0]["id"] == pf["id"]  # type: ignore[attr-defined]
    assert (await a.get(base, expect=200)).json()["port_forwardings"] == [pf]
    neutron_error(await a.post(base, {"port_forwarding": {"protocol": "tcp", "internal_ip_address": address,
                                                          "internal_port": 23, "external_port": 2222,
                                                          "internal_port_id": port["id"]}}), 400)
    neutron_error(await a.post(base, {"port_forwarding": {"protocol": "icmp", "internal_ip_address": address,
                                                          "internal_port": 1, "external_port": 1,
                                                          "internal_port_id": port["id"]}}), 400)
    neutron_error(await a.post(base, {"port_forwarding": {"protocol": "tcp", "internal_ip_address": "10.250.0.1",
                                                          "internal_port": 1, "external_port": 1,
                                                          "internal_port_id": port["id"]}}), 400)
    # a floating IP with forwardings is not associated with a port as a whole
    neutron_error(await a.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}}), 409)
    upd = (await a.put(f"{base}/{pf['id']}", {"port_forwarding": {"external_port": 2200}}, expect=200)).json()[
        "port_forwarding"]
    assert upd["external_port"] == 2200
    neutron_error(await w.bob.neutron.get(f"{base}/{pf['id']}"), 404)
    await a.delete(f"{base}/{pf['id']}", expect=204)
    neutron_error(await a.get(f"{base}/{pf['id']}"), 404)
    await a.delete(f"/floatingips/{fip['id']}", expect=204)
    await a.delete(f"/ports/{port['id']}", expect=204)


async def test_an_external_network_goes_with_its_unassociated_floating_ips(w: L3World) -> None:
    admin = w.admin
    ext = await admin.network(**{"router:external": True})
    await admin.subnet(ext["id"], cidr="172.31.250.0/24", enable_dhcp=False)
    fip = (await admin.post("/floatingips", {"floatingip": {"floating_network_id": ext["id"]}},
                            expect=201)).json()["floatingip"]
    router = await admin.router(external_gateway_info={"network_id": ext["id"]})
    neutron_error(await admin.delete(f"/networks/{ext['id']}"), 409)
    await admin.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {}}}, expect=200)
    await admin.delete(f"/networks/{ext['id']}", expect=204)
    neutron_error(await admin.get(f"/floatingips/{fip['id']}"), 404)
    await admin.delete(f"/routers/{router['id']}", expect=204)
