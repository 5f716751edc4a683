"""Tables owned by the compute service's servers part (prefix ``compute_``): instances and what
hangs off them (faults, metadata, tags, requested networks, actions and their events), and
migrations.

Flavors, keypairs, server groups, aggregates and quotas live in ``models_resources.py``; compute
services (hosts), hypervisor nodes and the operations sent to hosts in ``models_hosts.py``.

An instance row is never removed when the server is deleted: it becomes ``deleted`` (with
``deleted_at``), as Nova keeps it, for admins' ``deleted=True`` lists, ``changes-since`` and
simple tenant usage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base


def now() -> datetime:
    """Nova's timestamps: UTC, shown with whole seconds and a ``Z``."""
    return datetime.utcnow().replace(microsecond=0)


class Instance(Base):
    __tablename__ = "compute_instance"
    # Nova's integer id: OS-EXT-SRV-ATTR:instance_name is "instance-%08x" % id
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255), default="")  # display_name
    hostname: Mapped[str] = mapped_column(sa.String(255), default="")
    description: Mapped[str | None] = mapped_column(sa.String(255))
    image_ref: Mapped[str] = mapped_column(sa.String(36), default="")  # "" when booted from volume
    # the flavor as it was at boot (Nova embeds a copy): id, name, vcpus, memory_mb, root_gb,
    # ephemeral_gb, swap, rxtx_factor, is_public, extra_specs; and the old/new ones during a resize
    flavor: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    new_flavor: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    key_name: Mapped[str | None] = mapped_column(sa.String(255))
    key_data: Mapped[str | None] = mapped_column(sa.Text)
    user_data: Mapped[str | None] = mapped_column(sa.Text)  # base64, as given
    config_drive: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    availability_zone: Mapped[str | None] = mapped_column(sa.String(255))
    host: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    node: Mapped[str | None] = mapped_column(sa.String(255))
    launched_on: Mapped[str | None] = mapped_column(sa.String(255))
    vm_state: Mapped[str] = mapped_column(sa.String(32), default="building")
    task_state: Mapped[str | None] = mapped_column(sa.String(64))
    power_state: Mapped[int] = mapped_column(sa.Integer, default=0)
    # vm_state before a resize/rescue/shelve, to go back to
    old_vm_state: Mapped[str | None] = mapped_column(sa.String(32))
    locked: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(sa.String(16))  # "owner" or "admin"
    locked_reason: Mapped[str | None] = mapped_column(sa.String(255))
    access_ip_v4: Mapped[str | None] = mapped_column(sa.String(64))
    access_ip_v6: Mapped[str | None] = mapped_column(sa.String(64))
    progress: Mapped[int] = mapped_column(sa.Integer, default=0)
    launch_index: Mapped[int] = mapped_column(sa.Integer, default=0)
    reservation_id: Mapped[str] = mapped_column(sa.String(255), default="")
    root_device_name: Mapped[str | None] = mapped_column(sa.String(255))
    # what the create request asked for, kept for rescheduling, rebuild and evacuate:
    # networks ("auto", "none" or [{uuid|port|fixed_ip|tag}]), security group names, hints,
    # the requested zone, the server group
    requested_networks: Mapped[Any] = mapped_column(sa.JSON, default=list)
    security_groups: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    scheduler_hints: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    requested_availability_zone: Mapped[str | None] = mapped_column(sa.String(255))
    # image properties and other facts kept with the instance (Nova's system_metadata: image_*)
    system_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    launched_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    terminated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)

    @property
    def instance_name(self) -> str:
        return f"instance-{self.id:08x}"


class InstanceMetadata(Base):
    """A server's metadata items (key -> value), as the metadata API and ``metadata`` show them."""

    __tablename__ = "compute_instance_metadata"
    instance_uuid: Mapped[str] = mapped_column(sa.ForeignKey("compute_instance.uuid", ondelete="CASCADE"),
                                               primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(255), default="")


class InstanceTag(Base):
    """A server's tags (2.26+)."""

    __tablename__ = "compute_instance_tag"
    instance_uuid: Mapped[str] = mapped_column(sa.ForeignKey("compute_instance.uuid", ondelete="CASCADE"),
                                               primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(60), primary_key=True, index=True)


class InstanceFault(Base):
    """The fault of a server in ERROR (the newest row is shown)."""

    __tablename__ = "compute_instance_fault"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(sa.String(36), index=True)
    code: Mapped[int] = mapped_column(sa.Integer)
    message: Mapped[str] = mapped_column(sa.String(255))
    details: Mapped[str] = mapped_column(sa.Text, default="")
    host: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)


class InstanceAction(Base):
    """os-instance-actions: one row per user request on a server (create, stop, resize...)."""

    __tablename__ = "compute_instance_action"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(sa.String(36), index=True)
    action: Mapped[str] = mapped_column(sa.String(255))
    request_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(255))
    project_id: Mapped[str | None] = mapped_column(sa.String(255))
    message: Mapped[str | None] = mapped_column(sa.String(255))  # "Error" when an event failed
    start_time: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)


class InstanceActionEvent(Base):
    """The steps of an action (compute__do_build_and_run_instance, ...) with their results."""

    __tablename__ = "compute_instance_action_event"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(sa.ForeignKey("compute_instance_action.id", ondelete="CASCADE"),
                                           index=True)
    event: Mapped[str] = mapped_column(sa.String(255))
    result: Mapped[str | None] = mapped_column(sa.String(255))  # "Success" / "Error"
    traceback: Mapped[str | None] = mapped_column(sa.Text)
    host: Mapped[str | None] = mapped_column(sa.String(255))
    start_time: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    finish_time: Mapped[datetime | None] = mapped_column(sa.DateTime)


class Migration(Base):
    """os-migrations: resizes, cold and live migrations, evacuations."""

    __tablename__ = "compute_migration"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(sa.String(36), index=True)
    project_id: Mapped[str | None] = mapped_column(sa.String(255))
    user_id: Mapped[str | None] = mapped_column(sa.String(255))
    migration_type: Mapped[str] = mapped_column(sa.String(32))  # resize, migration, live-migration, evacuation
    status: Mapped[str] = mapped_column(sa.String(32))  # pre-migrating, migrating, finished, confirmed, ...
    source_compute: Mapped[str | None] = mapped_column(sa.String(255))
    dest_compute: Mapped[str | None] = mapped_column(sa.String(255))
    source_node: Mapped[str | None] = mapped_column(sa.String(255))
    dest_node: Mapped[str | None] = mapped_column(sa.String(255))
    dest_host: Mapped[str | None] = mapped_column(sa.String(255))
    old_flavor_id: Mapped[str | None] = mapped_column(sa.String(255))
    new_flavor_id: Mapped[str | None] = mapped_column(sa.String(255))
    memory_total: Mapped[int | None] = mapped_column(sa.BigInteger)
    memory_processed: Mapped[int | None] = mapped_column(sa.BigInteger)
    memory_remaining: Mapped[int | None] = mapped_column(sa.BigInteger)
    disk_total: Mapped[int | None] = mapped_column(sa.BigInteger)
    disk_processed: Mapped[int | None] = mapped_column(sa.BigInteger)
    disk_remaining: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
