"""The network service's L3 logic: routers, floating IPs and port forwardings, security groups
and rules, QoS policies and rules, trunks. ``NetworkService`` (service.py) creates one
``L3Service(self)`` and calls its hooks inside its own transactions (see the hooks below)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network.drivers.base import QosRules

if TYPE_CHECKING:
    from mcloud.network.service import NetworkService


@dataclasses.dataclass(frozen=True)
class PortExtras:
    """What L3 adds to a port: rendered into its body (``fields()``) and into its PortView."""

    security_groups: tuple[str, ...] = ()
    qos_policy_id: str | None = None
    #: the network's policy, when the port has none of its own (Neutron's qos_network_policy_id)
    qos_network_policy_id: str | None = None
    #: the effective QoS for the data plane (the port's policy, else its network's), or None
    qos: QosRules | None = None
    #: a trunk subport: its trunk's parent port and VLAN tag
    parent_port_id: str | None = None
    vlan_tag: int | None = None
    #: a trunk's parent port: Neutron's ``trunk_details`` ({"trunk_id", "sub_ports": [...]})
    trunk_details: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"security_groups": list(self.security_groups),
                               "qos_policy_id": self.qos_policy_id,
                               "qos_network_policy_id": self.qos_network_policy_id}
        if self.trunk_details is not None:
            out["trunk_details"] = self.trunk_details
        return out


class L3Service:
    def __init__(self, network: NetworkService):
        self.net = network

    # ------------------------------------------------------------------ hooks CORE calls

    def extension_aliases(self) -> set[str]:
        return set()

    async def port_extras(self, session: AsyncSession, ports: list[Any]) -> dict[str, PortExtras]:
        return {p.id: PortExtras() for p in ports}

    async def set_port_extras(self, session: AsyncSession, port: Any, body: dict[str, Any], creating: bool) -> None:
        pass

    async def network_extras(self, session: AsyncSession, networks: list[Any]) -> dict[str, dict[str, Any]]:
        return {n.id: {"qos_policy_id": None} for n in networks}

    async def set_network_extras(self, session: AsyncSession, network: Any, body: dict[str, Any],
                                 creating: bool) -> None:
        pass

    async def before_port_delete(self, session: AsyncSession, port: Any, by_owner: bool) -> None:
        pass

    async def before_subnet_delete(self, session: AsyncSession, subnet: Any) -> None:
        pass

    async def before_network_delete(self, session: AsyncSession, network: Any) -> None:
        pass
