"""Tables owned by the network service (prefix `network_`): networks, subnets, subnet pools,
address scopes, ports and their IP allocations, segments, RBAC, quotas, tags.

Routers, floating IPs, security groups, QoS and trunks live in ``models_l3.py`` (which may use
:class:`StandardAttrs` for Neutron's standard attributes and :class:`Tag` for tags).

IPAM's guarantees are constraints, not code: an address is a row of ``network_ip_allocation``
whose primary key is (subnet, address), and a MAC is unique on its network, so two racing
writers can never both win; the loser's insert fails and IPAM retries with the next candidate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base


class Json(sa.types.TypeDecorator):
    """JSON, read without a parser for the empty list and object most rows hold (a list of
    10,000 ports holds 40,000 of them)."""

    impl = sa.JSON
    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        inner = self.impl_instance.result_processor(dialect, coltype)
        empty = {"[]": list, "{}": dict}

        def process(value: Any) -> Any:
            make = empty.get(value) if isinstance(value, str) else None
            if make is not None:
                return make()
            return inner(value) if inner is not None else value

        return process


def now() -> datetime:
    """Neutron's timestamps are whole seconds."""
    return datetime.utcnow().replace(microsecond=0)


class StandardAttrs:
    """Neutron's standard attributes: description, created_at, updated_at, revision_number (1 when
    created, +1 on every change)."""

    description: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    revision_number: Mapped[int] = mapped_column(sa.BigInteger, default=1)

    def touch(self) -> None:
        """Count a change (revision_number + 1, updated_at now)."""
        self.revision_number = (self.revision_number or 0) + 1
        self.updated_at = now()


class Network(StandardAttrs, Base):
    __tablename__ = "network_network"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="", index=True)
    admin_state_up: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="ACTIVE")
    #: a wildcard access_as_shared RBAC entry exists (kept with the RBAC rows)
    shared: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    #: router:external (kept with the access_as_external RBAC rows)
    external: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    mtu: Mapped[int] = mapped_column(sa.Integer, default=1500)
    port_security_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    dns_domain: Mapped[str] = mapped_column(sa.String(255), default="")
    availability_zone_hints: Mapped[list[str]] = mapped_column(Json, default=list)


class Segment(StandardAttrs, Base):
    """A network's segment: its provider attributes. ``physnet_key``/``seg_key`` make one VLAN
    id or VNI (and one flat network) per physical network unique by constraint."""

    __tablename__ = "network_segment"
    __table_args__ = (sa.UniqueConstraint("network_type", "physnet_key", "seg_key"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    network_id: Mapped[str] = mapped_column(sa.ForeignKey("network_network.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    network_type: Mapped[str] = mapped_column(sa.String(32))
    physical_network: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    segment_index: Mapped[int] = mapped_column(sa.Integer, default=0)
    physnet_key: Mapped[str] = mapped_column(sa.String(64), default="")
    #: the segmentation id, 0 for flat; NULL for local (never in conflict)
    seg_key: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)


class AddressScope(StandardAttrs, Base):
    __tablename__ = "network_address_scope"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    ip_version: Mapped[int] = mapped_column(sa.Integer)
    shared: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class SubnetPool(StandardAttrs, Base):
    __tablename__ = "network_subnetpool"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    ip_version: Mapped[int] = mapped_column(sa.Integer)
    default_prefixlen: Mapped[int] = mapped_column(sa.Integer)
    min_prefixlen: Mapped[int] = mapped_column(sa.Integer)
    max_prefixlen: Mapped[int] = mapped_column(sa.Integer)
    shared: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    default_quota: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    address_scope_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True, index=True)
    prefixes: Mapped[list[str]] = mapped_column(Json, default=list)


class Subnet(StandardAttrs, Base):
    __tablename__ = "network_subnet"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    network_id: Mapped[str] = mapped_column(sa.ForeignKey("network_network.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    ip_version: Mapped[int] = mapped_column(sa.Integer)
    cidr: Mapped[str] = mapped_column(sa.String(64), index=True)
    gateway_ip: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    subnetpool_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True, index=True)
    segment_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    dns_nameservers: Mapped[list[str]] = mapped_column(Json, default=list)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(Json, default=list)
    #: [[first, last], ...] as addresses
    allocation_pools: Mapped[list[list[str]]] = mapped_column(Json, default=list)
    service_types: Mapped[list[str]] = mapped_column(Json, default=list)
    dns_publish_fixed_ip: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: IPAM's cursor: the key (ipam.key) of the next address to try
    ipam_cursor: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)


class Port(StandardAttrs, Base):
    __tablename__ = "network_port"
    __table_args__ = (sa.UniqueConstraint("network_id", "mac_address"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    network_id: Mapped[str] = mapped_column(sa.ForeignKey("network_network.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    mac_address: Mapped[str] = mapped_column(sa.String(32), index=True)
    admin_state_up: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(sa.String(255), default="", index=True)
    device_owner: Mapped[str] = mapped_column(sa.String(255), default="", index=True)
    host_id: Mapped[str] = mapped_column(sa.String(255), default="", index=True)
    vnic_type: Mapped[str] = mapped_column(sa.String(64), default="normal")
    profile: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    vif_type: Mapped[str] = mapped_column(sa.String(64), default="unbound")
    vif_details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    #: defaults to the network's when the port is made
    port_security_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(Json, default=list)
    extra_dhcp_opts: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    dns_name: Mapped[str] = mapped_column(sa.String(255), default="")


class IPAllocation(Base):
    """One address of one port. The primary key is what makes an address never given twice."""

    __tablename__ = "network_ip_allocation"
    subnet_id: Mapped[str] = mapped_column(sa.ForeignKey("network_subnet.id", ondelete="CASCADE"),
                                           primary_key=True)
    #: the address as a fixed-width hex key, so that SQL orders addresses numerically
    ip_key: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    ip_address: Mapped[str] = mapped_column(sa.String(64), index=True)
    port_id: Mapped[str] = mapped_column(sa.ForeignKey("network_port.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(sa.String(36), index=True)


class RBACPolicy(Base):
    __tablename__ = "network_rbac"
    __table_args__ = (sa.UniqueConstraint("object_type", "object_id", "action", "target_project"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(32))
    object_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    action: Mapped[str] = mapped_column(sa.String(32))
    target_project: Mapped[str] = mapped_column(sa.String(255), index=True)


class Quota(Base):
    __tablename__ = "network_quota"
    project_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(sa.Integer)


class Tag(Base):
    """A tag on any standard-attribute resource (ids are UUIDs, unique across resources)."""

    __tablename__ = "network_tag"
    resource_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)
    resource_type: Mapped[str] = mapped_column(sa.String(32))
