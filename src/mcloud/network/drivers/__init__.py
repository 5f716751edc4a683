"""Network data-plane drivers behind one Protocol (``base.NetworkDriver``): ``ovn`` (real: OVN
Northbound through ovsdbapp, with mCloud supervising the OVN/OVS daemons in all-in-one mode) and
``fake`` (API and IPAM only: for fast tests and for running without root).

Each module ``mcloud.network.drivers.<name>`` provides ``create(options, data_dir) ->
NetworkDriver`` and ``missing() -> str | None`` (what keeps it from running here, as a sentence,
or None). Modules load only when chosen, so ovsdbapp is imported only where ovn runs.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from mcloud.network.config import NetworkConfig
from mcloud.network.drivers.base import NetworkDriver

log = logging.getLogger(__name__)

KNOWN = ("ovn", "fake")


def settle(config: NetworkConfig) -> str:
    """The driver's name, settling ``auto`` in ``config`` once: ovn where it can run, else fake,
    said in one log line."""
    if config.driver == "auto":
        why = importlib.import_module("mcloud.network.drivers.ovn").missing()
        config.driver = "ovn" if why is None else "fake"
        if why is not None:
            log.warning("network: no OVN data plane (%s); the fake driver serves the API only", why)
    return config.driver


def load_driver(config: NetworkConfig, data_dir: Path) -> NetworkDriver:
    """The configured driver (``auto`` settled by :func:`settle`)."""
    name = settle(config)
    if name not in KNOWN:
        raise ValueError(f"[network] driver {name!r} is unknown (known: auto, {', '.join(KNOWN)})")
    module = importlib.import_module(f"mcloud.network.drivers.{name}")
    options = config.ovn if name == "ovn" else {}
    return module.create(options, data_dir)
