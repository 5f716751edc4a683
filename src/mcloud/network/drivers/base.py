"""The Protocol every network data-plane driver implements, and the views it is given.

The network service owns the truth (its tables). After each change commits, it hands the driver
a *view* of the resource as it now stands (plain frozen dataclasses, no ORM objects) and the
driver makes the data plane match: ``ensure_*`` creates or updates, ``delete_*`` removes. Both
are idempotent: ensuring twice, or deleting what is already gone, is not an error. ``sync`` is
the reconciler: given every resource, it converges the data plane to exactly that (creating
what is missing, fixing what drifted, deleting rows it owns that the service no longer has).
The service calls it at start and whenever a driver call failed, so a crash between the commit
and the driver call heals.

The driver reports ports coming up or going down on the data plane through the ``PortStatus``
callback it is started with; the service turns that into the port's ``status`` (ACTIVE/DOWN).

Addresses are strings as Neutron writes them (``10.0.0.5``, ``fd00::5``, ``10.0.0.0/24``), MACs
lower-case ``fa:16:3e:..``, ids dashed UUIDs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class NetworkView:
    id: str
    name: str
    project_id: str
    admin_state_up: bool
    mtu: int
    #: "flat", "vlan", "geneve" (tenant networks) or "local"
    network_type: str
    #: the provider physical network (flat, vlan), as named in the ovn driver's bridge mappings
    physical_network: str | None
    #: VLAN id or geneve VNI (None: the data plane chooses)
    segmentation_id: int | None
    #: router:external
    external: bool
    port_security_enabled: bool
    dns_domain: str | None = None


@dataclasses.dataclass(frozen=True)
class HostRoute:
    destination: str
    nexthop: str


@dataclasses.dataclass(frozen=True)
class SubnetView:
    id: str
    network_id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    #: the MTU DHCP hands out (the network's)
    mtu: int = 1500


@dataclasses.dataclass(frozen=True)
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclasses.dataclass(frozen=True)
class AddressPair:
    ip_address: str  # an address or a CIDR
    mac_address: str


@dataclasses.dataclass(frozen=True)
class ExtraDhcpOpt:
    opt_name: str
    opt_value: str
    ip_version: int = 4


@dataclasses.dataclass(frozen=True)
class QosRules:
    """The QoS a port gets (its own policy's, else its network's): None fields are unlimited."""

    egress_max_kbps: int | None = None
    egress_max_burst_kbps: int | None = None
    ingress_max_kbps: int | None = None
    ingress_max_burst_kbps: int | None = None
    dscp_mark: int | None = None


@dataclasses.dataclass(frozen=True)
class PortView:
    id: str
    network_id: str
    project_id: str
    name: str
    mac_address: str
    admin_state_up: bool
    fixed_ips: tuple[FixedIP, ...]
    #: "compute:nova", "network:router_interface", "network:router_gateway",
    #: "network:floatingip", "network:dhcp", "" ...
    device_owner: str
    device_id: str
    #: effective: the port's own flag (which defaults to its network's)
    port_security_enabled: bool
    security_group_ids: tuple[str, ...] = ()
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    #: binding:host_id ("" when unbound), binding:vnic_type, binding:profile
    host_id: str = ""
    vnic_type: str = "normal"
    profile: dict[str, object] = dataclasses.field(default_factory=dict, hash=False, compare=True)
    extra_dhcp_opts: tuple[ExtraDhcpOpt, ...] = ()
    qos: QosRules | None = None
    dns_name: str = ""
    #: a trunk subport: the trunk's parent port and this subport's VLAN tag
    parent_port_id: str | None = None
    vlan_tag: int | None = None


@dataclasses.dataclass(frozen=True)
class SecurityGroupRuleView:
    id: str
    direction: str  # "ingress" | "egress"
    ethertype: str  # "IPv4" | "IPv6"
    protocol: str | None  # None = any; a name ("tcp", "icmp", "ipv6-icmp"...) or a number as text
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


@dataclasses.dataclass(frozen=True)
class SecurityGroupView:
    id: str
    project_id: str
    name: str
    stateful: bool
    rules: tuple[SecurityGroupRuleView, ...]


@dataclasses.dataclass(frozen=True)
class StaticRoute:
    destination: str
    nexthop: str


@dataclasses.dataclass(frozen=True)
class RouterView:
    id: str
    project_id: str
    name: str
    admin_state_up: bool
    #: the gateway port on the external network (device_owner network:router_gateway), or None
    gateway_port: PortView | None
    enable_snat: bool
    #: interface ports (device_owner network:router_interface*), one per attached subnet or port
    interfaces: tuple[PortView, ...] = ()
    routes: tuple[StaticRoute, ...] = ()


@dataclasses.dataclass(frozen=True)
class PortForwardingView:
    id: str
    protocol: str  # "tcp" | "udp"
    internal_ip_address: str
    internal_port: int
    external_port: int
    internal_port_id: str


@dataclasses.dataclass(frozen=True)
class FloatingIPView:
    id: str
    project_id: str
    floating_ip_address: str
    floating_network_id: str
    #: the router that does the NAT (None while unassociated)
    router_id: str | None
    port_id: str | None
    fixed_ip_address: str | None
    #: the MAC of the associated port (for distributed NAT), when associated
    port_mac: str | None = None
    port_forwardings: tuple[PortForwardingView, ...] = ()


@dataclasses.dataclass(frozen=True)
class DesiredState:
    """Everything the data plane should hold, for ``sync``."""

    networks: tuple[NetworkView, ...] = ()
    subnets: tuple[SubnetView, ...] = ()
    ports: tuple[PortView, ...] = ()
    security_groups: tuple[SecurityGroupView, ...] = ()
    routers: tuple[RouterView, ...] = ()
    floating_ips: tuple[FloatingIPView, ...] = ()


@dataclasses.dataclass
class SyncReport:
    """What ``sync`` changed on the data plane (all zero: it already matched)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0


#: called by the driver when a port comes up (True) or goes down (False) on the data plane
PortStatus = Callable[[str, bool], Awaitable[None]]


class DriverError(Exception):
    """The data plane refused or could not be reached. The service keeps its own state (the
    commit stands), marks the data plane out of sync and converges it later with ``sync``."""


class NetworkDriver(Protocol):
    #: the driver's name ("ovn", "fake"), as in [network] driver
    name: str
    #: provider network types it can build ("flat", "vlan", "geneve", "local")
    network_types: tuple[str, ...]
    #: Neutron extension aliases that depend on the data plane and that it supports
    #: (e.g. "qos-bw-limit-direction", "port-security", "trunk"); the API advertises only these
    extensions: frozenset[str]

    async def start(self, port_status: PortStatus) -> None:
        """Connect to the data plane; from now on report port status changes."""
        ...

    async def close(self) -> None:
        ...

    async def sync(self, state: DesiredState) -> SyncReport:
        """Converge the whole data plane to ``state``."""
        ...

    async def ensure_network(self, network: NetworkView) -> None: ...

    async def delete_network(self, network_id: str) -> None: ...

    async def ensure_subnet(self, subnet: SubnetView) -> None:
        """The subnet's DHCP options (when enable_dhcp), on its network."""
        ...

    async def delete_subnet(self, subnet_id: str) -> None: ...

    async def ensure_port(self, port: PortView) -> None:
        """The port, its addresses, port security, security groups, QoS and DHCP options."""
        ...

    async def delete_port(self, port_id: str) -> None: ...

    async def ensure_security_group(self, group: SecurityGroupView) -> None:
        """The group and all its rules (ports join it through ``ensure_port``)."""
        ...

    async def delete_security_group(self, group_id: str) -> None: ...

    async def ensure_router(self, router: RouterView) -> None:
        """The router, its interfaces, its gateway with SNAT, and its static routes."""
        ...

    async def delete_router(self, router_id: str) -> None: ...

    async def ensure_floating_ip(self, floating_ip: FloatingIPView) -> None:
        """The NAT of an associated floating IP (dnat_and_snat) and its port forwardings;
        unassociated, none."""
        ...

    async def delete_floating_ip(self, floating_ip_id: str) -> None: ...
