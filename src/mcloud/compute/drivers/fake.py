"""The ``fake`` hypervisor driver: instances are state only (a power state, the spec they were
given, a console log), for fast tests and for simulating many hosts in one process.

Options (``[compute.fake]`` in mcloud.toml)::

    [compute.fake]
    hosts = 1                 # simulated hosts in this process (the local host's agent runs each)
    vcpus = 16                # what each simulated host offers
    memory_mb = 32768
    disk_gb = 1000
    fail_spawn_matching = ""  # a regex: spawning an instance whose hostname matches it fails
    fail = {}                 # op -> message: that operation always fails (e.g. {spawn = "no"})
    delay = 0.0               # seconds each lifecycle call takes (to watch BUILD, benchmarks)
    vnc_port = 0              # the port console() names on 127.0.0.1 (a test's stand-in VNC server)

At run time a test can inject failures (:meth:`FakeDriver.inject`) and make a guest stop by
itself (:meth:`FakeDriver.set_power_state`), as Nova's power-state sync must notice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from pathlib import Path
from typing import Any

from mcloud.compute import states
from mcloud.compute.drivers.base import (
    Console,
    DriverError,
    HostInfo,
    ImageSpec,
    InstanceNotFound,
    InstanceSpec,
    MigrationTarget,
    PowerState,
    Progress,
    VifSpec,
    VolumeSpec,
    driver_options,
)

OPTIONS = {"hosts", "vcpus", "memory_mb", "disk_gb", "fail_spawn_matching", "fail", "delay", "vnc_port"}

#: what a fake host says it can do (os-traits names)
TRAITS = ("COMPUTE_NET_ATTACH_INTERFACE", "COMPUTE_DEVICE_TAGGING", "COMPUTE_VOLUME_ATTACH_WITH_TAG",
          "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG", "COMPUTE_IMAGE_TYPE_QCOW2", "COMPUTE_IMAGE_TYPE_RAW",
          "HW_CPU_X86_SSE2")


def missing() -> str | None:
    return None


@dataclasses.dataclass
class FakeInstance:
    spec: InstanceSpec
    power_state: PowerState = states.RUNNING
    console: list[str] = dataclasses.field(default_factory=list)
    vifs: dict[str, VifSpec] = dataclasses.field(default_factory=dict)
    rescued: bool = False
    old_spec: InstanceSpec | None = None  # during a resize, until confirm/revert
    incoming: bool = False  # prepared for a live migration, not yet running here
    boots: int = 0
    booted_at: float = 0.0
    #: attached volumes by id (a boot volume too), in the order they came
    volumes: dict[str, VolumeSpec] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Injected:
    op: str
    message: str
    uuid: str | None
    count: int | None  # None: every time


#: simulated hosts of this process by hypervisor hostname, so that a live migration between two
#: fake hosts moves the instance from one driver to the other
_REGISTRY: dict[str, FakeDriver] = {}


class FakeDriver:
    name = "fake"

    def __init__(self, options: dict[str, Any], instances_path: Path, network_host: Any = None,
                 hostname: str = "fake-host"):
        self.options = driver_options(options, OPTIONS, "fake")
        self.instances_path = instances_path
        self.network_host = network_host
        self.hostname = hostname
        self.instances: dict[str, FakeInstance] = {}
        self.calls: list[tuple[str, str | None]] = []  # (op, uuid): what was asked, for tests
        self._injected: list[_Injected] = []
        fail = self.options.get("fail", {}) or {}
        if not isinstance(fail, dict):
            raise ValueError("[compute.fake] fail must be a table of op -> message")
        for op, message in fail.items():
            self._injected.append(_Injected(op, str(message), None, None))
        pattern = self.options.get("fail_spawn_matching") or ""
        self._fail_spawn = re.compile(pattern) if pattern else None
        self.delay = float(self.options.get("delay", 0) or 0)
        self.started_at = time.time()

    # ------------------------------------------------------------------ test hooks

    def inject(self, op: str, message: str = "Injected failure", uuid: str | None = None,
               count: int | None = 1) -> None:
        """Make the next ``count`` calls of ``op`` (for ``uuid``, or any) fail with ``message``."""
        self._injected.append(_Injected(op, message, uuid, count))

    def set_power_state(self, uuid: str, power_state: PowerState) -> None:
        """The guest changed by itself (shut down from inside, crashed)."""
        self._get(uuid).power_state = power_state

    async def _enter(self, op: str, uuid: str | None) -> None:
        self.calls.append((op, uuid))
        for item in list(self._injected):
            if item.op == op and (item.uuid is None or item.uuid == uuid):
                if item.count is not None:
                    item.count -= 1
                    if item.count <= 0:
                        self._injected.remove(item)
                raise DriverError(item.message)
        if self.delay and op in ("spawn", "rebuild", "destroy", "snapshot", "live_migrate"):
            await asyncio.sleep(self.delay)

    def _get(self, uuid: str) -> FakeInstance:
        inst = self.instances.get(uuid)
        if inst is None or inst.incoming:
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        return inst

    def _log(self, inst: FakeInstance, line: str) -> None:
        inst.console.append(line)

    def _boot(self, inst: FakeInstance) -> None:
        """What a guest prints on its serial console as it boots: the kernel, its disks, the
        boot marker, its user data, a lease per NIC, ready."""
        inst.boots += 1
        inst.power_state = states.RUNNING
        inst.booted_at = time.time()
        flavor = inst.spec.flavor
        self._log(inst, f"fake: starting, kernel 6.1.0-fake, {flavor.vcpus} vcpus, {flavor.memory_mb} MB")
        self._log(inst, f"fake: disks vda={flavor.root_gb << 30}; boot {inst.boots}")
        self._log(inst, f"fake: booted instance {inst.spec.uuid}")
        drive = inst.spec.config_drive or {}
        user_data = drive.get("openstack/latest/user_data")
        if user_data is not None:
            self._log(inst, "fake: user-data begin")
            self._log(inst, user_data.decode("utf-8", "replace"))
            self._log(inst, "fake: user-data end")
        for i, vif in enumerate(inst.vifs.values()):
            self._log(inst, f"fake: eth{i} up mac {vif.mac}")
        self._log(inst, "fake: ready")

    # ------------------------------------------------------------------ Protocol

    async def start(self) -> None:
        _REGISTRY[self.hostname] = self

    async def close(self) -> None:
        if _REGISTRY.get(self.hostname) is self:
            del _REGISTRY[self.hostname]

    def host_info(self) -> HostInfo:
        return HostInfo(
            vcpus=int(self.options.get("vcpus", 16)), memory_mb=int(self.options.get("memory_mb", 32768)),
            disk_gb=int(self.options.get("disk_gb", 1000)), hypervisor_type="fake", hypervisor_version=1000,
            hypervisor_hostname=self.hostname,
            cpu_info={"arch": "x86_64", "model": "fake", "vendor": "fake",
                      "topology": {"sockets": 1, "cores": int(self.options.get("vcpus", 16)), "threads": 1},
                      "features": []},
            traits=TRAITS)

    async def list_instances(self) -> dict[str, PowerState]:
        return {u: i.power_state for u, i in self.instances.items() if not i.incoming}

    async def power_state(self, uuid: str) -> PowerState:
        return self._get(uuid).power_state

    async def spawn(self, spec: InstanceSpec, progress: Progress | None = None) -> None:
        await self._enter("spawn", spec.uuid)
        if self._fail_spawn is not None and self._fail_spawn.search(spec.hostname or ""):
            raise DriverError(f"Fake spawn failure for {spec.hostname} (fail_spawn_matching)")
        existing = self.instances.get(spec.uuid)
        if existing is not None and not existing.incoming:
            return  # already there: spawning again is a no-op
        if spec.root_volume is None and spec.image is not None and spec.image.path is None \
                and spec.image.rbd is None:
            raise DriverError(f"Image {spec.image.id} is not on this host")
        inst = FakeInstance(spec=spec, vifs={v.port_id: v for v in spec.vifs},
                            volumes={v.volume_id: v for v in spec.volumes})
        self.instances[spec.uuid] = inst
        if progress is not None:
            await progress(100)
        self._boot(inst)

    async def destroy(self, uuid: str) -> None:
        await self._enter("destroy", uuid)
        self.instances.pop(uuid, None)

    async def rebuild(self, spec: InstanceSpec, progress: Progress | None = None) -> None:
        await self._enter("rebuild", spec.uuid)
        inst = self._get(spec.uuid)
        inst.spec = spec
        inst.console.clear()
        self._boot(inst)

    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        await self._enter("power_off", uuid)
        inst = self._get(uuid)
        if inst.power_state != states.SHUTDOWN:
            inst.power_state = states.SHUTDOWN
            self._log(inst, "fake: powered off")

    async def power_on(self, spec: InstanceSpec) -> None:
        await self._enter("power_on", spec.uuid)
        inst = self._get(spec.uuid)
        if inst.power_state != states.RUNNING:
            self._boot(inst)

    async def reboot(self, uuid: str, hard: bool) -> None:
        await self._enter("reboot", uuid)
        inst = self._get(uuid)
        if inst.power_state in (states.POWER_PAUSED, states.POWER_SUSPENDED) and not hard:
            raise DriverError(f"Cannot soft reboot instance {uuid} while it is paused or suspended")
        self._boot(inst)

    async def pause(self, uuid: str) -> None:
        await self._enter("pause", uuid)
        inst = self._get(uuid)
        if inst.power_state != states.RUNNING:
            raise DriverError(f"Instance {uuid} is not running")
        inst.power_state = states.POWER_PAUSED

    async def unpause(self, uuid: str) -> None:
        await self._enter("unpause", uuid)
        inst = self._get(uuid)
        if inst.power_state != states.POWER_PAUSED:
            raise DriverError(f"Instance {uuid} is not paused")
        inst.power_state = states.RUNNING

    async def suspend(self, uuid: str) -> None:
        await self._enter("suspend", uuid)
        inst = self._get(uuid)
        if inst.power_state not in (states.RUNNING, states.POWER_PAUSED):
            raise DriverError(f"Instance {uuid} is not running")
        inst.power_state = states.POWER_SUSPENDED

    async def resume(self, spec: InstanceSpec) -> None:
        await self._enter("resume", spec.uuid)
        inst = self._get(spec.uuid)
        if inst.power_state != states.POWER_SUSPENDED:
            raise DriverError(f"Instance {spec.uuid} is not suspended")
        inst.power_state = states.RUNNING

    async def snapshot(self, uuid: str, dest: Path, progress: Progress | None = None) -> str:
        await self._enter("snapshot", uuid)
        inst = self._get(uuid)
        image = inst.spec.image
        data = f"fake snapshot of instance {uuid} (image {image.id if image else None})\n".encode()
        await asyncio.to_thread(Path(dest).write_bytes, data)
        if progress is not None:
            await progress(100)
        return "raw"

    async def resize(self, spec: InstanceSpec) -> None:
        await self._enter("resize", spec.uuid)
        inst = self._get(spec.uuid)
        if spec.root_volume is None and spec.flavor.root_gb < inst.spec.flavor.root_gb:
            raise DriverError("Resizing a disk to a smaller size is not supported.")
        inst.old_spec = inst.spec
        inst.spec = spec
        inst.power_state = states.SHUTDOWN

    async def confirm_resize(self, uuid: str) -> None:
        await self._enter("confirm_resize", uuid)
        self._get(uuid).old_spec = None

    async def revert_resize(self, spec: InstanceSpec) -> None:
        await self._enter("revert_resize", spec.uuid)
        inst = self._get(spec.uuid)
        inst.spec = inst.old_spec or spec
        inst.old_spec = None
        inst.power_state = states.SHUTDOWN

    async def rescue(self, spec: InstanceSpec, rescue_image: ImageSpec) -> None:
        await self._enter("rescue", spec.uuid)
        inst = self._get(spec.uuid)
        inst.rescued = True
        inst.power_state = states.RUNNING
        self._log(inst, f"fake: rescue boot from image {rescue_image.id}")

    async def unrescue(self, spec: InstanceSpec) -> None:
        await self._enter("unrescue", spec.uuid)
        inst = self._get(spec.uuid)
        inst.rescued = False
        self._boot(inst)

    async def console_output(self, uuid: str, length: int | None = None) -> str:
        await self._enter("console_output", uuid)
        lines = self._get(uuid).console
        if length is not None:
            lines = lines[-length:] if length > 0 else []
        return "".join(line + "\n" for line in lines)

    async def console(self, uuid: str, protocol: str = "vnc") -> Console:
        await self._enter("console", uuid)
        self._get(uuid)
        port = int(self.options.get("vnc_port", 0) or 0)
        return Console(protocol=protocol, host="127.0.0.1", port=port)

    async def diagnostics(self, uuid: str) -> dict[str, Any]:
        """What Nova's diagnostics (2.48) tell of the guest, from its state (counters that a real
        guest would have are zero); the agent adds state, driver and the counts."""
        await self._enter("diagnostics", uuid)
        inst = self._get(uuid)
        flavor = inst.spec.flavor
        running = inst.power_state in (states.RUNNING, states.POWER_PAUSED)
        uptime = int(time.time() - inst.booted_at) if running and inst.booted_at else None
        zero_nic = dict.fromkeys(("rx_octets", "rx_errors", "rx_drop", "rx_packets", "tx_octets", "tx_errors",
                                  "tx_drop", "tx_packets"), 0)
        disks = 1 + (inst.spec.config_drive is not None)
        return {"hypervisor": "fake", "hypervisor_os": "linux", "uptime": uptime,
                "config_drive": inst.spec.config_drive is not None,
                "cpu_details": [{"id": i, "time": (uptime or 0) * 10**9 // 100, "utilisation": 1 if running else 0}
                                for i in range(flavor.vcpus)],
                "nic_details": [{"mac_address": v.mac, **zero_nic, "rx_rate": None, "tx_rate": None}
                                for v in inst.vifs.values()],
                "disk_details": [{"read_bytes": 0, "read_requests": 0, "write_bytes": 0, "write_requests": 0,
                                  "errors_count": 0} for _ in range(disks)],
                "memory_details": {"maximum": flavor.memory_mb, "used": flavor.memory_mb if running else 0}}

    async def attach_interface(self, uuid: str, vif: VifSpec) -> None:
        await self._enter("attach_interface", uuid)
        self._get(uuid).vifs[vif.port_id] = vif

    async def detach_interface(self, uuid: str, port_id: str) -> None:
        await self._enter("detach_interface", uuid)
        inst = self._get(uuid)
        if port_id not in inst.vifs:
            raise DriverError(f"Port {port_id} is not attached to instance {uuid}")
        del inst.vifs[port_id]

    async def attach_volume(self, uuid: str, volume: VolumeSpec) -> None:
        """Keeps the volume; a running guest prints it as the tiny guest does (``disk vdX added
        <bytes> serial <id[:20]>``: the size is the connection's ``size_gb`` when given)."""
        await self._enter("attach_volume", uuid)
        inst = self._get(uuid)
        if volume.volume_id in inst.volumes:
            return
        if not volume.connection_info.get("driver_volume_type"):
            raise DriverError(f"volume {volume.volume_id}: its connection says no driver_volume_type")
        inst.volumes[volume.volume_id] = dataclasses.replace(volume, boot_index=None)
        if inst.power_state == states.RUNNING:
            size = int((volume.connection_info.get("data") or {}).get("size_gb") or 1) << 30
            self._log(inst, f"fake: disk {self._disk_name(inst, volume.volume_id)} added {size} "
                            f"serial {volume.volume_id[:20]}")

    async def detach_volume(self, uuid: str, volume_id: str) -> None:
        await self._enter("detach_volume", uuid)
        inst = self._get(uuid)
        volume = inst.volumes.get(volume_id)
        if volume is None:
            return
        if volume.boot_index == 0:
            raise DriverError(f"volume {volume_id} is the root disk of instance {uuid}")
        name = self._disk_name(inst, volume_id)
        del inst.volumes[volume_id]
        if inst.power_state == states.RUNNING:
            self._log(inst, f"fake: disk {name} removed")

    @staticmethod
    def _disk_name(inst: FakeInstance, volume_id: str) -> str:
        """vda the root disk, vdb the config drive, then the volumes in order."""
        others = [v for v in inst.volumes if inst.volumes[v].boot_index != 0]
        return "vd" + "abcdefghijklmnopqrstuvwxyz"[min(25, 2 + others.index(volume_id))]

    async def prepare_incoming(self, spec: InstanceSpec) -> MigrationTarget:
        await self._enter("prepare_incoming", spec.uuid)
        self.instances[spec.uuid] = FakeInstance(spec=spec, power_state=states.POWER_PAUSED, incoming=True,
                                                 vifs={v.port_id: v for v in spec.vifs},
                                                 volumes={v.volume_id: v for v in spec.volumes})
        return MigrationTarget(uri=f"fake:{self.hostname}/{spec.uuid}")

    async def live_migrate(self, uuid: str, target: MigrationTarget,
                           progress: Progress | None = None) -> dict[str, int]:
        """Hands the guest to the destination; returns figures as qemu's would read: the whole
        memory copied once, the disks (block migration: ``target.disks``) at the flavor's size."""
        started = time.monotonic()
        await self._enter("live_migrate", uuid)
        inst = self._get(uuid)
        if not target.uri.startswith("fake:"):
            raise DriverError(f"The fake driver cannot migrate to {target.uri}")
        dest_name = target.uri[len("fake:"):].rsplit("/", 1)[0]
        dest = _REGISTRY.get(dest_name)
        if dest is not None:  # the destination is in this process: hand over the guest's state
            incoming = dest.instances.get(uuid)
            if incoming is None or not incoming.incoming:
                raise DriverError(f"Host {dest_name} is not prepared for instance {uuid}")
            incoming.console = list(inst.console)
            incoming.power_state = inst.power_state
        if progress is not None:
            await progress(100)
        self.instances.pop(uuid, None)
        memory = inst.spec.flavor.memory_mb << 20
        disk = (inst.spec.flavor.root_gb << 30) if target.disks else 0
        return {"downtime_ms": 5, "total_time_ms": max(1, round((time.monotonic() - started) * 1000)),
                "memory_total": memory, "memory_processed": memory, "memory_remaining": 0,
                "disk_total": disk, "disk_processed": disk, "disk_remaining": 0}

    async def finish_incoming(self, uuid: str) -> None:
        await self._enter("finish_incoming", uuid)
        inst = self.instances.get(uuid)
        if inst is None:
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        inst.incoming = False
        if inst.power_state == states.POWER_PAUSED:
            inst.power_state = states.RUNNING

    async def abort_incoming(self, uuid: str) -> None:
        await self._enter("abort_incoming", uuid)
        inst = self.instances.get(uuid)
        if inst is not None and inst.incoming:
            del self.instances[uuid]


def create(options: dict[str, Any], instances_path: Path, network_host: Any = None,
           hostname: str = "fake-host") -> FakeDriver:
    return FakeDriver(options, instances_path, network_host, hostname)
