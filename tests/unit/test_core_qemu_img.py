"""core.qemu_img, the disk-tool runner the volume backends (and the compute qemu driver) share:
stdout on success; the caller's exception, with the tool's own message, when the tool fails, is
missing or runs too long (the tool then killed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mcloud.core import qemu_img


class LayerError(Exception):
    pass


async def test_info_of_a_real_image(tmp_path: Path) -> None:
    disk = tmp_path / "d.qcow2"
    await qemu_img.qemu_img("create", "-q", "-f", "qcow2", str(disk), "1M")
    shown = await qemu_img.info(disk)
    assert shown["format"] == "qcow2" and shown["virtual-size"] == 1 << 20
    assert (await qemu_img.info(disk, fmt="qcow2"))["virtual-size"] == 1 << 20


async def test_failures_raise_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"qemu-img info failed: .*No such file"):
        await qemu_img.info(tmp_path / "missing", error=LayerError)
    with pytest.raises(qemu_img.ToolError, match="no-such-tool is not installed"):
        await qemu_img.run("no-such-tool", "x")
    started = time.monotonic()
    with pytest.raises(LayerError, match="sleep took longer than 0 s"):
        await qemu_img.run("sleep", "30", timeout=0.2, error=LayerError)
    assert time.monotonic() - started < 5
