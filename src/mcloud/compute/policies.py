"""Nova's policy defaults by name (nova/policies/*.py, secure RBAC: project reader/member/manager
or admin), so an operator's Nova policy file applies unchanged.

``RULES`` holds the base rules and the servers part's rules, merged with every other part's
``RULES`` (``policies_resources``, ``policies_hosts``...: any ``mcloud.compute.policies_*`` module
listed in ``PARTS``) when this module is imported. ``SCOPE_TYPES``: Nova's rules are for
project-scoped tokens (``scope_types=['project']``, enforced).
"""

from __future__ import annotations

import importlib
from typing import Any

ADMIN = "rule:context_is_admin"
MANAGER = "rule:project_manager_or_admin"
MEMBER = "rule:project_member_or_admin"
READER = "rule:project_reader_or_admin"
ANY = "@"

BASE: dict[str, str] = {
    "context_is_admin": "role:admin",
    "admin_or_owner": "is_admin:True or project_id:%(project_id)s",
    "admin_api": "is_admin:True",
    "project_manager_api": "role:manager and project_id:%(project_id)s",
    "project_member_api": "role:member and project_id:%(project_id)s",
    "project_reader_api": "role:reader and project_id:%(project_id)s",
    "service_api": "role:service",
    "project_manager_or_admin": "rule:project_manager_api or rule:context_is_admin",
    "project_member_or_admin": "rule:project_member_api or rule:context_is_admin",
    "project_reader_or_admin": "rule:project_reader_api or rule:context_is_admin",
    "service_or_admin": "rule:service_api or rule:context_is_admin",
}

S = "os_compute_api:servers:"
SERVERS: dict[str, str] = {
    S + "index": READER, S + "detail": READER,
    S + "index:get_all_tenants": ADMIN, S + "detail:get_all_tenants": ADMIN,
    S + "allow_all_filters": ADMIN,
    S + "show": READER, S + "show:flavor-extra-specs": READER,
    S + "show:host_status": ADMIN, S + "show:host_status:unknown-only": ADMIN,
    S + "create": MEMBER, S + "create:forced_host": ADMIN, "compute:servers:create:requested_destination": ADMIN,
    S + "create:attach_volume": MEMBER, S + "create:attach_network": MEMBER, S + "create:trusted_certs": MEMBER,
    S + "create:zero_disk_flavor": ADMIN, "network:attach_external_network": ADMIN,
    S + "delete": MEMBER, S + "update": MEMBER,
    S + "confirm_resize": MEMBER, S + "revert_resize": MEMBER, S + "reboot": MEMBER, S + "resize": MEMBER,
    "compute:servers:resize:cross_cell": "!",
    S + "rebuild": MEMBER, S + "rebuild:trusted_certs": MEMBER,
    S + "create_image": MEMBER, S + "create_image:allow_volume_backed": MEMBER,
    S + "start": MEMBER, S + "stop": MEMBER, S + "trigger_crash_dump": MEMBER,
    S + "migrations:show": ADMIN, S + "migrations:force_complete": MANAGER, S + "migrations:delete": MANAGER,
    S + "migrations:index": MANAGER, S + "migrations:index:host": ADMIN,
    "os_compute_api:os-extended-server-attributes": ADMIN,
    "os_compute_api:os-admin-actions:reset_state": ADMIN,
    "os_compute_api:os-admin-actions:inject_network_info": ADMIN,
    "os_compute_api:os-admin-password": MEMBER,
    "os_compute_api:os-attach-interfaces:list": READER, "os_compute_api:os-attach-interfaces:show": READER,
    "os_compute_api:os-attach-interfaces:create": MEMBER, "os_compute_api:os-attach-interfaces:delete": MEMBER,
    "os_compute_api:os-console-output": MEMBER,
    "os_compute_api:os-create-backup": MEMBER,
    "os_compute_api:os-deferred-delete:restore": MEMBER, "os_compute_api:os-deferred-delete:force": MEMBER,
    "os_compute_api:os-evacuate": ADMIN,
    "os_compute_api:os-instance-actions:events:details": ADMIN,
    "os_compute_api:os-instance-actions:events": ADMIN,
    "os_compute_api:os-instance-actions:list": READER, "os_compute_api:os-instance-actions:show": READER,
    "os_compute_api:ips:show": READER, "os_compute_api:ips:index": READER,
    "os_compute_api:os-lock-server:lock": MEMBER, "os_compute_api:os-lock-server:unlock": MEMBER,
    "os_compute_api:os-lock-server:unlock:unlock_override": ADMIN,
    "os_compute_api:os-migrate-server:migrate": MANAGER, "os_compute_api:os-migrate-server:migrate:host": ADMIN,
    "os_compute_api:os-migrate-server:migrate_live": MANAGER,
    "os_compute_api:os-migrate-server:migrate_live:host": ADMIN,
    "os_compute_api:os-migrations:index": MANAGER, "os_compute_api:os-migrations:index:all_projects": ADMIN,
    "os_compute_api:os-migrations:index:host": ADMIN,
    "os_compute_api:os-pause-server:pause": MEMBER, "os_compute_api:os-pause-server:unpause": MEMBER,
    "os_compute_api:os-remote-consoles": MEMBER,
    "os_compute_api:os-rescue": MEMBER, "os_compute_api:os-unrescue": MEMBER,
    "os_compute_api:os-security-groups:list": READER, "os_compute_api:os-security-groups:add": MEMBER,
    "os_compute_api:os-security-groups:remove": MEMBER,
    # the deprecated proxies (up to 2.35): security groups and rules, floating IPs, networks
    "os_compute_api:os-security-groups:get": READER, "os_compute_api:os-security-groups:show": READER,
    "os_compute_api:os-security-groups:create": MEMBER, "os_compute_api:os-security-groups:update": MEMBER,
    "os_compute_api:os-security-groups:delete": MEMBER, "os_compute_api:os-security-groups:rule:create": MEMBER,
    "os_compute_api:os-security-groups:rule:delete": MEMBER,
    "os_compute_api:os-floating-ips:list": READER, "os_compute_api:os-floating-ips:show": READER,
    "os_compute_api:os-floating-ips:create": MEMBER, "os_compute_api:os-floating-ips:delete": MEMBER,
    "os_compute_api:os-floating-ips:add": MEMBER, "os_compute_api:os-floating-ips:remove": MEMBER,
    "os_compute_api:os-floating-ip-pools": ANY,
    "os_compute_api:os-networks:list": READER, "os_compute_api:os-networks:show": READER,
    "os_compute_api:os-tenant-networks:list": READER, "os_compute_api:os-tenant-networks:show": READER,
    "os_compute_api:extensions": ANY,
    "os_compute_api:os-hosts:list": ADMIN, "os_compute_api:os-hosts:show": ADMIN,
    "os_compute_api:os-hosts:update": ADMIN, "os_compute_api:os-hosts:reboot": ADMIN,
    "os_compute_api:os-hosts:shutdown": ADMIN, "os_compute_api:os-hosts:start": ADMIN,
    "os_compute_api:os-instance-usage-audit-log:list": ADMIN, "os_compute_api:os-instance-usage-audit-log:show": ADMIN,
    "os_compute_api:os-server-external-events:create": "rule:service_or_admin",
    "os_compute_api:os-server-diagnostics": ADMIN,
    "os_compute_api:server-metadata:index": READER, "os_compute_api:server-metadata:show": READER,
    "os_compute_api:server-metadata:create": MEMBER, "os_compute_api:server-metadata:update_all": MEMBER,
    "os_compute_api:server-metadata:update": MEMBER, "os_compute_api:server-metadata:delete": MEMBER,
    "os_compute_api:os-server-password:show": READER, "os_compute_api:os-server-password:clear": MEMBER,
    "os_compute_api:os-server-tags:delete_all": MEMBER, "os_compute_api:os-server-tags:index": READER,
    "os_compute_api:os-server-tags:update_all": MEMBER, "os_compute_api:os-server-tags:delete": MEMBER,
    "os_compute_api:os-server-tags:update": MEMBER, "os_compute_api:os-server-tags:show": READER,
    "compute:server:topology:index": READER, "compute:server:topology:host:index": ADMIN,
    "os_compute_api:os-shelve:shelve": MEMBER, "os_compute_api:os-shelve:unshelve": MEMBER,
    "os_compute_api:os-shelve:unshelve_to_host": ADMIN, "os_compute_api:os-shelve:shelve_offload": ADMIN,
    "os_compute_api:os-simple-tenant-usage:show": READER, "os_compute_api:os-simple-tenant-usage:list": ADMIN,
    "os_compute_api:os-suspend-server:resume": MEMBER, "os_compute_api:os-suspend-server:suspend": MEMBER,
}

#: the other parts' policy modules, merged when present (a part not landed yet is skipped)
PARTS = ("mcloud.compute.policies_resources", "mcloud.compute.policies_hosts", "mcloud.compute.policies_agent",
         "mcloud.compute.policies_volumes")


def optional_modules(names: tuple[str, ...]) -> list[Any]:
    """The modules of ``names`` that exist (a part that has not landed yet is skipped; an import
    error inside an existing module is raised)."""
    out = []
    for name in names:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return out


def _merged() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    rules = {**BASE, **SERVERS}
    scopes: dict[str, tuple[str, ...]] = {name: ("project",) for name in SERVERS}
    for module in optional_modules(PARTS):
        for rule, check in getattr(module, "RULES", {}).items():
            if rules.get(rule, check) != check:
                raise ValueError(f"compute policy rule {rule!r} of {module.__name__} differs from the one registered before")
            rules[rule] = check
        scopes.update(getattr(module, "SCOPE_TYPES", {}))
    return rules, scopes


RULES, SCOPE_TYPES = _merged()
