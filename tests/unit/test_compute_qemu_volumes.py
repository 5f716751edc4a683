"""The qemu driver's volumes: the blockdev and device qemu is given from Cinder's connection_info,
and the PCI slots kept in machine.json (a volume keeps its slot across relaunches)."""

from __future__ import annotations

import dataclasses
import uuid as uuidlib

import pytest

from mcloud.compute.drivers import qemu_volumes
from mcloud.compute.drivers.base import DriverError, InstanceSpec, FlavorSpec, VolumeSpec


def volume(kind: str = "file", **data) -> VolumeSpec:  # type: ignore[no-untyped-def]
    return VolumeSpec(volume_id=str(uuidlib.uuid4()), connection_info={"driver_volume_type": kind, "data": data})


def test_file_and_rbd_blockdevs():
    v = volume(path="/v/volume-1", format="qcow2")
    bd = qemu_volumes.blockdev(v)
    assert bd["driver"] == "qcow2" and bd["file"] == {"driver": "file", "filename": "/v/volume-1", "read-only": False}
    assert bd["node-name"] == qemu_volumes.node_name(v.volume_id) and len(bd["node-name"]) <= 31
    r = volume("rbd", name="volumes/volume-2", ceph_conf="/etc/ceph/c.conf", auth_username="cinder", access_mode="ro")
    bd = qemu_volumes.blockdev(r)
    assert bd["driver"] == "raw" and bd["read-only"] is True
    assert bd["file"] == {"driver": "rbd", "pool": "volumes", "image": "volume-2", "conf": "/etc/ceph/c.conf",
                          "user": "cinder"}
    for bad, says in ((volume("iscsi"), "cannot attach 'iscsi'"), (volume(format="qcow2"), "names no file"),
                      (volume(path="/x", format="vmdk"), "format vmdk"), (volume("rbd", name="x"), "pool/image")):
        with pytest.raises(DriverError, match=says):
            qemu_volumes.blockdev(bad)


def test_the_device_has_the_volume_id_as_serial():
    v = volume(path="/x")
    dev = qemu_volumes.device(v, 0x10)
    assert dev == {"driver": "virtio-blk-pci", "drive": qemu_volumes.node_name(v.volume_id),
                   "id": f"volume-{v.volume_id}", "serial": v.volume_id[:20], "bus": "pci.0", "addr": "0x10"}
    assert qemu_volumes.device(v, None, boot=True)["bootindex"] == 1


def test_slots_are_kept_and_reused():
    a, b, c = volume(path="/a"), volume(path="/b"), volume(path="/c")
    kept = qemu_volumes.merge([a, b])
    assert [x["slot"] for x in kept] == [0x10, 0x11]
    # a goes, c comes: b keeps its slot, c takes the free one
    assert [x["slot"] for x in qemu_volumes.merge([b, c], kept)] == [0x11, 0x10]
    root = dataclasses.replace(c, boot_index=0)
    merged = qemu_volumes.merge([b, root], kept)
    assert [(x["volume_id"], x["slot"]) for x in merged] == [(c.volume_id, None), (b.volume_id, 0x11)]
    with pytest.raises(DriverError, match="no room"):
        qemu_volumes.free_slot(range(0x10, 0x20))


def test_the_spec_names_its_root_volume():
    root = dataclasses.replace(volume(path="/r"), boot_index=0)
    spec = InstanceSpec(uuid="u", name="n", hostname="h", flavor=FlavorSpec(1, 64, 0), image=None,
                        volumes=(volume(path="/x"), root))
    assert spec.root_volume == root
    assert VolumeSpec.of({"volume_id": "v", "connection_info": {"data": {"access_mode": "ro"}},
                          "boot_index": "0"}).read_only
