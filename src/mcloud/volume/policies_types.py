"""Cinder's default rules for types, extra specs, type access, default types, QoS specs, group
types, quotas, quota classes, limits, services, hosts, pools, capabilities, zones and messages
(cinder/policies/*.py), by Cinder's names. The base rules they name (``admin_api``,
``system_reader_or_project_reader``, ``system_admin_or_project_member``,
``system_or_domain_or_project_admin``) are defined in ``policies.py``, which merges these."""

ADMIN = "rule:admin_api"
READER = "rule:system_reader_or_project_reader"
MEMBER = "rule:system_admin_or_project_member"

RULES: dict[str, str] = {
    # volume types
    "volume_extension:types_manage": ADMIN,
    "volume_extension:type_create": ADMIN,
    "volume_extension:type_update": ADMIN,
    "volume_extension:type_delete": ADMIN,
    "volume_extension:type_get": READER,
    "volume_extension:type_get_all": READER,
    "volume_extension:access_types_qos_specs_id": ADMIN,
    "volume_extension:access_types_extra_specs": READER,
    # extra specs
    "volume_extension:types_extra_specs:index": READER,
    "volume_extension:types_extra_specs:show": READER,
    "volume_extension:types_extra_specs:create": ADMIN,
    "volume_extension:types_extra_specs:update": ADMIN,
    "volume_extension:types_extra_specs:delete": ADMIN,
    "volume_extension:types_extra_specs:read_sensitive": ADMIN,
    # type access
    "volume_extension:volume_type_access": MEMBER,
    "volume_extension:volume_type_access:addProjectAccess": ADMIN,
    "volume_extension:volume_type_access:removeProjectAccess": ADMIN,
    "volume_extension:volume_type_access:get_all_for_type": ADMIN,
    # default types (3.62)
    "volume_extension:default_set_or_update": ADMIN,
    "volume_extension:default_get": ADMIN,
    "volume_extension:default_get_all": ADMIN,
    "volume_extension:default_unset": ADMIN,
    # QoS specs
    "volume_extension:qos_specs_manage:get_all": ADMIN,
    "volume_extension:qos_specs_manage:get": ADMIN,
    "volume_extension:qos_specs_manage:create": ADMIN,
    "volume_extension:qos_specs_manage:update": ADMIN,
    "volume_extension:qos_specs_manage:delete": ADMIN,
    # group types (3.11)
    "group:group_types_manage": ADMIN,
    "group:group_types:create": ADMIN,
    "group:group_types:update": ADMIN,
    "group:group_types:delete": ADMIN,
    "group:access_group_types_specs": ADMIN,
    "group:group_types_specs": ADMIN,
    "group:group_types_specs:get": ADMIN,
    "group:group_types_specs:get_all": ADMIN,
    "group:group_types_specs:create": ADMIN,
    "group:group_types_specs:update": ADMIN,
    "group:group_types_specs:delete": ADMIN,
    # quotas, quota classes, limits
    "volume_extension:quotas:show": READER,
    "volume_extension:quotas:update": ADMIN,
    "volume_extension:quotas:delete": ADMIN,
    "volume_extension:quota_classes": ADMIN,
    "volume_extension:quota_classes:get": ADMIN,
    "volume_extension:quota_classes:update": ADMIN,
    "limits_extension:used_limits": READER,
    # services, hosts, pools, capabilities, zones
    "volume_extension:services:index": ADMIN,
    "volume_extension:services:update": ADMIN,
    "volume:freeze_host": ADMIN,
    "volume:thaw_host": ADMIN,
    "volume:failover_host": ADMIN,
    "volume_extension:hosts": ADMIN,
    "scheduler_extension:scheduler_stats:get_pools": ADMIN,
    "volume_extension:capabilities": ADMIN,
    # user messages (3.3)
    "message:get_all": READER,
    "message:get": READER,
    "message:delete": MEMBER,
}
