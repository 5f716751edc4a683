"""The tiny image's pieces that need no kernel: the cpio writer, the module order, and reading
what a guest printed."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mcloud.compute import tinyimage, tinyimage_guest
from mcloud.compute.tinyimage import Cpio, TinyImageError, module_order, parse_console


def read_cpio(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, rdev) of a newc archive, checking its alignment on the way."""
    entries = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad magic at {pos}"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            assert pos == len(data)
            return entries
        entries[name] = (mode, body, rdev)


def test_cpio_holds_files_dirs_links_and_devices():
    cpio = Cpio()
    cpio.file("etc/rc", b"#!/bin/sh\necho hi\n", 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.chardev("dev/console", 5, 1)
    entries = read_cpio(cpio.close())
    assert entries["etc"][0] == 0o040755
    assert entries["etc/rc"] == (0o100755, b"#!/bin/sh\necho hi\n", (0, 0))
    assert entries["bin/sh"][0] == 0o120777 and entries["bin/sh"][1] == b"busybox"
    assert entries["dev/console"][0] == 0o020600 and entries["dev/console"][2] == (5, 1)


def fake_modules(tmp_path: Path, builtin: str = "") -> Path:
    d = tmp_path / "6.1.0-test"
    d.mkdir()
    (d / "modules.dep").write_text(
        "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n"
        "kernel/fs/nls/nls_iso8859-1.ko:\n"
        "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko "
        "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
        "kernel/net/core/failover.ko:\n")
    (d / "modules.builtin").write_text(builtin)
    return d


def test_modules_load_after_what_they_depend_on(tmp_path):
    d = fake_modules(tmp_path)
    order = [p.name for p in module_order(d, ("virtio_net", "virtio_blk", "nls_iso8859_1"))]
    assert sorted(order) == sorted(["virtio_ring.ko", "virtio.ko", "failover.ko", "net_failover.ko",
                                    "virtio_net.ko", "virtio_blk.ko", "nls_iso8859-1.ko"])
    for before, after in [("virtio_ring.ko", "virtio.ko"), ("virtio.ko", "virtio_net.ko"),
                          ("failover.ko", "net_failover.ko"), ("net_failover.ko", "virtio_net.ko"),
                          ("virtio.ko", "virtio_blk.ko")]:
        assert order.index(before) < order.index(after)


def test_a_module_neither_present_nor_built_in_is_an_error(tmp_path):
    d = fake_modules(tmp_path, builtin="kernel/fs/isofs/isofs.ko\n")
    assert module_order(d, ("isofs", "virtio")) == [d / "kernel/drivers/virtio/virtio_ring.ko",
                                                     d / "kernel/drivers/virtio/virtio.ko"]
    with pytest.raises(TinyImageError, match="evdev"):
        module_order(d, ("evdev",))


def test_the_guest_loads_virtio_ring_before_virtio_and_reads_its_config_drive():
    assert tinyimage_guest.MODULES.index("virtio_ring") < tinyimage_guest.MODULES.index("virtio")
    rc = tinyimage_guest.RC
    assert 'LABEL="config-2"' in rc and "latest=/mnt/config/openstack/latest" in rc
    assert "booted instance $uuid" in rc
    assert tinyimage.MARKER_BOOTED == "mcloud-tiny: booted instance "
    # the framing lines the console parser reads are the ones the guest prints
    for line in ("user-data begin", "user-data end", "ready", "user-data script begin"):
        assert f'say "{line}"' in rc


CONSOLE = """\
SeaBIOS (version 1.16.2-debian-1.16.2-1)
mcloud-tiny: starting, kernel 6.1.0-56-cloud-amd64
mcloud-tiny: disks vda=1073741824 vdb=382976; boot 1
mcloud-tiny: booted instance 11111111-2222-3333-4444-555555555555
mcloud-tiny: ready
mcloud-tiny: power button
mcloud-tiny: powering off
[   13.891014] reboot: Power down
\x1bc\x1b[?7l\x1b[2Jmcloud-tiny: starting, kernel 6.1.0-56-cloud-amd64\r
mcloud-tiny: disks vda=2147483648 vdb=382976; boot 2
mcloud-tiny: booted instance 11111111-2222-3333-4444-555555555555
mcloud-tiny: user-data begin
#!/bin/sh
echo hello

ping -c 1 10.0.0.4
mcloud-tiny: user-data end
mcloud-tiny: eth0 lease 10.0.0.5/24 mac fa:16:3e:00:00:01 router 10.0.0.1
mcloud-tiny: eth1 lease 10.1.0.7/24 mac fa:16:3e:00:00:02 router none
mcloud-tiny: ready
mcloud-tiny: user-data script begin
hello
1 packets transmitted, 1 packets received, 0% packet loss
mcloud-tiny: user-data script exit 0
"""


def test_the_console_reader_sees_the_last_boot():
    seen = parse_console(CONSOLE)
    assert seen.boots_seen == 2
    assert seen.booted and seen.uuid == "11111111-2222-3333-4444-555555555555"
    assert seen.boot_count == 2 and seen.disks == {"vda": 2147483648, "vdb": 382976}
    assert seen.user_data == "#!/bin/sh\necho hello\n\nping -c 1 10.0.0.4"
    assert seen.leases == {"eth0": "10.0.0.5/24", "eth1": "10.1.0.7/24"}
    assert seen.macs["eth1"] == "fa:16:3e:00:00:02"
    assert seen.ready and not seen.powering_off
    assert seen.script_output == "hello\n1 packets transmitted, 1 packets received, 0% packet loss"
    assert seen.script_exit == 0


def test_the_console_reader_on_a_boot_in_progress():
    seen = parse_console(CONSOLE.split("mcloud-tiny: user-data end")[0])
    assert seen.user_data == "#!/bin/sh\necho hello\n\nping -c 1 10.0.0.4"
    assert not seen.ready and seen.leases == {}
    first = parse_console(CONSOLE.split("[   13")[0])
    assert first.powering_off and first.user_data is None and first.boot_count == 1


def test_the_cache_key_changes_with_what_goes_in(tmp_path, monkeypatch):
    files = []
    for name in ("vmlinuz-6.1.0-test", "busybox", "virtio.ko", "ldlinux.c32"):
        (tmp_path / name).write_bytes(name.encode())
        files.append(tmp_path / name)
    monkeypatch.setattr(tinyimage, "SYSLINUX_MODULES", tmp_path)
    inputs = tinyimage._Inputs(files[0], [files[2]], files[1], [])
    key = inputs.key()
    assert key == tinyimage._Inputs(files[0], [files[2]], files[1], []).key()
    (tmp_path / "virtio.ko").write_bytes(b"another build")
    assert inputs.key() != key
    assert inputs.kernel_version == "6.1.0-test"
    # and the initramfs it packs holds the modules under their names, in order
    data = read_cpio(gzip.decompress(tinyimage.initramfs(inputs)))
    assert data["etc/modules"][1] == b"virtio\n"
    assert data["lib/modules/virtio.ko"][1] == b"another build"
    assert data["init"][0] == 0o100755 and data["bin/sh"][1] == b"busybox"


# A hard reboot seen in a real run (TCG, a loaded machine): the third boot was cut short while its
# user-data script ran, the second boot heard the power button in the middle of its script.
def _boot(n: int, user_data: str = "") -> str:
    return (f"mcloud-tiny: starting, kernel 6.1.0-56-cloud-amd64\n"
            f"mcloud-tiny: disks vda=1073741824 vdb=497664; boot {n}\n"
            f"mcloud-tiny: booted instance 026ac888-9f73-4f09-b2c4-5da6a6810bba\n{user_data}"
            "mcloud-tiny: ready\n")


USER_DATA = ("mcloud-tiny: user-data begin\n#!/bin/sh\necho the user data ran on $(hostname)\n"
             "mcloud-tiny: user-data end\n")
CUT_SHORT = (_boot(2) + """\
mcloud-tiny: power button
mcloud-tiny: user-data script begin
mcloud-tiny: powering off
the user data ran on vm-026ac888
mcloud-tiny: user-data script exit 0
The system is going down NOW!
[    7.912625] reboot: Power down
""" + _boot(3, USER_DATA) + "mcloud-tiny: user-data script begin\n" + _boot(4, USER_DATA) + """\
mcloud-tiny: user-data script begin
the user data ran on vm-026ac888
mcloud-tiny: user-data script exit 0
""")


def test_a_boot_cut_short_in_its_script_does_not_hide_the_next_one():
    seen = parse_console(CUT_SHORT)
    assert seen.boots_seen == 3 and seen.boot_count == 4 and seen.booted and seen.ready
    assert seen.script_output == "the user data ran on vm-026ac888" and seen.script_exit == 0
    # while the fourth boot's script still runs, its start is seen all the same
    running = parse_console(CUT_SHORT.rsplit("the user data ran", 1)[0])
    assert running.boots_seen == 3 and running.boot_count == 4 and running.script_output == ""
    assert running.script_exit is None


def test_a_boot_cut_short_in_its_user_data_does_not_hide_the_next_one():
    text = CUT_SHORT.replace("echo the user data ran on $(hostname)\nmcloud-tiny: user-data end\n"
                             "mcloud-tiny: ready\nmcloud-tiny: user-data script begin\nmcloud-tiny: starting",
                             "echo the user da\nmcloud-tiny: starting", 1)
    seen = parse_console(text)
    assert seen.boots_seen == 3 and seen.boot_count == 4 and seen.ready
    assert seen.user_data == "#!/bin/sh\necho the user data ran on $(hostname)"
    third = parse_console(text.rsplit("mcloud-tiny: starting", 1)[0])
    assert third.boot_count == 3 and third.user_data == "#!/bin/sh\necho the user da" and not third.ready


def test_guest_events_during_the_script_are_not_its_output():
    second = parse_console(CUT_SHORT.split("[    7.9")[0])
    assert second.powering_off and second.boot_count == 2
    assert second.script_output == "the user data ran on vm-026ac888" and second.script_exit == 0
