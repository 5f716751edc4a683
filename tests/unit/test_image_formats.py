"""The image format inspector on real images made by qemu-img (Debian's qemu-utils), streamed
in chunks of awkward sizes: the format each really is, its virtual size, and Glance's rules for
uploads (mismatch refused, raw takes anything safe, unsafe qcow2/vmdk refused)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from mcloud.image import formats
from tests.harness import missing

GiB = 1 << 30


def qemu_img(tmp_path: Path, fmt: str, size: str, *options: str, name: str | None = None) -> bytes:
    if shutil.which("qemu-img") is None:
        missing("qemu-img (Debian package qemu-utils)")
    path = tmp_path / (name or f"disk.{fmt}")
    cmd = ["qemu-img", "create", "-q", "-f", fmt]
    for option in options:
        cmd += ["-o", option]
    subprocess.run([*cmd, str(path), size], check=True, capture_output=True)
    return path.read_bytes()


def inspect(data: bytes, chunk: int = 4093) -> formats.StreamInspector:
    inspector = formats.StreamInspector()
    for i in range(0, len(data), chunk):
        inspector.feed(data[i:i + chunk])
    return inspector


@pytest.mark.parametrize("fmt,options,size,virtual", [
    ("qcow2", (), "1G", GiB),
    ("qcow2", ("compat=0.10",), "3G", 3 * GiB),
    ("vmdk", (), "2G", 2 * GiB),
    ("vmdk", ("subformat=streamOptimized",), "1G", GiB),
    ("vpc", (), "512M", None),  # vhd rounds to its own geometry
    ("vpc", ("subformat=fixed",), "8M", None),
    ("vhdx", (), "1G", GiB),
    ("vdi", (), "1G", GiB),
])
def test_real_images_are_recognised(tmp_path, fmt, options, size, virtual):
    data = qemu_img(tmp_path, fmt, size, *options)
    name = {"vpc": "vhd"}.get(fmt, fmt)
    for chunk in (1, 511, 65536, 1 << 20):
        if chunk == 1 and len(data) > 1 << 21:
            continue
        verdict = formats.check_upload(inspect(data, chunk), name)
        assert verdict.detected == name
        if virtual is not None:
            assert verdict.virtual_size == virtual, chunk
        else:
            assert verdict.virtual_size and verdict.virtual_size >= int(size[:-1]) * (1 << 20) * 0.99


def test_a_qcow2_with_a_backing_file_is_refused(tmp_path):
    qemu_img(tmp_path, "qcow2", "1G", name="base.qcow2")
    data = qemu_img(tmp_path, "qcow2", "1G", f"backing_file={tmp_path / 'base.qcow2'}", "backing_fmt=qcow2")
    for declared in ("qcow2", "raw"):
        with pytest.raises(formats.SafetyCheckFailed, match="backing file"):
            formats.check_upload(inspect(data), declared)
    # known as soon as the header has streamed by, long before the end
    inspector = formats.StreamInspector()
    inspector.feed(data[:512])
    assert "qcow2 has a backing file" in inspector.early_unsafe()


def test_a_qcow2_with_an_external_data_file_is_refused(tmp_path):
    data = qemu_img(tmp_path, "qcow2", "64M", f"data_file={tmp_path / 'data.raw'}")
    with pytest.raises(formats.SafetyCheckFailed, match="external data file"):
        formats.check_upload(inspect(data), "qcow2")


def test_a_vmdk_naming_other_files_is_refused(tmp_path):
    data = qemu_img(tmp_path, "vmdk", "64M", "subformat=monolithicFlat")
    assert data.startswith(b"# Disk DescriptorFile")
    with pytest.raises(formats.SafetyCheckFailed, match="descriptor"):
        formats.check_upload(inspect(data), "vmdk")
    split = qemu_img(tmp_path, "vmdk", "64M", "subformat=twoGbMaxExtentSparse", name="split.vmdk")
    with pytest.raises(formats.SafetyCheckFailed):
        formats.check_upload(inspect(split), "vmdk")


def test_mismatches(tmp_path):
    qcow2 = qemu_img(tmp_path, "qcow2", "1G")
    with pytest.raises(formats.ImageFormatError, match="does not match stream data qcow2"):
        formats.check_upload(inspect(qcow2), "vmdk")
    with pytest.raises(formats.ImageFormatError, match="does not match stream data raw"):
        formats.check_upload(inspect(b"\x01" * 10000), "qcow2")
    # raw accepts a safe qcow2 (as Glance does), with its byte size as virtual size
    verdict = formats.check_upload(inspect(qcow2), "raw")
    assert verdict.detected == "qcow2" and verdict.virtual_size == len(qcow2)
    # formats nobody can inspect take data that is no known format
    assert formats.check_upload(inspect(b"kernel" * 100), "aki").virtual_size is None


def test_iso_and_raw():
    iso = bytearray(20 * 2048)
    iso[16 * 2048:16 * 2048 + 6] = b"\x01CD001"
    iso[16 * 2048 + 80:16 * 2048 + 84] = struct.pack("<I", 20)
    iso[16 * 2048 + 128:16 * 2048 + 130] = struct.pack("<H", 2048)
    verdict = formats.check_upload(inspect(bytes(iso), 1000), "iso")
    assert verdict.detected == "iso" and verdict.virtual_size == 20 * 2048
    assert formats.check_upload(inspect(b"\0" * 5000), "raw") == formats.Verdict("raw", 5000)
    assert formats.check_upload(inspect(b""), "raw") == formats.Verdict("raw", 0)
