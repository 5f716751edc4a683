"""Compute's configuration section, ``[compute]`` in mcloud.toml (with ``[compute.qemu]`` and
``[compute.fake]`` tables for the hypervisor drivers' options).

::

    [compute]
    driver = "auto"          # "qemu", "fake", or "auto": qemu where qemu-system can run, else fake
    host = ""                # this host's name ("" = the machine's hostname)

    [compute.qemu]           # options of the qemu driver
    accel = "auto"           # "kvm", "tcg", or "auto": kvm when a short test boot works, else tcg
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class ComputeConfig:
    # The hypervisor driver of this process's own compute host (a module in mcloud/compute/drivers/).
    driver: str = "auto"
    # Options of the drivers: the [compute.qemu] and [compute.fake] tables.
    qemu: dict[str, Any] = dataclasses.field(default_factory=dict)
    fake: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Whether `mcloud up` runs a compute host in-process (the all-in-one); a controller-only
    # process serves the API and schedules onto agents.
    local_host: bool = True
    # This host's name as os-services and os-hypervisors show it ("" = socket.gethostname()).
    host: str = ""
    # Where instances' disks, consoles and sockets live ("" = DATA_DIR/instances).
    instances_path: str = ""
    # The availability zone of hosts in no aggregate with one (Nova's default_availability_zone),
    # and the zone servers booted without one land in (default_schedule_zone: None = any).
    default_availability_zone: str = "nova"
    default_schedule_zone: str | None = None
    # What a host offers Placement: allocation ratios and reserved amounts as Nova's defaults.
    cpu_allocation_ratio: float = 16.0
    ram_allocation_ratio: float = 1.5
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 512
    reserved_host_disk_mb: int = 0
    # Heartbeats: agents report every report_interval seconds; a service whose last report is
    # older than service_down_time is down (Nova's defaults 10 and 60).
    report_interval: float = 10.0
    service_down_time: float = 60.0
    # Nova's allow_resize_to_same_host (an all-in-one cloud has one host).
    allow_resize_to_same_host: bool = True
    # Nova's max_concurrent_builds per host, and the scheduler's attempts (max_attempts).
    max_concurrent_builds: int = 10
    scheduler_max_attempts: int = 3
    # Nova's osapi_max_limit: the largest page a list returns.
    max_limit: int = 1000
    # Token lifetime for console URLs, seconds.
    console_token_ttl: int = 600
