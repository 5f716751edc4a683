"""The tiny image as built on this machine from Debian's packages: what the disk holds, its cache,
`mcloud image build-tiny` and its upload into a running cloud's image service. (Booting it is
tests/real/test_qemu_driver.py's.)"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcloud.compute import tinyimage, tinyimage_upload
from tests.harness import LiveCloud, free_port, missing
from tests.unit.test_tinyimage import read_cpio

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if (why := tinyimage.missing()) is not None:
        missing(why)
    return tinyimage.build(cache_dir=tmp_path_factory.mktemp("cache"))


def test_the_image_is_a_small_qcow2_and_a_second_build_is_a_cache_hit(built):
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(built.path)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == tinyimage.DISK_MB << 20
    assert 4 << 20 < built.size < 40 << 20, built.size  # a few tens of MB at most
    started = time.monotonic()
    again = tinyimage.build(cache_dir=built.path.parent.parent)
    assert again.path == built.path and again.key == built.key
    assert time.monotonic() - started < 1.5
    assert built.path.name == f"tiny-{built.key[:16]}.qcow2"


def test_the_disk_boots_syslinux_which_loads_the_kernel_and_the_initramfs(built, tmp_path):
    raw = tmp_path / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(built.path), str(raw)], check=True)
    sector = raw.read_bytes()[:512]
    assert sector[510:] == b"\x55\xaa" and b"SYSLINUX" in sector
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = subprocess.run(["mdir", "-a", "-b", "-i", str(raw), "::"], capture_output=True, text=True, env=env,
                             check=True).stdout.upper()
    for name in ("LDLINUX.SYS", "LDLINUX.C32", "VMLINUZ", "INITRD.GZ", "SYSLINUX.CFG"):
        assert f"::/{name}" in listing
    label = subprocess.run(["mlabel", "-s", "-i", str(raw), "::"], capture_output=True, text=True, env=env).stdout
    assert "MCLOUDTINY" in label
    subprocess.run(["mcopy", "-i", str(raw), "::/initrd.gz", "::/syslinux.cfg", str(tmp_path)], check=True, env=env)
    assert "console=ttyS0" in (tmp_path / "syslinux.cfg").read_text()
    initramfs = read_cpio(gzip.decompress((tmp_path / "initrd.gz").read_bytes()))
    modules = initramfs["etc/modules"][1].decode().split()
    for before, after in [("virtio_ring", "virtio"), ("virtio", "virtio_pci"), ("virtio_pci", "virtio_blk"),
                          ("virtio", "virtio_net"), ("cdrom", "isofs"), ("fat", "vfat")]:
        assert modules.index(before) < modules.index(after), modules
    for name in modules:
        assert f"lib/modules/{name}.ko" in initramfs
    assert initramfs["init"][1].startswith(b"#!/bin/busybox sh")
    assert initramfs["bin/busybox"][0] & 0o111


def test_the_command_writes_the_image_where_asked(built, tmp_path):
    out = tmp_path / "tiny.qcow2"
    result = subprocess.run([sys.executable, "-m", "mcloud", "image", "build-tiny", "--cache-dir",
                             str(built.path.parent.parent), "--output", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == built.path.read_bytes()
    assert str(out) in result.stdout


@pytest.mark.e2e
def test_upload_puts_it_into_the_image_service_once(built, tmp_path):
    cloud = LiveCloud(tmp_path / "cloud", free_port(), env={"MCLOUD_COMPUTE_DRIVER": "fake"})
    cloud.start()
    try:
        argv = [sys.executable, "-m", "mcloud", "image", "build-tiny", "--cache-dir", str(built.path.parent.parent),
                "--upload", "--data-dir", str(cloud.data_dir)]
        env = {k: v for k, v in cloud.env.items() if k != "OS_CLIENT_CONFIG_FILE"}
        first = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert first.returncode == 0, first.stderr
        image = json.loads(cloud.openstack("image", "show", "tiny", json_out=True).stdout)
        assert image["status"] == "active" and image["disk_format"] == "qcow2"
        assert image["container_format"] == "bare" and image["min_ram"] == tinyimage.MIN_RAM_MB
        assert image["visibility"] == "public" and image["size"] == built.size
        assert image["properties"]["hw_disk_bus"] == "virtio"
        assert image["properties"]["mcloud_tiny_key"] == built.key[:16]
        assert image["id"] in first.stdout
        # its kernel and initramfs, as images of their own that it names (direct kernel boot)
        boot = tinyimage_upload.boot_files(cache_dir=built.path.parent.parent)
        for part, fmt, path in (("kernel", "aki", boot.kernel), ("ramdisk", "ari", boot.ramdisk)):
            record = json.loads(cloud.openstack("image", "show", f"tiny-{part}", json_out=True).stdout)
            assert record["id"] == image["properties"][f"{part}_id"] and record["size"] == path.stat().st_size
            assert record["disk_format"] == record["container_format"] == fmt and record["status"] == "active"
        assert image["properties"]["os_command_line"] == boot.cmdline
        assert "quiet" in boot.cmdline and "console=ttyS0" in boot.cmdline
        second = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert second.returncode == 0, second.stderr
        listed = json.loads(cloud.openstack("image", "list", "--name", "tiny", json_out=True).stdout)
        assert [i["ID"] for i in listed] == [image["id"]]
    finally:
        cloud.stop()
