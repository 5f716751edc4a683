"""Root disks in Ceph (tests/ceph.py's cluster, the image service's own rbd store): a raw image in
Ceph boots from a copy-on-write clone of its protected snapshot (``vms/<uuid>_disk``, opened by
qemu's rbd driver), which a snapshot copies, a resize grows and a revert puts back, which a live
migration leaves in place (both hosts reach it: only the memory moves) and which destroy removes;
an image in Ceph that is not raw backs a local qcow2 overlay instead (as Nova clones only raw)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mcloud.compute import states
from mcloud.compute.drivers.base import ImageSpec
from mcloud.compute.drivers import qemu_rbd
from mcloud.core.ceph import bindings
from mcloud.image.drivers.rbd import RbdStore
from tests.ceph import CephCluster
from tests.harness import missing
from tests.qemu import Guests, make_spec, module_guests, tiny, wait_console
from tests.real.test_qemu_migration import COUNTER, ticks

pytestmark = pytest.mark.real

GIB = 1 << 30
POOL = "vms"  # where the instances' disks go, as Nova's images_rbd_pool


@pytest.fixture(scope="module")
def rbd_lib(ceph: CephCluster) -> Any:
    if (why := qemu_rbd.missing()) is not None:
        missing(why)
    rbd = bindings()[1]
    if POOL not in ceph.pools:
        ceph.create_pool(POOL)
    return rbd


@pytest.fixture(scope="module")
async def guests(tmp_path_factory, ceph: CephCluster, rbd_lib):
    async for g in module_guests(tmp_path_factory, "qemu-rbd", rbd_pool=POOL, ceph_conf=str(ceph.conf)):
        yield g


async def _file(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:
        while chunk := await asyncio.to_thread(f.read, 8 << 20):
            yield chunk


@pytest.fixture(scope="module")
async def images(ceph: CephCluster, rbd_lib, tmp_path_factory) -> AsyncIterator[dict[str, ImageSpec]]:
    """The tiny image in the image service's rbd store twice: raw, and as its qcow2."""
    raw = tmp_path_factory.mktemp("rbd-images") / "tiny.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(tiny().path), str(raw)], check=True)
    store = RbdStore("rbd", pool="images", conf_path=ceph.conf)
    made, stored = {}, []
    for fmt, path in (("raw", raw), ("qcow2", tiny().path)):
        image_id = str(uuid.uuid4())
        s = await store.add(image_id, _file(path))
        assert s.location == f"rbd://{ceph.fsid}/images/{image_id}/snap"
        stored.append(s.location)
        # what the agent hands the driver (hosts.image_payload: rbd://fsid/pool/image/snap -> pool/image@snap)
        made[fmt] = ImageSpec(id=image_id, disk_format=fmt, rbd=f"images/{image_id}@snap", size=s.size)
    yield made
    for location in stored:  # refused while a clone is left: the tests leave none
        await store.delete(location)
    await store.close()


def clones(ceph: CephCluster, rbd: Any) -> list[str]:
    with ceph.ioctx(POOL) as ioctx:
        return sorted(rbd.RBD().list(ioctx))


def disk_of(ceph: CephCluster, rbd: Any, name: str) -> dict[str, Any]:
    with ceph.ioctx(POOL) as ioctx, rbd.Image(ioctx, name, read_only=True) as image:
        return {"parent": image.parent_info(), "size": image.size(),
                "snaps": [s["name"] for s in image.list_snaps()]}


async def test_a_raw_image_in_ceph_boots_from_a_clone_that_destroy_removes(guests, images, ceph, rbd_lib, tmp_path):
    d = guests.driver
    image = images["raw"]
    spec = make_spec(image, root_gb=1)
    await d.spawn(spec)
    name = f"{spec.uuid}_disk"
    assert clones(ceph, rbd_lib) == [name]
    assert disk_of(ceph, rbd_lib, name) == {"parent": ("images", image.id, "snap"), "size": GIB, "snaps": []}
    folder = guests.root / "instances" / spec.uuid
    assert not (folder / "disk").exists()  # nothing downloaded, no local disk
    seen = await wait_console(d, spec.uuid, lambda s: s.ready)
    assert seen.uuid == spec.uuid and seen.boot_count == 1 and seen.disks["vda"] == GIB

    # a snapshot copies the clone's data (the boot counted on it) into a standalone qcow2
    dest = tmp_path / "snap.qcow2"
    assert await d.snapshot(spec.uuid, dest) == "qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(dest)], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["virtual-size"] == GIB and "backing-filename" not in info

    # a resize grows the clone, keeping it as it was in a snapshot that a revert rolls back to
    await d.resize(make_spec(image, uuid=spec.uuid, root_gb=2))
    assert await d.power_state(spec.uuid) == states.SHUTDOWN
    assert disk_of(ceph, rbd_lib, name)["size"] == 2 * GIB and disk_of(ceph, rbd_lib, name)["snaps"] == ["resize"]
    await d.revert_resize(spec)
    assert disk_of(ceph, rbd_lib, name) == {"parent": ("images", image.id, "snap"), "size": GIB, "snaps": []}
    await d.resize(make_spec(image, uuid=spec.uuid, root_gb=2))
    await d.confirm_resize(spec.uuid)
    assert disk_of(ceph, rbd_lib, name)["snaps"] == [] and disk_of(ceph, rbd_lib, name)["size"] == 2 * GIB

    await d.destroy(spec.uuid)
    assert clones(ceph, rbd_lib) == [] and not folder.exists()
    with ceph.ioctx("images") as ioctx, rbd_lib.Image(ioctx, image.id, snapshot="snap", read_only=True) as parent:
        assert list(parent.list_children()) == []


async def test_a_guest_on_a_ceph_disk_migrates_its_memory_only_and_keeps_its_disk(guests, images, ceph, rbd_lib,
                                                                                 tmp_path):
    source = guests.driver
    spec = make_spec(images["raw"], user_data=COUNTER)
    await source.spawn(spec)
    await wait_console(source, spec.uuid, lambda s: s.script_output is not None and "tick 3" in s.script_output)
    async with Guests(tmp_path / "b", **guests.options) as other:
        dest = other.driver
        # a destination given up leaves the disk to the source
        target = await dest.prepare_incoming(spec)
        assert target.disks == {}  # shared: nothing to mirror
        await dest.abort_incoming(spec.uuid)
        assert clones(ceph, rbd_lib) == [f"{spec.uuid}_disk"]
        assert await source.power_state(spec.uuid) == states.RUNNING

        target = await dest.prepare_incoming(spec)
        figures = await source.live_migrate(spec.uuid, target)
        await dest.finish_incoming(spec.uuid)
        assert figures["disk_total"] == 0 and figures["memory_processed"] > 0  # only the memory moved
        print(f"memory-only migration: qemu {figures['total_time_ms']} ms, downtime {figures['downtime_ms']} ms")
        assert await source.list_instances() == {} and clones(ceph, rbd_lib) == [f"{spec.uuid}_disk"]
        assert await dest.power_state(spec.uuid) == states.RUNNING
        for _ in range(100):  # the counter goes on, on the destination, writing through the same clone
            if len(ticks(await dest.console_output(spec.uuid))) >= 2:
                break
            await asyncio.sleep(0.2)
        assert len(ticks(await dest.console_output(spec.uuid))) >= 2
        await dest.destroy(spec.uuid)
        assert clones(ceph, rbd_lib) == []


async def test_an_image_in_ceph_that_is_not_raw_backs_a_local_overlay(guests, images, ceph, rbd_lib):
    d = guests.driver
    image = images["qcow2"]
    spec = make_spec(image)
    await d.spawn(spec)
    disk = guests.root / "instances" / spec.uuid / "disk"
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["backing-filename"] == f"rbd:images/{image.id}@snap:conf={ceph.conf}"
    assert info["backing-filename-format"] == "qcow2" and clones(ceph, rbd_lib) == []
    seen = await wait_console(d, spec.uuid, lambda s: s.boot_count is not None)
    assert seen.uuid == spec.uuid and seen.boot_count == 1
    await d.destroy(spec.uuid)
