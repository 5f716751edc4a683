"""``qemu-img`` (and other disk tools) as asyncio subprocesses, for every service that makes
disk files: the volume service's file and rbd backends and, through :func:`run`, the compute
qemu driver's disks. Each caller names the exception its layer raises (``error=``): the tool
missing, failing (its stderr in the message) or running past ``timeout`` all end in it; a
cancelled caller kills the tool."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any


class ToolError(Exception):
    """A disk tool is missing, failed or took too long."""


#: qemu-img's names of the image service's disk formats
QEMU_FORMATS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx",
                "iso": "raw", "ami": "raw", "img": "raw"}
INSTALL = {"qemu-img": "qemu-utils", "qemu-io": "qemu-utils", "genisoimage": "genisoimage"}


async def run(*argv: str, timeout: float = 600, error: type[Exception] = ToolError) -> str:
    """Run ``argv``; its stdout, else ``error`` with what went wrong."""
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        package = INSTALL.get(argv[0])
        raise error(f"{argv[0]} is not installed" + (f" (Debian: {package})." if package else ".")) from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        proc.kill()
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise error(f"{argv[0]} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        what = f"{argv[0]} {argv[1]}" if len(argv) > 1 else argv[0]
        raise error(f"{what} failed: {err.decode(errors='replace').strip()}")
    return out.decode()


async def qemu_img(*args: str, timeout: float = 3600, error: type[Exception] = ToolError) -> str:
    """``qemu-img ARGS...``: its stdout."""
    return await run("qemu-img", *args, timeout=timeout, error=error)


async def info(path: Path | str, *, error: type[Exception] = ToolError, fmt: str | None = None) -> dict[str, Any]:
    """``qemu-img info`` of a file (``-U``: also while a running guest holds it)."""
    args = ["info", "-U", "--output=json", *(["-f", fmt] if fmt else []), str(path)]
    return json.loads(await qemu_img(*args, error=error))
