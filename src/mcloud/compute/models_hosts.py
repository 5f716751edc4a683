"""Tables of the compute hosts (prefix ``compute_``): the ``nova-compute`` services
(os-services), their hypervisor nodes (os-hypervisors, one per host, whose uuid is the host's
Placement resource provider) and the operations the controller sends to hosts.

A host operation is a durable row: the controller writes it inside the transaction that decides
it (a conductor task's step), the host's agent pulls it, runs it through its hypervisor driver
and writes back the result. Rows stay after they finish (the result is read by whoever waits)
and are pruned when old.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base


def now() -> datetime:
    return datetime.utcnow().replace(microsecond=0)


class ComputeServiceRow(Base):
    """A ``nova-compute`` service: one per compute host."""

    __tablename__ = "compute_service"
    __table_args__ = (sa.UniqueConstraint("host", "binary"),)
    # Nova's integer id (os-services before 2.53) and uuid (from 2.53)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    binary: Mapped[str] = mapped_column(sa.String(255), default="nova-compute")
    topic: Mapped[str] = mapped_column(sa.String(255), default="compute")
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(255))
    forced_down: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    report_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    # the last heartbeat (None: never reported); up while younger than service_down_time
    last_seen_up: Mapped[datetime | None] = mapped_column(sa.DateTime)
    # when the host's agent last started (os-hypervisors uptime)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    # how the host is reached: "local" (in-process) or "http" (an `mcloud agent`)
    transport: Mapped[str] = mapped_column(sa.String(16), default="local")
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class ComputeNode(Base):
    """A hypervisor node (os-hypervisors). ``uuid`` is its Placement resource provider's."""

    __tablename__ = "compute_node"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    service_id: Mapped[int] = mapped_column(sa.ForeignKey("compute_service.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(sa.String(255), index=True)
    hypervisor_hostname: Mapped[str] = mapped_column(sa.String(255), unique=True)
    hypervisor_type: Mapped[str] = mapped_column(sa.String(255))
    hypervisor_version: Mapped[int] = mapped_column(sa.Integer, default=0)
    host_ip: Mapped[str | None] = mapped_column(sa.String(64))
    vcpus: Mapped[int] = mapped_column(sa.Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(sa.Integer, default=0)
    local_gb: Mapped[int] = mapped_column(sa.Integer, default=0)
    cpu_info: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    traits: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class HostOp(Base):
    """One operation for one host (spawn, destroy, power_off, console_output ...)."""

    __tablename__ = "compute_host_op"
    __table_args__ = (sa.Index("ix_compute_host_op_host_status", "host", "status"),)
    # the order ops are run in (per instance, a host runs them one after another)
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    # deterministic per (task, step) when the sender names it, so a resumed task finds its op
    id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    op: Mapped[str] = mapped_column(sa.String(64))
    instance_uuid: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # pending -> running (pulled by the host) -> done | failed
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
