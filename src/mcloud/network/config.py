"""Network's configuration section, ``[network]`` in mcloud.toml (with a ``[network.ovn]`` table).

::

    [network]
    driver = "auto"        # "ovn", "fake", or "auto": ovn as root with the OVN/OVS binaries, else fake
    tenant_network_type = "geneve"

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
    # The segment type of a network made without provider attributes ("geneve", or "local" where the
    # driver cannot build geneve networks).
    tenant_network_type: str = "geneve"
    # Neutron's global_physnet_mtu: the MTU of flat and VLAN networks; geneve networks get 58 bytes less.
    global_physnet_mtu: int = 1500
    # Neutron's dns_domain: the domain of ports' dns_assignment.
    dns_domain: str = "openstacklocal."
    # Neutron's limits on subnets and ports.
    max_dns_nameservers: int = 5
    max_subnet_host_routes: int = 20
    max_fixed_ips_per_port: int = 5
    max_allowed_address_pair: int = 10
    # The largest page a list returns (Neutron's pagination_max_limit; -1: no limit).
    pagination_max_limit: int = -1
