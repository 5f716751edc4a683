"""The issue's "Must show" for volumes on servers, through the real `openstack` CLI against a real
`mcloud up` with the qemu hypervisor driver and the file volume backend (qcow2 files): `server add
volume` hot-plugs the volume into a running tiny guest (its console shows the disk; its user-data
script writes to it), `server remove volume` takes it out (the volume is available again), the
volume attached to a second guest holds what the first wrote, and `server create
--boot-from-volume` boots a guest from a volume made from the image. The guests have no NIC
(``--nic none``: no network data plane needed); they say everything on their consoles.

The cloud has both backends, chosen by volume type: ``file`` and ``ceph`` (RBD images in a pool of
its own on the session's Ceph cluster, opened by qemu's own librbd); the same two guests take a
volume of each in turn."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mcloud.compute.tinyimage import IMAGE_PROPERTIES
from tests.ceph import CephCluster
from tests.harness import LiveCloud, free_port, missing
from tests.qemu import qemu_missing, tiny
from tests.real.test_compute_qemu_cli import Cli
from tests.real.test_qemu_volumes import WATCH_DISKS

pytestmark = pytest.mark.real


POOL = "cli-volumes"  # the ceph backend's pool, of its own on the session's cluster


@pytest.fixture(scope="module")
def cli(ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if (why := qemu_missing()) is not None:
        missing(why)
    ceph.create_pool(POOL)
    root = tmp_path_factory.mktemp("volume-qemu-cli")
    (root / "mcloud.toml").write_text(
        '[compute]\ndriver = "qemu"\n\n[volume.backends.file]\ndriver = "file"\n\n'
        f'[volume.backends.ceph]\ndriver = "rbd"\npool = "{POOL}"\nceph_conf = "{ceph.conf}"\n')
    cloud = LiveCloud(root, free_port(), env={"MCLOUD_IDENTITY_PASSWORD_HASH_ROUNDS": "4",
                                              "MCLOUD_COMPUTE_DRIVER": "qemu"})
    cloud.start(timeout=120)
    try:
        c = Cli(cloud)
        props = [a for k, v in IMAGE_PROPERTIES.items() for a in ("--property", f"{k}={v}")]
        c("image", "create", "--file", str(tiny().path), "--disk-format", "qcow2", "--container-format", "bare",
          "--public", *props, "tiny")
        c("flavor", "create", "--ram", "96", "--disk", "1", "--vcpus", "1", "t.small")
        for backend in ("file", "ceph"):
            c("volume", "type", "create", "--property", f"volume_backend_name={backend}", backend)
        yield c
    finally:
        assert cloud.stop() == 0


def rbd_images(ceph: CephCluster) -> set[str]:
    from mcloud.core.ceph import bindings

    _, rbd = bindings()
    with ceph.ioctx(POOL) as ioctx:
        return set(rbd.RBD().list(ioctx))


def wait_volume(cli: Cli, name: str, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        vol = cli("volume", "show", name)
        if vol["status"] == status:
            return vol
        assert not vol["status"].startswith("error"), vol
        assert time.monotonic() < deadline, f"volume {name} is {vol['status']}, not {status}"
        time.sleep(0.5)


def test_server_add_and_remove_volume_and_boot_from_volume(cli: Cli, ceph: CephCluster, tmp_path) -> None:
    script = tmp_path / "watch.sh"
    script.write_text(WATCH_DISKS)
    for name in ("vm1", "vm2"):
        cli("server", "create", "--image", "tiny", "--flavor", "t.small", "--nic", "none",
            "--user-data", str(script), "--wait", name)
    for name in ("vm1", "vm2"):
        cli.wait_console(name, lambda c: c.script_output is not None)
    vm1 = cli.server("vm1")

    def removed(times: int):  # type: ignore[no-untyped-def]
        return lambda c: sum(e[0] == "removed" for e in c.disk_events) >= times

    # on each backend: vm1 writes to the volume, vm2 reads it back after it moved
    for round_, backend in enumerate(("file", "ceph"), start=1):
        name = f"data-{backend}"
        vol = cli("volume", "create", "--size", "1", "--type", backend, name)
        created = wait_volume(cli, name, "available")
        assert created["os-vol-host-attr:host"].split("@")[1].startswith(backend), created
        if backend == "ceph":
            assert f"volume-{vol['id']}" in rbd_images(ceph)
        serial = vol["id"][:20]
        cli.run("server", "add", "volume", "vm1", name)
        attached = wait_volume(cli, name, "in-use")
        assert attached["attachments"][0]["server_id"] == vm1["id"]
        seen = cli.wait_console("vm1", lambda c: f"wrote {serial}" in (c.script_output or ""), timeout=90)
        assert any(e[0] == "added" and e[2] == 1 << 30 and e[3] == serial for e in seen.disk_events)
        assert vol["id"] in str(cli.server("vm1")["volumes_attached"])

        cli.run("server", "remove", "volume", "vm1", name)
        wait_volume(cli, name, "available")
        cli.wait_console("vm1", removed(round_))

        cli.run("server", "add", "volume", "vm2", name)
        wait_volume(cli, name, "in-use")
        seen = cli.wait_console("vm2", lambda c: f"read {serial}" in (c.script_output or ""), timeout=90)
        assert f"read {serial}: mcloud-data: written by {vm1['name']}" in seen.script_output
        cli.run("server", "remove", "volume", "vm2", name)
        wait_volume(cli, name, "available")
        cli.wait_console("vm2", removed(round_))
        cli.run("volume", "delete", name)
    for name in ("vm1", "vm2"):
        cli.run("server", "delete", "--wait", name)
    deadline = time.monotonic() + 60
    while rbd_images(ceph):  # the ceph volume's image goes with it
        assert time.monotonic() < deadline, rbd_images(ceph)
        time.sleep(0.5)

    # boot from a volume made from the image (BDM v2 image -> volume, boot index 0)
    vm3 = cli("server", "create", "--image", "tiny", "--boot-from-volume", "1", "--flavor", "t.small",
              "--nic", "none", "--wait", "vm3")
    assert vm3["status"] == "ACTIVE" and vm3["image"] == "N/A (booted from volume)"
    seen = cli.wait_console("vm3", lambda c: c.booted and c.boot_count is not None)
    assert seen.uuid == vm3["id"] and seen.boot_count == 1
    [root] = cli("server", "volume", "list", "vm3") or [{}]
    assert root.get("Device") == "/dev/vda"
    root_volume = cli("volume", "show", root["Volume ID"])
    assert root_volume["status"] == "in-use" and root_volume["bootable"] in (True, "true")
    cli.run("server", "delete", "--wait", "vm3")
    wait_volume(cli, root["Volume ID"], "available")  # --boot-from-volume keeps it (delete_on_termination false)
    cli.run("volume", "delete", root["Volume ID"])
