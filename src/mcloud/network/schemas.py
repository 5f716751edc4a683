"""Request bodies the Neutron way: which attributes each resource takes on POST and PUT, and
the converters and validators Neutron applies to them, with Neutron's messages.

Neutron checks bodies against attribute maps rather than JSON schemas; a client (and Tempest)
sees "Unrecognized attribute(s) 'x'", "Cannot update read-only attribute x" or "Invalid input
for x. Reason: ..." — so mCloud says the same.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from mcloud.network.errors_core import bad_request, invalid_attribute

STATUS_ACTIVE = "ACTIVE"
STATUS_DOWN = "DOWN"
NAME_MAX = 255
DESCRIPTION_MAX = 255
#: read on every resource, never written
STANDARD_READONLY = {"id", "created_at", "updated_at", "revision_number", "status"}

#: attributes each resource accepts: {resource: (on POST, on PUT)}. The L3 attributes on ports and
#: networks (security_groups, qos_policy_id) are stored by the L3 part's hooks.
ATTRIBUTES: dict[str, tuple[set[str], set[str]]] = {
    "network": ({"name", "description", "admin_state_up", "shared", "router:external", "provider:network_type",
                 "provider:physical_network", "provider:segmentation_id", "mtu", "port_security_enabled",
                 "dns_domain", "availability_zone_hints", "qos_policy_id", "tenant_id", "project_id", "tags",
                 "is_default", "segments"},
                {"name", "description", "admin_state_up", "shared", "router:external", "mtu",
                 "port_security_enabled", "dns_domain", "qos_policy_id", "provider:network_type",
                 "provider:physical_network", "provider:segmentation_id", "is_default"}),
    "subnet": ({"name", "description", "network_id", "ip_version", "cidr", "prefixlen", "subnetpool_id",
                "use_default_subnetpool", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes",
                "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "segment_id", "service_types",
                "dns_publish_fixed_ip", "tenant_id", "project_id", "tags"},
               {"name", "description", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes",
                "enable_dhcp", "segment_id", "service_types", "dns_publish_fixed_ip"}),
    "port": ({"name", "description", "network_id", "admin_state_up", "mac_address", "fixed_ips", "device_id",
              "device_owner", "tenant_id", "project_id", "security_groups", "port_security_enabled",
              "allowed_address_pairs", "extra_dhcp_opts", "binding:host_id", "binding:vnic_type",
              "binding:profile", "dns_name", "qos_policy_id", "tags"},
             {"name", "description", "admin_state_up", "mac_address", "fixed_ips", "device_id", "device_owner",
              "security_groups", "port_security_enabled", "allowed_address_pairs", "extra_dhcp_opts",
              "binding:host_id", "binding:vnic_type", "binding:profile", "dns_name", "qos_policy_id"}),
    "subnetpool": ({"name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen",
                    "shared", "is_default", "default_quota", "address_scope_id", "tenant_id", "project_id",
                    "tags"},
                   {"name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen",
                    "is_default", "default_quota", "address_scope_id"}),
    "address_scope": ({"name", "ip_version", "shared", "tenant_id", "project_id"}, {"name", "shared"}),
    "rbac_policy": ({"object_type", "object_id", "action", "target_tenant", "target_project", "tenant_id",
                     "project_id"}, {"target_tenant", "target_project"}),
    "segment": ({"network_id", "name", "description", "network_type", "physical_network", "segmentation_id",
                 "tenant_id", "project_id"}, {"name", "description"}),
}
#: what each resource renders (for the "Cannot update read-only attribute" message)
KNOWN_READONLY: dict[str, set[str]] = {
    "network": {"subnets", "status", "availability_zones", "ipv4_address_scope", "ipv6_address_scope",
                "l2_adjacency", "tenant_id", "project_id"},
    "subnet": {"network_id", "ip_version", "cidr", "subnetpool_id", "ipv6_ra_mode", "ipv6_address_mode",
               "tenant_id", "project_id"},
    "port": {"network_id", "status", "binding:vif_type", "binding:vif_details", "dns_assignment", "tenant_id",
             "project_id"},
    "subnetpool": {"ip_version", "shared", "tenant_id", "project_id"},
    "address_scope": {"ip_version", "tenant_id", "project_id"},
    "rbac_policy": {"object_type", "object_id", "action", "tenant_id", "project_id"},
    "segment": {"network_id", "network_type", "physical_network", "segmentation_id"},
}


def resource_body(raw: Any, resource: str, creating: bool) -> dict[str, Any]:
    """The attributes of ``{resource: {...}}``, checked against what the resource takes."""
    if not isinstance(raw, dict) or not raw:
        raise bad_request("Resource body required")
    if resource not in raw or len(raw) != 1:
        raise bad_request(f"Unable to find '{resource}' in request body")
    return resource_attrs(raw[resource], resource, creating)


def resource_attrs(body: Any, resource: str, creating: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"Invalid input for {resource}. Reason: the {resource} body must be an object.")
    on_post, on_put = ATTRIBUTES[resource]
    allowed = on_post if creating else on_put
    unknown = [k for k in body if k not in allowed]
    if unknown:
        readonly = [k for k in unknown if k in on_post or k in KNOWN_READONLY[resource] or k in STANDARD_READONLY]
        if readonly and creating:
            raise bad_request(f"Attribute '{readonly[0]}' not allowed in POST")
        if readonly:
            raise bad_request(f"Cannot update read-only attribute {readonly[0]}")
        raise bad_request(f"Unrecognized attribute(s) '{', '.join(sorted(map(str, unknown)))}'")
    return dict(body)


def bulk_bodies(raw: Any, resource: str, collection: str) -> tuple[list[dict[str, Any]], bool]:
    """The bodies of a create: ``{resource: {...}}`` or a bulk ``{collection: [{...}, ...]}``."""
    if isinstance(raw, dict) and collection in raw and len(raw) == 1:
        items = raw[collection]
        if not isinstance(items, list) or not items:
            raise bad_request("Resources required")
        return [resource_attrs(item, resource, True) for item in items], True
    return [resource_body(raw, resource, True)], False


def required(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise bad_request(f"Failed to parse request. Required attribute '{name}' not specified")
    return body[name]


# ---------------------------------------------------------------------- converters (neutron-lib's)


def to_bool(value: Any, attribute: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise invalid_attribute(attribute, f"'{value}' cannot be converted to boolean")


def to_int(value: Any, attribute: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise invalid_attribute(attribute, f"'{value}' is not an integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise invalid_attribute(attribute, f"'{value}' is not an integer") from None
    if not isinstance(value, int):
        raise invalid_attribute(attribute, f"'{value}' is not an integer")
    if low is not None and value < low:
        raise invalid_attribute(attribute, f"'{value}' is too small - must be at least '{low}'")
    if high is not None and value > high:
        raise invalid_attribute(attribute, f"'{value}' is too large - must be no larger than '{high}'")
    return value


def string(value: Any, attribute: str, max_len: int = NAME_MAX, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise invalid_attribute(attribute, f"'{value}' is not a valid string")
    if len(value) > max_len:
        raise invalid_attribute(attribute, f"'{value}' exceeds maximum length of {max_len}")
    return value


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


def to_uuid(value: Any, attribute: str, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if not is_uuid(value):
        raise invalid_attribute(attribute, f"'{value}' is not a valid UUID")
    return str(uuid.UUID(value))


def string_list(value: Any, attribute: str, max_len: int = NAME_MAX) -> list[str]:
    if not isinstance(value, list):
        raise invalid_attribute(attribute, f"'{value}' is not a list")
    for item in value:
        string(item, attribute, max_len)
    if len(set(value)) != len(value):
        raise invalid_attribute(attribute, f"Duplicate items in the list: '{', '.join(value)}'")
    return list(value)


def dict_list(value: Any, attribute: str, keys: Iterable[str], required_keys: Iterable[str] = ()) -> list[dict]:
    if not isinstance(value, list):
        raise invalid_attribute(attribute, f"'{value}' is not a list")
    allowed = set(keys)
    for item in value:
        if not isinstance(item, dict):
            raise invalid_attribute(attribute, f"'{item}' is not a dictionary")
        extra = set(item) - allowed
        if extra:
            raise invalid_attribute(attribute, f"Unexpected keys supplied: {', '.join(sorted(map(str, extra)))}")
        missing = [k for k in required_keys if k not in item]
        if missing:
            raise invalid_attribute(attribute, f"Validation of dictionary's keys failed. Expected keys: "
                                               f"{set(required_keys)} Provided keys: {set(item)}")
    return value


def project_of(body: dict[str, Any], caller_project: str | None, is_admin: bool) -> str:
    """The project a new resource belongs to: the caller's, or (admin only) the one named."""
    named = body.get("project_id", body.get("tenant_id"))
    if "project_id" in body and "tenant_id" in body and body["project_id"] != body["tenant_id"]:
        raise bad_request("'project_id' and 'tenant_id' do not match")
    if named is not None:
        string(named, "project_id")
        if named != caller_project and not is_admin:
            raise bad_request("Specifying 'project_id' or 'tenant_id' other than the authenticated project in "
                              "request requires admin privileges")
        return named
    if not caller_project:
        raise bad_request("Failed to parse request. Required attribute 'project_id' not specified")
    return caller_project


def tags_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise invalid_attribute("tags", f"'{value}' is not a list")
    for tag in value:
        check_tag(tag)
    return sorted(set(value))


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > 255 or "," in tag or tag != tag.strip():
        raise bad_request(f"Invalid input for operation: '{tag}' is not a valid tag.", )
    return tag
