"""Cinder's default rules for backups, backup admin actions and volume transfers
(cinder/policies/backups.py, backup_actions.py, volume_transfer.py), by Cinder's names. The
base rules they name are defined in ``policies.py``, which merges these."""

ADMIN = "rule:admin_api"
READER = "rule:system_reader_or_project_reader"
MEMBER = "rule:system_admin_or_project_member"

RULES: dict[str, str] = {
    # backups
    "backup:get_all": READER,
    "backup:get": READER,
    "backup:create": MEMBER,
    "backup:update": MEMBER,
    "backup:delete": MEMBER,
    "backup:restore": MEMBER,
    "backup:backup-import": ADMIN,
    "backup:export-import": ADMIN,
    "backup:backup_project_attribute": ADMIN,
    "volume_extension:backup_admin_actions:reset_status": ADMIN,
    "volume_extension:backup_admin_actions:force_delete": ADMIN,
    # volume transfers
    "volume:get_all_transfers": READER,
    "volume:get_transfer": READER,
    "volume:create_transfer": MEMBER,
    "volume:accept_transfer": MEMBER,
    "volume:delete_transfer": MEMBER,
}
