"""The qemu driver with a real guest (the tiny image under TCG here): boot with a config drive,
the console, a driver restarted over the same instances, and every power action — one guest for
the module, its steps in order, stopped by PID at the end. The guest boots its kernel and
initramfs directly (the image's kernel_id/ramdisk_id, as ``build-tiny --upload`` makes it), so
every relaunch here (reboots, power on, resume) boots that way too; the other real tests boot
the disk through its boot loader."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mcloud.compute import states
from mcloud.compute.drivers import qemu as qemu_driver
from mcloud.compute.drivers.base import DriverError, InstanceNotFound
from mcloud.compute.tinyimage import parse_console
from tests.qemu import GUEST_MB, gone, make_spec, module_guests, rss_kib, tiny_direct, wait_console

pytestmark = pytest.mark.real

#: the script sleeps first, so that a hard reboot right after ``ready`` cuts it short
USER_DATA = "#!/bin/sh\nsleep 4\necho the user data ran on $(hostname)\n"


@pytest.fixture(scope="module")
async def guests(tmp_path_factory):
    async for g in module_guests(tmp_path_factory, "qemu"):
        yield g


@pytest.fixture(scope="module")
async def guest(guests):
    spec = make_spec(tiny_direct(), user_data=USER_DATA)
    started = time.monotonic()
    await guests.driver.spawn(spec)
    spec_boot = await wait_console(guests.driver, spec.uuid, lambda s: s.booted)
    guests.boot_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    assert spec_boot.uuid == spec.uuid
    return spec


async def test_the_guest_prints_its_uuid_and_user_data_and_runs_the_script(guests, guest):
    d = guests.driver
    seen = await wait_console(d, guest.uuid, lambda s: s.script_exit is not None)
    assert seen.booted and seen.uuid == guest.uuid
    assert seen.user_data == USER_DATA.rstrip("\n")
    assert seen.script_output == f"the user data ran on vm-{guest.uuid[:8]}" and seen.script_exit == 0
    # the root disk is the flavor's size (the image itself is 48 MB) and the config drive is there
    assert seen.disks["vda"] == 1 << 30 and "vdb" in seen.disks and seen.boot_count == 1
    # fake-network mode: a NIC-less guest is ready without DHCP
    assert seen.ready and seen.leases == {}
    text = await d.console_output(guest.uuid)
    assert f"mcloud-tiny: booted instance {guest.uuid}" in text
    assert await d.console_output(guest.uuid, length=2) == "".join(text.splitlines(keepends=True)[-2:])
    pid = guests.pids()[0]
    assert kernel_of(pid) == str(guests.driver.root / guest.uuid / "kernel")  # booted directly
    assert rss_kib(pid) < (GUEST_MB + 150) * 1024  # a 96 MB guest under TCG
    print(f"boot to marker {guests.boot_seconds:.1f} s, qemu RSS {rss_kib(pid) // 1024} MB, accel {d.accel}")


def kernel_of(pid: int) -> str | None:
    """The kernel qemu process ``pid`` was given (-kernel), or None (it boots from its disk)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return argv[argv.index("-kernel") + 1] if "-kernel" in argv else None


async def test_a_restarted_driver_finds_the_instance_and_its_state(guests, guest):
    again = qemu_driver.create(guests.options, guests.root / "instances")
    await again.start()
    assert await again.list_instances() == {guest.uuid: states.RUNNING}
    assert "booted instance" in await again.console_output(guest.uuid)
    await again.pause(guest.uuid)  # the new driver drives the old process
    assert await guests.driver.power_state(guest.uuid) == states.POWER_PAUSED
    await again.unpause(guest.uuid)
    assert await guests.driver.power_state(guest.uuid) == states.RUNNING
    await again.close()


async def test_host_info_and_a_vnc_console_on_loopback(guests, guest):
    info = guests.driver.host_info()
    assert info.hypervisor_type == "QEMU" and info.hypervisor_version >= 7_000_000
    assert info.vcpus >= 1 and info.memory_mb > 0 and "COMPUTE_NET_ATTACH_INTERFACE" in info.traits
    console = await guests.driver.console(guest.uuid)
    assert console.protocol == "vnc" and console.host == "127.0.0.1" and console.port >= 5900
    import socket

    with socket.create_connection((console.host, console.port), timeout=5) as s:
        assert s.recv(12).startswith(b"RFB 003.008")
    with pytest.raises(DriverError):
        await guests.driver.console(guest.uuid, "spice")


async def test_diagnostics_of_the_running_guest(guests, guest):
    d = await guests.driver.diagnostics(guest.uuid)
    assert d["hypervisor"] in ("qemu", "kvm") and d["config_drive"] is True and d["uptime"] >= 1
    assert [c["id"] for c in d["cpu_details"]] == [0] and d["cpu_details"][0]["time"] > 0  # it booted
    assert len(d["disk_details"]) == 2 and d["disk_details"][0]["read_bytes"] > 0  # root disk, config drive
    assert d["disk_details"][0]["read_requests"] > 0 and d["disk_details"][0]["errors_count"] == 0
    assert d["nic_details"] == [] and d["memory_details"] == {"maximum": GUEST_MB, "used": GUEST_MB}


async def test_a_command_qemu_refuses_is_a_driver_error(guests, guest):
    async with guests.driver._qmp(guest.uuid) as qmp:  # noqa: SLF001 - the monitor the driver uses
        with pytest.raises(DriverError, match="qemu refused block-export-del: .*export-none"):
            await qmp.execute("block-export-del", {"id": "export-none"})


async def test_pause_stops_the_guest_and_unpause_lets_it_go_on(guests, guest):
    d = guests.driver
    await d.pause(guest.uuid)
    assert await d.power_state(guest.uuid) == states.POWER_PAUSED
    await d.unpause(guest.uuid)
    assert await d.power_state(guest.uuid) == states.RUNNING


async def test_suspend_saves_the_guest_to_a_file_and_resume_carries_on(guests, guest):
    d = guests.driver
    pid = guests.pids()[0]
    await d.suspend(guest.uuid)
    assert await d.power_state(guest.uuid) == states.POWER_SUSPENDED
    assert guests.pids() == [] and gone(pid)
    save = guests.root / "instances" / guest.uuid / "save"
    assert save.stat().st_size > 1 << 20
    await d.resume(guest)
    assert await d.power_state(guest.uuid) == states.RUNNING and not save.exists()
    # the same boot goes on: no new start on the console, and the guest answers the power button
    await d.power_off(guest.uuid, timeout=30)
    seen = parse_console(await d.console_output(guest.uuid))
    assert seen.boots_seen == 1 and seen.powering_off
    assert await d.power_state(guest.uuid) == states.SHUTDOWN


async def test_power_on_boots_the_same_disk_again(guests, guest):
    d = guests.driver
    await d.power_on(guest)
    assert await d.power_state(guest.uuid) == states.RUNNING
    seen = await wait_console(d, guest.uuid, lambda s: s.boots_seen == 2 and s.ready)
    assert seen.boot_count == 2 and seen.uuid == guest.uuid


async def test_soft_reboot_goes_through_the_guests_own_power_off(guests, guest):
    d = guests.driver
    await d.reboot(guest.uuid, hard=False)
    text = await d.console_output(guest.uuid)
    second_boot = text.split("mcloud-tiny: starting")[2]
    assert "mcloud-tiny: powering off" in second_boot  # the guest shut down by itself first
    seen = await wait_console(d, guest.uuid, lambda s: s.boots_seen == 3 and s.boot_count is not None)
    assert seen.boot_count == 3


async def test_hard_reboot_restarts_without_asking(guests, guest):
    d = guests.driver
    # while the user-data script still runs: a boot cut short anywhere must not hide the next one
    await wait_console(d, guest.uuid, lambda s: s.boots_seen == 3 and s.script_output is not None)
    old_pid = guests.pids()[0]
    await d.reboot(guest.uuid, hard=True)
    assert guests.pids() != [old_pid] and gone(old_pid)
    seen = await wait_console(d, guest.uuid, lambda s: s.boots_seen == 4 and s.boot_count is not None)
    assert seen.boot_count == 4 and kernel_of(guests.pids()[0]) == str(d.root / guest.uuid / "kernel")
    third_boot = (await d.console_output(guest.uuid)).split("mcloud-tiny: starting")[3]
    assert "powering off" not in third_boot


async def test_power_off_without_waiting_is_a_hard_stop_and_is_idempotent(guests, guest):
    d = guests.driver
    await d.pause(guest.uuid)
    with pytest.raises(DriverError, match="paused"):
        await d.reboot(guest.uuid, hard=False)
    await d.power_off(guest.uuid, timeout=5)  # a paused guest hears no button: stopped at once
    assert await d.power_state(guest.uuid) == states.SHUTDOWN
    await d.power_off(guest.uuid)
    with pytest.raises(DriverError, match="not running"):
        await d.pause(guest.uuid)
    diagnostics = await d.diagnostics(guest.uuid)  # stopped: what is there, without figures
    assert diagnostics["uptime"] is None and diagnostics["memory_details"]["used"] == 0
    assert [c["time"] for c in diagnostics["cpu_details"]] == [None] and len(diagnostics["disk_details"]) == 2


async def test_destroy_removes_everything_and_is_idempotent(guests, guest):
    d = guests.driver
    await d.power_on(guest)
    pid = guests.pids()[0]
    await d.destroy(guest.uuid)
    assert await d.list_instances() == {}
    assert not (guests.root / "instances" / guest.uuid).exists()
    assert gone(pid)
    await d.destroy(guest.uuid)
    with pytest.raises(InstanceNotFound):
        await d.power_state(guest.uuid)
    with pytest.raises(InstanceNotFound):
        await d.console_output(guest.uuid)


async def test_a_spawn_that_fails_leaves_nothing(guests, tmp_path):
    spec = make_spec(tmp_path / "no-such-image.qcow2")
    with pytest.raises(DriverError, match="cannot be read"):
        await guests.driver.spawn(spec)
    assert await guests.driver.list_instances() == {}
    assert not (guests.root / "instances" / spec.uuid).exists()
    assert os.listdir(guests.root / "instances") in ([], [".accel.json"])
