"""Cinder volumes on qemu guests: how the qemu driver opens a volume from its ``connection_info``
and how it appears in the guest.

A volume is one ``-blockdev`` (qemu's block layer opens the qcow2/raw file, or the RBD image
through qemu's own librbd: Debian's qemu-block-extra) and one ``virtio-blk-pci`` device whose
``serial`` is the volume id, as Nova's libvirt driver sets it (the guest reads the first 20
characters: ``/sys/block/vdX/serial``, ``/dev/disk/by-id/virtio-<serial>``).

Attached volumes sit in fixed PCI slots from :data:`FIRST_SLOT` on, kept in machine.json, so that
a hot-plugged disk is in the same place when the guest is relaunched from a saved state
(suspend/resume) or a command line (reboot, power on). A volume the instance boots from (boot
index 0) takes the root disk's place instead: first on the command line, boot index 1.

Names: the block node ``vol<20 hex digits of the id>`` (qemu's node names have at most 31
characters), the device ``volume-<id>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mcloud.compute.drivers.base import DriverError, VolumeSpec

#: PCI slots of attached volumes on the ``pc`` machine's root bus (0x10..0x1f): clear of the
#: devices qemu places itself (VGA, root disk, config drive, NICs from slot 2 upwards)
FIRST_SLOT, LAST_SLOT = 0x10, 0x1F


def node_name(volume_id: str) -> str:
    return "vol" + volume_id.replace("-", "")[:20]


def device_id(volume_id: str) -> str:
    return f"volume-{volume_id}"


def blockdev(volume: VolumeSpec, node: str | None = None) -> dict[str, Any]:
    """qemu's ``-blockdev``/``blockdev-add`` of the volume, from Cinder's connection_info."""
    info = volume.connection_info
    kind = info.get("driver_volume_type")
    data = dict(info.get("data") or {})
    node = node or node_name(volume.volume_id)
    ro = volume.read_only
    if kind == "file":
        path, fmt = data.get("path") or data.get("device_path"), str(data.get("format") or "raw")
        if not path:
            raise DriverError(f"volume {volume.volume_id}: its connection names no file")
        if fmt not in ("qcow2", "raw"):
            raise DriverError(f"volume {volume.volume_id}: format {fmt} cannot be attached")
        return {"driver": fmt, "node-name": node, "read-only": ro, "discard": "unmap",
                "file": {"driver": "file", "filename": str(path), "read-only": ro}}
    if kind == "rbd":
        pool, _, image = str(data.get("name") or "").partition("/")
        if not (pool and image):
            raise DriverError(f"volume {volume.volume_id}: its connection names no RBD image (pool/image)")
        file: dict[str, Any] = {"driver": "rbd", "pool": pool, "image": image}
        if data.get("ceph_conf"):
            file["conf"] = str(data["ceph_conf"])
        if data.get("auth_username"):
            file["user"] = str(data["auth_username"])
        return {"driver": str(data.get("format") or "raw"), "node-name": node, "read-only": ro,
                "discard": "unmap", "file": file}
    raise DriverError(f"volume {volume.volume_id}: this host cannot attach {kind!r} volumes")


def device(volume: VolumeSpec, slot: int | None, boot: bool = False) -> dict[str, Any]:
    """The ``virtio-blk-pci`` device (``-device`` JSON or ``device_add`` arguments)."""
    dev: dict[str, Any] = {"driver": "virtio-blk-pci", "drive": node_name(volume.volume_id),
                           "id": device_id(volume.volume_id), "serial": volume.volume_id[:20]}
    if slot is not None:
        dev.update(bus="pci.0", addr=hex(slot))
    if boot:
        dev["bootindex"] = 1
    return dev


def free_slot(used: Iterable[int | None]) -> int:
    taken = {s for s in used if s is not None}
    for slot in range(FIRST_SLOT, LAST_SLOT + 1):
        if slot not in taken:
            return slot
    raise DriverError(f"no room for another volume: {LAST_SLOT - FIRST_SLOT + 1} are attached")


def stored(volume: VolumeSpec, slot: int | None) -> dict[str, Any]:
    """The volume as machine.json keeps it."""
    return {"volume_id": volume.volume_id, "connection_info": dict(volume.connection_info),
            "boot_index": volume.boot_index, "device_name": volume.device_name, "slot": slot}


def merge(volumes: Iterable[VolumeSpec], old: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """machine.json's volumes for ``volumes`` (the controller's list, in order): a volume keeps
    the slot it had before, a new one gets the first free slot; a boot volume has none."""
    volumes = list(volumes)
    before = {v["volume_id"]: v.get("slot") for v in old}
    slots: dict[str, int | None] = {}
    for v in volumes:
        if v.boot_index != 0 and before.get(v.volume_id) is not None and before[v.volume_id] not in slots.values():
            slots[v.volume_id] = before[v.volume_id]
    for v in volumes:
        if v.boot_index != 0 and v.volume_id not in slots:
            slots[v.volume_id] = free_slot(slots.values())
    return [stored(v, slots.get(v.volume_id)) for v in sorted(volumes, key=lambda v: v.boot_index != 0)]


def spec(d: Mapping[str, Any]) -> VolumeSpec:
    return VolumeSpec.of(d)
