"""Which accelerator qemu uses here: KVM when a short test boot under KVM gets through, else TCG.

``/dev/kvm`` existing proves little (on this project's machines it is a nested layer that fails
in the BIOS with "KVM internal error"), so the probe boots a kernel under KVM: the host's Debian
kernel without a root file system, which runs all the way to its "Kernel panic - not syncing"
(long mode, interrupts, timers) in a second or two where KVM works. Without a kernel on the
host, a boot sector that prints a word to the serial port stands in. A KVM failure shows either
at once (an internal error, or the guest resetting itself) or as a guest that never gets there
(the probe gives up after 8 s). The result is kept per process, and by the driver per boot of
the machine (``settle(cache=...)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: xor ax,ax; mov ds,ax; mov dx,0x3f8; mov si,msg; print loop (lodsb/out); cli; hlt  + "mcloud-kvm-ok"
_BOOT_SECTOR = (bytes.fromhex("31c08ed8baf803be167cac84c07403eeebf8faf4ebfd") + b"mcloud-kvm-ok\0").ljust(510, b"\0") \
    + b"\x55\xaa"
_OK_TEXTS = (b"Kernel panic", b"mcloud-kvm-ok")
_FAIL_TEXTS = (b"KVM internal error", b"emulation failure", b"failed to initialize kvm",
               b"Could not access KVM kernel module")

_settled: dict[str, tuple[str, str]] = {}


def _kernel() -> Path | None:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    return kernels[-1] if kernels else None


async def probe_kvm(binary: str = "qemu-system-x86_64", timeout: float = 8.0) -> str | None:
    """None when a guest boots under KVM here, else why not (a sentence)."""
    if not os.path.exists("/dev/kvm"):
        return "no /dev/kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not usable by this user"
    if shutil.which(binary) is None:
        return f"{binary} is not installed"
    with tempfile.TemporaryDirectory(prefix="mcloud-kvm-probe-") as tmp:
        work = Path(tmp)
        serial, errors = work / "serial", work / "stderr"
        argv = [binary, "-accel", "kvm", "-cpu", "host", "-m", "128", "-nodefaults", "-no-user-config",
                "-display", "none", "-no-reboot", "-serial", f"file:{serial}"]
        kernel = _kernel()
        if kernel is not None:
            argv += ["-kernel", str(kernel), "-append", "console=ttyS0 panic=-1 loglevel=4"]
        else:
            (work / "boot").write_bytes(_BOOT_SECTOR)
            argv += ["-drive", f"file={work / 'boot'},format=raw,if=ide"]
        with open(errors, "wb") as err:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.DEVNULL, stderr=err)
        started = time.monotonic()
        try:
            while True:
                ended = proc.returncode is not None  # read what it wrote after it ended
                out = serial.read_bytes() if serial.exists() else b""
                err_text = errors.read_bytes()
                if any(t in out for t in _OK_TEXTS):
                    return None
                failed = next((t for t in _FAIL_TEXTS if t in err_text), None)
                if failed is not None:
                    return f"a test boot under KVM failed ({failed.decode()})"
                if ended:
                    said = err_text.decode(errors="replace").strip()[-200:] or "the guest reset itself"
                    return f"a test boot under KVM ended ({proc.returncode}) before the kernel ran: {said}"
                if time.monotonic() - started > timeout:
                    return f"a test boot under KVM did not get through within {timeout:.0f} s"
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), 0.1)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()


async def settle(accel: str, binary: str = "qemu-system-x86_64", cache: Path | None = None) -> tuple[str, str]:
    """(accelerator, why) for the ``accel`` option (``auto``, ``kvm`` or ``tcg``); ``auto`` is
    probed once per process and binary, and once per boot of the machine when ``cache`` (a
    file) is given."""
    if accel in ("kvm", "tcg"):
        return accel, "configured"
    if accel != "auto":
        raise ValueError(f"[compute.qemu] accel must be auto, kvm or tcg, not {accel!r}")
    if binary not in _settled:
        stamp = f"{_boot_id()} {shutil.which(binary)}"
        kept = _read_cache(cache, stamp)
        if kept is not None:
            _settled[binary] = kept
        else:
            why = await probe_kvm(binary)
            _settled[binary] = ("kvm", "a test boot under KVM worked") if why is None else ("tcg", why)
            if cache is not None:
                with contextlib.suppress(OSError):
                    cache.write_text(json.dumps({"stamp": stamp, "accel": _settled[binary]}))
        log.info("qemu: using %s (%s)", *_settled[binary])
    return _settled[binary]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _read_cache(cache: Path | None, stamp: str) -> tuple[str, str] | None:
    if cache is None or not cache.exists():
        return None
    try:
        doc = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    if doc.get("stamp") != stamp or not _boot_id():
        return None
    accel, why = doc["accel"]
    return str(accel), str(why)
