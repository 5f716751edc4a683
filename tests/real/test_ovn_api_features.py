"""Features of the Neutron API shown carrying traffic on the real OVN data plane, through the
network service (the API, driver ovn), with namespaces as guests:

- QoS: a bandwidth_limit rule limits what a guest sends (egress) or receives (ingress) to the
  configured rate (OVN QoS rows -> OpenFlow meters, which the userspace datapath runs); a rule's
  change and the policy's removal reach the data plane; a dscp_marking rule rewrites the DSCP
  of what the guest sends (its own policy, or its network's);
- trunks: a VLAN-aware guest on the parent port reaches the parent's network untagged and the
  subport's network through an 802.1Q sub-interface (DHCP from OVN over VLAN 101 too); a
  subport taken off the trunk carries nothing, put back it does again;
- port forwarding: a TCP connection from the outside to floating IP:external port reaches the
  listener on the internal port (the guest sees the real client address); other ports of the
  floating IP, and a deleted forwarding, reach nothing;
- ports bound on a host report Neutron's OVN binding (vif_type ovs, vif_details)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.real.ovn_stack import Stack, ovn_stack

pytestmark = pytest.mark.real

#: the bandwidth limit the QoS test configures (kbit/s; its burst, a policer's bucket and what a
#: stream can get above the rate over a measurement, is a fifth of it), and the band a TCP
#: stream must fall in
LIMIT_KBPS = 10_000
BAND = (0.5, 1.3)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with ovn_stack(tmp_path_factory.mktemp("ovn-features")) as s:
        yield s


async def qos_policy(stack: Stack, name: str, collection: str, rule: dict[str, Any]) -> tuple[str, str]:
    """A QoS policy with one rule; (policy id, rule id)."""
    n = stack.neutron
    policy = (await n.post("/qos/policies", {"policy": {"name": name}}, expect=201)).json()["policy"]
    made = (await n.post(f"/qos/policies/{policy['id']}/{collection}", {collection[:-1]: rule},
                         expect=201)).json()[collection[:-1]]
    return policy["id"], made["id"]


async def settled(stack: Stack) -> None:
    """Until ovn-northd and ovn-controller have applied what the API just changed."""
    await asyncio.to_thread(stack.ovn.wait_flows)


async def set_port_policy(stack: Stack, port: dict[str, Any], policy_id: str | None) -> None:
    await stack.neutron.put(f"/ports/{port['id']}", {"port": {"qos_policy_id": policy_id}}, expect=200)
    await settled(stack)


async def rate(stack: Stack, receiver: str, address: str, sender: str, seconds: float = 1.5) -> float:
    """Mbit/s of one TCP stream from ``sender`` to ``address`` (in ``receiver``)."""
    return await asyncio.to_thread(stack.ovn.ns.tcp_rate, receiver, address, sender, seconds) / 1e6


def within(measured: float, kbps: int) -> bool:
    return BAND[0] * kbps / 1000 <= measured <= BAND[1] * kbps / 1000


async def test_qos_bandwidth_limits_and_dscp_marking(stack: Stack) -> None:
    n = stack.neutron
    ns = stack.ovn.ns
    net = await n.network(name="qos")
    await n.subnet(net["id"], cidr="10.90.0.0/24")
    a = await stack.port(net["id"], name="sender")
    b = await stack.port(net["id"], name="receiver")
    # a port bound on this chassis reports the binding Neutron's OVN driver reports
    assert a["binding:vif_type"] == "ovs"
    assert a["binding:vif_details"] == {"port_filter": True, "connectivity": "l2", "bridge_name": "br-int",
                                        "datapath_type": stack.ovn.options.effective_datapath(),
                                        "bound_drivers": {"0": "ovn"}}
    ns_a, lease_a = await stack.guest(a, "qos-a")
    ns_b, lease_b = await stack.guest(b, "qos-b")
    ip_a, ip_b = lease_a["ip"], lease_b["ip"]
    await asyncio.to_thread(ns.wait_ping, ns_a, ip_b)

    async def limited_to(kbps: int, what: str) -> float:
        """The rate a -> b, asserted within the band around ``kbps``."""
        measured = await rate(stack, ns_b, ip_b, ns_a)
        assert within(measured, kbps), f"{what} limit {kbps} kbit/s, measured {measured:.2f} Mbit/s"
        return measured

    async def limit(port: dict[str, Any], direction: str) -> tuple[str, float]:
        """A policy limiting ``port`` in ``direction`` to LIMIT_KBPS; (its rule's id, the rate a -> b)."""
        policy, rule = await qos_policy(stack, direction, "bandwidth_limit_rules", {
            "max_kbps": LIMIT_KBPS, "max_burst_kbps": LIMIT_KBPS // 5, "direction": direction})
        await set_port_policy(stack, port, policy)
        return f"/qos/policies/{policy}/bandwidth_limit_rules/{rule}", await limited_to(LIMIT_KBPS, direction)

    free = await rate(stack, ns_b, ip_b, ns_a, 1.0)
    assert free > 5 * LIMIT_KBPS / 1000, f"unlimited only {free:.1f} Mbit/s: too slow to show a limit"
    # egress (from the guest): the sender's port limited
    egress_rule, limited = await limit(a, "egress")
    # a rule's change reaches the port that has the policy
    await n.put(egress_rule, {"bandwidth_limit_rule": {"max_kbps": LIMIT_KBPS // 2,
                                                       "max_burst_kbps": LIMIT_KBPS // 10}}, expect=200)
    await settled(stack)
    halved = await limited_to(LIMIT_KBPS // 2, "changed")
    # without the policy the port is free again
    await set_port_policy(stack, a, None)
    assert await rate(stack, ns_b, ip_b, ns_a, 1.0) > 5 * LIMIT_KBPS / 1000
    # ingress (to the guest): the receiver's port limited, the sender's free
    _, received = await limit(b, "ingress")
    await set_port_policy(stack, b, None)
    print(f"unlimited {free:.0f} Mbit/s; limited to {LIMIT_KBPS / 1000:g} Mbit/s: egress {limited:.2f}, "
          f"ingress {received:.2f}; to {LIMIT_KBPS / 2000:g}: {halved:.2f}")

    # DSCP: what leaves the marked port carries the mark (ECN bits kept); the other way is untouched
    assert await asyncio.to_thread(ns.udp_tos, ns_b, ip_b, ns_a, tos=0x21) == 0x21
    dscp, _ = await qos_policy(stack, "dscp", "dscp_marking_rules", {"dscp_mark": 26})
    await set_port_policy(stack, a, dscp)
    assert await asyncio.to_thread(ns.udp_tos, ns_b, ip_b, ns_a, tos=0x21) == 26 << 2 | 0x1
    assert await asyncio.to_thread(ns.udp_tos, ns_a, ip_a, ns_b, tos=0x20) == 0x20
    # the network's policy applies to its ports that have none of their own
    await set_port_policy(stack, a, None)
    assert await asyncio.to_thread(ns.udp_tos, ns_b, ip_b, ns_a) == 0
    await n.put(f"/networks/{net['id']}", {"network": {"qos_policy_id": dscp}}, expect=200)
    await settled(stack)
    assert await asyncio.to_thread(ns.udp_tos, ns_b, ip_b, ns_a) == 26 << 2


async def test_trunk_carries_a_subport_vlan_to_a_vlan_aware_guest(stack: Stack) -> None:
    n = stack.neutron
    ns = stack.ovn.ns
    parent_net = await n.network(name="trunk-parent")
    await n.subnet(parent_net["id"], cidr="10.91.0.0/24")
    vlan_net = await n.network(name="trunk-vlan101")
    await n.subnet(vlan_net["id"], cidr="10.92.0.0/24")
    parent = await stack.port(parent_net["id"], name="parent")
    sub = await n.port(vlan_net["id"], name="subport")
    subports = {"sub_ports": [{"port_id": sub["id"], "segmentation_type": "vlan", "segmentation_id": 101}]}
    trunk = (await n.post("/trunks", {"trunk": {"name": "t", "port_id": parent["id"], **subports}},
                          expect=201)).json()["trunk"]
    _, lease_on_parent_net = await stack.guest(await stack.port(parent_net["id"], name="peer"), "peer")
    ns_vlan_peer, lease_on_vlan_net = await stack.guest(await stack.port(vlan_net["id"], name="vpeer"), "vpeer")

    # the guest: its NIC is the parent port; VLAN 101 on it, with the subport's MAC, is the subport
    ns_t, lease_t = await stack.guest(parent, "trunk")
    assert lease_t["ip"] == parent["fixed_ips"][0]["ip_address"]
    ns.vlan(ns_t, "eth0", 101, "eth0.101", sub["mac_address"])
    lease_sub = await asyncio.to_thread(ns.dhcp, ns_t, "eth0.101")  # OVN's DHCP answers on the VLAN
    assert lease_sub["ip"] == sub["fixed_ips"][0]["ip_address"] and lease_sub["router"] == "10.92.0.1"
    await stack.wait_status(sub["id"])
    assert (await n.get(f"/trunks/{trunk['id']}", expect=200)).json()["trunk"]["status"] == "ACTIVE"
    await asyncio.to_thread(ns.wait_ping, ns_t, lease_on_vlan_net["ip"])      # tagged, on the subport's network
    assert await asyncio.to_thread(ns.ping, ns_vlan_peer, lease_sub["ip"])
    await asyncio.to_thread(ns.wait_ping, ns_t, lease_on_parent_net["ip"])    # untagged, on the parent's
    # off the trunk, the subport's VLAN carries nothing; back on, it does again
    await n.put(f"/trunks/{trunk['id']}/remove_subports", {"sub_ports": [{"port_id": sub["id"]}]}, expect=200)
    await settled(stack)
    assert await asyncio.to_thread(ns.no_ping, ns_t, lease_on_vlan_net["ip"])
    assert await asyncio.to_thread(ns.ping, ns_t, lease_on_parent_net["ip"])
    await n.put(f"/trunks/{trunk['id']}/add_subports", subports, expect=200)
    await asyncio.to_thread(ns.wait_ping, ns_t, lease_on_vlan_net["ip"])


async def test_port_forwarding_reaches_the_internal_port(stack: Stack) -> None:
    n = stack.neutron
    ns = stack.ovn.ns
    public = await n.network(name="public", **{"router:external": True, "provider:network_type": "flat",
                                                "provider:physical_network": "public"})
    await n.subnet(public["id"], cidr="172.24.8.0/24", gateway_ip="172.24.8.1", enable_dhcp=False)
    outside = stack.ovn.outside("172.24.8.1/24")
    net = await n.network(name="pf-inside")
    sub = await n.subnet(net["id"], cidr="10.93.0.0/24")
    router = (await n.post("/routers", {"router": {"name": "r", "external_gateway_info": {
        "network_id": public["id"]}}}, expect=201)).json()["router"]
    await n.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}, expect=200)
    vm = await stack.port(net["id"], name="server")
    ns_vm, lease = await stack.guest(vm, "server")
    await stack.allow((await stack.default_group(vm))["id"], "tcp", 8022)
    fip = (await n.post("/floatingips", {"floatingip": {"floating_network_id": public["id"]}},
                        expect=201)).json()["floatingip"]
    address = fip["floating_ip_address"]
    pf = (await n.post(f"/floatingips/{fip['id']}/port_forwardings", {"port_forwarding": {
        "protocol": "tcp", "external_port": 2222, "internal_port": 8022, "internal_port_id": vm["id"],
        "internal_ip_address": lease["ip"]}}, expect=201)).json()["port_forwarding"]
    await settled(stack)
    # the outside connects to floating IP:2222 and talks to the guest's listener on 8022, which
    # sees the client's own address (a port forwarding translates the destination only)
    peer = await asyncio.to_thread(ns.tcp_exchange, ns_vm, "0.0.0.0", 8022, outside, address, 2222)
    assert peer == "172.24.8.1"
    assert await asyncio.to_thread(ns.tcp_refused, outside, address, 8022, 1)  # only what is forwarded
    # deleted, the forwarding reaches nothing
    await n.delete(f"/floatingips/{fip['id']}/port_forwardings/{pf['id']}", expect=204)
    await settled(stack)
    assert await asyncio.to_thread(ns.tcp_refused, outside, address, 2222, 1)
    assert not stack.ovn.nb_find("Load_Balancer", f"name=pf-floatingip-{fip['id']}-tcp")
