"""Hypervisor drivers behind one Protocol (``base.HypervisorDriver``): ``qemu`` (real: a
qemu-system process per instance driven over QMP) and ``fake`` (state only: fast tests and
simulations of many hosts).

Each module ``mcloud.compute.drivers.<name>`` provides ``create(options, instances_path,
network_host) -> HypervisorDriver`` and ``missing() -> str | None`` (what keeps it from running
here, as a sentence, or None). ``network_host`` is the host's ``mcloud.network.host.Host`` (how
NICs are plugged into the OVN data plane), or None where the network has no data plane.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from mcloud.compute.config import ComputeConfig
from mcloud.compute.drivers.base import HypervisorDriver

log = logging.getLogger(__name__)

KNOWN = ("qemu", "fake")


def settle(config: ComputeConfig) -> str:
    """The driver's name, settling ``auto`` in ``config`` once: qemu where it can run, else fake,
    said in one log line."""
    if config.driver == "auto":
        why = importlib.import_module("mcloud.compute.drivers.qemu").missing()
        config.driver = "qemu" if why is None else "fake"
        if why is not None:
            log.warning("compute: no qemu (%s); the fake driver keeps servers as state only", why)
    return config.driver


def load_driver(config: ComputeConfig, instances_path: Path, network_host: Any = None) -> HypervisorDriver:
    """The configured driver (``auto`` settled by :func:`settle`)."""
    name = settle(config)
    if name not in KNOWN:
        raise ValueError(f"[compute] driver {name!r} is unknown (known: auto, {', '.join(KNOWN)})")
    module = importlib.import_module(f"mcloud.compute.drivers.{name}")
    options = config.qemu if name == "qemu" else config.fake
    return module.create(options, instances_path, network_host)
