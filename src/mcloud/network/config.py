"""Network's configuration section, ``[network]`` in mcloud.toml (with a ``[network.ovn]`` table).

::

    [network]
    driver = "auto"        # "ovn", "fake", or "auto": ovn as root with the OVN/OVS binaries, else fake

    [network.ovn]          # options of the ovn driver and of the data plane mCloud runs
    ...
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class NetworkConfig:
    # The data-plane driver (a module in mcloud/network/drivers/); "auto" picks ovn when it can run.
    driver: str = "auto"
    # Options of the ovn driver and of the OVN/OVS daemons mCloud supervises: the [network.ovn] table.
    ovn: dict[str, Any] = dataclasses.field(default_factory=dict)
