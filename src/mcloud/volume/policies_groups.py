"""Cinder's default rules for generic volume groups and group snapshots (cinder/policies/groups.py,
group_actions.py, group_snapshots.py, group_snapshot_actions.py; secure RBAC). The group TYPE rules
(``group:group_types:*``, ``group:group_types_specs:*``) are the types part's (policies_types.py)."""

from __future__ import annotations

ADMIN = "rule:admin_api"
MEMBER = "rule:system_admin_or_project_member"
READER = "rule:system_reader_or_project_reader"

RULES: dict[str, str] = {
    # groups
    "group:get_all": READER, "group:create": MEMBER, "group:get": READER, "group:update": MEMBER,
    "group:group_project_attribute": ADMIN,
    # group actions
    "group:delete": MEMBER, "group:reset_status": ADMIN, "group:enable_replication": MEMBER,
    "group:disable_replication": MEMBER, "group:failover_replication": MEMBER,
    "group:list_replication_targets": MEMBER,
    # group snapshots
    "group:get_all_group_snapshots": READER, "group:create_group_snapshot": MEMBER,
    "group:get_group_snapshot": READER, "group:delete_group_snapshot": MEMBER,
    "group:update_group_snapshot": MEMBER, "group:group_snapshot_project_attribute": ADMIN,
    "group:reset_group_snapshot_status": ADMIN,
}
