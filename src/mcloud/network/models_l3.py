"""Tables owned by the network service (prefix `network_`) for routers, floating IPs and port
forwardings, security groups and rules, QoS policies and rules, and trunks.

Each top-level resource carries Neutron's standard attributes (description, created_at,
updated_at, revision_number). Rows that belong to a port (its security group bindings, its QoS
binding, a router's or a trunk's use of it) reference CORE's ``network_port`` table and go with
the port; a floating IP's own port is made and deleted by the L3 logic with the floating IP.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base
from mcloud.network.models import StandardAttrs

PORT = "network_port.id"
NETWORK = "network_network.id"
SUBNET = "network_subnet.id"


# ---------------------------------------------------------------------- security groups


class SecurityGroup(StandardAttrs, Base):
    __tablename__ = "network_security_group"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    stateful: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class DefaultSecurityGroup(Base):
    """The one ``default`` group of a project (the primary key keeps it one under concurrency)."""

    __tablename__ = "network_default_security_group"
    project_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        sa.ForeignKey("network_security_group.id", ondelete="CASCADE"), unique=True)


class SecurityGroupRule(StandardAttrs, Base):
    __tablename__ = "network_security_group_rule"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    security_group_id: Mapped[str] = mapped_column(
        sa.ForeignKey("network_security_group.id", ondelete="CASCADE"), index=True)
    # rules that name a group as their remote go with it, as in Neutron
    remote_group_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("network_security_group.id", ondelete="CASCADE"), nullable=True, index=True)
    direction: Mapped[str] = mapped_column(sa.String(16))
    ethertype: Mapped[str] = mapped_column(sa.String(40))
    protocol: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)


class PortSecurityGroup(Base):
    __tablename__ = "network_port_security_group"
    port_id: Mapped[str] = mapped_column(sa.ForeignKey(PORT, ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        sa.ForeignKey("network_security_group.id"), primary_key=True, index=True)


# ---------------------------------------------------------------------- routers and floating IPs


class Router(StandardAttrs, Base):
    __tablename__ = "network_router"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(sa.ForeignKey(PORT), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class RouterPort(Base):
    """A port the router owns: its gateway or one of its interfaces (``port_type`` is the
    port's device_owner)."""

    __tablename__ = "network_router_port"
    port_id: Mapped[str] = mapped_column(sa.ForeignKey(PORT, ondelete="CASCADE"), primary_key=True)
    router_id: Mapped[str] = mapped_column(sa.ForeignKey("network_router.id", ondelete="CASCADE"), index=True)
    port_type: Mapped[str] = mapped_column(sa.String(255))


class RouterRoute(Base):
    __tablename__ = "network_router_route"
    router_id: Mapped[str] = mapped_column(
        sa.ForeignKey("network_router.id", ondelete="CASCADE"), primary_key=True)
    destination: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(sa.String(64), primary_key=True)


class FloatingIP(StandardAttrs, Base):
    __tablename__ = "network_floating_ip"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    floating_network_id: Mapped[str] = mapped_column(sa.ForeignKey(NETWORK), index=True)
    # the floating IP's own port (device_owner network:floatingip) holds its address
    floating_port_id: Mapped[str] = mapped_column(sa.ForeignKey(PORT), unique=True)
    floating_ip_address: Mapped[str] = mapped_column(sa.String(64))
    fixed_port_id: Mapped[str | None] = mapped_column(sa.ForeignKey(PORT, ondelete="SET NULL"), nullable=True,
                                                      index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(sa.ForeignKey("network_router.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="DOWN")


class PortForwarding(StandardAttrs, Base):
    __tablename__ = "network_port_forwarding"
    __table_args__ = (
        sa.UniqueConstraint("floatingip_id", "external_port", "protocol"),
        sa.UniqueConstraint("internal_port_id", "internal_ip_address", "internal_port", "protocol"),
    )
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    floatingip_id: Mapped[str] = mapped_column(sa.ForeignKey("network_floating_ip.id", ondelete="CASCADE"),
                                               index=True)
    internal_port_id: Mapped[str] = mapped_column(sa.ForeignKey(PORT, ondelete="CASCADE"), index=True)
    internal_ip_address: Mapped[str] = mapped_column(sa.String(64))
    internal_port: Mapped[int] = mapped_column(sa.Integer)
    external_port: Mapped[int] = mapped_column(sa.Integer)
    protocol: Mapped[str] = mapped_column(sa.String(16))


# ---------------------------------------------------------------------- QoS


class QosPolicy(StandardAttrs, Base):
    __tablename__ = "network_qos_policy"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    shared: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class QosRule(Base):
    """A rule of a policy: ``bandwidth_limit`` (max_kbps, max_burst_kbps, direction) or
    ``dscp_marking`` (dscp_mark); at most one of a type (and direction) per policy."""

    __tablename__ = "network_qos_rule"
    __table_args__ = (sa.UniqueConstraint("policy_id", "type", "direction"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    policy_id: Mapped[str] = mapped_column(sa.ForeignKey("network_qos_policy.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(sa.String(32))
    # "egress"/"ingress" for bandwidth_limit, "" for dscp_marking
    direction: Mapped[str] = mapped_column(sa.String(16), default="")
    max_kbps: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    max_burst_kbps: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    dscp_mark: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)


class PortQos(Base):
    __tablename__ = "network_port_qos"
    port_id: Mapped[str] = mapped_column(sa.ForeignKey(PORT, ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[str] = mapped_column(sa.ForeignKey("network_qos_policy.id"), index=True)


class NetworkQos(Base):
    __tablename__ = "network_network_qos"
    network_id: Mapped[str] = mapped_column(sa.ForeignKey(NETWORK, ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[str] = mapped_column(sa.ForeignKey("network_qos_policy.id"), index=True)


# ---------------------------------------------------------------------- trunks


class Trunk(StandardAttrs, Base):
    __tablename__ = "network_trunk"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="DOWN")
    port_id: Mapped[str] = mapped_column(sa.ForeignKey(PORT), unique=True)


class SubPort(Base):
    __tablename__ = "network_subport"
    __table_args__ = (sa.UniqueConstraint("trunk_id", "segmentation_type", "segmentation_id"),)
    port_id: Mapped[str] = mapped_column(sa.ForeignKey(PORT), primary_key=True)
    trunk_id: Mapped[str] = mapped_column(sa.ForeignKey("network_trunk.id", ondelete="CASCADE"), index=True)
    segmentation_type: Mapped[str] = mapped_column(sa.String(32))
    segmentation_id: Mapped[int] = mapped_column(sa.Integer)
