"""The ``fake`` network driver: no data plane, for fast tests and for running without root.

It keeps what it was told in memory (so tests can look at it: ``networks``, ``subnets``,
``ports``, ... by id) and reports a port up, as OVN would once a host claims it, when the port
is bound to a host (``binding:host_id``) or is a router or DHCP port, and its admin state is
up; otherwise down. It builds every network type and supports every data-plane extension,
since it pretends to do everything the API asks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from mcloud.network.drivers.base import (DesiredState, FloatingIPView, NetworkView, PortStatus, PortView, RouterView,
                                         SecurityGroupView, SubnetView, SyncReport)

#: device owners whose ports come up without a host (OVN's router and DHCP ports)
UP_WITHOUT_HOST = ("network:router_interface", "network:router_gateway", "network:router_interface_distributed",
                   "network:ha_router_replicated_interface", "network:router_centralized_snat", "network:dhcp")


def missing() -> str | None:
    return None


def create(options: dict[str, Any], data_dir: Path) -> FakeDriver:
    return FakeDriver()


class FakeDriver:
    name = "fake"
    network_types = ("flat", "vlan", "geneve", "local")
    extensions = frozenset({"port-security", "allowed-address-pairs", "extra_dhcp_opt", "qos",
                            "qos-bw-limit-direction", "trunk", "floating-ip-port-forwarding",
                            "stateful-security-group"})
    vif_type = "ovs"
    vif_details = {"port_filter": True, "connectivity": "l2", "bridge_name": "br-int", "datapath_type": "system",
                   "bound_drivers": {"0": "fake"}}

    def __init__(self) -> None:
        self.port_status: PortStatus | None = None
        self.networks: dict[str, NetworkView] = {}
        self.subnets: dict[str, SubnetView] = {}
        self.ports: dict[str, PortView] = {}
        self.security_groups: dict[str, SecurityGroupView] = {}
        self.routers: dict[str, RouterView] = {}
        self.floating_ips: dict[str, FloatingIPView] = {}
        self.up: dict[str, bool] = {}
        self.syncs = 0
        #: set to an exception to make the next calls fail (tests of the resync path)
        self.fail: Exception | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self, port_status: PortStatus) -> None:
        self.port_status = port_status

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        self.port_status = None

    def _check(self) -> None:
        if self.fail is not None:
            raise self.fail

    async def sync(self, state: DesiredState) -> SyncReport:
        self._check()
        self.syncs += 1
        report = SyncReport()
        for name in ("networks", "subnets", "ports", "security_groups", "routers", "floating_ips"):
            current: dict[str, Any] = getattr(self, name)
            wanted = {v.id: v for v in getattr(state, name)}
            report.created += len(wanted.keys() - current.keys())
            report.deleted += len(current.keys() - wanted.keys())
            report.updated += sum(1 for k in wanted.keys() & current.keys() if wanted[k] != current[k])
            setattr(self, name, wanted)
        for port in state.ports:
            self._report(port)
        return report

    def _report(self, port: PortView) -> None:
        up = port.admin_state_up and (bool(port.host_id) or port.device_owner in UP_WITHOUT_HOST)
        if self.up.get(port.id, False) == up or self.port_status is None:  # ports start DOWN
            self.up[port.id] = up
            return
        self.up[port.id] = up
        # reported from a task of its own, as a real data plane does, never inside the caller's call
        task = asyncio.get_running_loop().create_task(self.port_status(port.id, up))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait for the status reports in flight (tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def ensure_network(self, network: NetworkView) -> None:
        self._check()
        self.networks[network.id] = network

    async def delete_network(self, network_id: str) -> None:
        self._check()
        self.networks.pop(network_id, None)

    async def ensure_subnet(self, subnet: SubnetView) -> None:
        self._check()
        self.subnets[subnet.id] = subnet

    async def delete_subnet(self, subnet_id: str) -> None:
        self._check()
        self.subnets.pop(subnet_id, None)

    async def ensure_port(self, port: PortView) -> None:
        self._check()
        self.ports[port.id] = port
        self._report(port)

    async def delete_port(self, port_id: str) -> None:
        self._check()
        self.ports.pop(port_id, None)
        self.up.pop(port_id, None)

    async def ensure_security_group(self, group: SecurityGroupView) -> None:
        self._check()
        self.security_groups[group.id] = group

    async def delete_security_group(self, group_id: str) -> None:
        self._check()
        self.security_groups.pop(group_id, None)

    async def ensure_router(self, router: RouterView) -> None:
        self._check()
        self.routers[router.id] = router

    async def delete_router(self, router_id: str) -> None:
        self._check()
        self.routers.pop(router_id, None)

    async def ensure_floating_ip(self, floating_ip: FloatingIPView) -> None:
        self._check()
        self.floating_ips[floating_ip.id] = floating_ip

    async def delete_floating_ip(self, floating_ip_id: str) -> None:
        self._check()
        self.floating_ips.pop(floating_ip_id, None)
