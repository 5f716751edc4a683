"""Many compute hosts on one OVN (``mcloud.network.chassis``): the session's data plane
(tests/ovn.py, the controller's chassis, its tunnel endpoint on br-phy) and an extra chassis
``compute-2`` in a namespace of its own (its own ovsdb-server, ovs-vswitchd on the userspace
datapath and ovn-controller), joined by a veth between the two namespaces. The ovn driver is
driven with views, guests are namespaces, each plugged on the chassis its port is bound to
(``binding:host_id`` -> ``requested-chassis``); traffic between chassis crosses Geneve."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mcloud.network.chassis import Chassis
from mcloud.network.drivers import ovn as ovn_driver
from mcloud.network.drivers.base import FloatingIPView, RouterView
from tests.netns import Pinger
from tests.ovn import OvnHarness
from tests.real import ovn_views as v
from tests.real.test_ovn_dataplane import Statuses, _arp_request, lan

pytestmark = pytest.mark.real

COMPUTE = "compute-2"


@pytest.fixture(scope="module")
async def driver(ovn: OvnHarness) -> AsyncIterator[ovn_driver.OvnDriver]:
    d = ovn_driver.create(ovn.driver_options(), ovn.root)
    d.statuses = Statuses()  # type: ignore[attr-defined]
    await d.start(d.statuses)  # type: ignore[attr-defined]
    yield d
    await d.close()


@pytest.fixture(scope="module")
def compute(ovn: OvnHarness) -> Iterator[Chassis]:
    chassis = ovn.add_chassis(COMPUTE)
    yield chassis
    ovn.remove_chassis(COMPUTE)


def bound_chassis(ovn: OvnHarness, port_id: str) -> str:
    """The name of the chassis the Southbound database has ``port_id`` bound to ("" if none)."""
    uuid = ovn.sb("--bare", "--columns=chassis", "find", "Port_Binding", f"logical_port={port_id}").strip()
    return ovn.sb("--bare", "--columns=name", "list", "Chassis", uuid).strip() if uuid else ""


async def plugged_guest(ovn: OvnHarness, driver: ovn_driver.OvnDriver, port, chassis: Chassis | None,
                        label: str) -> tuple[str, str]:
    """A namespace plugged as ``port`` on ``chassis`` (None: the controller's), its address by
    DHCP from OVN (served by that chassis's own ovn-controller); (namespace, address)."""
    ns = ovn.ns.add(label)
    host = chassis.host if chassis is not None else ovn.host
    await asyncio.to_thread(host.plug_namespace, port.id, port.mac_address, ns)
    await driver.statuses.wait(port.id)  # type: ignore[attr-defined]
    lease = await asyncio.to_thread(ovn.ns.dhcp, ns, "eth0")
    return ns, lease["ip"]


async def test_guests_on_two_chassis_get_dhcp_and_ping_across_the_tunnel(
        ovn: OvnHarness, driver: ovn_driver.OvnDriver, compute: Chassis) -> None:
    assert compute.registered()
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net, sub = await lan(driver, "10.61.0.0/24")
    a = v.port(net, sub, "10.61.0.11", (sg.id,), host_id=ovn.options.chassis)
    b = v.port(net, sub, "10.61.0.12", (sg.id,), host_id=COMPUTE)
    for p in (a, b):
        await driver.ensure_port(p)
    ns_a, ip_a = await plugged_guest(ovn, driver, a, None, "vm-a")
    ns_b, ip_b = await plugged_guest(ovn, driver, b, compute, "vm-b")
    assert (ip_a, ip_b) == ("10.61.0.11", "10.61.0.12")
    assert bound_chassis(ovn, a.id) == ovn.options.chassis
    assert bound_chassis(ovn, b.id) == COMPUTE
    await asyncio.to_thread(ovn.ns.wait_ping, ns_a, ip_b)
    assert await asyncio.to_thread(ovn.ns.ping, ns_b, ip_a)
    # a full-sized frame of a Geneve network's MTU (1442) crosses unfragmented: the 1500-byte
    # underlay carries it with Geneve's headers and OVN's option
    for ns in (ns_a, ns_b):
        ovn.ns.run(ns, "ip", "link", "set", "eth0", "mtu", "1442")
    ovn.ns.run(ns_a, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", str(1442 - 28), ip_b)
    ovn.ns.run(ns_b, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", str(1442 - 28), ip_a)
    # the traffic did cross the tunnel: the controller's br-int has a Geneve port to compute-2
    assert _tunnel_to(ovn, compute.options.encap_ip)


async def test_a_port_bound_elsewhere_is_not_claimed_by_the_chassis_it_is_plugged_on(
        ovn: OvnHarness, driver: ovn_driver.OvnDriver, compute: Chassis) -> None:
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net, sub = await lan(driver, "10.62.0.0/24")
    p = v.port(net, sub, "10.62.0.11", (sg.id,), host_id=COMPUTE)
    await driver.ensure_port(p)
    ns = ovn.ns.add("vm")
    await asyncio.to_thread(ovn.host.plug_namespace, p.id, p.mac_address, ns)  # on the wrong chassis
    await asyncio.to_thread(ovn.wait_flows)
    assert bound_chassis(ovn, p.id) == ""
    assert driver.statuses.up.get(p.id) is not True  # type: ignore[attr-defined]
    # bound to the controller's host instead: claimed there
    await driver.ensure_port(dataclasses.replace(p, host_id=ovn.options.chassis))
    await driver.statuses.wait(p.id)  # type: ignore[attr-defined]
    assert bound_chassis(ovn, p.id) == ovn.options.chassis


async def test_a_port_moved_to_another_chassis_keeps_answering(
        ovn: OvnHarness, driver: ovn_driver.OvnDriver, compute: Chassis, capsys: pytest.CaptureFixture[str]) -> None:
    """As a live migration moves a guest: unplugged on the controller's chassis, plugged on
    compute-2 with the same MAC and iface-id, its binding:host_id (requested-chassis) switched;
    a peer pinging it every 20 ms sees a gap, then answers again, now across the tunnel."""
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net, sub = await lan(driver, "10.63.0.0/24")
    mover = v.port(net, sub, "10.63.0.11", (sg.id,), host_id=ovn.options.chassis)
    peer = v.port(net, sub, "10.63.0.12", (sg.id,), host_id=ovn.options.chassis)
    for p in (mover, peer):
        await driver.ensure_port(p)
    ns_mover, ip = await plugged_guest(ovn, driver, mover, None, "mover")
    ns_peer, _ = await plugged_guest(ovn, driver, peer, None, "peer")
    await asyncio.to_thread(ovn.ns.wait_ping, ns_peer, ip)
    pinger = ovn.ns.pinger(ns_peer, ip)
    await asyncio.sleep(1)
    moved_at = time.time()
    await asyncio.to_thread(ovn.host.unplug, mover.id)
    await asyncio.to_thread(compute.host.plug_namespace, mover.id, mover.mac_address, ns_mover)
    ovn.ns.run(ns_mover, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    await driver.ensure_port(dataclasses.replace(mover, host_id=COMPUTE))
    deadline = time.monotonic() + 20
    while bound_chassis(ovn, mover.id) != COMPUTE:
        assert time.monotonic() < deadline, "compute-2 did not claim the moved port"
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)
    replies = pinger.stop()
    after = [t for t in replies if t > moved_at]
    assert after, "the moved guest never answered again"
    assert replies[-1] > time.time() - 1.5, "the moved guest stopped answering"
    gap = Pinger.gap(replies)
    with capsys.disabled():
        print(f"\n[chassis] port moved controller -> {COMPUTE}: longest ping silence {gap * 1000:.0f} ms, "
              f"{len(replies)} replies at 20 ms intervals")
    assert gap < 10, f"the moved guest was silent for {gap:.1f}s"
    assert await asyncio.to_thread(ovn.ns.ping, ns_mover, "10.63.0.12")


#: sends, from namespace-local interface argv[1], the RARP announcement (argv[2] = the MAC) that
#: qemu sends from a guest's NIC once a migration has moved it
_RARP = """
import socket, sys
mac = bytes.fromhex(sys.argv[2].replace(":", ""))
frame = b"\\xff" * 6 + mac + b"\\x80\\x35" + bytes.fromhex("0001080006040003") + mac + bytes(4) + mac + bytes(4)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for _ in range(3):
    s.send(frame.ljust(60, b"\\0"))
"""


async def test_a_live_migration_with_both_chassis_requested_switches_on_the_guests_rarp(
        ovn: OvnHarness, driver: ovn_driver.OvnDriver, compute: Chassis, capsys: pytest.CaptureFixture[str]) -> None:
    """Nova's live migration without multiple port bindings: ``binding:profile`` ``migrating_to``
    asks for both chassis; the destination (a second namespace with the same MAC and address,
    as the incoming qemu) is plugged early but carries nothing until the guest's RARP there;
    then the source goes, the RARP is sent, and the host id moves to the destination."""
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net, sub = await lan(driver, "10.65.0.0/24")
    mover = v.port(net, sub, "10.65.0.11", (sg.id,), host_id=ovn.options.chassis)
    peer = v.port(net, sub, "10.65.0.12", (sg.id,), host_id=ovn.options.chassis)
    for p in (mover, peer):
        await driver.ensure_port(p)
    ns_src, ip = await plugged_guest(ovn, driver, mover, None, "src")
    ns_peer, peer_ip = await plugged_guest(ovn, driver, peer, None, "peer")
    await asyncio.to_thread(ovn.ns.wait_ping, ns_peer, ip)
    await driver.ensure_port(dataclasses.replace(mover, profile={"migrating_to": COMPUTE}))
    ns_dst = ovn.ns.add("dst")
    await asyncio.to_thread(compute.host.plug_namespace, mover.id, mover.mac_address, ns_dst)
    ovn.ns.run(ns_dst, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    # the incoming guest's memory holds the source's neighbour cache (a failed ARP for the peer
    # would hold its first answers back by a second of ARP retries)
    ovn.ns.run(ns_dst, "ip", "neigh", "replace", peer_ip, "lladdr", peer.mac_address, "dev", "eth0")
    await asyncio.to_thread(ovn.wait_flows)
    assert "compute-2" in ovn.nb("get", "Logical_Switch_Port", mover.id, "options:requested-chassis")
    # not activated yet: the destination's traffic goes nowhere, the source still answers
    assert await asyncio.to_thread(ovn.ns.no_ping, ns_dst, peer_ip, 2)
    assert await asyncio.to_thread(ovn.ns.ping, ns_peer, ip)
    pinger = ovn.ns.pinger(ns_peer, ip)
    await asyncio.sleep(1)
    switched_at = time.time()
    await asyncio.to_thread(ovn.host.unplug, mover.id)  # the source qemu ends
    ovn.ns.run(ns_dst, sys.executable, "-c", _RARP, "eth0", mover.mac_address)
    await driver.ensure_port(dataclasses.replace(mover, host_id=COMPUTE, profile={}))
    deadline = time.monotonic() + 20
    while bound_chassis(ovn, mover.id) != COMPUTE:
        assert time.monotonic() < deadline, "compute-2 did not take the port"
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)
    replies = pinger.stop()
    assert [t for t in replies if t > switched_at], "the migrated guest never answered"
    assert replies[-1] > time.time() - 1.5, "the migrated guest stopped answering"
    gap = Pinger.gap(replies)
    with capsys.disabled():
        print(f"\n[chassis] live migration controller -> {COMPUTE} (both requested, RARP activation): "
              f"longest ping silence {gap * 1000:.0f} ms")
    assert gap < 10
    assert await asyncio.to_thread(ovn.ns.ping, ns_dst, peer_ip)
    assert bound_chassis(ovn, mover.id) == COMPUTE
    assert ovn.nb("get", "Logical_Switch_Port", mover.id, "options").count("compute-2") == 1


async def test_a_floating_ip_reaches_a_guest_on_the_other_chassis(
        ovn: OvnHarness, driver: ovn_driver.OvnDriver, compute: Chassis) -> None:
    """The router's gateway is on the controller's chassis (the one with br-ex): the outside
    reaches a guest on compute-2 through it, and over the tunnel."""
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    ext, ext_sub = await lan(driver, "172.24.8.0/24", dhcp=False, name="public", network_type="flat",
                             physical_network="public", external=True, mtu=1500)
    net, sub = await lan(driver, "10.64.0.0/24", name="private")
    outside = ovn.outside("172.24.8.1/24")
    router_id = v.new_id()
    gw = v.router_port(ext, ext_sub, "172.24.8.10", router_id, "network:router_gateway")
    iface = v.router_port(net, sub, "10.64.0.1", router_id)
    await driver.ensure_port(gw)
    await driver.ensure_port(iface)
    await driver.ensure_router(RouterView(id=router_id, project_id=v.PROJECT, name="r", admin_state_up=True,
                                          gateway_port=gw, enable_snat=True, interfaces=(iface,)))
    vm = v.port(net, sub, "10.64.0.20", (sg.id,), host_id=COMPUTE)
    await driver.ensure_port(vm)
    ns_vm, ip = await plugged_guest(ovn, driver, vm, compute, "vm")
    assert bound_chassis(ovn, vm.id) == COMPUTE
    await asyncio.to_thread(ovn.ns.wait_ping, ns_vm, "172.24.8.1")  # SNAT out through the gateway
    await driver.ensure_floating_ip(FloatingIPView(
        id=v.new_id(), project_id=v.PROJECT, floating_ip_address="172.24.8.50", floating_network_id=ext.id,
        router_id=router_id, port_id=vm.id, fixed_ip_address=ip, port_mac=vm.mac_address))
    await asyncio.to_thread(ovn.ns.wait_ping, outside, "172.24.8.50")
    assert await asyncio.to_thread(ovn.ns.udp_source, outside, "172.24.8.1", ns_vm) == "172.24.8.50"


async def test_a_guest_tap_on_the_other_chassis_carries_traffic(
        ovn: OvnHarness, driver: ovn_driver.OvnDriver, compute: Chassis) -> None:
    """What the compute driver does on compute-2: ``chassis.host.plug_tap`` and ``open_tap`` (a
    descriptor for qemu, opened in the chassis's namespace). The test is qemu: it asks by ARP for
    a peer on the controller's chassis through the descriptor and reads the answer."""
    sg = v.open_group()
    await driver.ensure_security_group(sg)
    net, sub = await lan(driver, "10.67.0.0/24")
    vm = v.port(net, sub, "10.67.0.10", (sg.id,), host_id=COMPUTE)
    peer = v.port(net, sub, "10.67.0.11", (sg.id,), host_id=ovn.options.chassis)
    for p in (vm, peer):
        await driver.ensure_port(p)
    await plugged_guest(ovn, driver, peer, None, "peer")
    name = await asyncio.to_thread(compute.host.plug_tap, vm.id, vm.mac_address, 1442)
    await driver.statuses.wait(vm.id)  # type: ignore[attr-defined]
    assert bound_chassis(ovn, vm.id) == COMPUTE
    fd = compute.host.open_tap(name)
    try:
        peer_mac = bytes.fromhex(peer.mac_address.replace(":", ""))
        deadline = time.monotonic() + 10
        answered = False
        while not answered and time.monotonic() < deadline:
            os.write(fd, _arp_request(vm.mac_address, "10.67.0.10", "10.67.0.11"))
            while select.select([fd], [], [], 0.5)[0]:
                frame = os.read(fd, 2048)
                if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02" and frame[22:28] == peer_mac:
                    answered = True
                    break
        assert answered, "no ARP reply from the peer on the other chassis came back through the tap"
    finally:
        os.close(fd)
    await asyncio.to_thread(compute.host.unplug, vm.id)
    await driver.statuses.wait(vm.id, up=False)  # type: ignore[attr-defined]


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _tunnel_to(ovn: OvnHarness, address: str) -> bool:
    """Whether the controller's br-int has a Geneve port to ``address``."""
    return f"remote_ip={address}" in ovn.dataplane.vsctl("--bare", "--columns=options", "find", "Interface",
                                                        "type=geneve").split()


def _until(condition, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_chassis_started_and_stopped_again_and_again_leaves_nothing(
        ovn: OvnHarness, capsys: pytest.CaptureFixture[str]) -> None:
    times = []
    for _ in range(3):
        started = time.monotonic()
        chassis = ovn.add_chassis("compute-cycle")
        up = time.monotonic() - started
        pids = list(chassis.pids().values())
        namespace, veth, address = chassis.namespace, chassis.veth, chassis.options.encap_ip
        directory = Path(chassis.chassis_options.directory)
        assert len(pids) == 3 and chassis.registered()
        assert namespace in _netns()
        assert veth in ovn.dataplane.vsctl("list-ports", "br-phy").split()
        _until(lambda: _tunnel_to(ovn, address), "the controller made no tunnel to the new chassis")
        stopped = time.monotonic()
        ovn.remove_chassis("compute-cycle")
        times.append((up, time.monotonic() - stopped))
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            except FileNotFoundError:
                continue
            assert state == "Z", f"daemon {pid} still runs after the chassis stopped"
        assert namespace not in _netns()
        assert veth not in ovn.dataplane.vsctl("list-ports", "br-phy").split()
        assert ovn.dataplane.run("ip", "link", "show", veth, namespace=True, check=False) == ""
        assert "compute-cycle" not in ovn.sb("--bare", "--columns=name", "list", "Chassis").split()
        assert not directory.exists()
        # the controller's chassis drops its tunnel to the chassis that left
        _until(lambda: not _tunnel_to(ovn, address), "the tunnel to the stopped chassis stayed")
    with capsys.disabled():
        print("\n[chassis] start/stop seconds: " + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in times))
