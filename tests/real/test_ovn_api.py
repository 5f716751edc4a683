"""The whole network service on the real OVN data plane: a cloud (in-process, SQLite) with
``[network] driver = "ovn"`` on a data plane of its own (tests/ovn.py), driven through the
Neutron API as a user would, with namespaces as guests: ports go ACTIVE when plugged, get
their addresses by DHCP from OVN, ping each other through the default security group, reach
the outside through a router, answer on a floating IP; deleting a port removes its rows; a
network deleted behind the service's back comes back with ``sync``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.real.ovn_stack import Stack, ovn_stack

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with ovn_stack(tmp_path_factory.mktemp("ovn-api")) as s:
        yield s


async def test_ports_go_active_get_dhcp_and_ping_through_the_default_group(stack: Stack) -> None:
    n = stack.neutron
    assert (await n.get("/extensions/trunk")).status_code == 200  # the ovn driver's extensions are served
    net = await n.network(name="private")
    assert net["provider:network_type"] == "geneve" and net["mtu"] == 1442
    sub = await n.subnet(net["id"], cidr="10.80.0.0/24", dns_nameservers=["10.80.0.53"])
    started = time.monotonic()
    a = await stack.port(net["id"], name="a")
    b = await stack.port(net["id"], name="b")
    assert a["status"] == "DOWN" and a["security_groups"]  # the project's default group
    ns_a, lease_a = await stack.guest(a, "a")
    ns_b, lease_b = await stack.guest(b, "b")
    assert lease_a["ip"] == a["fixed_ips"][0]["ip_address"] and lease_b["ip"] == b["fixed_ips"][0]["ip_address"]
    assert lease_a["router"] == sub["gateway_ip"] and lease_a["mtu"] == "1442" and lease_a["dns"] == "10.80.0.53"
    # the default group lets members of the group in: a and b ping each other
    await asyncio.to_thread(stack.ovn.ns.wait_ping, ns_a, lease_b["ip"])
    assert await asyncio.to_thread(stack.ovn.ns.ping, ns_b, lease_a["ip"])
    print(f"two ports created, ACTIVE, addressed by DHCP and pinging in {time.monotonic() - started:.2f}s")
    # a port in a group with no ICMP rule is not reachable; adding the rule through the API opens it
    closed = (await n.post("/security-groups", {"security_group": {"name": "closed"}}, expect=201)).json()
    closed = closed["security_group"]
    c = await stack.port(net["id"], name="c", security_groups=[closed["id"]])
    ns_c, lease_c = await stack.guest(c, "c")
    await asyncio.to_thread(stack.ovn.wait_flows)
    assert await asyncio.to_thread(stack.ovn.ns.no_ping, ns_a, lease_c["ip"])
    await n.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": closed["id"], "direction": "ingress", "protocol": "icmp", "ethertype": "IPv4"}},
        expect=201)
    await asyncio.to_thread(stack.ovn.ns.wait_ping, ns_a, lease_c["ip"])
    # deleting a port removes its Northbound rows; unplugged, nothing is left on br-int
    await asyncio.to_thread(stack.ovn.host.unplug, c["id"])
    await stack.wait_status(c["id"], "DOWN")
    await n.delete(f"/ports/{c['id']}", expect=204)
    assert not stack.ovn.nb_find("Logical_Switch_Port", f"name={c['id']}")
    assert not stack.ovn.nb_find("DHCP_Options", f"external_ids:port_id={c['id']}")


async def test_router_floating_ip_and_snat_through_the_api(stack: Stack) -> None:
    n = stack.neutron
    public = await n.network(name="public", **{"router:external": True, "provider:network_type": "flat",
                                                "provider:physical_network": "public"})
    public_sub = await n.subnet(public["id"], cidr="172.24.6.0/24", gateway_ip="172.24.6.1", enable_dhcp=False)
    outside = stack.ovn.outside("172.24.6.1/24")
    net = await n.network(name="inside")
    sub = await n.subnet(net["id"], cidr="10.81.0.0/24")
    router = (await n.post("/routers", {"router": {"name": "r", "external_gateway_info": {
        "network_id": public["id"]}}}, expect=201)).json()["router"]
    gateway_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    await n.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}, expect=200)
    vm = await stack.port(net["id"], name="vm")
    ns_vm, lease = await stack.guest(vm)
    assert lease["router"] == "10.81.0.1"
    # SNAT: the guest reaches the outside as the router's gateway address
    await asyncio.to_thread(stack.ovn.ns.wait_ping, ns_vm, "172.24.6.1")
    assert await asyncio.to_thread(stack.ovn.ns.udp_source, outside, "172.24.6.1", ns_vm) == gateway_ip
    # a floating IP: reachable from the outside once the group lets ICMP in
    await stack.allow((await stack.default_group(vm))["id"], "icmp")
    fip = (await n.post("/floatingips", {"floatingip": {"floating_network_id": public["id"], "port_id": vm["id"]}},
                        expect=201)).json()["floatingip"]
    await asyncio.to_thread(stack.ovn.ns.wait_ping, outside, fip["floating_ip_address"])
    assert await asyncio.to_thread(stack.ovn.ns.udp_source, outside, "172.24.6.1", ns_vm) == \
        fip["floating_ip_address"]
    # disassociated: gone from the outside, SNAT again
    await n.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": None}}, expect=200)
    await asyncio.to_thread(stack.ovn.wait_flows)
    assert await asyncio.to_thread(stack.ovn.ns.no_ping, outside, fip["floating_ip_address"])
    assert await asyncio.to_thread(stack.ovn.ns.udp_source, outside, "172.24.6.1", ns_vm) == gateway_ip

    # drift: the router's switch deleted behind the service's back comes back with sync
    stack.ovn.nb("ls-del", f"neutron-{net['id']}")
    await asyncio.to_thread(stack.ovn.wait_flows)
    assert await asyncio.to_thread(stack.ovn.ns.no_ping, ns_vm, "172.24.6.1", 1)
    await stack.cloud.network.sync()
    assert stack.ovn.nb_find("Logical_Switch", f"name=neutron-{net['id']}")
    await asyncio.to_thread(stack.ovn.ns.wait_ping, ns_vm, "172.24.6.1")
