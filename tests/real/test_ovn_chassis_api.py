"""Two chassis through the Neutron API, as the compute service uses them: it only sets
``binding:host_id`` on a guest's port, and the ovn driver pins the port to that host's chassis
(``requested-chassis``). A cloud on its own data plane (tests/real/ovn_stack.py) plus an extra
chassis ``compute-2`` (tests/ovn.py ``add_chassis``); guests are namespaces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.real.ovn_stack import Stack, ovn_stack

pytestmark = pytest.mark.real

COMPUTE = "compute-2"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with ovn_stack(tmp_path_factory.mktemp("ovn-chassis-api")) as s:
        await asyncio.to_thread(s.ovn.add_chassis, COMPUTE)
        yield s


async def test_a_port_bound_to_a_host_through_the_api_goes_active_on_that_hosts_chassis(stack: Stack) -> None:
    n, ovn = stack.neutron, stack.ovn
    compute = ovn.chassis[COMPUTE]
    net = await n.network(name="private")
    await n.subnet(net["id"], cidr="10.66.0.0/24")
    a = await stack.port(net["id"], name="a")  # on the controller's host
    b = await n.port(net["id"], name="b", **{"binding:host_id": COMPUTE})
    assert b["binding:vif_type"] == "ovs"
    assert ovn.nb("get", "Logical_Switch_Port", b["id"], "options:requested-chassis").strip() == COMPUTE
    await stack.allow((await stack.default_group(a))["id"], "icmp")
    ns_a, lease_a = await stack.guest(a, "a")
    ns_b = ovn.ns.add("b")
    await asyncio.to_thread(compute.host.plug_namespace, b["id"], b["mac_address"], ns_b)
    await stack.wait_status(b["id"])
    lease_b = await asyncio.to_thread(ovn.ns.dhcp, ns_b, "eth0")
    assert lease_b["ip"] == b["fixed_ips"][0]["ip_address"]
    await asyncio.to_thread(ovn.ns.wait_ping, ns_a, lease_b["ip"])
    assert await asyncio.to_thread(ovn.ns.ping, ns_b, lease_a["ip"])

    # bound to the other host while still plugged on compute-2: compute-2 lets it go (DOWN)
    await n.put(f"/ports/{b['id']}", {"port": {"binding:host_id": ovn.options.chassis}}, expect=200)
    await stack.wait_status(b["id"], "DOWN")
    assert await asyncio.to_thread(ovn.ns.no_ping, ns_a, lease_b["ip"])
    # plugged where it is now bound: ACTIVE again, and reachable
    await asyncio.to_thread(compute.host.unplug, b["id"])
    await asyncio.to_thread(ovn.host.plug_namespace, b["id"], b["mac_address"], ns_b)
    ovn.ns.run(ns_b, "ip", "addr", "add", f"{lease_b['ip']}/24", "dev", "eth0")
    await stack.wait_status(b["id"])
    await asyncio.to_thread(ovn.ns.wait_ping, ns_a, lease_b["ip"])
    # unbound: no chassis is requested, whichever has it plugged binds it
    await n.put(f"/ports/{b['id']}", {"port": {"binding:host_id": ""}}, expect=200)
    assert "requested-chassis" not in ovn.nb("get", "Logical_Switch_Port", b["id"], "options")
