"""Neutron's secure-RBAC default rules for routers, floating IPs and port forwardings, security
groups and rules, QoS and trunks, by Neutron's names (merged into ``policies.RULES`` by the
network service), so that an operator's Neutron policy file applies unchanged.

Neutron's ``field:<collection>:<attr>=<value>`` checks are written in the check language
mCloud's engine speaks: ``'True':%(shared)s`` tests the target's ``shared``. The base rules
(``admin_only``, ``context_is_admin``...) are CORE's; ``sg_owner`` and ``ext_parent_owner`` are here.
Targets: the resource's own attributes (``project_id``...); for a rule of a QoS policy or a port
forwarding of a floating IP, ``ext_parent:project_id`` names the parent's project; for a security
group rule, ``security_group:project_id`` the group's.
"""

from __future__ import annotations

L3_RULES: dict[str, str] = {
    # Neutron's base rules that only L3 resources use
    'sg_owner': 'project_id:%(security_group:project_id)s',
    'ext_parent_owner': 'project_id:%(ext_parent:project_id)s',
    'admin_or_ext_parent_owner': 'rule:context_is_admin or project_id:%(ext_parent:project_id)s',
    'create_router': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_router:external_gateway_info': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_router:external_gateway_info:network_id': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_router:external_gateway_info:enable_snat': 'rule:admin_only',
    'create_router:external_gateway_info:external_fixed_ips': 'rule:admin_only',
    'create_router:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'get_router': '(rule:admin_only) or (role:reader and project_id:%(project_id)s)',
    'get_router:tags': '(rule:admin_only) or (role:reader and project_id:%(project_id)s)',
    'update_router': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'update_router:external_gateway_info': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'update_router:external_gateway_info:network_id': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'update_router:external_gateway_info:enable_snat': 'rule:admin_only',
    'update_router:external_gateway_info:external_fixed_ips': 'rule:admin_only',
    'update_router:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'delete_router': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'delete_router:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'add_router_interface': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'remove_router_interface': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'add_extraroutes': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'remove_extraroutes': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_floatingip': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_floatingip:floating_ip_address': '(rule:admin_only) or (role:manager and project_id:%(project_id)s)',
    'create_floatingip:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'get_floatingip': '(rule:admin_only) or (role:reader and project_id:%(project_id)s)',
    'get_floatingip:tags': '(rule:admin_only) or (role:reader and project_id:%(project_id)s)',
    'update_floatingip': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'update_floatingip:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'delete_floatingip': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'delete_floatingip:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_floatingip_port_forwarding': '(rule:admin_only) or (role:member and rule:ext_parent_owner)',
    'get_floatingip_port_forwarding': '(rule:admin_only) or (role:reader and rule:ext_parent_owner)',
    'update_floatingip_port_forwarding': '(rule:admin_only) or (role:member and rule:ext_parent_owner)',
    'delete_floatingip_port_forwarding': '(rule:admin_only) or (role:member and rule:ext_parent_owner)',
    'admin_or_sg_owner': 'rule:context_is_admin or project_id:%(security_group:project_id)s',
    'admin_owner_or_sg_owner': 'rule:owner or rule:admin_or_sg_owner',
    'shared_security_group': "'True':%(shared)s",
    'rule_default_sg': "'True':%(belongs_to_default_sg)s",
    'create_security_group': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_security_group:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'get_security_group': '(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_security_group',
    'get_security_group:tags': '(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_security_group',
    'update_security_group': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'update_security_group:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'delete_security_group': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'delete_security_group:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_security_group_rule': '(rule:admin_only) or (role:member and rule:sg_owner)',
    'get_security_group_rule': '(rule:admin_only) or (role:reader and rule:sg_owner)',
    'delete_security_group_rule': '(rule:admin_only) or (role:member and rule:sg_owner)',
    'shared_qos_policy': "'True':%(shared)s",
    'get_policy': '(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_qos_policy',
    'get_policy:tags': '(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_qos_policy',
    'create_policy': '(rule:admin_only) or (role:manager and project_id:%(project_id)s)',
    'create_policy:tags': '(rule:admin_only) or (role:manager and project_id:%(project_id)s)',
    'update_policy': '(rule:admin_only) or (role:manager and project_id:%(project_id)s)',
    'update_policy:tags': '(rule:admin_only) or (role:manager and project_id:%(project_id)s)',
    'delete_policy': '(rule:admin_only) or (role:manager and project_id:%(project_id)s)',
    'delete_policy:tags': '(rule:admin_only) or (role:manager and project_id:%(project_id)s)',
    'get_rule_type': 'role:reader',
    'get_policy_bandwidth_limit_rule': '(rule:admin_only) or (role:reader and rule:ext_parent_owner)',
    'create_policy_bandwidth_limit_rule': '(rule:admin_only) or (role:manager and rule:ext_parent_owner)',
    'update_policy_bandwidth_limit_rule': '(rule:admin_only) or (role:manager and rule:ext_parent_owner)',
    'delete_policy_bandwidth_limit_rule': '(rule:admin_only) or (role:manager and rule:ext_parent_owner)',
    'get_policy_dscp_marking_rule': '(rule:admin_only) or (role:reader and rule:ext_parent_owner)',
    'create_policy_dscp_marking_rule': '(rule:admin_only) or (role:manager and rule:ext_parent_owner)',
    'update_policy_dscp_marking_rule': '(rule:admin_only) or (role:manager and rule:ext_parent_owner)',
    'delete_policy_dscp_marking_rule': '(rule:admin_only) or (role:manager and rule:ext_parent_owner)',
    'create_trunk': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'create_trunk:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'get_trunk': '(rule:admin_only) or (role:reader and project_id:%(project_id)s)',
    'get_trunk:tags': '(rule:admin_only) or (role:reader and project_id:%(project_id)s)',
    'update_trunk': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'update_trunk:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'delete_trunk': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'delete_trunk:tags': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'get_subports': '(rule:admin_only) or (role:reader and project_id:%(project_id)s)',
    'add_subports': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
    'remove_subports': '(rule:admin_only) or (role:member and project_id:%(project_id)s)',
}

#: Neutron gives every one of these rules scope_types=['project']
L3_SCOPE_TYPES: dict[str, tuple[str, ...]] = {
    name: ("project",) for name in L3_RULES
    if name not in ("sg_owner", "ext_parent_owner", "admin_or_ext_parent_owner", "admin_or_sg_owner", "admin_owner_or_sg_owner", "shared_security_group", "rule_default_sg",
                    "shared_qos_policy")}
