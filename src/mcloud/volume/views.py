"""Cinder's views (cinder/api/v3/views/{volumes,snapshots,attachments}.py and the contrib
attributes): what a volume, snapshot or attachment looks like at a microversion, to whom.

``links`` is a function (collection, id) -> the links list (``api.links`` bound to the request;
in-process callers get none).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mcloud.volume import states as st
from mcloud.volume.models import Snapshot, Volume, VolumeAttachment
from mcloud.volume.service import Caller

Links = Callable[[str, str], list[dict[str, str]]]


def no_links(collection: str, resource_id: str) -> list[dict[str, str]]:
    return []


def timestamp(value: datetime | None) -> str | None:
    """Cinder's ``2024-05-01T10:00:00.123456`` (UTC, microseconds, no zone)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def volume_summary(row: Volume, links: Links = no_links) -> dict[str, Any]:
    return {"id": row.id, "name": row.display_name, "links": links("volumes", row.id)}


def volume_attachments(attachments: list[VolumeAttachment], caller: Caller) -> list[dict[str, Any]]:
    """The ``attachments`` of a volume: the attached ones, host names for admins and services."""
    show_host = caller.is_admin or "service" in caller.roles
    return [{"id": a.volume_id, "attachment_id": a.id, "volume_id": a.volume_id, "server_id": a.instance_uuid,
             "host_name": a.attached_host if show_host else None, "device": a.mountpoint,
             "attached_at": timestamp(a.attach_time)}
            for a in attachments if a.attach_status == st.ATTACHED and not a.deleted]


# admin metadata that Cinder shows to everyone inside ``metadata`` (api_utils.add_visible_admin_metadata)
VISIBLE_ADMIN_METADATA = ("readonly", "attached_mode")


def volume_metadata(row: Volume) -> dict[str, str]:
    """The user's metadata with the visible admin keys over it (``readonly``, ``attached_mode``)."""
    admin = row.admin_metadata or {}
    return {**(row.metadata_ or {}), **{k: admin[k] for k in VISIBLE_ADMIN_METADATA if k in admin}}


def volume_detail(row: Volume, caller: Caller, *, type_name: str | None,
                  attachments: list[VolumeAttachment], links: Links = no_links,
                  extended: bool = True) -> dict[str, Any]:
    """A volume as Cinder's ``detail`` shows it at the caller's microversion; ``extended``: with the
    contrib attributes the caller's policy allows (Cinder's extensions add them to show and list
    detail only, never to the create or update response)."""
    target = {"project_id": row.project_id}
    out: dict[str, Any] = {
        "id": row.id, "status": row.status, "size": row.size, "availability_zone": row.availability_zone,
        "created_at": timestamp(row.created_at), "updated_at": timestamp(row.updated_at),
        "name": row.display_name, "description": row.display_description,
        # before 3.63 a type with a name shows its name (the id when it has none)
        "volume_type": type_name if type_name is not None or caller.at(3, 63) else row.volume_type_id,
        "snapshot_id": row.snapshot_id, "source_volid": row.source_volid, "metadata": volume_metadata(row),
        "links": links("volumes", row.id), "user_id": row.user_id, "bootable": str(bool(row.bootable)).lower(),
        "encrypted": row.encryption_key_id is not None, "replication_status": row.replication_status,
        "consistencygroup_id": None, "multiattach": bool(row.multiattach),
        "attachments": volume_attachments(attachments, caller),
    }
    if caller.is_admin:
        out["migration_status"] = row.migration_status
    if caller.at(3, 13):
        out["group_id"] = row.group_id
    if caller.is_admin and caller.at(3, 21):
        out["provider_id"] = row.provider_id
    if caller.at(3, 48):
        shared = row.shared_targets
        out["shared_targets"] = True if shared is None and not caller.at(3, 69) else shared
        out["service_uuid"] = row.service_uuid
    if caller.is_admin and caller.at(3, 61):
        out["cluster_name"] = row.cluster_name
    if caller.at(3, 63):
        out["volume_type_id"] = row.volume_type_id
    if caller.at(3, 64) and row.encryption_key_id:
        out["encryption_key_id"] = row.encryption_key_id
    if caller.at(3, 65):
        out["consumes_quota"] = bool(row.use_quota)
    if not extended:
        return out
    # the contrib extensions' attributes
    if caller.can("volume_extension:volume_host_attribute", target):
        out["os-vol-host-attr:host"] = row.host
    if caller.can("volume_extension:volume_tenant_attribute", target):
        out["os-vol-tenant-attr:tenant_id"] = row.project_id
    if caller.can("volume_extension:volume_mig_status_attribute", target):
        out["os-vol-mig-status-attr:migstat"] = row.migration_status
        out["os-vol-mig-status-attr:name_id"] = None
    if row.volume_image_metadata and caller.can("volume_extension:volume_image_metadata:show", target):
        out["volume_image_metadata"] = {str(k): str(v) for k, v in row.volume_image_metadata.items()}
    return out


def snapshot_view(row: Snapshot, caller: Caller, *, extended: bool = True) -> dict[str, Any]:
    """A snapshot; ``extended``: with the extended snapshot attributes (show and list detail only,
    as Cinder's extension adds them)."""
    out: dict[str, Any] = {
        "id": row.id, "created_at": timestamp(row.created_at), "updated_at": timestamp(row.updated_at),
        "name": row.display_name, "description": row.display_description, "volume_id": row.volume_id,
        "status": row.status, "size": row.volume_size, "metadata": dict(row.metadata_ or {}),
    }
    if caller.at(3, 14):
        out["group_snapshot_id"] = row.group_snapshot_id
    if caller.at(3, 41):
        out["user_id"] = row.user_id
    if caller.at(3, 65):
        out["consumes_quota"] = bool(row.use_quota)
    if extended and caller.can("volume_extension:extended_snapshot_attributes", {"project_id": row.project_id}):
        out["os-extended-snapshot-attributes:progress"] = row.progress
        out["os-extended-snapshot-attributes:project_id"] = row.project_id
    return out


def attachment_view(row: VolumeAttachment, *, detail: bool = True) -> dict[str, Any]:
    """The attachments API's view (3.27): summary, or the detail with connection_info."""
    out: dict[str, Any] = {"id": row.id, "status": row.attach_status, "instance": row.instance_uuid,
                           "volume_id": row.volume_id}
    if detail:
        out.update(attached_at=timestamp(row.attach_time) or "", detached_at=timestamp(row.detach_time) or "",
                   attach_mode=row.attach_mode, connection_info=row.connection_info)
    return out
