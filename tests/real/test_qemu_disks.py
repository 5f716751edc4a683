"""The qemu driver's disk and NIC operations on a real guest: snapshot (a standalone qcow2 that
boots), resize (grown while stopped, revertable), rebuild (a fresh disk), rescue/unrescue, and a
NIC plugged and unplugged while it runs. The guest counts its boots on its own disk, which tells a
disk that lived on from a fresh one."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from mcloud.compute import states
from mcloud.compute.drivers.base import VifSpec
from tests.qemu import image_spec, make_spec, module_guests, running, tiny, wait_console

pytestmark = pytest.mark.real

GIB = 1 << 30


def virtual_size(path) -> int:
    return json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], check=True,
                                     capture_output=True, text=True).stdout)["virtual-size"]


@pytest.fixture(scope="module")
async def guests(tmp_path_factory):
    async for g in module_guests(tmp_path_factory, "qemu-disks"):
        yield g


async def test_snapshot_is_a_standalone_image_that_boots_with_the_disk_as_it_was(guests, tmp_path):
    d = guests.driver
    spec = await running(d)
    dest = tmp_path / "snap.qcow2"
    assert await d.snapshot(spec.uuid, dest) == "qcow2"
    assert await d.power_state(spec.uuid) == states.RUNNING  # paused only while copied
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(dest)], capture_output=True,
                                     text=True, check=True).stdout)
    assert "backing-filename" not in info and info["virtual-size"] == GIB
    await d.destroy(spec.uuid)
    child = make_spec(image_spec(dest, "snap"))
    await d.spawn(child)
    seen = await wait_console(d, child.uuid, lambda s: s.boot_count is not None)
    assert seen.uuid == child.uuid and seen.boot_count == 2  # the snapshot's disk had booted once
    await d.destroy(child.uuid)


async def test_resize_grows_the_stopped_disk_and_revert_puts_the_old_one_back(guests):
    d = guests.driver
    spec = await running(d)
    bigger = make_spec(tiny(), uuid=spec.uuid, root_gb=2, memory_mb=128)
    await d.resize(bigger)
    assert await d.power_state(spec.uuid) == states.SHUTDOWN
    disk = guests.root / "instances" / spec.uuid / "disk"
    assert virtual_size(disk) == 2 * GIB
    await d.power_on(bigger)
    seen = await wait_console(d, spec.uuid, lambda s: s.boots_seen == 2 and s.boot_count is not None)
    assert seen.disks["vda"] == 2 * GIB and seen.boot_count == 2
    await d.revert_resize(spec)
    assert await d.power_state(spec.uuid) == states.SHUTDOWN
    assert virtual_size(disk) == GIB
    assert not (disk.parent / "disk.resize").exists()
    await d.resize(bigger)
    await d.confirm_resize(spec.uuid)
    assert virtual_size(disk) == 2 * GIB and not (disk.parent / "disk.resize").exists()
    await d.destroy(spec.uuid)


async def test_rebuild_gives_a_fresh_disk_and_rescue_boots_another_with_the_own_disk_second(guests):
    d = guests.driver
    spec = await running(d, user_data="first")
    rebuilt = make_spec(tiny(), uuid=spec.uuid, user_data="second")
    await d.rebuild(rebuilt)
    seen = await wait_console(d, spec.uuid, lambda s: s.boots_seen == 2 and s.ready)
    assert seen.boot_count == 1 and seen.user_data == "second"  # a fresh disk, the new config drive
    await d.rescue(rebuilt, image_spec(tiny(), "rescue"))
    seen = await wait_console(d, spec.uuid, lambda s: s.boots_seen == 3 and s.boot_count is not None)
    # booted from the rescue image (48 MB, its first boot); the instance's disk is the second
    assert seen.boot_count == 1 and seen.disks["vda"] == 48 << 20 and seen.disks["vdb"] == GIB
    await d.unrescue(rebuilt)
    assert await d.power_state(spec.uuid) == states.RUNNING
    # the rescue boot was cut short (a hard stop): the own disk boots again, first, on its second boot
    seen = await wait_console(d, spec.uuid, lambda s: s.boots_seen == 4 and s.ready)
    assert seen.boot_count == 2 and seen.disks["vda"] == GIB and seen.user_data == "second"
    machine = json.loads((guests.root / "instances" / spec.uuid / "machine.json").read_text())
    assert machine["rescue"] is False
    assert not (guests.root / "instances" / spec.uuid / "disk.rescue").exists()
    await d.destroy(spec.uuid)


async def test_a_nic_plugged_while_running_gets_dhcp_and_unplugs(guests):
    d = guests.driver
    spec = await running(d)
    vif = VifSpec(port_id="0b8c2f9e-4d1a-4c55-9f8e-7a6b5c4d3e21", mac="fa:16:3e:12:34:56", network_id="n")
    await d.attach_interface(spec.uuid, vif)
    seen = await wait_console(d, spec.uuid, lambda s: "eth0" in s.leases)
    assert seen.macs["eth0"] == vif.mac and seen.leases["eth0"].startswith("10.0.2.")
    assert "mcloud-tiny: eth0 plugged" in await d.console_output(spec.uuid)
    await d.attach_interface(spec.uuid, vif)  # idempotent
    await d.detach_interface(spec.uuid, vif.port_id)  # returns once qemu says the guest let go
    for _ in range(50):
        if "mcloud-tiny: eth0 unplugged" in await d.console_output(spec.uuid):
            break
        await asyncio.sleep(0.2)
    assert "mcloud-tiny: eth0 unplugged" in await d.console_output(spec.uuid)
    machine = json.loads((guests.root / "instances" / spec.uuid / "machine.json").read_text())
    assert machine["vifs"] == []
    await d.destroy(spec.uuid)
