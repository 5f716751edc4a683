"""The network service's default policy rules: Neutron's secure-RBAC defaults, by Neutron's names
(the L3 part's rules, ``policies_l3.L3_RULES``, are merged in).

Targets carry what Neutron's do: ``project_id``/``tenant_id`` of the resource,
``network:project_id``/``network:tenant_id`` of its network, and for the checks Neutron writes as
``field:networks:shared=True`` and ``field:port:device_owner=~^network:`` the booleans ``shared``,
``router:external`` and ``network_device`` (so an operator's rule ``'True':%(shared)s`` works).

Rule names share one namespace with the other services' (one enforcer): CORE registers no
``default``, ``service_api`` (Glance's differ) or ``admin_or_owner`` (Keystone's is user-based); a
rule nobody registered falls back to ``network_admin_or_owner``, which is Neutron's default.
"""

from __future__ import annotations

from mcloud.network.policies_l3 import L3_RULES

ADMIN = "rule:admin_only"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
ADMIN_OR_PROJECT_MEMBER = f"({ADMIN}) or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"({ADMIN}) or ({PROJECT_READER})"
NET_OWNER_MEMBER = "role:member and project_id:%(network:project_id)s"
NET_OWNER_READER = "role:reader and project_id:%(network:project_id)s"
ADMIN_OR_NET_OWNER_MEMBER = f"({ADMIN}) or ({NET_OWNER_MEMBER})"
SERVICE = "role:service"
ADMIN_OR_SERVICE = f"({ADMIN}) or ({SERVICE})"
RESTRICT_WILDCARD = "rule:restrict_wildcard"

#: the resources whose tags /v2.0/{collection}/{id}/tags serves
TAGGED = ("networks", "subnets", "ports", "subnetpools", "routers", "floatingips", "security_groups", "policies",
          "trunks")

CORE_RULES: dict[str, str] = {
    "context_is_admin": "role:admin",
    "admin_only": "rule:context_is_admin",
    "regular_user": "",
    # Neutron's "admin_or_owner" under a name of its own: Keystone's rule of that name is user-based
    "network_admin_or_owner": "rule:context_is_admin or project_id:%(project_id)s",
    "admin_or_network_owner": "rule:context_is_admin or project_id:%(network:project_id)s",
    "network_owner": "project_id:%(network:project_id)s",
    "shared": "'True':%(shared)s",
    "external": "'True':%(router:external)s",
    "network_device": "'True':%(network_device)s",
    "shared_subnetpools": "'True':%(shared)s",
    "shared_address_scopes": "'True':%(shared)s",
    "restrict_wildcard": f"(not '*':%(target_tenant)s) or {ADMIN}",
    # networks
    "create_network": ADMIN_OR_PROJECT_MEMBER,
    "create_network:shared": ADMIN,
    "create_network:router:external": ADMIN,
    "create_network:is_default": ADMIN,
    "create_network:port_security_enabled": ADMIN_OR_PROJECT_MEMBER,
    "create_network:segments": ADMIN,
    "create_network:provider:network_type": ADMIN,
    "create_network:provider:physical_network": ADMIN,
    "create_network:provider:segmentation_id": ADMIN,
    "create_network:mtu": ADMIN_OR_PROJECT_MEMBER,
    "create_network:availability_zone_hints": ADMIN_OR_PROJECT_MEMBER,
    "create_network:dns_domain": ADMIN_OR_PROJECT_MEMBER,
    "create_network:qos_policy_id": ADMIN_OR_PROJECT_MEMBER,
    "get_network": f"{ADMIN_OR_PROJECT_READER} or rule:shared or rule:external or {SERVICE}",
    "get_network:segments": ADMIN,
    "get_network:provider:network_type": ADMIN,
    "get_network:provider:physical_network": ADMIN,
    "get_network:provider:segmentation_id": ADMIN,
    "get_network:router:external": "rule:regular_user",
    "update_network": ADMIN_OR_PROJECT_MEMBER,
    "update_network:segments": ADMIN,
    "update_network:shared": ADMIN,
    "update_network:provider:network_type": ADMIN,
    "update_network:provider:physical_network": ADMIN,
    "update_network:provider:segmentation_id": ADMIN,
    "update_network:router:external": ADMIN,
    "update_network:is_default": ADMIN,
    "update_network:port_security_enabled": ADMIN_OR_PROJECT_MEMBER,
    "update_network:mtu": ADMIN_OR_PROJECT_MEMBER,
    "update_network:dns_domain": ADMIN_OR_PROJECT_MEMBER,
    "update_network:qos_policy_id": ADMIN_OR_PROJECT_MEMBER,
    "delete_network": ADMIN_OR_PROJECT_MEMBER,
    # subnets
    "create_subnet": f"{ADMIN_OR_PROJECT_MEMBER} or ({NET_OWNER_MEMBER})",
    "create_subnet:segment_id": ADMIN,
    "create_subnet:service_types": ADMIN,
    "get_subnet": f"{ADMIN_OR_PROJECT_READER} or ({NET_OWNER_READER}) or rule:shared",
    "get_subnet:segment_id": ADMIN,
    "update_subnet": f"{ADMIN_OR_PROJECT_MEMBER} or ({NET_OWNER_MEMBER})",
    "update_subnet:segment_id": ADMIN,
    "update_subnet:service_types": ADMIN,
    "delete_subnet": f"{ADMIN_OR_PROJECT_MEMBER} or ({NET_OWNER_MEMBER})",
    # subnet pools
    "create_subnetpool": ADMIN_OR_PROJECT_MEMBER,
    "create_subnetpool:shared": ADMIN,
    "create_subnetpool:is_default": ADMIN,
    "get_subnetpool": f"{ADMIN_OR_PROJECT_READER} or rule:shared_subnetpools",
    "update_subnetpool": ADMIN_OR_PROJECT_MEMBER,
    "update_subnetpool:is_default": ADMIN,
    "delete_subnetpool": ADMIN_OR_PROJECT_MEMBER,
    "onboard_network_subnets": ADMIN_OR_PROJECT_MEMBER,
    "add_prefixes": ADMIN_OR_PROJECT_MEMBER,
    "remove_prefixes": ADMIN_OR_PROJECT_MEMBER,
    # address scopes
    "create_address_scope": ADMIN_OR_PROJECT_MEMBER,
    "create_address_scope:shared": ADMIN,
    "get_address_scope": f"{ADMIN_OR_PROJECT_READER} or rule:shared_address_scopes",
    "update_address_scope": ADMIN_OR_PROJECT_MEMBER,
    "update_address_scope:shared": ADMIN,
    "delete_address_scope": ADMIN_OR_PROJECT_MEMBER,
    # ports
    "create_port": f"{ADMIN_OR_PROJECT_MEMBER} or {SERVICE}",
    "create_port:device_owner": f"not rule:network_device or ({ADMIN_OR_NET_OWNER_MEMBER}) or {SERVICE}",
    "create_port:mac_address": f"{ADMIN_OR_NET_OWNER_MEMBER} or {SERVICE}",
    "create_port:fixed_ips": f"{ADMIN_OR_NET_OWNER_MEMBER} or rule:shared or {SERVICE}",
    "create_port:fixed_ips:ip_address": f"{ADMIN_OR_NET_OWNER_MEMBER} or {SERVICE}",
    "create_port:fixed_ips:subnet_id": f"{ADMIN_OR_NET_OWNER_MEMBER} or rule:shared or {SERVICE}",
    "create_port:port_security_enabled": f"{ADMIN_OR_NET_OWNER_MEMBER} or {SERVICE}",
    "create_port:binding:host_id": ADMIN_OR_SERVICE,
    "create_port:binding:profile": ADMIN_OR_SERVICE,
    "create_port:binding:vnic_type": f"{ADMIN_OR_PROJECT_MEMBER} or {SERVICE}",
    "create_port:allowed_address_pairs": f"{ADMIN_OR_NET_OWNER_MEMBER}",
    "create_port:allowed_address_pairs:mac_address": f"{ADMIN_OR_NET_OWNER_MEMBER}",
    "create_port:allowed_address_pairs:ip_address": f"{ADMIN_OR_NET_OWNER_MEMBER}",
    "get_port": f"{ADMIN_OR_PROJECT_READER} or ({NET_OWNER_READER}) or {SERVICE}",
    "get_port:binding:vif_type": ADMIN_OR_SERVICE,
    "get_port:binding:vif_details": ADMIN_OR_SERVICE,
    "get_port:binding:host_id": ADMIN_OR_SERVICE,
    "get_port:binding:profile": ADMIN_OR_SERVICE,
    "get_port:resource_request": ADMIN_OR_SERVICE,
    "update_port": f"{ADMIN_OR_PROJECT_MEMBER} or {SERVICE}",
    "update_port:device_owner": f"not rule:network_device or ({ADMIN_OR_NET_OWNER_MEMBER}) or {SERVICE}",
    "update_port:mac_address": ADMIN_OR_SERVICE,
    "update_port:fixed_ips": f"{ADMIN_OR_NET_OWNER_MEMBER} or {SERVICE}",
    "update_port:fixed_ips:ip_address": f"{ADMIN_OR_NET_OWNER_MEMBER} or {SERVICE}",
    "update_port:fixed_ips:subnet_id": f"{ADMIN_OR_NET_OWNER_MEMBER} or rule:shared or {SERVICE}",
    "update_port:port_security_enabled": f"{ADMIN_OR_NET_OWNER_MEMBER} or {SERVICE}",
    "update_port:binding:host_id": ADMIN_OR_SERVICE,
    "update_port:binding:profile": ADMIN_OR_SERVICE,
    "update_port:binding:vnic_type": f"{ADMIN_OR_PROJECT_MEMBER} or {SERVICE}",
    "update_port:allowed_address_pairs": ADMIN_OR_NET_OWNER_MEMBER,
    "update_port:allowed_address_pairs:mac_address": ADMIN_OR_NET_OWNER_MEMBER,
    "update_port:allowed_address_pairs:ip_address": ADMIN_OR_NET_OWNER_MEMBER,
    "update_port:data_plane_status": f"{ADMIN} or role:data_plane_integrator",
    "delete_port": f"{ADMIN_OR_PROJECT_MEMBER} or ({NET_OWNER_MEMBER}) or {SERVICE}",
    # RBAC policies
    "create_rbac_policy": ADMIN_OR_PROJECT_MEMBER,
    "create_rbac_policy:target_tenant": f"{RESTRICT_WILDCARD} and ({ADMIN_OR_PROJECT_MEMBER})",
    "create_rbac_policy:target_project": f"{RESTRICT_WILDCARD} and ({ADMIN_OR_PROJECT_MEMBER})",
    "update_rbac_policy": ADMIN_OR_PROJECT_MEMBER,
    "update_rbac_policy:target_tenant": f"{RESTRICT_WILDCARD} and ({ADMIN_OR_PROJECT_MEMBER})",
    "update_rbac_policy:target_project": f"{RESTRICT_WILDCARD} and ({ADMIN_OR_PROJECT_MEMBER})",
    "get_rbac_policy": ADMIN_OR_PROJECT_READER,
    "delete_rbac_policy": ADMIN_OR_PROJECT_MEMBER,
    # segments, quotas, availability zones
    "create_segment": ADMIN,
    "get_segment": ADMIN,
    "update_segment": ADMIN,
    "delete_segment": ADMIN,
    "get_quota": ADMIN_OR_PROJECT_READER,
    "update_quota": ADMIN,
    "delete_quota": ADMIN,
    "get_availability_zone": "rule:regular_user",
    "get_network_ip_availability": ADMIN,
}

for _collection in TAGGED:
    _reader = ADMIN_OR_PROJECT_READER + (" or rule:shared or rule:external" if _collection == "networks" else "")
    CORE_RULES[f"get_{_collection}_tags"] = _reader
    for _action in ("create", "update", "delete"):
        CORE_RULES[f"{_action}_{_collection}_tags"] = ADMIN_OR_PROJECT_MEMBER

RULES: dict[str, str] = {**CORE_RULES, **L3_RULES}
