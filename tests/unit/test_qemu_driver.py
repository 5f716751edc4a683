"""The qemu driver's pieces that need no qemu: its command line, options, paths and console
reading (tests/real/test_qemu_*.py boot real guests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcloud.compute import states
from mcloud.compute.drivers import qemu
from mcloud.compute.drivers.base import DriverError, FlavorSpec, ImageSpec, InstanceNotFound, InstanceSpec, VifSpec
from mcloud.compute.drivers.qemu_accel import _BOOT_SECTOR

UUID = "3f1c7a52-0b7e-4a8e-9a55-1c6d2f0e9b11"


class FakeHost:
    """Stands in for mcloud.network.host.Host: only whether the driver asks for it."""


def spec(**kw) -> InstanceSpec:
    vifs = (VifSpec(port_id="p1", mac="fa:16:3e:00:00:01", network_id="n", mtu=1442),
            VifSpec(port_id="p2", mac="fa:16:3e:00:00:02", network_id="n", model="e1000"))
    return InstanceSpec(uuid=UUID, name="instance-0000000a", hostname="vm", image=ImageSpec(id="i", disk_format="qcow2"),
                        flavor=FlavorSpec(vcpus=2, memory_mb=128, root_gb=1), vifs=kw.get("vifs", vifs))


def argv_of(driver: qemu.QemuDriver, machine: qemu.Machine, fds=(7, 8), incoming=False) -> list[str]:
    p = driver._paths(machine.uuid)
    nics = [(qemu._vif(v), fd) for v, fd in zip(machine.vifs, fds)]
    return driver._argv(machine, p, nics, incoming)


def test_the_command_line_under_tcg_with_taps(tmp_path):
    driver = qemu.QemuDriver({}, tmp_path, FakeHost())
    assert driver.network == "host"
    argv = argv_of(driver, qemu.Machine.of(spec()))
    line = " ".join(argv)
    assert argv[argv.index("-accel") + 1] == "tcg,tb-size=32"
    assert argv[argv.index("-m") + 1] == "128" and argv[argv.index("-smp") + 1] == "2"
    assert "-daemonize" in argv and f"-uuid {UUID}" in line and "-incoming" not in argv
    assert "tap,id=hn-p1,fd=7" in argv and "tap,id=hn-p2,fd=8" in argv
    devices = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-device" and argv[i + 1].startswith("{")]
    nics = [d for d in devices if d["id"].startswith("nic-")]
    assert nics[0] == {"driver": "virtio-net-pci", "id": "nic-p1", "netdev": "hn-p1", "mac": "fa:16:3e:00:00:01",
                       "romfile": "", "host_mtu": 1442}
    assert nics[1]["driver"] == "e1000" and "host_mtu" not in nics[1]
    disks = [d for d in devices if d["driver"] == "virtio-blk-pci"]
    assert disks == [{"driver": "virtio-blk-pci", "drive": "disk", "id": "disk-dev", "bootindex": 1}]
    assert "127.0.0.1:0,to=4000" in argv


def test_rescue_boots_the_rescue_disk_first_and_incoming_waits_paused(tmp_path):
    driver = qemu.QemuDriver({"accel": "kvm", "vnc_listen": ""}, tmp_path)
    driver.accel = "kvm"
    p = driver._paths(UUID)
    p.dir.mkdir()
    p.config.write_bytes(b"iso")
    machine = qemu.Machine.of(spec(vifs=()))
    machine.rescue = True
    argv = argv_of(driver, machine, incoming=True)
    assert argv[argv.index("-accel") + 1] == "kvm" and argv[argv.index("-cpu") + 1] == "host"
    blockdevs = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-blockdev"]
    assert [b["node-name"] for b in blockdevs] == ["rescue", "disk", "config"]
    assert blockdevs[2]["read-only"] is True
    devices = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-device" and argv[i + 1].startswith("{")]
    assert devices[0]["drive"] == "rescue" and devices[0]["bootindex"] == 1 and "bootindex" not in devices[1]
    assert argv[-3:] == ["-incoming", "defer", "-S"]
    assert "-vnc" not in argv and argv[argv.index("-display") + 1] == "none"


def test_user_mode_network_without_a_host_and_options_checked(tmp_path):
    driver = qemu.QemuDriver({}, tmp_path)
    assert driver.network == "user"
    argv = argv_of(driver, qemu.Machine.of(spec()), fds=(None, None))
    assert "user,id=hn-p1,restrict=on" in argv
    with pytest.raises(ValueError, match="unknown options: acell"):
        qemu.QemuDriver({"acell": "kvm"}, tmp_path)
    with pytest.raises(ValueError, match="network"):
        qemu.QemuDriver({"network": "bridge"}, tmp_path)
    with pytest.raises(ValueError, match="data plane"):
        qemu.QemuDriver({"network": "host"}, tmp_path)


def test_sockets_of_a_deep_instances_path_go_to_a_short_directory(tmp_path):
    short = qemu._Paths(Path("/srv/i"), UUID)
    assert short.qmp == Path(f"/srv/i/{UUID}/qmp.sock")
    deep = qemu._Paths(tmp_path / ("d" * 80), UUID)
    assert deep.qmp.parent != deep.dir and len(str(deep.status)) < 100
    assert deep.qmp == qemu._Paths(tmp_path / ("d" * 80), UUID).qmp  # found again after a restart


async def test_no_process_means_shut_down_or_suspended_and_a_stale_pid_is_not_ours(tmp_path):
    driver = qemu.QemuDriver({}, tmp_path)
    with pytest.raises(InstanceNotFound):
        await driver.power_state(UUID)
    with pytest.raises(InstanceNotFound):
        driver._paths("../etc")
    p = driver._paths(UUID)
    p.dir.mkdir()
    p.pid.write_text(f"{os.getpid()}\n")  # a live process, but not this instance's qemu
    assert driver._pid(UUID) is None
    assert await driver.list_instances() == {UUID: states.SHUTDOWN}
    p.save.write_bytes(b"state")
    assert await driver.power_state(UUID) == states.POWER_SUSPENDED
    with pytest.raises(DriverError, match="not running"):
        await driver.pause(UUID)
    (tmp_path / "not-an-instance").mkdir()
    assert list(await driver.list_instances()) == [UUID]


async def test_console_output_is_the_tail_of_the_serial_log(tmp_path):
    driver = qemu.QemuDriver({}, tmp_path)
    p = driver._paths(UUID)
    p.dir.mkdir()
    assert await driver.console_output(UUID) == ""
    p.console.write_bytes(b"SeaBIOS\r\nline 1\r\nline 2\r\n\x00line 3\n" + b"x" * 10)
    assert await driver.console_output(UUID) == "SeaBIOS\nline 1\nline 2\nline 3\n" + "x" * 10
    assert await driver.console_output(UUID, length=2) == "line 3\n" + "x" * 10
    assert await driver.console_output(UUID, length=0) == ""
    p.console.write_bytes(b"a" * (qemu.MAX_CONSOLE_BYTES + 500))
    assert len(await driver.console_output(UUID)) == qemu.MAX_CONSOLE_BYTES


def test_the_probe_boot_sector_prints_its_word_and_is_bootable():
    assert len(_BOOT_SECTOR) == 512 and _BOOT_SECTOR[-2:] == b"\x55\xaa"
    # mov si,0x7c16 points at the text, which starts 0x16 bytes into the sector
    assert _BOOT_SECTOR[7:10] == b"\xbe\x16\x7c" and _BOOT_SECTOR[0x16:0x16 + 13] == b"mcloud-kvm-ok"


def test_missing_names_the_debian_packages(monkeypatch):
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None if name == "genisoimage" else f"/usr/bin/{name}")
    assert qemu.missing() == "missing programs (Debian: genisoimage)"
    monkeypatch.setattr(qemu.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert qemu.missing() is None
    assert Path(qemu.__file__).name == "qemu.py"


def test_a_raw_image_in_ceph_is_cloned_and_qemu_opens_the_clone_through_rbd(tmp_path):
    from mcloud.compute.drivers.qemu_rbd import RbdDisk, parse_parent

    driver = qemu.QemuDriver({"network": "none", "ceph_conf": "/etc/ceph/mcloud.conf"}, tmp_path)
    in_ceph = driver._image(ImageSpec(id="i", disk_format="raw", rbd="images/i@snap"))
    assert in_ceph.ceph_conf == "/etc/ceph/mcloud.conf"  # the agent named none: this host's
    assert driver._clone_of(UUID, in_ceph) == RbdDisk("images", f"{UUID}_disk", "/etc/ceph/mcloud.conf")
    # Nova clones raw images only; another format, or an image not in Ceph, is a local overlay
    assert driver._clone_of(UUID, ImageSpec(id="i", disk_format="qcow2", rbd="images/i@snap")) is None
    assert driver._clone_of(UUID, ImageSpec(id="i", disk_format="raw", path=tmp_path / "i")) is None
    assert qemu.QemuDriver({"rbd_pool": "vms", "rbd_user": "nova"}, tmp_path)._clone_of(UUID, in_ceph) == RbdDisk(
        "vms", f"{UUID}_disk", "/etc/ceph/mcloud.conf", "nova")
    assert parse_parent("images/i@snap") == ("images", "i", "snap")
    for bad in ("images/i", "i@snap", "a/b/c@snap"):
        with pytest.raises(DriverError, match="not an RBD snapshot"):
            parse_parent(bad)

    p = driver._paths(UUID)
    p.dir.mkdir()
    RbdDisk("vms", f"{UUID}_disk", "/etc/ceph/mcloud.conf", "nova").save(p.rbd)
    argv = argv_of(driver, qemu.Machine.of(spec(vifs=())))
    blockdevs = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-blockdev"]
    assert blockdevs[0] == {"driver": "raw", "node-name": "disk", "read-only": False,
                            "file": {"driver": "rbd", "pool": "vms", "image": f"{UUID}_disk",
                                     "conf": "/etc/ceph/mcloud.conf", "user": "nova"}}
    assert RbdDisk.load(p.rbd).uri() == f"rbd:vms/{UUID}_disk:conf=/etc/ceph/mcloud.conf:id=nova"


def boot_spec(kernel_id: str | None = "k", ramdisk_id: str | None = "r", cmdline: str | None = None,
              tmp_path: Path | None = None) -> InstanceSpec:
    props = {"os_command_line": cmdline} if cmdline else {}
    image = ImageSpec(id="i", disk_format="qcow2", properties=props, kernel_id=kernel_id, ramdisk_id=ramdisk_id,
                      kernel=tmp_path / "k" if tmp_path and kernel_id else None,
                      ramdisk=tmp_path / "r" if tmp_path and ramdisk_id else None)
    return InstanceSpec(uuid=UUID, name="instance-0000000a", hostname="vm", image=image,
                        flavor=FlavorSpec(vcpus=1, memory_mb=128, root_gb=1))


def test_direct_kernel_boot_gives_qemu_the_kernel_ramdisk_and_command_line(tmp_path):
    driver = qemu.QemuDriver({}, tmp_path)
    p = driver._paths(UUID)
    argv = argv_of(driver, qemu.Machine.of(boot_spec(cmdline="console=ttyS0 quiet")))
    assert argv[argv.index("-kernel") + 1] == str(p.kernel) and argv[argv.index("-initrd") + 1] == str(p.ramdisk)
    assert argv[argv.index("-append") + 1] == "console=ttyS0 quiet"
    # no os_command_line: Nova's (root device, consoles; no_timer_check under TCG); no ramdisk: no -initrd
    argv = argv_of(driver, qemu.Machine.of(boot_spec(ramdisk_id=None)))
    assert argv[argv.index("-append") + 1] == "root=/dev/vda console=tty0 console=ttyS0 no_timer_check"
    assert "-initrd" not in argv
    # an image without a kernel boots from its disk
    assert "-kernel" not in argv_of(driver, qemu.Machine.of(boot_spec(kernel_id=None)))
    assert "-kernel" not in argv_of(driver, qemu.Machine.of(spec()))
    # kept in machine.json: a reboot needs no spec
    machine = qemu.Machine.of(boot_spec(cmdline="quiet"))
    assert qemu.Machine(**json.loads(json.dumps(qemu.dataclasses.asdict(machine)))) == machine
    assert qemu.Machine(uuid=UUID, name="n", vcpus=1, memory_mb=64).boot is None  # a machine.json from before


def test_rescue_boots_the_rescue_images_kernel_else_the_instances_with_the_default_command_line(tmp_path):
    driver = qemu.QemuDriver({}, tmp_path)
    p = driver._paths(UUID)
    machine = qemu.Machine.of(boot_spec(cmdline="quiet"))
    machine.rescue = True
    machine.rescue_boot = {"kernel": "kernel.rescue", "ramdisk": None, "cmdline": None}
    argv = argv_of(driver, machine)
    assert argv[argv.index("-kernel") + 1] == str(p.rescue_kernel) and "-initrd" not in argv
    assert argv[argv.index("-append") + 1].startswith("root=/dev/vda ")
    machine.rescue_boot = None  # a rescue image booting from its disk, the instance booting from its own
    assert "-kernel" not in argv_of(driver, machine)


async def test_boot_files_are_linked_into_the_instance_and_a_missing_image_keeps_the_own_copy(tmp_path):
    driver = qemu.QemuDriver({}, tmp_path / "instances")
    (tmp_path / "k").write_bytes(b"kernel")
    (tmp_path / "r").write_bytes(b"ramdisk")
    p = driver._paths(UUID)
    p.dir.mkdir(parents=True)
    image = boot_spec(tmp_path=tmp_path).image
    await driver._boot_files(image, p.kernel, p.ramdisk)
    assert p.kernel.read_bytes() == b"kernel" and p.ramdisk.read_bytes() == b"ramdisk"
    assert p.kernel.stat().st_ino == (tmp_path / "k").stat().st_ino  # a hard link, no copy
    gone = qemu.dataclasses.replace(image, kernel=None, ramdisk=None)
    await driver._boot_files(gone, p.kernel, p.ramdisk)  # the image service lost them: the own copies
    assert p.kernel.read_bytes() == b"kernel"
    p.kernel.unlink()
    with pytest.raises(DriverError, match="Image k could not be found."):
        await driver._boot_files(gone, p.kernel, p.ramdisk)
    await driver._boot_files(boot_spec(kernel_id=None).image, p.kernel, p.ramdisk)  # rebuilt from a disk image
    assert not p.ramdisk.exists()


async def test_a_failing_step_of_prepare_is_the_drivers_own_error(tmp_path):
    driver = qemu.QemuDriver({}, tmp_path)
    p = driver._paths(UUID)
    p.dir.mkdir()
    p.disk.write_bytes(b"")  # its disk is there: only the kernel is missing
    with pytest.raises(DriverError, match="^Image k could not be found.$"):  # not an ExceptionGroup
        await driver._prepare(boot_spec(ramdisk_id=None))
