"""The image service on the rbd store, through the real `openstack` CLI against `mcloud up`
whose default store is a real Ceph pool: each image an RBD image with a protected snapshot
`snap` that others clone copy-on-write, and an image whose data was cloned cannot be deleted."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcloud.core.ceph import CephBindingsMissing, bindings
from tests.ceph import CephCluster
from tests.e2e.conftest import FAST_ENV, Client, unique
from tests.e2e.test_image_cli import make_qcow2
from tests.harness import LiveCloud, free_port, missing

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def rbd_cloud(ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    data_dir = tmp_path_factory.mktemp("rbd-cloud")
    (data_dir / "mcloud.toml").write_text(
        '[image]\nstores = ["rbd", "file"]\ndefault_store = "rbd"\n'
        f'[image.rbd]\npool = "images"\nconf = "{ceph.conf}"\nchunk_size = 1048576\n')
    cloud = LiveCloud(data_dir, free_port(), env=FAST_ENV)
    cloud.start()
    try:
        yield Client(cloud, data_dir / "no-clouds.yaml")
    finally:
        cloud.stop()


@pytest.fixture(scope="module")
def ioctx(ceph: CephCluster) -> Iterator[Any]:
    """A client of the pool of our own, as Nova or Cinder would open it."""
    try:
        bindings()
    except CephBindingsMissing:
        missing("Ceph's Python bindings (Debian: python3-rados python3-rbd)")
        raise
    with ceph.ioctx("images") as ctx:
        yield ctx


def test_image_lifecycle_on_rbd(rbd_cloud: Client, ioctx: Any, tmp_path: Path) -> None:
    _, rbd = bindings()
    cli = rbd_cloud
    disk = make_qcow2(tmp_path / "disk.qcow2")
    image = cli.json("image", "create", "--file", str(disk), "--disk-format", "qcow2", "--container-format",
                     "bare", unique("rbd-image"))
    assert image["status"] == "active"
    shown = cli.json("image", "show", image["id"])
    assert shown["checksum"] == hashlib.md5(disk.read_bytes()).hexdigest()
    assert shown["properties"]["stores"] == "rbd"
    # the data is an RBD image named by the image id, with a protected snapshot `snap`
    assert image["id"] in rbd.RBD().list(ioctx)
    with rbd.Image(ioctx, image["id"], read_only=True) as data:
        assert data.size() == disk.stat().st_size
        assert [(s["name"], data.is_protected_snap(s["name"])) for s in data.list_snaps()] == [("snap", True)]

    saved = tmp_path / "saved.qcow2"
    cli.run("image", "save", "--file", str(saved), image["id"])
    assert saved.read_bytes() == disk.read_bytes()
    cli.run("image", "set", "--property", "os_distro=mcloud", image["id"])
    cli.run("image", "set", "--deactivate", image["id"])
    cli.run("image", "set", "--activate", image["id"])

    # what Nova and Cinder will do: a copy-on-write clone of `snap`
    clone = unique("vol")
    rbd.RBD().clone(ioctx, image["id"], "snap", ioctx, clone, features=rbd.RBD_FEATURE_LAYERING)
    with rbd.Image(ioctx, clone, read_only=True) as vol:
        assert vol.read(0, 4096) == disk.read_bytes()[:4096]
    refused = cli.run("image", "delete", image["id"], check=False)
    assert refused.returncode != 0
    assert cli.json("image", "show", image["id"])["status"] == "active"  # kept, with its data
    assert image["id"] in rbd.RBD().list(ioctx)

    rbd.RBD().remove(ioctx, clone)
    cli.run("image", "delete", image["id"])
    assert image["id"] not in rbd.RBD().list(ioctx)
    gone = cli.run("image", "show", image["id"], check=False)
    assert gone.returncode != 0
