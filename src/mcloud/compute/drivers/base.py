"""The Protocol every hypervisor driver implements, and the specs it is given.

A compute host (the in-process one of ``mcloud up``, or ``mcloud agent``) owns one driver. The
host's agent loop (``compute/agent.py``) turns what the controller wants into driver calls: it
fetches the image into the host's image cache, builds the config drive's files, and hands the
driver an :class:`InstanceSpec` made of plain frozen dataclasses (no ORM objects, no HTTP).

Every call names the instance by its uuid. Calls are idempotent where that makes sense: spawning
an instance that is already running with this spec, destroying one that is gone, powering off one
that is off are not errors. A call that fails raises :class:`DriverError` with a message a user may
read (it becomes the server's fault message).

The driver keeps what it needs on the host (disks, sockets, console log) under its instances
path, so that after a restart of the host :meth:`HypervisorDriver.list_instances` still finds the
instances that exist, and power states can be reported truthfully.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol


class DriverError(RuntimeError):
    """A hypervisor operation failed; the message is shown to users as the server's fault."""


class InstanceNotFound(DriverError):
    """The driver has no such instance on this host."""


@dataclasses.dataclass(frozen=True)
class FlavorSpec:
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    extra_specs: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """The image an instance's root disk is made from, as the host's image cache holds it."""

    id: str
    disk_format: str  # "qcow2", "raw", ...
    #: the cached copy on this host (read-only: the driver never writes it; overlays point at it)
    path: Path | None = None
    #: when the image lives in Ceph: "pool/image@snap" of the image service's protected snapshot
    #: (the driver clones it), with the Ceph configuration file to use
    rbd: str | None = None
    ceph_conf: str | None = None
    #: the image's properties (hw_disk_bus, hw_vif_model, hw_machine_type, os_type, ...)
    properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    min_disk: int = 0
    size: int = 0
    #: direct kernel boot, as Nova's libvirt driver does it: the image names a kernel (an ``aki``
    #: image, property ``kernel_id``) and maybe a ramdisk (``ari``, ``ramdisk_id``), booted with
    #: the command line ``os_command_line``. The ids come from the properties (:func:`boot_image_ids`);
    #: ``kernel``/``ramdisk`` are their cached copies on this host, None when the image service no
    #: longer has them (an instance that kept its own copy boots on; a new one cannot)
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    kernel: Path | None = None
    ramdisk: Path | None = None


@dataclasses.dataclass(frozen=True)
class VifSpec:
    """One NIC: a network port bound to this host. The driver plugs it with
    ``mcloud.network.host.Host.plug_tap(port_id, mac, mtu)`` on the host's data plane and hands
    qemu the tap (``open_tap``); ``unplug(port_id)`` when the instance goes."""

    port_id: str
    mac: str
    network_id: str
    mtu: int | None = None
    #: the guest-visible model ("virtio" by default; image property hw_vif_model)
    model: str = "virtio"


@dataclasses.dataclass(frozen=True)
class VolumeSpec:
    """A Cinder volume attached to the instance (or its root disk when ``boot_index`` is 0).

    ``connection_info`` is what the volume service's backend answered (Cinder's
    ``initialize_connection``): ``{"driver_volume_type": "file", "data": {"path", "format"}}`` (a
    qcow2 or raw file this host reaches) or ``{"driver_volume_type": "rbd", "data": {"name":
    "pool/volume-<id>", "ceph_conf", "auth_username"}}`` (an RBD image qemu opens through its own
    librbd), ``data.access_mode`` "rw" or "ro". The guest sees a virtio disk whose serial is the
    volume id (as Nova's libvirt driver sets it: ``/dev/disk/by-id/virtio-<first 20 chars>``)."""

    volume_id: str
    connection_info: Mapping[str, Any]
    #: 0: the instance boots from this volume (it is the root disk, no image disk is made)
    boot_index: int | None = None
    #: the device name Nova recorded ("/dev/vdb"); informational: the guest names disks itself
    device_name: str | None = None

    @property
    def read_only(self) -> bool:
        return (self.connection_info.get("data") or {}).get("access_mode") == "ro"

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> VolumeSpec:
        """From a host operation's payload (``{"volume_id", "connection_info", "boot_index",
        "device_name"}``)."""
        boot_index = d.get("boot_index")
        return cls(volume_id=str(d["volume_id"]), connection_info=dict(d.get("connection_info") or {}),
                   boot_index=None if boot_index is None else int(boot_index), device_name=d.get("device_name"))


@dataclasses.dataclass(frozen=True)
class InstanceSpec:
    uuid: str
    #: the hypervisor's name for it (OS-EXT-SRV-ATTR:instance_name, "instance-0000000a")
    name: str
    hostname: str
    flavor: FlavorSpec
    image: ImageSpec | None
    vifs: tuple[VifSpec, ...] = ()
    #: the config drive's files, path inside the drive -> content
    #: ("openstack/latest/meta_data.json", "openstack/latest/user_data",
    #: "openstack/latest/network_data.json", "openstack/latest/vendor_data.json", the same under
    #: "openstack/2012-08-10/" ... as Nova writes them); None: no config drive
    config_drive: Mapping[str, bytes] | None = None
    #: the attached volumes, in the order they were attached; one with ``boot_index`` 0 is the
    #: root disk (then ``image`` is only the image's metadata, or None, and no disk is made from it)
    volumes: tuple[VolumeSpec, ...] = ()

    @property
    def root_volume(self) -> VolumeSpec | None:
        return next((v for v in self.volumes if v.boot_index == 0), None)


@dataclasses.dataclass(frozen=True)
class HostInfo:
    """What the host offers, reported to Placement and shown by os-hypervisors."""

    vcpus: int
    memory_mb: int
    disk_gb: int
    hypervisor_type: str  # "QEMU" (Nova's libvirt driver says QEMU under TCG too), "fake"
    hypervisor_version: int  # as Nova encodes it: major * 1000000 + minor * 1000 + micro
    hypervisor_hostname: str
    cpu_info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Placement traits the host has (COMPUTE_* from os-traits, HW_CPU_*)
    traits: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Console:
    """Where a remote console is: a VNC server the console proxy connects to."""

    protocol: str  # "vnc"
    host: str
    port: int
    password: str | None = None


@dataclasses.dataclass(frozen=True)
class MigrationTarget:
    """What the destination of a live migration prepared, for the source to migrate into."""

    #: qemu's migration URI ("tcp:127.0.0.1:49152")
    uri: str
    #: block migration: NBD exports of the destination's disks, device name -> "nbd:..." URI
    disks: Mapping[str, str] = dataclasses.field(default_factory=dict)


#: the power state the driver reports: mcloud.compute.states.RUNNING, SHUTDOWN, POWER_PAUSED, ...
PowerState = int

Progress = Callable[[int], Awaitable[None]]


class HypervisorDriver(Protocol):
    name: str

    async def start(self) -> None:
        """Get ready (probe acceleration, find instances left from before a restart)."""

    async def close(self) -> None:
        """Let go of connections; instances keep running (a host restart does not stop guests)."""

    def host_info(self) -> HostInfo: ...

    async def list_instances(self) -> dict[str, PowerState]:
        """Every instance this host has, uuid -> power state."""

    async def power_state(self, uuid: str) -> PowerState: ...

    # -- lifecycle
    async def spawn(self, spec: InstanceSpec, progress: Progress | None = None) -> None:
        """Create the instance's disks and config drive, plug its NICs and start it running."""

    async def destroy(self, uuid: str) -> None:
        """Stop it, unplug its NICs and remove everything it had on this host."""

    async def rebuild(self, spec: InstanceSpec, progress: Progress | None = None) -> None:
        """Replace the root disk with a fresh one from ``spec.image`` and start it again."""

    # -- power
    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        """ACPI shutdown, waiting up to ``timeout`` seconds, then a hard stop."""

    async def power_on(self, spec: InstanceSpec) -> None: ...

    async def reboot(self, uuid: str, hard: bool) -> None: ...

    async def pause(self, uuid: str) -> None: ...

    async def unpause(self, uuid: str) -> None: ...

    async def suspend(self, uuid: str) -> None:
        """Save the guest's memory and state to disk and stop the process."""

    async def resume(self, spec: InstanceSpec) -> None:
        """Restore what suspend saved; the guest carries on where it was."""

    # -- disks and images
    async def snapshot(self, uuid: str, dest: Path, progress: Progress | None = None) -> str:
        """Write a standalone image of the root disk to ``dest``; returns its disk format."""

    async def resize(self, spec: InstanceSpec) -> None:
        """Give a stopped instance ``spec.flavor`` (grow its root disk), leaving it stopped.
        The old disk is kept until :meth:`confirm_resize` (revert puts it back)."""

    async def confirm_resize(self, uuid: str) -> None: ...

    async def revert_resize(self, spec: InstanceSpec) -> None: ...

    async def rescue(self, spec: InstanceSpec, rescue_image: ImageSpec) -> None:
        """Boot from ``rescue_image`` with the instance's own disk attached second."""

    async def unrescue(self, spec: InstanceSpec) -> None: ...

    # -- consoles and NICs
    async def console_output(self, uuid: str, length: int | None = None) -> str:
        """The serial console's log (the last ``length`` lines, or all)."""

    async def console(self, uuid: str, protocol: str = "vnc") -> Console: ...

    async def attach_interface(self, uuid: str, vif: VifSpec) -> None: ...

    async def detach_interface(self, uuid: str, port_id: str) -> None: ...

    # -- volumes (a running guest gets a hot-plugged disk; a stopped one has it at its next start)
    async def attach_volume(self, uuid: str, volume: VolumeSpec) -> None:
        """Attach ``volume`` (idempotent: one attached already is not an error); the instance
        keeps it across stop/start, reboot, suspend and moves."""

    async def detach_volume(self, uuid: str, volume_id: str) -> None:
        """Detach it (the guest lets go of the disk first: a guest that does not is an error,
        the volume stays attached); one not attached is not an error."""

    # -- live migration (source and destination are two hosts, each with its own driver)
    async def prepare_incoming(self, spec: InstanceSpec) -> MigrationTarget:
        """On the destination: disks, NICs and a paused qemu waiting for the migration stream."""

    async def live_migrate(self, uuid: str, target: MigrationTarget,
                           progress: Progress | None = None) -> Mapping[str, int] | None:
        """On the source: copy disks and memory into ``target`` and stop here when it runs there.
        May return figures of the move: ``downtime_ms``, ``total_time_ms``, memory_/disk_ total,
        processed, remaining (bytes, Nova's Migration fields)."""

    async def finish_incoming(self, uuid: str) -> None:
        """On the destination, after the source finished: the guest runs here."""

    async def abort_incoming(self, uuid: str) -> None:
        """On the destination, after a failed migration: remove what prepare made."""


def boot_image_ids(properties: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The kernel and ramdisk images an image boots with (its ``kernel_id`` and ``ramdisk_id``
    properties), as Nova's ``_handle_kernel_and_ramdisk`` reads them: ``kernel_id`` ``nokernel``
    means neither, and a ramdisk without a kernel is not used."""
    kernel_id = str(properties.get("kernel_id") or "") or None
    ramdisk_id = str(properties.get("ramdisk_id") or "") or None
    if kernel_id is None or kernel_id == "nokernel":
        return None, None
    return kernel_id, ramdisk_id


def driver_options(options: Mapping[str, Any], known: set[str], driver: str) -> dict[str, Any]:
    """The options table of a driver, refusing keys it does not know (a typo is an error)."""
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"[compute.{driver}] unknown options: {', '.join(sorted(unknown))}")
    return dict(options)
