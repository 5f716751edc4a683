"""Block storage's Must-show on both backends, through the real `openstack` CLI against one
`mcloud up` with two volume backends: ``file`` (qcow2 files in the data dir, qemu-img) and
``ceph`` (RBD images in a pool of its own on the session's Ceph cluster), each behind a volume
type made with ``volume type create --property volume_backend_name=...``. The image service keeps
its images in the same cluster, so a volume from a raw image on ``ceph`` is an RBD clone of the
image's protected snapshot. Backups go to a second pool (the rbd backup driver).

For each backend: volume create (blank, --image, --snapshot, --source), list, show (the host is
``storage1@<backend>#<backend>``: ``[volume] host``), set (name, property, --size, --bootable),
snapshot create/list/show/delete, upload to an image (raw and qcow2: the image's data is the
volume's), delete; every object appears on the backend (files in the data dir, RBD images in the
pool) and goes. Then retype between the two backends (``--migration-policy on-demand`` moves the
data; ``never`` leaves the volume where it is), and backup create/restore and a transfer request
accepted by another project on the ceph backend."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ceph import CephCluster
from tests.e2e.conftest import FAST_ENV, Client, unique
from tests.e2e.test_volume_cli import wait
from tests.harness import LiveCloud, free_port
from tests.real.test_rbd_store import ceph_libs  # noqa: F401 (the bindings fixture)

pytestmark = pytest.mark.real

MIB = 1 << 20
HOST = "storage1"
POOL, BACKUP_POOL = "cli-volumes", "cli-backups"
BACKENDS = ("file", "ceph")
TYPES = {"file": "tier-file", "ceph": "tier-ceph"}


class World:
    def __init__(self, cli: Client, ceph: CephCluster, libs: tuple[Any, Any], data_dir: Path, image: dict[str, Any],
                 image_data: bytes):
        self.cli, self.ceph, self.rbd = cli, ceph, libs[1]
        self.data_dir, self.image, self.image_data = data_dir, image, image_data

    # -- the backends' own view ---------------------------------------------------------------

    def objects(self, backend: str) -> set[str]:
        """The volumes and snapshots the backend holds (file names / RBD image and snapshot names)."""
        if backend == "file":
            root = self.data_dir / "volumes" / "file"
            return {p.name for p in root.iterdir() if p.name.startswith(("volume-", "snapshot-"))} if root.exists() \
                else set()
        found: set[str] = set()
        with self.ceph.ioctx(POOL) as ioctx:
            for name in self.rbd.RBD().list(ioctx):
                found.add(name)
                with self.rbd.Image(ioctx, name, read_only=True) as img:
                    found |= {s["name"] for s in img.list_snaps()}
        return found

    def all_files(self) -> list[str]:
        root = self.data_dir / "volumes" / "file"
        return sorted(p.name for p in root.iterdir()) if root.exists() else []

    def parent(self, volume_id: str) -> tuple[str, str, str] | None:
        """The RBD clone parent of a ceph volume: (pool, image, snapshot), None if it has none."""
        with self.ceph.ioctx(POOL) as ioctx, self.rbd.Image(ioctx, f"volume-{volume_id}", read_only=True) as img:
            try:
                return tuple(img.parent_info())  # type: ignore[return-value]
            except self.rbd.ImageNotFound:
                return None

    def head(self, backend: str, volume_id: str, length: int) -> bytes:
        """The first ``length`` bytes of the volume, read from the backend's store directly."""
        if backend == "ceph":
            with self.ceph.ioctx(POOL) as ioctx, self.rbd.Image(ioctx, f"volume-{volume_id}", read_only=True) as img:
                return bytes(img.read(0, length))
        path = self.data_dir / "volumes" / "file" / f"volume-{volume_id}"
        raw = path.parent / f".test-head-{volume_id}"
        try:
            subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", str(path), str(raw)], check=True)
            with raw.open("rb") as f:
                return f.read(length)
        finally:
            raw.unlink(missing_ok=True)

    # -- the CLI ------------------------------------------------------------------------------

    def create(self, *args: str, status: str = "available") -> dict[str, Any]:
        name = unique("v")
        made = self.cli.json("volume", "create", *args, name)
        return wait(self.cli, ("volume",), made["id"], status, timeout=120)

    def saved_image(self, image_id: str, tmp: Path) -> Path:
        """The image (made from a volume) once active, saved with ``image save``, as a raw file."""
        deadline = time.monotonic() + 120
        while (shown := self.cli.json("image", "show", image_id))["status"] != "active":
            assert shown["status"] in ("queued", "saving", "importing") and time.monotonic() < deadline, shown
            time.sleep(0.5)
        out = tmp / f"{image_id}.img"
        self.cli.run("image", "save", "--file", str(out), image_id)
        if shown["disk_format"] != "raw":
            info = subprocess.run(["qemu-img", "info", "--output=json", str(out)], capture_output=True, text=True,
                                  check=True).stdout
            assert f'"format": "{shown["disk_format"]}"' in info
            raw = tmp / f"{image_id}.raw"
            subprocess.run(["qemu-img", "convert", "-f", shown["disk_format"], "-O", "raw", str(out), str(raw)],
                           check=True)
            out = raw
        return out

    def holds_image_data(self, raw: Path) -> bool:
        """Whether a raw 1 GiB disk holds the image's data followed by zeros."""
        if raw.stat().st_size != 1 << 30:
            return False
        with raw.open("rb") as f:
            if f.read(MIB) != self.image_data:
                return False
            while chunk := f.read(16 * MIB):
                if chunk.count(0) != len(chunk):
                    return False
        return True


@pytest.fixture(scope="module")
def world(ceph: CephCluster, ceph_libs: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    for pool in (POOL, BACKUP_POOL):
        if pool not in ceph.pools:
            ceph.create_pool(pool)
    data_dir = tmp_path_factory.mktemp("vol-rbd-cli")
    (data_dir / "mcloud.toml").write_text(
        '[image]\nstores = ["rbd", "file"]\ndefault_store = "rbd"\n'
        f'[image.rbd]\npool = "images"\nconf = "{ceph.conf}"\nchunk_size = 1048576\n'
        f'[volume]\nhost = "{HOST}"\n'
        '[volume.backends.file]\ndriver = "file"\n'
        f'[volume.backends.ceph]\ndriver = "rbd"\npool = "{POOL}"\nceph_conf = "{ceph.conf}"\n'
        f'[volume.backup]\ndriver = "rbd"\npool = "{BACKUP_POOL}"\nceph_conf = "{ceph.conf}"\n')
    cloud = LiveCloud(data_dir, free_port(), env={**FAST_ENV, "MCLOUD_COMPUTE_DRIVER": "fake"})
    cloud.start()
    try:
        cli = Client(cloud, data_dir / "no-clouds.yaml")
        for backend, vtype in TYPES.items():
            cli.run("volume", "type", "create", "--property", f"volume_backend_name={backend}", vtype)
        data = os.urandom(MIB)
        raw = data_dir / "image.raw"
        raw.write_bytes(data)
        image = cli.json("image", "create", "--file", str(raw), "--disk-format", "raw", "--container-format", "bare",
                         unique("vol-image"))
        assert image["status"] == "active"
        yield World(cli, ceph, ceph_libs, data_dir, image, data)
        cli.run("image", "delete", image["id"])
    finally:
        cloud.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_volumes_and_snapshots_on_each_backend(world: World, backend: str) -> None:
    cli, vtype = world.cli, TYPES[backend]
    pool = f"{HOST}@{backend}#{backend}"
    before = world.objects(backend)
    blank = world.create("--size", "1", "--type", vtype)
    assert blank["os-vol-host-attr:host"] == pool and blank["type"] == vtype
    assert f"volume-{blank['id']}" in world.objects(backend)

    # from the image: bootable, the image's metadata and data; on ceph an RBD clone of its snapshot
    from_image = world.create("--size", "1", "--type", vtype, "--image", world.image["id"])
    assert from_image["os-vol-host-attr:host"] == pool and str(from_image["bootable"]).lower() == "true"
    assert from_image["volume_image_metadata"]["image_id"] == world.image["id"]
    assert world.head(backend, from_image["id"], MIB) == world.image_data
    if backend == "ceph":
        assert world.parent(from_image["id"]) == ("images", world.image["id"], "snap")

    # set: name, property, bootable, size (extend)
    name = unique("renamed")
    cli.run("volume", "set", "--name", name, "--property", "tier=" + backend, "--bootable", blank["id"])
    cli.run("volume", "set", "--size", "2", blank["id"])
    shown = wait(cli, ("volume",), blank["id"], "available")
    assert shown["name"] == name and shown["properties"] == {"tier": backend} and shown["size"] == 2
    assert str(shown["bootable"]).lower() == "true"
    listed = {v["ID"]: v for v in cli.json("volume", "list", "--long")}
    assert listed[blank["id"]]["Name"] == name and listed[from_image["id"]]["Status"] == "available"

    # snapshots, and volumes from a snapshot and from a volume (on the source's backend)
    snap = cli.json("volume", "snapshot", "create", "--volume", from_image["id"], unique("snap"))
    snap = wait(cli, ("volume", "snapshot"), snap["id"], "available")
    assert snap["volume_id"] == from_image["id"] and snap["size"] == 1
    assert snap["id"] in {s["ID"] for s in cli.json("volume", "snapshot", "list")}
    assert f"snapshot-{snap['id']}" in world.objects(backend)
    from_snap = world.create("--snapshot", snap["id"])
    from_volume = world.create("--source", from_image["id"])
    for made in (from_snap, from_volume):
        assert made["os-vol-host-attr:host"] == pool and made["type"] == vtype
        assert world.head(backend, made["id"], MIB) == world.image_data
    if backend == "ceph":
        assert world.parent(from_snap["id"]) == (POOL, f"volume-{from_image['id']}", f"snapshot-{snap['id']}")
        assert world.parent(from_volume["id"]) == (POOL, f"volume-{from_image['id']}",
                                                   f"volume-{from_volume['id']}.clone_snap")

    # deletes: the snapshot (its clones keep their data), then every volume; nothing is left
    cli.run("volume", "snapshot", "delete", snap["id"])
    wait(cli, ("volume", "snapshot"), snap["id"], "gone")
    assert world.head(backend, from_snap["id"], MIB) == world.image_data
    ids = [blank["id"], from_image["id"], from_snap["id"], from_volume["id"]]
    cli.run("volume", "delete", *ids)
    for vid in ids:
        wait(cli, ("volume",), vid, "gone")
    assert world.objects(backend) == before
    if backend == "file":
        assert world.all_files() == []  # no frozen chain nor cached image left either


@pytest.mark.parametrize("backend", BACKENDS)
def test_upload_to_image_on_each_backend(world: World, backend: str, tmp_path: Path) -> None:
    """raw from the files, qcow2 from ceph (qcow2 from the files and both formats from the fake
    backend in tests/api/test_volume_scheduling_moves.py): the image holds the volume's data."""
    cli = world.cli
    vol = world.create("--size", "1", "--type", TYPES[backend], "--image", world.image["id"])
    up = cli.json("image", "create", "--volume", vol["id"], "--disk-format", "raw" if backend == "file" else "qcow2",
                  unique("from-vol"))
    saved = world.saved_image(up["image_id"], tmp_path)
    assert world.holds_image_data(saved)
    saved.unlink()  # a GiB
    assert wait(cli, ("volume",), vol["id"], "available")["status"] == "available"
    cli.run("image", "delete", up["image_id"])
    cli.run("volume", "delete", vol["id"])
    wait(cli, ("volume",), vol["id"], "gone")


def test_retype_moves_a_volume_between_backends(world: World) -> None:
    cli = world.cli
    vol = world.create("--size", "1", "--type", TYPES["file"], "--image", world.image["id"])
    # never: the type needs another backend, so the volume stays as it is (Cinder answers 202)
    cli.run("volume", "set", "--type", TYPES["ceph"], "--migration-policy", "never", vol["id"])
    shown = wait(cli, ("volume",), vol["id"], "available")
    assert shown["type"] == TYPES["file"] and shown["os-vol-host-attr:host"] == f"{HOST}@file#file"
    # on-demand: the data moves to the pool, the file goes
    for src, dst in (("file", "ceph"), ("ceph", "file")):
        cli.run("volume", "set", "--type", TYPES[dst], "--migration-policy", "on-demand", vol["id"])
        deadline = time.monotonic() + 120
        while (shown := cli.json("volume", "show", vol["id"]))["status"] != "available" or \
                shown["type"] != TYPES[dst]:
            assert shown["status"] in ("retyping", "available") and time.monotonic() < deadline, shown
            time.sleep(0.5)
        assert shown["os-vol-host-attr:host"] == f"{HOST}@{dst}#{dst}"
        assert shown["os-vol-mig-status-attr:migstat"] == "success"
        assert f"volume-{vol['id']}" in world.objects(dst) and f"volume-{vol['id']}" not in world.objects(src)
        assert world.head(dst, vol["id"], MIB) == world.image_data
        assert str(shown["bootable"]).lower() == "true"
    cli.run("volume", "delete", vol["id"])
    wait(cli, ("volume",), vol["id"], "gone")
    assert f"volume-{vol['id']}" not in world.objects("file") | world.objects("ceph")


def test_backup_and_transfer_on_ceph(world: World) -> None:
    cli = world.cli
    vol = world.create("--size", "1", "--type", TYPES["ceph"], "--image", world.image["id"])
    backup = cli.json("volume", "backup", "create", "--name", unique("bak"), vol["id"])
    backup = wait(cli, ("volume", "backup"), backup["id"], "available", timeout=180)
    assert backup["volume_id"] == vol["id"] and backup["size"] == 1
    with world.ceph.ioctx(BACKUP_POOL) as ioctx:
        assert any(True for _ in ioctx.list_objects())  # the backup's chunks are RADOS objects

    # restore over another ceph volume: it now holds the image's data
    target = world.create("--size", "1", "--type", TYPES["ceph"])
    assert world.head("ceph", target["id"], MIB) == bytes(MIB)
    cli.json("volume", "backup", "restore", "--force", backup["id"], target["id"])
    wait(cli, ("volume", "backup"), backup["id"], "available", timeout=180)
    restored = wait(cli, ("volume",), target["id"], "available", timeout=180)
    assert restored["os-vol-host-attr:host"] == f"{HOST}@ceph#ceph"
    assert world.head("ceph", target["id"], MIB) == world.image_data
    cli.run("volume", "backup", "delete", backup["id"])
    wait(cli, ("volume", "backup"), backup["id"], "gone")
    with world.ceph.ioctx(BACKUP_POOL) as ioctx:
        assert [o.key for o in ioctx.list_objects()] == []

    # a transfer to the demo project: the RBD image stays where it is, the volume changes hands
    request = cli.json("volume", "transfer", "request", "create", target["id"])
    assert cli.json("volume", "show", target["id"])["status"] == "awaiting-transfer"
    cli.json("volume", "transfer", "request", "accept", "--auth-key", request["auth_key"], request["id"],
             cloud="mcloud-demo")
    demo = cli.json("project", "show", "demo")["id"]
    shown = cli.json("volume", "show", target["id"])
    assert shown["os-vol-tenant-attr:tenant_id"] == demo and shown["os-vol-host-attr:host"] == f"{HOST}@ceph#ceph"
    assert cli.json("volume", "show", target["id"], cloud="mcloud-demo")["status"] == "available"
    assert world.head("ceph", target["id"], MIB) == world.image_data
    cli.run("volume", "delete", target["id"], cloud="mcloud-demo")
    cli.run("volume", "delete", vol["id"])
    for vid in (target["id"], vol["id"]):
        wait(cli, ("volume",), vid, "gone")
    assert {f"volume-{target['id']}", f"volume-{vol['id']}"}.isdisjoint(world.objects("ceph"))
