"""Nova's policy defaults by name for flavors, keypairs, server groups, zones, aggregates, quotas
and limits (nova/policies/*.py); the base rules they name are in ``policies.py``."""

from __future__ import annotations

ADMIN = "rule:context_is_admin"
MEMBER = "rule:project_member_or_admin"
READER = "rule:project_reader_or_admin"
ANY = "@"
OWNER_OR_ADMIN = "(rule:context_is_admin) or user_id:%(user_id)s"

RULES: dict[str, str] = {
    "os_compute_api:os-flavor-manage:create": ADMIN,
    "os_compute_api:os-flavor-manage:update": ADMIN,
    "os_compute_api:os-flavor-manage:delete": ADMIN,
    "os_compute_api:os-flavor-extra-specs:index": READER,
    "os_compute_api:os-flavor-extra-specs:show": READER,
    "os_compute_api:os-flavor-extra-specs:create": ADMIN,
    "os_compute_api:os-flavor-extra-specs:update": ADMIN,
    "os_compute_api:os-flavor-extra-specs:delete": ADMIN,
    "os_compute_api:os-flavor-access": ADMIN,
    "os_compute_api:os-flavor-access:add_tenant_access": ADMIN,
    "os_compute_api:os-flavor-access:remove_tenant_access": ADMIN,
    "os_compute_api:os-keypairs:index": OWNER_OR_ADMIN,
    "os_compute_api:os-keypairs:create": OWNER_OR_ADMIN,
    "os_compute_api:os-keypairs:delete": OWNER_OR_ADMIN,
    "os_compute_api:os-keypairs:show": OWNER_OR_ADMIN,
    "os_compute_api:os-server-groups:create": MEMBER,
    "os_compute_api:os-server-groups:delete": MEMBER,
    "os_compute_api:os-server-groups:index": READER,
    "os_compute_api:os-server-groups:index:all_projects": ADMIN,
    "os_compute_api:os-server-groups:show": READER,
    "os_compute_api:os-availability-zone:list": ANY,
    "os_compute_api:os-availability-zone:detail": ADMIN,
    **{f"os_compute_api:os-aggregates:{action}": ADMIN for action in (
        "index", "create", "show", "update", "delete", "add_host", "remove_host", "set_metadata")},
    "compute:aggregates:images": ADMIN,
    "os_compute_api:os-quota-sets:show": READER,
    "os_compute_api:os-quota-sets:detail": READER,
    "os_compute_api:os-quota-sets:defaults": ANY,
    "os_compute_api:os-quota-sets:update": ADMIN,
    "os_compute_api:os-quota-sets:delete": ADMIN,
    "os_compute_api:os-quota-class-sets:show": ADMIN,
    "os_compute_api:os-quota-class-sets:update": ADMIN,
    "os_compute_api:limits": ANY,
    "os_compute_api:limits:other_project": ADMIN,
}
