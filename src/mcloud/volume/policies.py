"""Cinder's policy defaults by name (cinder/policies/*.py, secure RBAC: project reader/member or
admin), so an operator's Cinder policy file applies unchanged.

``RULES`` holds the base rules and the volumes/snapshots/attachments rules, merged with every other
part's ``RULES`` (``policies_types``, ``policies_backups``, ``policies_groups``: any module listed in ``PARTS``) when
this module is imported.
"""

from __future__ import annotations

from mcloud.core.policy import merged_rules

ADMIN = "rule:admin_api"
MEMBER = "rule:project_member_or_admin"
READER = "rule:project_reader_or_admin"

BASE: dict[str, str] = {
    "context_is_admin": "role:admin",
    "admin_api": "is_admin:True or rule:context_is_admin",
    "admin_or_owner": "is_admin:True or project_id:%(project_id)s",
    "project_member_api": "role:member and project_id:%(project_id)s",
    "project_reader_api": "role:reader and project_id:%(project_id)s",
    "project_member_or_admin": "rule:project_member_api or rule:context_is_admin",
    "project_reader_or_admin": "rule:project_reader_api or rule:context_is_admin",
    # Cinder's Xena names for the same two checks, which operators' policy files refer to
    "system_admin_or_project_member": "rule:project_member_or_admin",
    "system_reader_or_project_reader": "rule:project_reader_or_admin",
}

V = "volume:"
VA = "volume_extension:volume_actions:"
AA = "volume_extension:volume_admin_actions:"
VOLUMES: dict[str, str] = {
    V + "create": MEMBER, V + "create_from_image": MEMBER, V + "get": READER, V + "get_all": READER,
    V + "update": MEMBER, V + "delete": MEMBER, V + "force_delete": ADMIN, V + "multiattach": MEMBER,
    "volume_extension:volume_host_attribute": ADMIN, "volume_extension:volume_tenant_attribute": READER,
    "volume_extension:volume_mig_status_attribute": ADMIN, "volume_extension:volume_encryption_metadata": READER,
    # actions
    V + "extend": MEMBER, V + "extend_attached_volume": MEMBER, V + "revert_to_snapshot": MEMBER,
    V + "retype": MEMBER, V + "update_readonly_flag": MEMBER, V + "reimage": MEMBER, V + "reimage_reserved": MEMBER,
    "volume:extend_volume_completion": ADMIN,
    AA + "reset_status": ADMIN, AA + "force_delete": ADMIN, AA + "force_detach": ADMIN,
    AA + "migrate_volume": ADMIN, AA + "migrate_volume_completion": ADMIN,
    VA + "upload_public": ADMIN, VA + "upload_image": MEMBER,
    VA + "initialize_connection": MEMBER, VA + "terminate_connection": MEMBER, VA + "roll_detaching": MEMBER,
    VA + "reserve": MEMBER, VA + "unreserve": MEMBER, VA + "begin_detaching": MEMBER, VA + "attach": MEMBER,
    VA + "detach": MEMBER,
    # metadata and image metadata
    V + "get_volume_metadata": READER, V + "create_volume_metadata": MEMBER, V + "update_volume_metadata": MEMBER,
    V + "delete_volume_metadata": MEMBER, "volume:update_volume_admin_metadata": ADMIN,
    "volume_extension:volume_image_metadata:show": READER, "volume_extension:volume_image_metadata:set": MEMBER,
    "volume_extension:volume_image_metadata:remove": MEMBER,
    # attachments (3.27)
    V + "attachment_create": MEMBER, V + "attachment_update": MEMBER, V + "attachment_delete": MEMBER,
    V + "attachment_complete": MEMBER, V + "multiattach_bootable_volume": MEMBER,
    # snapshots
    V + "get_all_snapshots": READER, "volume_extension:extended_snapshot_attributes": READER,
    V + "create_snapshot": MEMBER, V + "get_snapshot": READER, V + "update_snapshot": MEMBER,
    V + "delete_snapshot": MEMBER, "volume_extension:snapshot_admin_actions:reset_status": ADMIN,
    "snapshot_extension:snapshot_actions:update_snapshot_status": MEMBER,
    "volume_extension:snapshot_admin_actions:force_delete": ADMIN,
    V + "get_snapshot_metadata": READER, V + "update_snapshot_metadata": MEMBER,
    V + "delete_snapshot_metadata": MEMBER,
    # all_tenants listing is an admin's (Cinder filters it out for anyone else)
    "volume_extension:list_all_tenants": ADMIN,
}

#: the other parts' policy modules, merged when present (a part not landed yet is skipped)
PARTS = ("mcloud.volume.policies_types", "mcloud.volume.policies_backups", "mcloud.volume.policies_groups")


RULES = merged_rules("volume", {**BASE, **VOLUMES}, PARTS)
