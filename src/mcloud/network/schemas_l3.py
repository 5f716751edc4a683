"""Request bodies of the L3 resources, the Neutron way (see ``schemas.py``): which attributes
each takes on POST and PUT, registered into CORE's attribute maps, and the converters Neutron
applies to each attribute, with Neutron's messages. The service checks what needs the database
(that a network is external, a group exists...)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from mcloud.network import schemas as s
from mcloud.network.errors_core import NeutronError, invalid_attribute
from mcloud.network.service_secgroups import convert_ethertype, convert_ip_prefix, convert_port, convert_protocol

OWNER = {"tenant_id", "project_id"}

#: {resource: (attributes on POST, attributes on PUT)}, as CORE's ``schemas.ATTRIBUTES``
L3_ATTRIBUTES: dict[str, tuple[set[str], set[str]]] = {
    "router": ({"name", "description", "admin_state_up", "external_gateway_info", "tags", *OWNER},
               {"name", "description", "admin_state_up", "external_gateway_info", "routes"}),
    "floatingip": ({"floating_network_id", "subnet_id", "floating_ip_address", "port_id", "fixed_ip_address",
                    "description", "tags", *OWNER},
                   {"port_id", "fixed_ip_address", "description"}),
    "port_forwarding": ({"external_port", "internal_port", "internal_ip_address", "protocol", "internal_port_id",
                         "description", *OWNER},
                        {"external_port", "internal_port", "internal_ip_address", "protocol", "internal_port_id",
                         "description"}),
    "security_group": ({"name", "description", "stateful", "tags", *OWNER}, {"name", "description", "stateful"}),
    "security_group_rule": ({"security_group_id", "direction", "ethertype", "protocol", "port_range_min",
                             "port_range_max", "remote_ip_prefix", "remote_group_id", "description", *OWNER},
                            set()),
    "policy": ({"name", "description", "shared", "is_default", "tags", *OWNER},
               {"name", "description", "shared", "is_default"}),
    "bandwidth_limit_rule": ({"max_kbps", "max_burst_kbps", "direction", *OWNER},
                             {"max_kbps", "max_burst_kbps", "direction"}),
    "dscp_marking_rule": ({"dscp_mark", *OWNER}, {"dscp_mark"}),
    "trunk": ({"name", "description", "admin_state_up", "port_id", "sub_ports", "tags", *OWNER},
              {"name", "description", "admin_state_up"}),
}
#: attributes each renders but nobody writes
L3_READONLY: dict[str, set[str]] = {
    "router": {"status", "tenant_id", "project_id", "tags"},
    "floatingip": {"floating_network_id", "subnet_id", "floating_ip_address", "router_id", "status", "port_details",
                   "port_forwardings", "tenant_id", "project_id", "tags"},
    "port_forwarding": {"id", "tenant_id", "project_id"},
    "security_group": {"security_group_rules", "shared", "tenant_id", "project_id", "tags"},
    "security_group_rule": {"security_group_id", "direction", "ethertype", "protocol", "port_range_min",
                            "port_range_max", "remote_ip_prefix", "remote_group_id", "normalized_cidr",
                            "belongs_to_default_sg", "remote_address_group_id", "tenant_id", "project_id"},
    "policy": {"rules", "tenant_id", "project_id", "tags"},
    "bandwidth_limit_rule": {"id", "qos_policy_id", "type", "tenant_id", "project_id"},
    "dscp_marking_rule": {"id", "qos_policy_id", "type", "tenant_id", "project_id"},
    "trunk": {"port_id", "sub_ports", "status", "tenant_id", "project_id", "tags"},
}
s.ATTRIBUTES.update(L3_ATTRIBUTES)
s.KNOWN_READONLY.update(L3_READONLY)

Converter = Callable[[Any, str], Any]


def _bool(value: Any, name: str) -> bool:
    return s.to_bool(value, name)


def _name(value: Any, name: str) -> str:
    return s.string(value if value is not None else "", name)


def _uuid(value: Any, name: str) -> str:
    return s.to_uuid(value, name)


def _uuid_or_none(value: Any, name: str) -> str | None:
    return s.to_uuid(value, name, allow_none=True)


def _ip_or_none(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_attribute(name, f"'{value}' is not a valid IP address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise invalid_attribute(name, f"'{value}' is not a valid IP address") from None


def _ip(value: Any, name: str) -> str:
    if value is None:
        raise invalid_attribute(name, "'None' is not a valid IP address")
    return _ip_or_none(value, name)  # type: ignore[return-value]


def _port_number(value: Any, name: str) -> int:
    return s.to_int(value, name, 1, 65535)


def _any(value: Any, name: str) -> Any:
    return value


def _values(*allowed: str) -> Converter:
    def convert(value: Any, name: str) -> Any:
        if value not in allowed:
            raise invalid_attribute(name, f"'{value}' is not in {list(allowed)}")
        return value
    return convert


def _range(low: int, high: int) -> Converter:
    return lambda value, name: s.to_int(value, name, low, high)


COMMON: dict[str, Converter] = {"name": _name, "description": lambda v, n: s.string(v if v is not None else "", n),
                                "tags": lambda v, n: s.tags_list(v)}

CONVERTERS: dict[str, dict[str, Converter]] = {
    "router": {**COMMON, "admin_state_up": _bool, "external_gateway_info": _any, "routes": _any},
    "floatingip": {**COMMON, "floating_network_id": _uuid, "subnet_id": _uuid_or_none,
                   "floating_ip_address": _ip_or_none, "port_id": _uuid_or_none, "fixed_ip_address": _ip_or_none},
    "port_forwarding": {"description": COMMON["description"], "external_port": _port_number,
                        "internal_port": _port_number, "internal_ip_address": _ip,
                        "protocol": _values("tcp", "udp"), "internal_port_id": _uuid},
    "security_group": {**COMMON, "stateful": _bool},
    "security_group_rule": {"description": COMMON["description"], "security_group_id": lambda v, n: s.string(v, n),
                            "direction": _values("ingress", "egress"),
                            "ethertype": lambda v, n: convert_ethertype(v),
                            "protocol": lambda v, n: convert_protocol(v),
                            "port_range_min": lambda v, n: convert_port(v),
                            "port_range_max": lambda v, n: convert_port(v),
                            "remote_ip_prefix": lambda v, n: convert_ip_prefix(v),
                            "remote_group_id": lambda v, n: None if v is None else s.string(v, n)},
    "policy": {**COMMON, "shared": _bool, "is_default": _bool},
    "bandwidth_limit_rule": {"max_kbps": _range(0, 2**31 - 1), "max_burst_kbps": _range(0, 2**31 - 1),
                             "direction": _values("egress", "ingress")},
    "dscp_marking_rule": {"dscp_mark": _range(0, 56)},
    "trunk": {**COMMON, "admin_state_up": _bool, "port_id": _uuid, "sub_ports": _any},
}
#: attributes a POST must carry
REQUIRED: dict[str, tuple[str, ...]] = {
    "floatingip": ("floating_network_id",),
    "port_forwarding": ("external_port", "internal_port", "internal_ip_address", "protocol", "internal_port_id"),
    "security_group_rule": ("security_group_id", "direction"),
    "bandwidth_limit_rule": ("max_kbps",),
    "dscp_marking_rule": ("dscp_mark",),
    "trunk": ("port_id",),
}
#: what Neutron fills in on POST when the attribute is left out
DEFAULTS: dict[str, dict[str, Any]] = {
    "security_group_rule": {"ethertype": "IPv4", "protocol": None, "port_range_min": None, "port_range_max": None,
                            "remote_ip_prefix": None, "remote_group_id": None},
}


def convert(resource: str, body: dict[str, Any], creating: bool, caller_project: str | None = None,
            is_admin: bool = False) -> dict[str, Any]:
    """A checked body: every attribute allowed and converted, required ones present, defaults
    filled in, and (on POST) ``project_id`` resolved."""
    converters = CONVERTERS[resource]
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in OWNER:
            continue
        out[key] = converters[key](value, key)
    if creating:
        for key in REQUIRED.get(resource, ()):
            if key not in out:
                raise NeutronError(400, "HTTPBadRequest",
                                   f"Failed to parse request. Required attribute '{key}' not specified")
        for key, value in DEFAULTS.get(resource, {}).items():
            out.setdefault(key, value)
        out["project_id"] = s.project_of(body, caller_project, is_admin)
    return out


def parse(raw: Any, resource: str, creating: bool, caller_project: str | None = None,
          is_admin: bool = False) -> dict[str, Any]:
    """``{resource: {...}}`` checked and converted."""
    return convert(resource, s.resource_body(raw, resource, creating), creating, caller_project, is_admin)


def parse_many(raw: Any, resource: str, collection: str, caller_project: str | None,
               is_admin: bool) -> tuple[list[dict[str, Any]], bool]:
    """A create's bodies: one, or a bulk ``{collection: [...]}``; and whether it was a bulk."""
    bodies, bulk = s.bulk_bodies(raw, resource, collection)
    return [convert(resource, b, True, caller_project, is_admin) for b in bodies], bulk
