"""The ovn driver on a real OVN/OVS data plane (tests/ovn.py), driven directly with views, with
network namespaces as guests: switching, security groups, routing, DHCP, floating IPs and
SNAT, deletion and reconciliation of the Northbound database."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from mcloud.network.drivers import ovn as ovn_driver
from mcloud.network.drivers.base import FloatingIPView, RouterView
from tests.ovn import OvnHarness
from tests.real import ovn_views as v

pytestmark = pytest.mark.real


class Statuses:
    def __init__(self) -> None:
        self.up: dict[str, bool] = {}
        self.changed = asyncio.Event()

    async def __call__(self, port_id: str, up: bool) -> None:
        self.up[port_id] = up
        self.changed.set()

    async def wait(self, port_id: str, up: bool = True, timeout: float = 20) -> None:
        async def until() -> None:
            while self.up.get(port_id) is not up:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), timeout)


@pytest.fixture(scope="module")
async def driver(ovn: OvnHarness) -> AsyncIterator[ovn_driver.OvnDriver]:
    d = ovn_driver.create(ovn.driver_options(), ovn.root)
    d.statuses = Statuses()  # type: ignore[attr-defined]
    await d.start(d.statuses)  # type: ignore[attr-defined]
    yield d
    await d.close()


async def guest(ovn: OvnHarness, driver: ovn_driver.OvnDriver, port, cidr_len: int = 24,
                gateway: str | None = None, label: str = "vm") -> str:
    """A namespace plugged as ``port`` with its fixed IP configured; waits until the port is up."""
    ns = ovn.ns.add(label)
    await asyncio.to_thread(ovn.host.plug_namespace, port.id, port.mac_address, ns)
    if port.fixed_ips:
        ovn.ns.run(ns, "ip", "addr", "add", f"{port.fixed_ips[0].ip_address}/{cidr_len}", "dev", "eth0")
    if gateway:
        ovn.ns.run(ns, "ip", "route", "add", "default", "via", gateway)
    await driver.statuses.wait(port.id)  # type: ignore[attr-defined]
    return ns


async def lan(driver: ovn_driver.OvnDriver, cidr: str, dhcp: bool = True, **network: object):
    """A network with one IPv4 subnet (gateway .1), ensured on the driver."""
    net = v.network(**network)
    sub = v.subnet(net, cidr, cidr.rsplit(".", 1)[0] + ".1", enable_dhcp=dhcp)
    await driver.ensure_network(net)
    await driver.ensure_subnet(sub)
    return net, sub


async def guests(ovn: OvnHarness, driver: ovn_driver.OvnDriver, net, sub, ips: tuple[str, ...],
                 groups: tuple[str, ...], gateway: str | None = None) -> list[tuple[object, str]]:
    """A port per address, ensured, each plugged into a namespace of its own: (port, namespace)."""
    found = []
    for ip in ips:
        p = v.port(net, sub, ip, groups)
        await driver.ensure_port(p)
        found.append((p, await guest(ovn, driver, p, gateway=gateway)))
    return found


async def test_two_ports_on_one_network_ping_each_other(ovn: OvnHarness, driver: ovn_driver.OvnDriver) -> None:
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net, sub = await lan(driver, "10.10.0.0/24")
    (a, ns_a), (b, ns_b) = await guests(ovn, driver, net, sub, ("10.10.0.11", "10.10.0.12"), (sg.id,))
    assert driver.statuses.up[a.id] and driver.statuses.up[b.id]  # type: ignore[attr-defined]
    await asyncio.to_thread(ovn.ns.wait_ping, ns_a, "10.10.0.12")
    assert await asyncio.to_thread(ovn.ns.ping, ns_b, "10.10.0.11")
    # port security: a guest that takes another address is not let through
    ovn.ns.run(ns_b, "ip", "addr", "add", "10.10.0.99/24", "dev", "eth0")
    assert await asyncio.to_thread(ovn.ns.no_ping, ns_a, "10.10.0.99")


async def test_security_group_without_icmp_blocks_ping_until_the_rule_is_added(
        ovn: OvnHarness, driver: ovn_driver.OvnDriver) -> None:
    client_sg = v.open_group()
    server_sg = v.group(v.rule("egress"), v.rule("ingress", "tcp", port_range_min=22, port_range_max=22))
    await driver.ensure_security_group(client_sg)
    await driver.ensure_security_group(server_sg)
    net, sub = await lan(driver, "10.11.0.0/24")
    [(_, ns_client)] = await guests(ovn, driver, net, sub, ("10.11.0.11",), (client_sg.id,))
    await guests(ovn, driver, net, sub, ("10.11.0.12",), (server_sg.id,))
    await asyncio.to_thread(ovn.wait_flows)
    assert await asyncio.to_thread(ovn.ns.no_ping, ns_client, "10.11.0.12")
    server_sg = dataclasses.replace(server_sg, rules=(*server_sg.rules, v.rule("ingress", "icmp")))
    await driver.ensure_security_group(server_sg)
    await asyncio.to_thread(ovn.ns.wait_ping, ns_client, "10.11.0.12")
    # and taking it away blocks again (the rule's ACL goes; conntrack keeps no new echo)
    server_sg = dataclasses.replace(server_sg, rules=server_sg.rules[:2])
    await driver.ensure_security_group(server_sg)
    await asyncio.to_thread(ovn.wait_flows)
    assert await asyncio.to_thread(ovn.ns.no_ping, ns_client, "10.11.0.12")


async def test_two_subnets_joined_by_a_router_reach_each_other(ovn: OvnHarness, driver: ovn_driver.OvnDriver) -> None:
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net1, sub1 = await lan(driver, "10.20.1.0/24")
    net2, sub2 = await lan(driver, "10.20.2.0/24")
    router_id = v.new_id()
    interfaces = (v.router_port(net1, sub1, "10.20.1.1", router_id), v.router_port(net2, sub2, "10.20.2.1", router_id))
    await driver.ensure_router(RouterView(id=router_id, project_id=v.PROJECT, name="r1", admin_state_up=True,
                                          gateway_port=None, enable_snat=True, interfaces=interfaces))
    for interface in interfaces:
        await driver.ensure_port(interface)
    [(_, ns_a)] = await guests(ovn, driver, net1, sub1, ("10.20.1.10",), (sg.id,), gateway="10.20.1.1")
    [(_, ns_b)] = await guests(ovn, driver, net2, sub2, ("10.20.2.10",), (sg.id,), gateway="10.20.2.1")
    await asyncio.to_thread(ovn.ns.wait_ping, ns_a, "10.20.2.10")
    assert await asyncio.to_thread(ovn.ns.ping, ns_b, "10.20.1.10")
    assert await asyncio.to_thread(ovn.ns.ping, ns_a, "10.20.1.1")  # the router answers on its port


async def test_a_port_gets_its_address_by_dhcp_from_ovn(ovn: OvnHarness, driver: ovn_driver.OvnDriver) -> None:
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net = v.network(mtu=1400)
    sub = v.subnet(net, "10.30.0.0/24", "10.30.0.1", dns_nameservers=("10.30.0.53",),
                   host_routes=(v.HostRoute("192.168.77.0/24", "10.30.0.254"),))
    await driver.ensure_network(net)
    await driver.ensure_subnet(sub)
    p = v.port(net, sub, "10.30.0.42", (sg.id,))
    await driver.ensure_port(p)
    ns = await guest(ovn, driver, p)
    lease = await asyncio.to_thread(ovn.ns.dhcp, ns, "eth0")
    assert lease["ip"] == "10.30.0.42"
    assert lease["router"] == "10.30.0.1"
    assert lease["dns"].split() == ["10.30.0.53"]
    assert lease["mtu"] == "1400"
    assert lease["staticroutes"].split() == ["192.168.77.0/24", "10.30.0.254", "0.0.0.0/0", "10.30.0.1"]
    assert ovn.ns.addresses(ns, "eth0") == ["10.30.0.42/24"]
    # a port's extra_dhcp_opts reach the guest (its own DHCP_Options row)
    p2 = v.port(net, sub, "10.30.0.43", (sg.id,), extra_dhcp_opts=(v.ExtraDhcpOpt("dns-server", "10.30.0.99"),))
    await driver.ensure_port(p2)
    ns2 = await guest(ovn, driver, p2, label="vm2")
    assert (await asyncio.to_thread(ovn.ns.dhcp, ns2, "eth0"))["dns"].split() == ["10.30.0.99"]
    # a subnet without DHCP answers nothing
    await driver.ensure_subnet(dataclasses.replace(sub, enable_dhcp=False))
    with pytest.raises(RuntimeError, match="no lease"):
        await asyncio.to_thread(ovn.ns.dhcp, ns, "eth0", 3)


async def test_floating_ip_is_reachable_from_outside_and_snat_reaches_out(
        ovn: OvnHarness, driver: ovn_driver.OvnDriver) -> None:
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    ext, ext_sub = await lan(driver, "172.24.4.0/24", dhcp=False, name="public", network_type="flat",
                             physical_network="public", external=True, mtu=1500)
    net, sub = await lan(driver, "10.40.0.0/24", name="private")
    outside = ovn.outside("172.24.4.1/24")
    router_id = v.new_id()
    gw = v.router_port(ext, ext_sub, "172.24.4.10", router_id, "network:router_gateway")
    iface = v.router_port(net, sub, "10.40.0.1", router_id)
    router = RouterView(id=router_id, project_id=v.PROJECT, name="r", admin_state_up=True, gateway_port=gw,
                        enable_snat=True, interfaces=(iface,))
    await driver.ensure_port(gw)
    await driver.ensure_port(iface)
    await driver.ensure_router(router)
    [(vm, ns_vm)] = await guests(ovn, driver, net, sub, ("10.40.0.20",), (sg.id,), gateway="10.40.0.1")
    # SNAT: the guest reaches the outside, as the router's gateway address
    await asyncio.to_thread(ovn.ns.wait_ping, ns_vm, "172.24.4.1")
    assert await asyncio.to_thread(ovn.ns.udp_source, outside, "172.24.4.1", ns_vm) == "172.24.4.10"
    # the floating IP: the outside reaches the guest
    fip = FloatingIPView(id=v.new_id(), project_id=v.PROJECT, floating_ip_address="172.24.4.50",
                         floating_network_id=ext.id, router_id=router_id, port_id=vm.id, fixed_ip_address="10.40.0.20",
                         port_mac=vm.mac_address)
    await driver.ensure_floating_ip(fip)
    await asyncio.to_thread(ovn.ns.wait_ping, outside, "172.24.4.50")
    # the guest's own traffic now leaves as the floating IP: the outside sees that source
    assert await asyncio.to_thread(ovn.ns.udp_source, outside, "172.24.4.1", ns_vm) == "172.24.4.50"
    # disassociated: unreachable again
    await driver.ensure_floating_ip(dataclasses.replace(fip, port_id=None, fixed_ip_address=None, router_id=None))
    await asyncio.to_thread(ovn.wait_flows)
    assert await asyncio.to_thread(ovn.ns.no_ping, outside, "172.24.4.50")
    assert await asyncio.to_thread(ovn.ns.udp_source, outside, "172.24.4.1", ns_vm) == "172.24.4.10"  # SNAT again


async def test_deleting_a_port_removes_its_ovn_rows(ovn: OvnHarness, driver: ovn_driver.OvnDriver) -> None:
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net, sub = await lan(driver, "10.50.0.0/24")
    p = v.port(net, sub, "10.50.0.5", (sg.id,), qos=v.QosRules(egress_max_kbps=1000, dscp_mark=10),
               extra_dhcp_opts=(v.ExtraDhcpOpt("mtu", "1300"),))
    await driver.ensure_port(p)
    assert ovn.nb_find("Logical_Switch_Port", f"name={p.id}")
    assert len(ovn.nb_find("QoS", f"external_ids:neutron\\:port_id={p.id}")) == 1
    assert len(ovn.nb_find("DHCP_Options", f"external_ids:port_id={p.id}")) == 1
    pg = ovn.nb("--bare", "--columns=ports", "find", "Port_Group", f"name=pg_{sg.id.replace('-', '_')}").split()
    assert len(pg) == 1
    await driver.delete_port(p.id)
    assert not ovn.nb_find("Logical_Switch_Port", f"name={p.id}")
    assert not ovn.nb_find("QoS", f"external_ids:neutron\\:port_id={p.id}")
    assert not ovn.nb_find("DHCP_Options", f"external_ids:port_id={p.id}")
    assert not ovn.nb("--bare", "--columns=ports", "find", "Port_Group", f"name=pg_{sg.id.replace('-', '_')}").split()
    assert not [k for k in await driver.owned_rows() if p.id in k]
    await driver.delete_port(p.id)  # idempotent


def _arp_request(mac: str, ip: str, target: str) -> bytes:
    import ipaddress
    import struct

    raw_mac = bytes.fromhex(mac.replace(":", ""))
    return (b"\xff" * 6 + raw_mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + raw_mac
            + ipaddress.IPv4Address(ip).packed + b"\x00" * 6 + ipaddress.IPv4Address(target).packed)


async def test_a_guest_tap_is_plugged_and_carries_traffic(ovn: OvnHarness, driver: ovn_driver.OvnDriver) -> None:
    """What the compute service does for a guest: plug a tap, hand its descriptor to qemu. Here
    the test is qemu: it writes an ARP request into the descriptor and reads the answer."""
    import os
    import select

    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net, sub = await lan(driver, "10.70.0.0/24")
    vm = v.port(net, sub, "10.70.0.10", (sg.id,))
    peer = v.port(net, sub, "10.70.0.11", (sg.id,))
    await driver.ensure_port(vm)
    await driver.ensure_port(peer)
    await guest(ovn, driver, peer)
    name = await asyncio.to_thread(ovn.host.plug_tap, vm.id, vm.mac_address, 1442)
    assert name == f"tap{vm.id[:11]}"
    assert ovn.host.plugged()[vm.id] == name
    await driver.statuses.wait(vm.id)  # type: ignore[attr-defined]
    fd = ovn.host.open_tap(name)
    try:
        peer_mac = bytes.fromhex(peer.mac_address.replace(":", ""))
        deadline = asyncio.get_running_loop().time() + 10
        answered = False
        while not answered and asyncio.get_running_loop().time() < deadline:
            os.write(fd, _arp_request(vm.mac_address, "10.70.0.10", "10.70.0.11"))
            while select.select([fd], [], [], 0.5)[0]:
                frame = os.read(fd, 2048)
                if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02" and frame[22:28] == peer_mac:
                    answered = True
                    break
        assert answered, "no ARP reply for the peer came back through the tap"
    finally:
        os.close(fd)
    await asyncio.to_thread(ovn.host.unplug, vm.id)
    assert vm.id not in ovn.host.plugged()
    await driver.statuses.wait(vm.id, up=False)  # type: ignore[attr-defined]
    assert ovn.dataplane.run("ip", "link", "show", name, namespace=True, check=False) == ""
