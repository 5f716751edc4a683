"""Two tiny guests on one OVN network (the network service through its API on a real data plane,
tests/real/ovn_stack.py), their NICs taps on br-int plugged by the qemu driver through
``mcloud.network.host.Host``: each takes its port's address from OVN's DHCP, pings the other
(a script in its user data, the result on its console), and answers a ping from a namespace host
on the same network. That host logs in to both as root over SSH with the key pair of their config
drive (the guest's dropbear; Debian's dbclient here) and runs what Tempest's validation runs: each
guest's hostname is its server's, and its /proc/cpuinfo lists the flavor's vCPUs (1 and 2)."""

from __future__ import annotations

import asyncio

import pytest

from mcloud.compute.drivers.base import VifSpec
from tests.harness import missing
from tests.qemu import Guests, guest_ssh, make_spec, qemu_missing, ssh_key, tiny, wait_console
from tests.real.ovn_stack import ovn_stack

pytestmark = pytest.mark.real


def pinger(address: str) -> str:
    return f"""#!/bin/sh
i=0
while [ $i -lt 60 ]; do
  if ping -c 1 -W 1 {address} >/dev/null 2>&1; then echo "ping {address} ok after $i"; exit 0; fi
  i=$((i + 1))
done
echo "ping {address} failed"
exit 1
"""


async def test_two_guests_on_one_network_get_dhcp_and_ping_each_other(tmp_path):
    if (why := qemu_missing()) is not None:
        missing(why)
    (tmp_path / "cloud").mkdir()
    async with ovn_stack(tmp_path / "cloud") as stack:
        n = stack.neutron
        net, subnet = await n.net_with_subnet(cidr="10.44.0.0/24")
        ports = [await stack.port(net["id"], fixed_ips=[{"subnet_id": subnet["id"], "ip_address": ip}])
                 for ip in ("10.44.0.11", "10.44.0.12")]
        key, public_key = ssh_key(tmp_path)
        async with Guests(tmp_path / "qemu", network_host=stack.ovn.host) as guests:
            d = guests.driver
            assert d.network == "host"
            specs = []
            for port, peer, vcpus in ((ports[0], "10.44.0.12", 1), (ports[1], "10.44.0.11", 2)):
                vif = VifSpec(port_id=port["id"], mac=port["mac_address"], network_id=net["id"], mtu=net.get("mtu"))
                spec = make_spec(tiny(), user_data=pinger(peer), vifs=[vif], public_key=public_key, vcpus=vcpus)
                await d.spawn(spec)
                specs.append(spec)
            for port in ports:
                await stack.wait_status(port["id"], "ACTIVE", timeout=30)
            seen = [await wait_console(d, s.uuid, lambda c: c.script_exit is not None, timeout=150) for s in specs]
            for guest, port, peer in zip(seen, ports, ("10.44.0.12", "10.44.0.11")):
                assert guest.leases == {"eth0": f"{port['fixed_ips'][0]['ip_address']}/24"}
                assert guest.macs["eth0"] == port["mac_address"]
                assert guest.script_exit == 0, guest.script_output
                assert guest.script_output.startswith(f"ping {peer} ok")
            # a host on the network (a namespace plugged as a port) reaches both guests
            host_port = await stack.port(net["id"])
            ns, _ = await stack.guest(host_port, "pinger")
            for ip in ("10.44.0.11", "10.44.0.12"):
                assert await asyncio.to_thread(stack.ovn.ns.wait_ping, ns, ip, 20) >= 0
            # and logs in over SSH with the key pair, as Tempest's validation does (its shell prologue)
            for spec, ip in zip(specs, ("10.44.0.11", "10.44.0.12")):
                said = await asyncio.to_thread(guest_ssh, ns, ip, key, "set -eu -o pipefail; PATH=$PATH:/sbin; "
                                               "hostname; grep -c ^processor /proc/cpuinfo")
                assert said.split() == [spec.hostname, str(spec.flavor.vcpus)], said
            # the taps go with the instances
            plugged = await asyncio.to_thread(stack.ovn.host.plugged)
            assert {p["id"] for p in ports} <= set(plugged)
            for spec in specs:
                await d.destroy(spec.uuid)
            plugged = await asyncio.to_thread(stack.ovn.host.plugged)
            assert not {p["id"] for p in ports} & set(plugged)
            for port in ports:
                await stack.wait_status(port["id"], "DOWN", timeout=30)
