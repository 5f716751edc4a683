"""Volumes on real qemu guests, the driver alone (no volume service: the volumes are qcow2 files
made here with qemu-img, and RBD images in tests/ceph.py's cluster), as Cinder's
connection_info names them.

Two tiny guests run a user-data script that watches for disks with a serial (a volume): a disk
that holds no data yet gets ``mcloud-data: written by <hostname>`` written to it by the guest's
own kernel; one that holds it has it printed. So a volume hot-plugged into guest A (its console
shows the disk arrive), written there, detached (the disk leaves) and attached to guest B is
read back by B: the data went through the volume. The volume stays across a hard reboot and a
stop/start; a third guest boots from a volume holding the tiny image, its boot count kept on the
volume across two instances."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import uuid as uuidlib
from pathlib import Path

import pytest

from mcloud.compute.drivers.base import DriverError, VolumeSpec
from mcloud.compute.tinyimage import GuestConsole
from tests.qemu import make_spec, module_guests, tiny, tiny_direct, wait_console

pytestmark = pytest.mark.real

#: the guests' script: each disk with a serial (a volume) is read, or written when it is blank
WATCH_DISKS = r"""#!/bin/sh
seen=""
while true; do
  for d in /sys/block/vd*; do
    n=${d##*/}
    s=$(cat "$d/serial" 2>/dev/null)
    [ -n "$s" ] && [ -b "/dev/$n" ] || continue
    case " $seen " in *" $n:$s "*) continue;; esac
    seen="$seen $n:$s"
    data=$(head -c 64 "/dev/$n" | tr -d '\000')
    case "$data" in
      mcloud-data:*) echo "read $s: $data";;
      *) printf 'mcloud-data: written by %s\n' "$(hostname)" | dd of="/dev/$n" conv=fsync 2>/dev/null
         echo "wrote $s";;
    esac
  done
  sleep 0.3
done
"""


def file_volume(path: Path, size_mb: int = 64, backing: Path | None = None) -> VolumeSpec:
    """A qcow2 volume as the file backend makes one (blank, or a copy of ``backing``'s data)."""
    if backing is None:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{size_mb}M"], check=True)
    else:
        subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", str(backing), str(path)], check=True)
    volume_id = str(uuidlib.uuid4())
    return VolumeSpec(volume_id=volume_id, connection_info={
        "driver_volume_type": "file", "data": {"path": str(path), "format": "qcow2", "access_mode": "rw"}})


@pytest.fixture(scope="module")
async def guests(tmp_path_factory):
    async for g in module_guests(tmp_path_factory, "qemu-volumes"):
        yield g


@pytest.fixture(scope="module")
async def pair(guests):
    """Guests A and B, running the disk watcher, up to ``ready``."""
    specs = [make_spec(tiny_direct(), user_data=WATCH_DISKS) for _ in range(2)]
    await asyncio.gather(*(guests.driver.spawn(s) for s in specs))
    await asyncio.gather(*(wait_console(guests.driver, s.uuid, lambda c: c.script_output is not None) for s in specs))
    return specs


def added(volume: VolumeSpec):  # type: ignore[no-untyped-def]
    return lambda c: any(e[0] == "added" and e[3] == volume.volume_id[:20] for e in c.disk_events)


def said(volume: VolumeSpec, verb: str):  # type: ignore[no-untyped-def]
    return lambda c: f"{verb} {volume.volume_id[:20]}" in (c.script_output or "")


def disk_of(seen: GuestConsole, volume: VolumeSpec) -> str:
    return next(e[1] for e in reversed(seen.disk_events) if e[0] == "added" and e[3] == volume.volume_id[:20])


async def test_a_file_volume_hot_plugs_keeps_its_data_and_moves_to_another_guest(guests, pair, tmp_path):
    d = guests.driver
    a, b = pair
    volume = file_volume(tmp_path / "volume-a.qcow2")
    await d.attach_volume(a.uuid, volume)
    seen = await wait_console(d, a.uuid, said(volume, "wrote"), timeout=60)
    name = disk_of(seen, volume)
    assert ("added", name, 64 << 20, volume.volume_id[:20]) in seen.disk_events
    machine = json.loads((d.root / a.uuid / "machine.json").read_text())
    assert [v["volume_id"] for v in machine["volumes"]] == [volume.volume_id]
    await d.attach_volume(a.uuid, volume)  # again: nothing more happens
    await d.detach_volume(a.uuid, volume.volume_id)  # returns once the guest let go
    seen = await wait_console(d, a.uuid, lambda c: ("removed", name, None, None) in c.disk_events)
    assert json.loads((d.root / a.uuid / "machine.json").read_text())["volumes"] == []
    await d.detach_volume(a.uuid, volume.volume_id)  # not attached: no error
    # qemu let go of the file: another process may open it for writing
    subprocess.run(["qemu-img", "info", str(tmp_path / "volume-a.qcow2")], check=True, capture_output=True)

    await d.attach_volume(b.uuid, volume)
    seen = await wait_console(d, b.uuid, said(volume, "read"), timeout=60)
    assert f"read {volume.volume_id[:20]}: mcloud-data: written by {a.hostname}" in seen.script_output

    # B keeps it across a hard reboot (machine.json) and a stop and start (the spec's volumes)
    await d.reboot(b.uuid, hard=True)
    seen = await wait_console(d, b.uuid, lambda c: c.boots_seen >= 2 and c.boot_count is not None)
    assert seen.disks == {"vda": 1 << 30, "vdb": seen.disks["vdb"], "vdc": 64 << 20}  # root, config drive, volume
    await d.power_off(b.uuid)
    await d.power_on(dataclasses.replace(b, volumes=(volume,)))
    seen = await wait_console(d, b.uuid, lambda c: c.boots_seen >= 3 and said(volume, "read")(c))
    assert seen.disks["vdc"] == 64 << 20
    await d.detach_volume(b.uuid, volume.volume_id)


async def test_attaching_a_missing_file_fails_and_leaves_nothing(guests, pair, tmp_path):
    d = guests.driver
    a = pair[0]
    bad = VolumeSpec(volume_id=str(uuidlib.uuid4()), connection_info={
        "driver_volume_type": "file", "data": {"path": str(tmp_path / "nothing.qcow2"), "format": "qcow2"}})
    with pytest.raises(DriverError, match="qemu refused blockdev-add"):
        await d.attach_volume(a.uuid, bad)
    assert json.loads((d.root / a.uuid / "machine.json").read_text())["volumes"] == []
    with pytest.raises(DriverError, match="cannot attach 'iscsi'"):
        await d.attach_volume(a.uuid, VolumeSpec(volume_id=bad.volume_id,
                                                 connection_info={"driver_volume_type": "iscsi", "data": {}}))


async def test_boot_from_a_volume(guests, tmp_path):
    """Boot index 0: no image disk, the volume is vda; it outlives the instance (its boot count
    is on it) and the next instance booting from it counts on."""
    d = guests.driver
    volume = dataclasses.replace(file_volume(tmp_path / "root.qcow2", backing=tiny().path), boot_index=0)
    for boot in (1, 2):
        spec = dataclasses.replace(make_spec(tiny()), image=None, volumes=(volume,))
        await d.spawn(spec)
        seen = await wait_console(d, spec.uuid, lambda c: c.boot_count is not None)
        assert seen.uuid == spec.uuid and seen.boot_count == boot
        assert seen.disks["vda"] == _virtual_size(tmp_path / "root.qcow2")
        inst = d.root / spec.uuid
        assert not (inst / "disk").exists() and not (inst / "disk.rbd").exists()
        with pytest.raises(DriverError, match="root disk"):
            await d.detach_volume(spec.uuid, volume.volume_id)
        await d.destroy(spec.uuid)
        assert (tmp_path / "root.qcow2").exists()


def _virtual_size(path: Path) -> int:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], check=True, capture_output=True)
    return int(json.loads(out.stdout)["virtual-size"])


async def test_an_rbd_volume_through_qemus_librbd(guests, pair, ceph):
    from mcloud.compute.drivers import qemu_rbd
    from mcloud.core.ceph import bindings
    from tests.harness import missing

    if (why := qemu_rbd.missing()) is not None:
        missing(why)
    rbd = bindings()[1]
    pool = "volumes"
    if pool not in ceph.pools:
        ceph.create_pool(pool)
    volume_id = str(uuidlib.uuid4())
    with ceph.ioctx(pool) as ioctx:
        rbd.RBD().create(ioctx, f"volume-{volume_id}", 32 << 20)
    volume = VolumeSpec(volume_id=volume_id, connection_info={"driver_volume_type": "rbd", "data": {
        "name": f"{pool}/volume-{volume_id}", "ceph_conf": str(ceph.conf), "auth_username": "admin",
        "format": "raw", "access_mode": "rw"}})
    d = guests.driver
    a, b = pair
    try:
        await d.attach_volume(b.uuid, volume)
        seen = await wait_console(d, b.uuid, said(volume, "wrote"), timeout=60)
        assert ("added", disk_of(seen, volume), 32 << 20, volume_id[:20]) in seen.disk_events
        await d.detach_volume(b.uuid, volume_id)
        await d.attach_volume(a.uuid, volume)
        seen = await wait_console(d, a.uuid, said(volume, "read"), timeout=60)
        assert f"read {volume_id[:20]}: mcloud-data: written by {b.hostname}" in seen.script_output
        await d.detach_volume(a.uuid, volume_id)
        with ceph.ioctx(pool) as ioctx, rbd.Image(ioctx, f"volume-{volume_id}") as image:
            assert image.read(0, 64).startswith(f"mcloud-data: written by {b.hostname}\n".encode())
    finally:
        with ceph.ioctx(pool) as ioctx:
            rbd.RBD().remove(ioctx, f"volume-{volume_id}")
