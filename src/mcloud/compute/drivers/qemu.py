"""The real hypervisor driver: one ``qemu-system-x86_64`` process per instance, driven over QMP.

Each instance lives in ``<instances_path>/<uuid>/``::

    disk             qcow2 overlay on the image cache's copy (or on ``rbd:`` for a Ceph image
                     that is not raw)
    disk.rbd         instead of ``disk``, for a raw image in Ceph: where its clone is, the root
                     disk (``<rbd_pool>/<uuid>_disk``, see ``qemu_rbd``)
                     (neither, when the instance boots from a volume: see ``qemu_volumes``)
    disk.config      the config drive (ISO 9660, label config-2), when the spec has one
    disk.rescue      the rescue image's overlay while rescued
    disk.resize      the disk as it was before a resize, until confirmed or reverted
    kernel, ramdisk  direct kernel boot: the kernel and ramdisk images the instance's image names
                     (``kernel_id``/``ramdisk_id``), hard links to the image cache's copies, as
                     Nova keeps them next to the instance (a reboot needs no image service);
                     kernel.rescue, ramdisk.rescue those of a rescue image
    console.log      the serial console (appended across boots)
    machine.json     what the process is launched from (flavor, NICs, volumes, rescue), so that reboot,
                     suspend/resume and a restart of the host need no spec
    qmp.sock         the monitor for operations; status.sock a second one for power states
                     (both in $TMPDIR/mcloud-qemu-<hash>/ when this path is too long for a socket)
    qemu.pid         the process (qemu daemonizes: it is nobody's child, and outlives the host)
    qemu.log         qemu's own messages
    save             the guest's state while suspended

qemu runs TCG where KVM cannot boot a guest (``qemu_accel``). NICs are taps on the host's OVN
data plane (``mcloud.network.host.Host``: ``plug_tap``, then ``open_tap`` hands qemu a file
descriptor); without a Host, qemu's user-mode network (``restrict=on``: DHCP from qemu, nothing
in or out) stands in, or no NIC at all with ``network = "none"``.

Options (``[compute.qemu]``): ``accel`` (auto/kvm/tcg), ``binary``, ``machine`` (pc), ``tb_size``
(TCG translation cache, MB), ``vnc_listen`` (127.0.0.1; "" for no VNC), ``migration_address``
(where a migration destination listens), ``network`` (auto/host/user/none), ``shutdown_timeout``
(seconds a soft reboot waits for the guest), for root disks in Ceph: ``rbd_pool`` (where the
clones go; default the image's own pool), ``ceph_conf`` (when the image names none; default
/etc/ceph/ceph.conf) and ``rbd_user`` (cephx; default admin), and for reporting: ``hostname``,
``vcpus``, ``memory_mb``, ``disk_gb``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcloud.compute import states
from mcloud.compute.drivers import qemu_accel, qemu_disk, qemu_rbd, qemu_volumes
from mcloud.compute.drivers.base import (Console, DriverError, HostInfo, ImageSpec, InstanceNotFound, InstanceSpec,
                                         MigrationTarget, PowerState, Progress, VifSpec, VolumeSpec, driver_options)
from mcloud.compute.drivers.qemu_qmp import Monitor
from mcloud.compute.drivers.qemu_rbd import RbdDisk

log = logging.getLogger(__name__)

OPTIONS = {"accel", "binary", "machine", "tb_size", "vnc_listen", "migration_address", "network",
           "shutdown_timeout", "hostname", "vcpus", "memory_mb", "disk_gb", "rbd_pool", "ceph_conf", "rbd_user"}
PROGRAMS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "genisoimage": "genisoimage"}
#: Nova's libvirt driver returns at most this much of a console log
MAX_CONSOLE_BYTES = 100 * 1024
#: seconds a guest has to let go of a volume being detached (its ACPI hot-unplug)
DETACH_TIMEOUT = 30
#: the kernel's command line when the image has no ``os_command_line`` (and always in rescue),
#: as Nova's libvirt driver gives it ("root=<root device> <consoles>", plus no_timer_check under
#: TCG: qemu's emulated timer is too irregular for the kernel's check)
DEFAULT_CMDLINE = "root=/dev/vda console=tty0 console=ttyS0"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_STATUS = {"running": states.RUNNING, "shutdown": states.SHUTDOWN, "internal-error": states.CRASHED,
           "guest-panicked": states.CRASHED, "io-error": states.CRASHED}


def missing() -> str | None:
    """What keeps the driver from running here (a sentence), or None."""
    absent = sorted({pkg for prog, pkg in PROGRAMS.items() if shutil.which(prog) is None})
    return f"missing programs (Debian: {', '.join(absent)})" if absent else None


def create(options: Mapping[str, Any], instances_path: Path, network_host: Any = None) -> QemuDriver:
    return QemuDriver(options, instances_path, network_host)


@dataclasses.dataclass
class Machine:
    """What an instance's qemu is launched from (kept in machine.json)."""

    uuid: str
    name: str
    vcpus: int
    memory_mb: int
    vifs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rescue: bool = False
    #: the flavor before a resize, until it is confirmed or reverted
    old_flavor: dict[str, int] | None = None
    #: direct kernel boot: {"kernel", "ramdisk" (or None), "cmdline" (None: DEFAULT_CMDLINE)}, files
    #: of the instance's directory; None: the root disk boots (its boot loader)
    boot: dict[str, Any] | None = None
    #: the same while rescued (the rescue image's kernel, else the instance's, as Nova)
    rescue_boot: dict[str, Any] | None = None
    #: the volumes (``qemu_volumes.stored``: volume_id, connection_info, boot_index, device_name,
    #: slot), a boot volume first
    volumes: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, spec: InstanceSpec, old: Machine | None = None) -> Machine:
        return cls(uuid=spec.uuid, name=spec.name, vcpus=spec.flavor.vcpus, memory_mb=spec.flavor.memory_mb,
                   vifs=[dataclasses.asdict(v) for v in spec.vifs], rescue=old.rescue if old else False,
                   old_flavor=old.old_flavor if old else None,
                   boot=None if spec.root_volume else _boot_of(spec.image, "kernel", "ramdisk"),
                   rescue_boot=old.rescue_boot if old else None,
                   volumes=qemu_volumes.merge(spec.volumes, old.volumes if old else ()))

    def root_volume(self) -> VolumeSpec | None:
        return next((VolumeSpec.of(v) for v in self.volumes if v.get("boot_index") == 0), None)


def _boot_of(image: ImageSpec | None, kernel: str, ramdisk: str) -> dict[str, Any] | None:
    """``Machine.boot`` of an instance made from ``image`` (its files named ``kernel``/``ramdisk``)."""
    if image is None or image.kernel_id is None:
        return None
    return {"kernel": kernel, "ramdisk": ramdisk if image.ramdisk_id else None,
            "cmdline": str(image.properties.get("os_command_line") or "") or None}


class _Paths:
    def __init__(self, root: Path, uuid: str):
        self.dir = root / uuid
        d = self.dir
        self.disk, self.config, self.rescue, self.resize = d / "disk", d / "disk.config", d / "disk.rescue", d / "disk.resize"
        self.rbd = d / "disk.rbd"
        self.kernel, self.ramdisk = d / "kernel", d / "ramdisk"
        self.rescue_kernel, self.rescue_ramdisk = d / "kernel.rescue", d / "ramdisk.rescue"
        self.console, self.machine = d / "console.log", d / "machine.json"
        self.pid, self.log, self.save = d / "qemu.pid", d / "qemu.log", d / "save"
        # a unix socket's path has at most 107 bytes: a deep instances path keeps its sockets in
        # a short directory of its own (named after the instance's directory, so found again)
        self.sockets = d
        if len(str(d / "status.sock").encode()) > 100:
            digest = hashlib.sha256(str(d.resolve()).encode()).hexdigest()[:20]
            self.sockets = Path(tempfile.gettempdir()) / f"mcloud-qemu-{digest}"
        self.qmp, self.status = self.sockets / "qmp.sock", self.sockets / "status.sock"


def _vif(d: Mapping[str, Any]) -> VifSpec:
    return VifSpec(**{k: d[k] for k in ("port_id", "mac", "network_id", "mtu", "model") if k in d})


class QemuDriver:
    name = "qemu"

    def __init__(self, options: Mapping[str, Any], instances_path: Path, network_host: Any = None):
        opts = driver_options(options, OPTIONS, "qemu")
        self.options = opts
        self.root = Path(instances_path)
        self.host = network_host
        self.binary = str(opts.get("binary", "qemu-system-x86_64"))
        self.accel_option = str(opts.get("accel", "auto"))
        self.accel, self.accel_reason = "tcg", "not probed yet"
        self.machine_type = str(opts.get("machine", "pc"))
        self.tb_size = int(opts.get("tb_size", 32))
        self.vnc_listen = str(opts.get("vnc_listen", "127.0.0.1"))
        self.migration_address = str(opts.get("migration_address", "127.0.0.1"))
        self.network = str(opts.get("network", "auto"))
        if self.network not in ("auto", "host", "user", "none"):
            raise ValueError(f"[compute.qemu] network must be auto, host, user or none, not {self.network!r}")
        if self.network == "auto":
            self.network = "host" if network_host is not None else "user"
        if self.network == "host" and network_host is None:
            raise ValueError("[compute.qemu] network = \"host\" needs the host's data plane")
        self.shutdown_timeout = float(opts.get("shutdown_timeout", 60))
        self.rbd_pool = str(opts.get("rbd_pool") or "") or None
        self.ceph_conf = str(opts.get("ceph_conf") or "/etc/ceph/ceph.conf")
        self.rbd_user = str(opts.get("rbd_user") or "") or None
        self.version = 0
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # -- the host -----------------------------------------------------------------------------

    async def start(self) -> None:
        if (why := missing()) is not None:
            raise DriverError(f"the qemu driver cannot run here: {why}")
        self.root.mkdir(parents=True, exist_ok=True)
        self.accel, self.accel_reason = await qemu_accel.settle(self.accel_option, self.binary,
                                                                cache=self.root / ".accel.json")
        out = await qemu_disk.run(self.binary, "--version")
        m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
        self.version = int(m.group(1)) * 1_000_000 + int(m.group(2)) * 1000 + int(m.group(3)) if m else 0
        log.info("qemu driver: %s, %s (%s), %d instances here", self.binary, self.accel, self.accel_reason,
                 len(self._uuids()))

    async def close(self) -> None:
        """Nothing to let go of: QMP sessions are per operation, and guests keep running."""

    def host_info(self) -> HostInfo:
        cpus = os.cpu_count() or 1
        mem_kb = 0
        with contextlib.suppress(OSError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        self.root.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(self.root)
        vendor = ""
        with contextlib.suppress(OSError):
            vendor = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                           if ln.startswith("vendor_id")), "")
        traits = ("COMPUTE_NODE", "COMPUTE_IMAGE_TYPE_QCOW2", "COMPUTE_IMAGE_TYPE_RAW",
                  "COMPUTE_NET_ATTACH_INTERFACE", "COMPUTE_NET_VIF_MODEL_VIRTIO", "COMPUTE_NET_VIF_MODEL_E1000",
                  "COMPUTE_STORAGE_BUS_VIRTIO", "COMPUTE_GRAPHICS_MODEL_VGA")
        return HostInfo(
            vcpus=int(self.options.get("vcpus", cpus)),
            memory_mb=int(self.options.get("memory_mb", mem_kb // 1024)),
            disk_gb=int(self.options.get("disk_gb", st.f_blocks * st.f_frsize >> 30)),
            hypervisor_type="QEMU", hypervisor_version=self.version,
            hypervisor_hostname=str(self.options.get("hostname") or socket.gethostname()),
            cpu_info={"arch": "x86_64", "model": "host" if self.accel == "kvm" else "qemu64", "vendor": vendor,
                      "topology": {"cells": 1, "sockets": 1, "cores": cpus, "threads": 1}, "features": []},
            traits=traits)

    def _uuids(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _UUID.match(p.name))

    async def list_instances(self) -> dict[str, PowerState]:
        found = {}
        for uuid in self._uuids():
            with contextlib.suppress(InstanceNotFound):
                found[uuid] = await self.power_state(uuid)
        return found

    async def power_state(self, uuid: str) -> PowerState:
        p = self._existing(uuid)
        if self._pid(uuid) is None:
            return states.POWER_SUSPENDED if p.save.exists() else states.SHUTDOWN
        try:
            async with self._lock(uuid, "status"), Monitor(p.status, timeout=5) as qmp:
                status = await qmp.status()
        except DriverError:
            return states.NOSTATE if self._pid(uuid) is not None else states.SHUTDOWN
        return _STATUS.get(status, states.POWER_PAUSED)

    # -- plumbing -------------------------------------------------------------------------------

    def _paths(self, uuid: str) -> _Paths:
        if not _UUID.match(uuid):
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        return _Paths(self.root, uuid)

    def _existing(self, uuid: str) -> _Paths:
        p = self._paths(uuid)
        if not p.dir.is_dir():
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        return p

    def _lock(self, uuid: str, kind: str = "qmp") -> asyncio.Lock:
        return self._locks.setdefault((uuid, kind), asyncio.Lock())

    @contextlib.asynccontextmanager
    async def _qmp(self, uuid: str, timeout: float = 10):  # type: ignore[no-untyped-def]
        p = self._existing(uuid)
        if self._pid(uuid) is None:
            raise DriverError(f"Instance {uuid} is not running")
        async with self._lock(uuid), Monitor(p.qmp, timeout=timeout) as qmp:
            yield qmp

    def _pid(self, uuid: str) -> int | None:
        """The instance's qemu process, if it runs (checked against its command line: a pid file
        left behind may name someone else's process by now)."""
        p = self._paths(uuid)
        try:
            pid = int(p.pid.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if _started(pid) is None or uuid.encode() not in cmdline:
            return None
        return pid

    def _load(self, uuid: str) -> Machine:
        p = self._existing(uuid)
        try:
            return Machine(**json.loads(p.machine.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise DriverError(f"Instance {uuid} has no usable machine description: {exc}") from exc

    def _store(self, machine: Machine) -> None:
        p = self._paths(machine.uuid)
        tmp = p.machine.with_name(".machine.json.tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(machine), indent=1))
        tmp.replace(p.machine)

    def _process(self, uuid: str) -> tuple[int, str] | None:
        """The instance's qemu as (pid, start time), to wait for its end with ``_wait_ended``:
        qemu removes its pid file in an exit handler, a moment before the process ends and lets
        go of what it holds, so the process is waited for, not its pid file. Take it before
        asking qemu to end."""
        pid = self._pid(uuid)
        started = _started(pid) if pid is not None else None
        return (pid, started) if pid is not None and started is not None else None

    async def _kill(self, uuid: str) -> None:
        """Stop the process now: QMP quit, else SIGTERM, else SIGKILL (by its pid)."""
        if (proc := self._process(uuid)) is None:
            return
        pid, started = proc
        with contextlib.suppress(DriverError):
            async with self._qmp(uuid, timeout=3) as qmp:
                with contextlib.suppress(DriverError):
                    await qmp.execute("quit", timeout=3)
        if await _wait_ended(pid, started, 5):
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if _started(pid) != started:
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if await _wait_ended(pid, started, 5):
                return
        raise DriverError(f"the qemu process of instance {uuid} does not end")

    # -- NICs -----------------------------------------------------------------------------------

    async def _plug(self, vif: VifSpec) -> int | None:
        """Plug ``vif`` into the data plane; a descriptor of its tap for qemu (or None without one)."""
        if self.network != "host":
            return None
        try:
            name = await asyncio.to_thread(self.host.plug_tap, vif.port_id, vif.mac, vif.mtu)
            return await asyncio.to_thread(self.host.open_tap, name)
        except Exception as exc:  # noqa: BLE001 - the data plane's errors become the fault
            raise DriverError(f"cannot plug port {vif.port_id}: {exc}") from exc

    async def _unplug(self, port_id: str) -> None:
        if self.network == "host":
            try:
                await asyncio.to_thread(self.host.unplug, port_id)
            except Exception as exc:  # noqa: BLE001
                log.warning("qemu: unplugging port %s failed: %s", port_id, exc)

    def _nic_args(self, vif: VifSpec, fd: int | None) -> tuple[str, dict[str, Any]]:
        """The netdev (as ``-netdev`` text) and the device (as QMP/``-device`` JSON) of a NIC."""
        if self.network == "host":
            netdev = f"tap,id=hn-{vif.port_id},fd={fd}"
        else:
            netdev = f"user,id=hn-{vif.port_id},restrict=on"
        model = "e1000" if vif.model == "e1000" else "virtio-net-pci"
        device: dict[str, Any] = {"driver": model, "id": f"nic-{vif.port_id}", "netdev": f"hn-{vif.port_id}",
                                  "mac": vif.mac, "romfile": ""}
        if vif.mtu and model == "virtio-net-pci":
            device["host_mtu"] = int(vif.mtu)
        return netdev, device

    # -- launching ----------------------------------------------------------------------------

    def _argv(self, machine: Machine, p: _Paths, nics: list[tuple[VifSpec, int | None]],
              incoming: bool = False, paused: bool = False) -> list[str]:
        accel = ["-accel", "kvm", "-cpu", "host"] if self.accel == "kvm" else ["-accel", f"tcg,tb-size={self.tb_size}"]
        argv = [self.binary, "-name", f"guest={machine.name},debug-threads=on", "-uuid", machine.uuid,
                "-machine", self.machine_type, *accel, "-m", str(machine.memory_mb), "-smp", str(machine.vcpus),
                "-nodefaults", "-no-user-config", "-rtc", "base=utc", "-boot", "strict=on",
                "-chardev", f"file,id=console,path={p.console},append=on", "-serial", "chardev:console",
                "-qmp", f"unix:{p.qmp},server=on,wait=off", "-qmp", f"unix:{p.status},server=on,wait=off",
                "-pidfile", str(p.pid), "-daemonize", "-D", str(p.log)]
        if self.vnc_listen:
            argv += ["-device", "VGA,vgamem_mb=4", "-vnc", f"{self.vnc_listen}:0,to=4000"]
        else:
            argv += ["-display", "none"]
        disks: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (blockdev, device)

        def local(blockdev: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            node = blockdev["node-name"]
            return blockdev, {"driver": "virtio-blk-pci", "drive": node, "id": f"{node}-dev"}

        if machine.rescue:
            disks.append(local(_file_blockdev("rescue", p.rescue, "qcow2")))
        if (root_volume := machine.root_volume()) is not None:
            disks.append((qemu_volumes.blockdev(root_volume), qemu_volumes.device(root_volume, None)))
        else:
            root = RbdDisk.load(p.rbd)
            disks.append(local(root.blockdev("disk") if root else _file_blockdev("disk", p.disk, "qcow2")))
        if p.config.exists():
            disks.append(local(_file_blockdev("config", p.config, "raw", read_only=True)))
        for v in machine.volumes:
            if v.get("boot_index") != 0:
                volume = VolumeSpec.of(v)
                disks.append((qemu_volumes.blockdev(volume), qemu_volumes.device(volume, v.get("slot"))))
        for i, (blockdev, device) in enumerate(disks):
            if i == 0:
                device = {**device, "bootindex": 1}
            argv += ["-blockdev", json.dumps(blockdev), "-device", json.dumps(device)]
        for vif, fd in nics:
            netdev, device = self._nic_args(vif, fd)
            argv += ["-netdev", netdev, "-device", json.dumps(device)]
        if boot := machine.rescue_boot if machine.rescue else machine.boot:
            cmdline = boot.get("cmdline") or DEFAULT_CMDLINE + ("" if self.accel == "kvm" else " no_timer_check")
            argv += ["-kernel", str(p.dir / boot["kernel"]), "-append", cmdline]
            if boot.get("ramdisk"):
                argv += ["-initrd", str(p.dir / boot["ramdisk"])]
        if incoming:
            argv += ["-incoming", "defer", "-S"]
        elif paused:  # never started: its CPUs wait at the reset vector (qemu's "prelaunch")
            argv += ["-S"]
        return argv

    async def _launch(self, machine: Machine, incoming: bool = False, paused: bool = False) -> None:
        p = self._paths(machine.uuid)
        if self._pid(machine.uuid) is not None:
            return
        p.sockets.mkdir(mode=0o700, exist_ok=True)
        for leftover in (p.pid, p.qmp, p.status):
            leftover.unlink(missing_ok=True)
        nics: list[tuple[VifSpec, int | None]] = []
        try:
            if self.network != "none":
                for d in machine.vifs:
                    vif = _vif(d)
                    nics.append((vif, await self._plug(vif)))
            argv = self._argv(machine, p, nics, incoming, paused)
            fds = [fd for _, fd in nics if fd is not None]
            with open(p.log, "ab") as err:
                proc = await asyncio.to_thread(subprocess.run, argv, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=err, pass_fds=fds,
                                               start_new_session=True, timeout=60)
        finally:
            for _, fd in nics:
                if fd is not None:
                    os.close(fd)
        if proc.returncode != 0:
            said = p.log.read_text(errors="replace").strip().splitlines()[-3:] if p.log.exists() else []
            raise DriverError(f"qemu could not start instance {machine.uuid}: {' '.join(said) or proc.returncode}")
        deadline = time.monotonic() + 10
        while not (p.qmp.exists() and self._pid(machine.uuid) is not None):
            if time.monotonic() > deadline:
                raise DriverError(f"qemu started for instance {machine.uuid} but is not answering")
            await asyncio.sleep(0.02)

    async def _prepare(self, spec: InstanceSpec, fresh_disk: bool = False, shared: bool = False) -> _Paths:
        """The instance's directory, root disk, kernel and ramdisk and config drive for ``spec``
        (the disk and the drive made side by side: each is a program run). ``shared``: a live
        migration's destination, which makes a fresh local disk but opens the source's disk when
        that is in Ceph (both hosts reach it)."""
        p = self._paths(spec.uuid)
        p.dir.mkdir(parents=True, exist_ok=True)
        try:
            async with asyncio.TaskGroup() as steps:
                if spec.root_volume is None and (fresh_disk or not await self._has_root(p)):
                    steps.create_task(self._root_disk(spec, p, shared))
                steps.create_task(self._boot_files(spec.image, p.kernel, p.ramdisk))
                if spec.config_drive is not None:
                    steps.create_task(qemu_disk.config_drive(p.config, spec.config_drive))
        except BaseExceptionGroup as failed:  # the first failure, as one step alone would raise it
            raise failed.exceptions[0] from None
        return p

    async def _root_disk(self, spec: InstanceSpec, p: _Paths, shared: bool) -> None:
        if spec.image is None:
            raise DriverError("an instance without an image needs a volume to boot from (boot index 0)")
        image = self._image(spec.image)
        clone = self._clone_of(spec.uuid, image)
        if shared and clone is not None:
            if not await asyncio.to_thread(qemu_rbd.exists, clone):
                raise DriverError(f"the disk of instance {spec.uuid} is not in Ceph ({clone.name})")
            clone.save(p.rbd)
            return
        await self._remove_root(p)
        if clone is not None:
            clone.save(p.rbd)  # first: whatever happens next, destroy finds the clone
            assert image.rbd is not None
            await asyncio.to_thread(qemu_rbd.clone, image.rbd, clone, spec.flavor.root_gb * qemu_disk.GIB)
        else:
            await qemu_disk.create_overlay(p.disk, image, spec.flavor.root_gb)

    async def _boot_files(self, image: ImageSpec | None, kernel: Path, ramdisk: Path) -> None:
        """Put the kernel and ramdisk ``image`` boots with at ``kernel``/``ramdisk`` (hard links to
        the image cache's copies); an image without them removes what was there. A kernel or
        ramdisk the image service no longer has keeps the instance's own copy (as Nova fetches
        them only when absent), and is the instance's failure when it has none."""
        kernel_id, ramdisk_id = (image.kernel_id, image.ramdisk_id) if image is not None else (None, None)
        if kernel_id is None:
            ramdisk_id = None
        for boot_id, cached, dest in ((kernel_id, image and image.kernel, kernel),
                                      (ramdisk_id, image and image.ramdisk, ramdisk)):
            if boot_id is None:
                dest.unlink(missing_ok=True)
            elif cached is not None:
                await asyncio.to_thread(_place, cached, dest)
            elif not dest.exists():
                raise DriverError(f"Image {boot_id} could not be found.")

    def _image(self, image: ImageSpec) -> ImageSpec:
        """``image`` with this host's Ceph configuration when it lives in Ceph and names none."""
        if image.rbd and not image.ceph_conf:
            return dataclasses.replace(image, ceph_conf=self.ceph_conf)
        return image

    def _clone_of(self, uuid: str, image: ImageSpec) -> RbdDisk | None:
        """Where the root disk of instance ``uuid`` made from ``image`` goes in Ceph: a clone for a
        raw image in Ceph (as Nova's RBD backend clones only raw images), else None (a local overlay)."""
        if not image.rbd or image.disk_format != "raw":
            return None
        pool = self.rbd_pool or qemu_rbd.parse_parent(image.rbd)[0]
        return RbdDisk(pool=pool, image=f"{uuid}_disk", conf=image.ceph_conf or self.ceph_conf, user=self.rbd_user)

    async def _has_root(self, p: _Paths) -> bool:
        if p.disk.exists():
            return True
        clone = RbdDisk.load(p.rbd)
        return clone is not None and await asyncio.to_thread(qemu_rbd.exists, clone)

    async def _remove_root(self, p: _Paths) -> None:
        """Remove the root disk: the local overlay, or the clone in Ceph."""
        p.disk.unlink(missing_ok=True)
        if (clone := RbdDisk.load(p.rbd)) is not None:
            await asyncio.to_thread(qemu_rbd.remove, clone)
            p.rbd.unlink(missing_ok=True)

    # -- lifecycle ----------------------------------------------------------------------------

    async def spawn(self, spec: InstanceSpec, progress: Progress | None = None) -> None:
        if self._pid(spec.uuid) is not None:
            return
        try:
            await self._prepare(spec)
            if progress:
                await progress(50)
            machine = Machine.of(spec)
            self._store(machine)
            await self._launch(machine)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.destroy(spec.uuid)
            raise
        if progress:
            await progress(100)

    async def destroy(self, uuid: str) -> None:
        await self._teardown(uuid)

    async def _teardown(self, uuid: str, keep_shared_disk: bool = False) -> None:
        """Stop the instance and remove everything of it on this host; its disk in Ceph too,
        unless ``keep_shared_disk`` (a live migration's source when it is over, or a destination
        given up: the disk is the other host's then)."""
        p = self._paths(uuid)
        if not p.dir.exists():
            return
        await self._kill(uuid)
        if not keep_shared_disk:
            await self._remove_root(p)
        ports: list[str] = []
        with contextlib.suppress(DriverError):
            ports = [v["port_id"] for v in self._load(uuid).vifs]
        for port_id in ports:
            await self._unplug(port_id)
        await asyncio.to_thread(shutil.rmtree, p.dir, True)
        if p.sockets != p.dir:
            await asyncio.to_thread(shutil.rmtree, p.sockets, True)
        for key in [k for k in self._locks if k[0] == uuid]:
            del self._locks[key]

    async def rebuild(self, spec: InstanceSpec, progress: Progress | None = None) -> None:
        self._existing(spec.uuid)
        await self._graceful_stop(spec.uuid, self.shutdown_timeout)
        p = self._paths(spec.uuid)
        for old in (p.resize, p.rescue, p.save):
            old.unlink(missing_ok=True)
        await self._prepare(spec, fresh_disk=True)
        machine = Machine.of(spec)
        self._store(machine)
        await self._launch(machine)

    # -- power --------------------------------------------------------------------------------

    async def _graceful_stop(self, uuid: str, timeout: float) -> bool:
        """ACPI power button, then up to ``timeout`` seconds for the guest to power off, then
        a hard stop. True when the guest powered off by itself."""
        if (proc := self._process(uuid)) is None:
            return True
        if timeout > 0:
            with contextlib.suppress(DriverError):
                async with self._qmp(uuid) as qmp:
                    if await qmp.status() == "running":
                        await qmp.execute("system_powerdown")
                    else:
                        timeout = 0  # a paused guest hears no button
            if timeout > 0 and await _wait_ended(*proc, timeout):
                return True
        await self._kill(uuid)
        return False

    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        self._existing(uuid)
        await self._graceful_stop(uuid, timeout)

    async def power_on(self, spec: InstanceSpec) -> None:
        p = self._existing(spec.uuid)
        if self._pid(spec.uuid) is not None:
            return
        p.save.unlink(missing_ok=True)  # starting afresh drops a suspended state
        machine = Machine.of(spec, self._load(spec.uuid) if p.machine.exists() else None)
        await self._prepare(spec)
        self._store(machine)
        await self._launch(machine)

    async def reboot(self, uuid: str, hard: bool) -> None:
        self._existing(uuid)
        machine = self._load(uuid)
        if not hard:
            if self._pid(uuid) is None:
                raise DriverError(f"Cannot soft reboot instance {uuid}: it is not running")
            if await self.power_state(uuid) != states.RUNNING:
                raise DriverError(f"Cannot soft reboot instance {uuid} while it is paused")
            await self._graceful_stop(uuid, self.shutdown_timeout)
        else:
            await self._kill(uuid)
        self._paths(uuid).save.unlink(missing_ok=True)
        await self._launch(machine)

    async def pause(self, uuid: str) -> None:
        async with self._qmp(uuid) as qmp:
            await qmp.execute("stop")

    async def unpause(self, uuid: str) -> None:
        async with self._qmp(uuid) as qmp:
            await qmp.execute("cont")

    async def suspend(self, uuid: str) -> None:
        p = self._existing(uuid)
        tmp = p.save.with_name(".save.tmp")
        proc = self._process(uuid)
        async with self._qmp(uuid) as qmp:
            await qmp.execute("stop")
            try:
                await qmp.execute("migrate", {"uri": f"exec:cat > {tmp}"})
                await self._migration_done(qmp, timeout=300)
            except BaseException:
                with contextlib.suppress(DriverError):
                    await qmp.execute("cont")
                raise
            tmp.replace(p.save)
            with contextlib.suppress(DriverError):
                await qmp.execute("quit", timeout=3)
        if proc is not None and not await _wait_ended(*proc, 10):
            await self._kill(uuid)

    async def resume(self, spec: InstanceSpec) -> None:
        p = self._existing(spec.uuid)
        if not p.save.exists():
            if self._pid(spec.uuid) is not None:
                return
            raise DriverError(f"Instance {spec.uuid} is not suspended")
        machine = Machine.of(spec, self._load(spec.uuid))
        self._store(machine)
        await self._launch(machine, incoming=True)
        async with self._qmp(spec.uuid) as qmp:
            await qmp.execute("migrate-incoming", {"uri": f"exec:cat {p.save}"})
            await self._incoming_done(qmp, timeout=300)
            await qmp.execute("cont")
        p.save.unlink(missing_ok=True)

    async def _migration_done(self, qmp: Monitor, timeout: float, progress: Progress | None = None) -> dict[str, Any]:
        """Until the outgoing migration completes; its last ``query-migrate``."""
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            info = await qmp.execute("query-migrate")
            status = info.get("status")
            if status == "completed":
                return dict(info)
            if status in ("failed", "cancelled"):
                raise DriverError(f"the migration {status}: {info.get('error-desc', 'no reason given')}")
            if progress and (ram := info.get("ram")) and ram.get("total"):
                done = int(100 * (ram["total"] - ram.get("remaining", 0)) / ram["total"])
                if done != last:
                    last = done
                    await progress(done)
            if time.monotonic() > deadline:
                with contextlib.suppress(DriverError):
                    await qmp.execute("migrate_cancel")
                raise DriverError(f"the migration did not complete within {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def _incoming_done(self, qmp: Monitor, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = await qmp.status()
            info = await qmp.execute("query-migrate")
            if status != "inmigrate" and info.get("status") in (None, "completed"):
                return
            if info.get("status") == "failed":
                raise DriverError(f"restoring the guest failed: {info.get('error-desc', 'no reason given')}")
            if time.monotonic() > deadline:
                raise DriverError(f"restoring the guest did not complete within {timeout:.0f} s")
            await asyncio.sleep(0.05)

    # -- disks and images -----------------------------------------------------------------------

    async def snapshot(self, uuid: str, dest: Path, progress: Progress | None = None) -> str:
        """A standalone qcow2 of the root disk. A running guest is paused while it is copied
        (the copy is of one instant); a stopped one is copied as it is."""
        p = self._existing(uuid)
        if self._load(uuid).root_volume() is not None:
            raise DriverError(f"instance {uuid} boots from a volume: its image is made from a volume snapshot")
        paused_here = False
        if self._pid(uuid) is not None:
            async with self._qmp(uuid) as qmp:
                if await qmp.status() == "running":
                    await qmp.execute("stop")
                    paused_here = True
        try:
            if (clone := RbdDisk.load(p.rbd)) is not None:
                fmt = await qemu_disk.standalone_copy(clone.uri(), Path(dest), "raw")
            else:
                fmt = await qemu_disk.standalone_copy(p.disk, Path(dest))
        finally:
            if paused_here:
                async with self._qmp(uuid) as qmp:
                    await qmp.execute("cont")
        if progress:
            await progress(100)
        return fmt

    async def resize(self, spec: InstanceSpec) -> None:
        p = self._existing(spec.uuid)
        old = self._load(spec.uuid)
        await self._graceful_stop(spec.uuid, self.shutdown_timeout)
        if old.root_volume() is not None:
            pass  # the root disk is a volume: a flavor does not resize it
        elif (clone := RbdDisk.load(p.rbd)) is not None:  # kept in the clone's snapshot "resize"
            await asyncio.to_thread(qemu_rbd.grow, clone, spec.flavor.root_gb * qemu_disk.GIB, True)
        else:
            if not p.resize.exists():
                await asyncio.to_thread(shutil.copyfile, p.disk, p.resize)
            await qemu_disk.grow(p.disk, spec.flavor.root_gb)
        machine = Machine.of(spec, old)
        machine.old_flavor = old.old_flavor or {"vcpus": old.vcpus, "memory_mb": old.memory_mb}
        self._store(machine)

    async def confirm_resize(self, uuid: str) -> None:
        p = self._existing(uuid)
        p.resize.unlink(missing_ok=True)
        if (clone := RbdDisk.load(p.rbd)) is not None:
            await asyncio.to_thread(qemu_rbd.confirm, clone)
        machine = self._load(uuid)
        machine.old_flavor = None
        self._store(machine)

    async def revert_resize(self, spec: InstanceSpec) -> None:
        p = self._existing(spec.uuid)
        await self._graceful_stop(spec.uuid, self.shutdown_timeout)
        if (clone := RbdDisk.load(p.rbd)) is not None:
            await asyncio.to_thread(qemu_rbd.revert, clone)
        elif p.resize.exists():
            p.resize.replace(p.disk)
        machine = Machine.of(spec, self._load(spec.uuid))
        machine.old_flavor = None
        self._store(machine)

    async def rescue(self, spec: InstanceSpec, rescue_image: ImageSpec) -> None:
        p = self._existing(spec.uuid)
        await self._graceful_stop(spec.uuid, self.shutdown_timeout)
        p.rescue.unlink(missing_ok=True)
        await qemu_disk.create_overlay(p.rescue, self._image(rescue_image), 0)
        await self._boot_files(rescue_image, p.rescue_kernel, p.rescue_ramdisk)
        if spec.config_drive is not None:
            await qemu_disk.config_drive(p.config, spec.config_drive)
        machine = Machine.of(spec, self._load(spec.uuid))
        machine.rescue = True
        # the rescue image's kernel, else the instance's (Nova's rescue_kernel_id or the
        # instance's kernel_id), always with the default command line
        rescue_boot = _boot_of(rescue_image, p.rescue_kernel.name, p.rescue_ramdisk.name) or machine.boot
        machine.rescue_boot = {**rescue_boot, "cmdline": None} if rescue_boot else None
        self._store(machine)
        await self._launch(machine)

    async def unrescue(self, spec: InstanceSpec) -> None:
        p = self._existing(spec.uuid)
        await self._kill(spec.uuid)
        for rescued in (p.rescue, p.rescue_kernel, p.rescue_ramdisk):
            rescued.unlink(missing_ok=True)
        machine = Machine.of(spec, self._load(spec.uuid))
        machine.rescue, machine.rescue_boot = False, None
        self._store(machine)
        await self._launch(machine)

    # -- consoles and NICs ----------------------------------------------------------------------

    async def console_output(self, uuid: str, length: int | None = None) -> str:
        p = self._existing(uuid)
        try:
            with open(p.console, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - MAX_CONSOLE_BYTES))
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            text = ""
        text = text.replace("\r\n", "\n").replace("\x00", "")
        if length is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-length:]) if length > 0 else ""
        return text

    async def console(self, uuid: str, protocol: str = "vnc") -> Console:
        if protocol != "vnc":
            raise DriverError(f"Unsupported console type {protocol}: this host offers vnc")
        if not self.vnc_listen:
            raise DriverError("this host has no VNC consoles (vnc_listen is empty)")
        async with self._qmp(uuid) as qmp:
            vnc = await qmp.execute("query-vnc")
        if not vnc.get("enabled"):
            raise DriverError(f"instance {uuid} has no VNC server")
        return Console(protocol="vnc", host=str(vnc["host"]), port=int(vnc["service"]))

    async def diagnostics(self, uuid: str) -> dict[str, Any]:
        """Nova's diagnostics of the guest (the agent adds state, driver and the counts): each
        vCPU's time from its thread (``query-cpus-fast``, /proc), each disk's counters
        (``query-blockstats``), the NICs' MACs (their counters are the taps', not qemu's), memory
        in MiB, uptime of the qemu process. A stopped guest: its disks and CPUs without figures."""
        p = self._existing(uuid)
        machine = self._load(uuid)
        pid = self._pid(uuid)
        cpus: list[dict[str, Any]] = [{"id": i, "time": None, "utilisation": None} for i in range(machine.vcpus)]
        nodes = [n for n, there in (("disk", p.disk.exists() or p.rbd.exists()), ("config", p.config.exists()))
                 if there] + [v["volume_id"] for v in machine.volumes]
        disks: list[dict[str, Any]] = [dict.fromkeys(("read_bytes", "read_requests", "write_bytes",
                                                      "write_requests", "errors_count")) for _ in nodes]
        uptime = None
        if pid is not None:
            async with self._qmp(uuid) as qmp:
                fast = await qmp.execute("query-cpus-fast")
                stats = await qmp.execute("query-blockstats")
            cpus = [{"id": int(c["cpu-index"]), "time": _thread_cpu_ns(pid, int(c["thread-id"])),
                     "utilisation": None} for c in fast]
            disks = [{"read_bytes": st["rd_bytes"], "read_requests": st["rd_operations"],
                      "write_bytes": st["wr_bytes"], "write_requests": st["wr_operations"],
                      "errors_count": int(st.get("failed_rd_operations", 0)) + int(st.get("failed_wr_operations", 0))}
                     for st in (b["stats"] for b in stats)]
            uptime = _process_uptime(pid)
        return {"hypervisor": "kvm" if self.accel == "kvm" else "qemu", "hypervisor_os": "linux", "uptime": uptime,
                "config_drive": p.config.exists(), "cpu_details": cpus,
                "nic_details": [{"mac_address": v["mac"], **dict.fromkeys((
                    "rx_octets", "rx_errors", "rx_drop", "rx_packets", "rx_rate", "tx_octets", "tx_errors", "tx_drop",
                    "tx_packets", "tx_rate"))} for v in machine.vifs],
                "disk_details": disks,
                "memory_details": {"maximum": machine.memory_mb, "used": machine.memory_mb if pid else 0}}

    async def attach_interface(self, uuid: str, vif: VifSpec) -> None:
        self._existing(uuid)
        machine = self._load(uuid)
        if any(v["port_id"] == vif.port_id for v in machine.vifs):
            return
        if self._pid(uuid) is not None and self.network != "none":
            fd = await self._plug(vif)
            try:
                async with self._qmp(uuid) as qmp:
                    netdev: dict[str, Any] = {"id": f"hn-{vif.port_id}"}
                    if fd is not None:
                        qmp.send_fd(fd)
                        await qmp.execute("getfd", {"fdname": f"fd-{vif.port_id}"})
                        netdev.update(type="tap", fd=f"fd-{vif.port_id}")
                    else:
                        netdev.update(type="user", restrict=True)
                    await qmp.execute("netdev_add", netdev)
                    try:
                        await qmp.execute("device_add", self._nic_args(vif, fd)[1])
                    except DriverError:
                        with contextlib.suppress(DriverError):
                            await qmp.execute("netdev_del", {"id": f"hn-{vif.port_id}"})
                        raise
            except BaseException:
                await self._unplug(vif.port_id)
                raise
            finally:
                if fd is not None:
                    os.close(fd)
        machine.vifs.append(dataclasses.asdict(vif))
        self._store(machine)

    async def detach_interface(self, uuid: str, port_id: str) -> None:
        self._existing(uuid)
        machine = self._load(uuid)
        if self._pid(uuid) is not None and self.network != "none":
            async with self._qmp(uuid) as qmp:
                devices = await qmp.execute("qom-list", {"path": "/machine/peripheral"})
                if any(d["name"] == f"nic-{port_id}" for d in devices):
                    listener = qmp.listen("DEVICE_DELETED")
                    with qmp.listening(listener):
                        await qmp.execute("device_del", {"id": f"nic-{port_id}"})
                        await qmp.wait_event(listener, 30, lambda e: e.get("data", {}).get("device") == f"nic-{port_id}")
                with contextlib.suppress(DriverError):
                    await qmp.execute("netdev_del", {"id": f"hn-{port_id}"})
        await self._unplug(port_id)
        machine.vifs = [v for v in machine.vifs if v["port_id"] != port_id]
        self._store(machine)

    # -- volumes --------------------------------------------------------------------------------

    async def attach_volume(self, uuid: str, volume: VolumeSpec) -> None:
        """A running guest gets the volume hot-plugged (``blockdev-add`` + ``device_add`` of a
        virtio-blk-pci in a slot of its own); a stopped one has it from its next start. Either way
        machine.json keeps it. Steps qemu has done already (a retry after a crash) are skipped."""
        self._existing(uuid)
        machine = self._load(uuid)
        if any(v["volume_id"] == volume.volume_id for v in machine.volumes):
            return
        volume = dataclasses.replace(volume, boot_index=None)
        slot = qemu_volumes.free_slot(v.get("slot") for v in machine.volumes)
        blockdev, device = qemu_volumes.blockdev(volume), qemu_volumes.device(volume, slot)
        if self._pid(uuid) is not None:
            async with self._qmp(uuid) as qmp:
                nodes = {n.get("node-name") for n in await qmp.execute("query-named-block-nodes", {"flat": True})}
                added = blockdev["node-name"] not in nodes
                if added:
                    await qmp.execute("blockdev-add", blockdev)
                try:
                    if device["id"] not in await self._devices(qmp):
                        await qmp.execute("device_add", device)
                except DriverError:
                    if added:
                        with contextlib.suppress(DriverError):
                            await qmp.execute("blockdev-del", {"node-name": blockdev["node-name"]})
                    raise
        machine.volumes.append(qemu_volumes.stored(volume, slot))
        self._store(machine)

    async def detach_volume(self, uuid: str, volume_id: str) -> None:
        """``device_del``, then the guest's ACPI hot-unplug (qemu's DEVICE_DELETED, at most
        DETACH_TIMEOUT seconds: a guest that does not let go keeps the volume, an error), then
        ``blockdev-del`` (qemu flushes and closes the file or RBD image). A stopped instance just
        forgets it. The volume the instance boots from cannot be detached."""
        self._existing(uuid)
        machine = self._load(uuid)
        entry = next((v for v in machine.volumes if v["volume_id"] == volume_id), None)
        if entry is not None and entry.get("boot_index") == 0:
            raise DriverError(f"volume {volume_id} is the root disk of instance {uuid}")
        if self._pid(uuid) is not None:
            dev, node = qemu_volumes.device_id(volume_id), qemu_volumes.node_name(volume_id)
            async with self._qmp(uuid) as qmp:
                if dev in await self._devices(qmp):
                    listener = qmp.listen("DEVICE_DELETED")
                    with qmp.listening(listener):
                        await qmp.execute("device_del", {"id": dev})
                        try:
                            await qmp.wait_event(listener, DETACH_TIMEOUT, lambda e: e.get("data", {}).get("device") == dev)
                        except DriverError as exc:
                            raise DriverError(f"the guest of instance {uuid} did not let go of volume {volume_id} "
                                              f"within {DETACH_TIMEOUT} s") from exc
                nodes = {n.get("node-name") for n in await qmp.execute("query-named-block-nodes", {"flat": True})}
                if node in nodes:
                    await qmp.execute("blockdev-del", {"node-name": node})
        if entry is not None:
            machine = self._load(uuid)
            machine.volumes = [v for v in machine.volumes if v["volume_id"] != volume_id]
            self._store(machine)

    @staticmethod
    async def _devices(qmp: Monitor) -> set[str]:
        return {d["name"] for d in await qmp.execute("qom-list", {"path": "/machine/peripheral"})}

    # -- live migration -------------------------------------------------------------------------

    async def prepare_incoming(self, spec: InstanceSpec) -> MigrationTarget:
        """A paused qemu waiting for the stream (``-incoming defer``), its root disk a fresh
        overlay on this host's copy of the image, exported over NBD for the source to mirror
        its disk into."""
        if self._pid(spec.uuid) is not None:
            raise DriverError(f"Instance {spec.uuid} already runs on this host")
        try:
            p = await self._prepare(spec, fresh_disk=True, shared=True)
            machine = Machine.of(spec)
            self._store(machine)
            await self._launch(machine, incoming=True)
            port = _free_port(self.migration_address)
            disks = {}
            async with self._qmp(spec.uuid) as qmp:
                if p.disk.exists():  # a disk in Ceph or a volume is shared: nothing to copy
                    nbd_port = _free_port(self.migration_address)
                    await qmp.execute("nbd-server-start", {"addr": {"type": "inet", "data": {
                        "host": self.migration_address, "port": str(nbd_port)}}})
                    await qmp.execute("block-export-add", {"type": "nbd", "id": "export-disk", "node-name": "disk",
                                                           "name": "disk", "writable": True})
                    disks["disk"] = f"nbd://{self.migration_address}:{nbd_port}/disk"
                await qmp.execute("migrate-incoming", {"uri": f"tcp:{self.migration_address}:{port}"})
        except BaseException:
            with contextlib.suppress(Exception):
                await self.abort_incoming(spec.uuid)
            raise
        return MigrationTarget(uri=f"tcp:{self.migration_address}:{port}", disks=disks)

    async def live_migrate(self, uuid: str, target: MigrationTarget,
                           progress: Progress | None = None) -> dict[str, int]:
        """Mirror the disk's own blocks into the destination's export (the image below it is the
        same on both hosts), then migrate the memory; when that completes the source is paused,
        the mirror finishes, and this host lets the instance go. Returns qemu's own figures of
        the move: ``downtime_ms`` (the guest paused, as qemu measured it), ``total_time_ms``,
        and the bytes of memory and disk (Nova's Migration fields memory_/disk_ total, processed,
        remaining).

        A stopped instance (a cold move: resize or migrate to another host) goes the same way:
        its qemu is started with its CPUs held at the reset vector (``-S``, never run), its disk
        mirrored and its untouched memory sent (half a MB, a tenth of a second), and the
        destination, finding a guest that never ran, leaves it stopped (``finish_incoming``)."""
        self._existing(uuid)
        cold = self._pid(uuid) is None
        if cold:
            await self._launch(self._load(uuid), paused=True)
        mirrors: list[str] = []
        disk_total = 0
        try:
            async with self._qmp(uuid, timeout=30) as qmp:
                for node, uri in target.disks.items():
                    m = re.match(r"^nbd://([^:/]+|\[[^\]]+\]):(\d+)/(.+)$", uri)
                    if m is None:
                        raise DriverError(f"cannot mirror into {uri}")
                    await qmp.execute("blockdev-add", {"driver": "nbd", "node-name": f"mig-{node}", "export": m.group(3),
                                                       "server": {"type": "inet", "host": m.group(1).strip("[]"),
                                                                  "port": m.group(2)}})
                    listener = qmp.listen("BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED")
                    with qmp.listening(listener):
                        await qmp.execute("blockdev-mirror", {"job-id": f"mirror-{node}", "device": node,
                                                              "target": f"mig-{node}", "sync": "top"})
                        mirrors.append(node)
                        event = await qmp.wait_event(listener, 600, lambda e, n=node: e["data"].get("device") == f"mirror-{n}")
                        if event["event"] != "BLOCK_JOB_READY":
                            raise DriverError(f"mirroring {node} ended: {event['data'].get('error', 'before it was ready')}")
                await qmp.execute("migrate-set-parameters", {"downtime-limit": 300})
                await qmp.execute("migrate", {"uri": target.uri})
                done = await self._migration_done(qmp, timeout=600, progress=progress)
                for job in await qmp.execute("query-block-jobs"):
                    if job.get("device") in {f"mirror-{n}" for n in mirrors}:
                        disk_total += int(job.get("len", 0))
                for node in mirrors:
                    listener = qmp.listen("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED")
                    with qmp.listening(listener):
                        await qmp.execute("block-job-cancel", {"device": f"mirror-{node}"})
                        await qmp.wait_event(listener, 60, lambda e, n=node: e["data"].get("device") == f"mirror-{n}")
                mirrors.clear()
        except BaseException:
            with contextlib.suppress(Exception):
                async with self._qmp(uuid) as qmp:
                    with contextlib.suppress(DriverError):
                        await qmp.execute("migrate_cancel")
                    for node in mirrors:
                        with contextlib.suppress(DriverError):
                            await qmp.execute("block-job-cancel", {"device": f"mirror-{node}", "force": True})
                    for node in target.disks:
                        with contextlib.suppress(DriverError):
                            await qmp.execute("blockdev-del", {"node-name": f"mig-{node}"})
                    if not cold and await qmp.status() != "running":
                        with contextlib.suppress(DriverError):
                            await qmp.execute("cont")
            if cold:  # stopped it was, stopped it stays
                with contextlib.suppress(Exception):
                    await self._kill(uuid)
            raise
        await self._teardown(uuid, keep_shared_disk=True)
        ram = done.get("ram") or {}
        return {"downtime_ms": int(done.get("downtime", 0)), "total_time_ms": int(done.get("total-time", 0)),
                "memory_total": int(ram.get("total", 0)), "memory_processed": int(ram.get("transferred", 0)),
                "memory_remaining": int(ram.get("remaining", 0)), "disk_total": disk_total,
                "disk_processed": disk_total, "disk_remaining": 0}

    async def finish_incoming(self, uuid: str) -> None:
        """The guest runs here once the stream is in; one that never ran on the source (qemu's
        ``prelaunch``: a cold move of a stopped instance) stays stopped, its disk kept."""
        async with self._qmp(uuid) as qmp:
            await self._incoming_done(qmp, timeout=60)
            with contextlib.suppress(DriverError):
                await qmp.execute("block-export-del", {"id": "export-disk"})
            with contextlib.suppress(DriverError):
                await qmp.execute("nbd-server-stop")
            status = await qmp.status()
            if status not in ("running", "prelaunch"):
                await qmp.execute("cont")
        if status == "prelaunch":
            await self._kill(uuid)

    async def abort_incoming(self, uuid: str) -> None:
        await self._teardown(uuid, keep_shared_disk=True)


def _file_blockdev(node: str, path: Path, fmt: str, read_only: bool = False) -> dict[str, Any]:
    return {"driver": fmt, "node-name": node, "read-only": read_only,
            "file": {"driver": "file", "filename": str(path), "read-only": read_only}}


def _place(source: Path, dest: Path) -> None:
    """``dest`` becomes ``source``'s content: a hard link (the image cache's files are read-only
    and replaced, never rewritten), a copy across file systems."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def _started(pid: int) -> str | None:
    """When process ``pid`` started (its start time in /proc), or None once it has ended (a
    zombie waiting to be reaped has ended). Together with the pid this names one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _thread_cpu_ns(pid: int, tid: int) -> int | None:
    """CPU time (user + system) a thread of ``pid`` has used, in nanoseconds."""
    try:
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * 10**9 // os.sysconf("SC_CLK_TCK")


def _process_uptime(pid: int) -> int | None:
    """Seconds since process ``pid`` started."""
    started = _started(pid)
    if started is None:
        return None
    since_boot = float(Path("/proc/uptime").read_text().split()[0])
    return max(0, int(since_boot - int(started) / os.sysconf("SC_CLK_TCK")))


async def _wait_ended(pid: int, started: str, timeout: float) -> bool:
    """Until the process (``pid`` started at ``started``) has ended; False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while _started(pid) == started:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])
