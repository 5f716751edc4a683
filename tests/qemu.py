"""Real qemu guests for tests and benchmarks (like tests/ceph.py for Ceph, tests/ovn.py for OVN).

- ``tiny()``: mCloud's tiny guest image, built once (cached by content in ``~/.cache/mcloud`` or
  ``$MCLOUD_CACHE_DIR``, so later sessions reuse it) — the session fixture ``tiny_image``.
- ``make_spec(...)``: an ``InstanceSpec`` of the tiny image with a config drive as the agent
  writes it (``mcloud.compute.configdrive``), user data and NICs.
- ``Guests``: a qemu driver on a temp instances directory that destroys every instance it made
  (and kills by PID any qemu left behind) when it closes.
- ``wait_console(driver, uuid, until)``: polls the serial console through the driver, parsed by
  ``tinyimage.parse_console``, until ``until(seen)`` holds.
- ``ssh_key(dir)`` / ``guest_ssh(netns, address, key, command)``: a key pair for the config drive
  (``make_spec(public_key=...)``) and a command run as the guest's root over SSH from a namespace.

The accelerator is settled once per process (``qemu_accel``: KVM only if a test boot works).

    async with Guests(tmp_path) as guests:
        spec = make_spec(tiny(), user_data="hello")
        await guests.driver.spawn(spec)
        seen = await wait_console(guests.driver, spec.uuid, lambda s: s.booted)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mcloud.compute import configdrive, tinyimage
from mcloud.compute.drivers import qemu as qemu_driver
from mcloud.compute.drivers import qemu_accel
from mcloud.compute.drivers.base import FlavorSpec, ImageSpec, InstanceSpec, VifSpec
from mcloud.compute.tinyimage import GuestConsole, TinyImage, parse_console
from mcloud.network.dataplane import in_netns

#: the memory of test guests: the Debian kernel does not boot in 64 MB
GUEST_MB = 96

_tiny: TinyImage | None = None


def qemu_missing() -> str | None:
    """What is missing to boot the tiny guest here (a sentence), or None."""
    problems = [p for p in (qemu_driver.missing(), tinyimage.missing()) if p]
    return "; ".join(problems) or None


def tiny() -> TinyImage:
    """The tiny image, built at most once per process (and reused from the cache across runs)."""
    global _tiny
    if _tiny is None:
        _tiny = tinyimage.build()
    return _tiny


def image_spec(image: TinyImage | Path, image_id: str = "tiny") -> ImageSpec:
    path = image.path if isinstance(image, TinyImage) else Path(image)
    return ImageSpec(id=image_id, disk_format="qcow2", path=path, properties=dict(tinyimage.IMAGE_PROPERTIES),
                     size=path.stat().st_size if path.exists() else 0)


def tiny_direct() -> ImageSpec:
    """The tiny image as ``mcloud image build-tiny --upload`` puts it in the image service: its
    disk naming its kernel and initramfs (kernel_id, ramdisk_id, os_command_line), which the
    driver gives qemu directly (as the agent's image cache hands them over)."""
    from mcloud.compute import tinyimage_upload

    boot = tinyimage_upload.boot_files()
    props = {**tinyimage.IMAGE_PROPERTIES, "kernel_id": "tiny-kernel", "ramdisk_id": "tiny-ramdisk",
             "os_command_line": boot.cmdline}
    return dataclasses.replace(image_spec(tiny()), properties=props, kernel_id="tiny-kernel",
                               ramdisk_id="tiny-ramdisk", kernel=boot.kernel, ramdisk=boot.ramdisk)


def make_spec(image: TinyImage | Path | ImageSpec, user_data: str | bytes | None = None,
              vifs: Sequence[VifSpec] = (), uuid: str | None = None, memory_mb: int = GUEST_MB,
              root_gb: int = 1, vcpus: int = 1, name: str | None = None, config_drive: bool = True,
              public_key: str | None = None) -> InstanceSpec:
    """``public_key``: a key pair's public key (the config drive's ``public_keys``: the guest's
    root logs in with it over SSH)."""
    uuid = uuid or str(uuidlib.uuid4())
    name = name or f"instance-{uuid[:8]}"
    ud = None
    if user_data is not None:
        raw = user_data.encode() if isinstance(user_data, str) else user_data
        ud = base64.b64encode(raw).decode()  # as Nova keeps it
    md = {"uuid": uuid, "name": name, "hostname": f"vm-{uuid[:8]}", "launch_index": 0,
          "availability_zone": "nova", "project_id": "p" * 32}
    if public_key is not None:
        md.update(key_name="test-key", key_data=public_key, key_type="ssh")
    files = configdrive.files(md, None, ud) if config_drive else None
    spec_image = image if isinstance(image, ImageSpec) else image_spec(image)
    return InstanceSpec(uuid=uuid, name=name, hostname=md["hostname"],
                        flavor=FlavorSpec(vcpus=vcpus, memory_mb=memory_mb, root_gb=root_gb),
                        image=spec_image, vifs=tuple(vifs), config_drive=files)


async def wait_console(driver: Any, uuid: str, until: Callable[[GuestConsole], bool],
                       timeout: float = 90) -> GuestConsole:
    """The guest's console, parsed, once ``until`` holds for it (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        text = await driver.console_output(uuid)
        seen = parse_console(text)
        if until(seen):
            return seen
        if time.monotonic() > deadline:
            state = await driver.power_state(uuid)
            log = Path(driver.root / uuid / "qemu.log")
            said = log.read_text(errors="replace")[-1000:] if log.exists() else ""
            raise AssertionError(f"guest {uuid} did not get there in {timeout:.0f} s (power state {state}); "
                                 f"qemu said: {said}\nits console:\n{text[-3000:]}")
        await asyncio.sleep(0.2)


class Guests:
    """A qemu driver over a temp instances directory; every instance destroyed at the end."""

    def __init__(self, root: Path | None = None, network_host: Any = None, **options: Any):
        self.own_root = root is None  # a temp directory of its own: removed at the end
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="mcloud-qemu-"))
        self.options = {"shutdown_timeout": 20, **options}
        self.driver = qemu_driver.create(self.options, self.root / "instances", network_host)

    async def __aenter__(self) -> Guests:
        # the KVM probe once per boot of the machine for every test session, not once per process
        cache = tinyimage.default_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        await qemu_accel.settle(str(self.options.get("accel", "auto")), cache=cache / "accel.json")
        await self.driver.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def pids(self) -> list[int]:
        found = []
        for pidfile in (self.root / "instances").glob("*/qemu.pid"):
            uuid = pidfile.parent.name
            pid = self.driver._pid(uuid)  # noqa: SLF001 - the harness checks the driver's own view
            if pid is not None:
                found.append(pid)
        return found

    async def close(self) -> None:
        for uuid in list(await self.driver.list_instances()):
            with contextlib.suppress(Exception):
                await self.driver.destroy(uuid)
        for pid in self.pids():  # whatever destroy could not end
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await self.driver.close()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)


async def module_guests(tmp_path_factory: Any, label: str = "qemu", **options: Any):  # type: ignore[no-untyped-def]
    """The body of a module-scoped ``guests`` fixture: a ``Guests`` (driver ``options``), or
    skip/fail when qemu is missing."""
    from tests.harness import missing

    if (why := qemu_missing()) is not None:
        missing(why)
    async with Guests(tmp_path_factory.mktemp(label), **options) as guests:
        yield guests


async def running(driver: Any, **spec_fields: Any) -> InstanceSpec:
    """A tiny guest spawned and booted up to ``ready``."""
    spec = make_spec(tiny(), **spec_fields)
    await driver.spawn(spec)
    await wait_console(driver, spec.uuid, lambda s: s.ready)
    return spec


def ssh_key(directory: Path) -> tuple[Path, str]:
    """An RSA key pair (the kind Nova generates), made by Debian's ``dropbearkey`` in
    ``directory``: (the private key file, for ``guest_ssh``; the public key line, for the config
    drive)."""
    key = Path(directory) / "id_rsa.dropbear"
    key.unlink(missing_ok=True)
    subprocess.run(["dropbearkey", "-t", "rsa", "-s", "2048", "-f", str(key)], check=True, capture_output=True)
    shown = subprocess.run(["dropbearkey", "-y", "-f", str(key)], check=True, capture_output=True, text=True).stdout
    return key, next(line for line in shown.splitlines() if line.startswith("ssh-rsa "))


def guest_ssh(netns: str, address: str, key: Path, command: str, timeout: float = 60) -> str:
    """``command``'s output, run as root on the guest at ``address`` over SSH (Debian's ``dbclient``)
    from network namespace ``netns``; retried until the guest's SSH server answers (its host
    key is not checked: a new guest has a new one)."""
    argv = in_netns(netns, ["dbclient", "-y", "-y", "-i", str(key), f"root@{address}", command])
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
                                    env={**os.environ, "HOME": str(key.parent)})
            if result.returncode == 0:
                return result.stdout
            said = f"{result.returncode} {result.stdout} {result.stderr}"
        except subprocess.TimeoutExpired:
            said = "no answer in 20 s"
        if time.monotonic() > deadline:
            raise AssertionError(f"ssh root@{address} {command!r} from {netns}: {said}")
        time.sleep(1)


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for init to reap it has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
