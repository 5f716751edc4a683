"""Request bodies of flavors, keypairs, server groups, aggregates and quotas: Nova's JSON schemas
(nova/api/openstack/compute/schemas/*), checked with ``schemas.validate``."""

from __future__ import annotations

import copy
from typing import Any

from mcloud.compute.schemas import BOOLEAN, NAME, NAME_WITH_SPACES

MAX_INT = 0x7FFFFFFF


def _obj(properties: dict[str, Any], required: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False, **kw}
    if required:
        out["required"] = required
    return out


def _wrap(key: str, inner: dict[str, Any]) -> dict[str, Any]:
    return _obj({key: inner}, [key])


# ---------------------------------------------------------------------- flavors

_POSITIVE = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1, "maximum": MAX_INT}
_NON_NEGATIVE = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0, "maximum": MAX_INT}
FLAVOR_DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 65535,
                      "pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"}
_FLAVOR = {
    "name": NAME,
    "id": {"type": ["string", "number", "null"], "minLength": 1, "maxLength": 255,
           "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
    "ram": _POSITIVE, "vcpus": _POSITIVE, "disk": _NON_NEGATIVE,
    "OS-FLV-EXT-DATA:ephemeral": _NON_NEGATIVE, "swap": _NON_NEGATIVE,
    "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$", "exclusiveMinimum": True,
                    "minimum": 0, "maximum": 3.40282e38},
    "os-flavor-access:is_public": BOOLEAN,
}
FLAVOR_CREATE = _wrap("flavor", _obj(_FLAVOR, ["name", "ram", "vcpus", "disk"]))
FLAVOR_CREATE_V255 = copy.deepcopy(FLAVOR_CREATE)
FLAVOR_CREATE_V255["properties"]["flavor"]["properties"]["description"] = FLAVOR_DESCRIPTION
FLAVOR_CREATE_V2102 = copy.deepcopy(FLAVOR_CREATE_V255)
del FLAVOR_CREATE_V2102["properties"]["flavor"]["properties"]["rxtx_factor"]
FLAVOR_UPDATE = _wrap("flavor", _obj({"description": FLAVOR_DESCRIPTION}, ["description"]))
FLAVOR_SORT_KEYS = ["created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id", "is_public",
                    "memory_mb", "name", "root_gb", "rxtx_factor", "swap", "updated_at", "vcpu_weight", "vcpus"]

_SPEC_KEY = "^[a-zA-Z0-9-_:. ]{1,255}$"
_SPECS = {"type": "object", "patternProperties": {_SPEC_KEY: {"type": ["string", "number"], "maxLength": 255}},
          "additionalProperties": False}
EXTRA_SPECS_CREATE = _obj({"extra_specs": _SPECS}, ["extra_specs"])
EXTRA_SPEC_UPDATE = {**_SPECS, "minProperties": 1, "maxProperties": 1}

_TENANT = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-_]*$"}
FLAVOR_ACTION = {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                 "properties": {"addTenantAccess": _obj({"tenant": _TENANT}, ["tenant"]),
                                "removeTenantAccess": _obj({"tenant": _TENANT}, ["tenant"])}}

# ---------------------------------------------------------------------- keypairs

_KEYPAIR_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[_\- a-zA-Z0-9]+$"}
_KEYPAIR_NAME_V292 = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[_\-\@\. a-zA-Z0-9]+$"}
_KEY_TYPE = {"type": "string", "enum": ["ssh", "x509"]}
KEYPAIR_CREATE = _wrap("keypair", _obj({"name": _KEYPAIR_NAME, "public_key": {"type": "string"}}, ["name"]))
KEYPAIR_CREATE_V22 = _wrap("keypair", _obj({"name": _KEYPAIR_NAME, "type": _KEY_TYPE,
                                            "public_key": {"type": "string"}}, ["name"]))
KEYPAIR_CREATE_V210 = _wrap("keypair", _obj({"name": _KEYPAIR_NAME, "type": _KEY_TYPE,
                                             "public_key": {"type": "string"}, "user_id": {"type": "string"}},
                                            ["name"]))
KEYPAIR_CREATE_V292 = _wrap("keypair", _obj({"name": _KEYPAIR_NAME_V292, "type": _KEY_TYPE,
                                             "public_key": {"type": "string"}, "user_id": {"type": "string"}},
                                            ["name", "public_key"]))

# ---------------------------------------------------------------------- server groups

_POLICIES = ["anti-affinity", "affinity"]
SERVER_GROUP_CREATE = _wrap("server_group", _obj({
    "name": NAME,
    "policies": {"type": "array", "items": [{"type": "string", "enum": _POLICIES}], "uniqueItems": True,
                 "minItems": 1, "maxItems": 1, "additionalItems": False}}, ["name", "policies"]))
SERVER_GROUP_CREATE_V215 = copy.deepcopy(SERVER_GROUP_CREATE)
SERVER_GROUP_CREATE_V215["properties"]["server_group"]["properties"]["policies"]["items"][0]["enum"] = \
    _POLICIES + ["soft-anti-affinity", "soft-affinity"]
SERVER_GROUP_CREATE_V264 = _wrap("server_group", _obj({
    "name": NAME,
    "policy": {"type": "string", "enum": _POLICIES + ["soft-anti-affinity", "soft-affinity"]},
    "rules": _obj({"max_server_per_host": {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1,
                                           "minLength": 1}})}, ["name", "policy"]))

# ---------------------------------------------------------------------- aggregates

AZ_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^(?! )[^:\x00-\x1f\x7f]*(?<! )$"}
_AZ = {"oneOf": [AZ_NAME, {"type": "null"}]}
AGGREGATE_CREATE = _wrap("aggregate", _obj({"name": NAME, "availability_zone": _AZ}, ["name"]))
AGGREGATE_UPDATE = _wrap("aggregate", _obj({"name": NAME_WITH_SPACES, "availability_zone": _AZ},
                                           anyOf=[{"required": ["name"]}, {"required": ["availability_zone"]}]))
_HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9-._]*$"}
_METADATA_WITH_NULL = {"type": "object", "additionalProperties": False, "patternProperties": {
    "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "null"], "maxLength": 255}}}
AGGREGATE_ACTION = {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                    "properties": {"add_host": _obj({"host": _HOST}, ["host"]),
                                   "remove_host": _obj({"host": _HOST}, ["host"]),
                                   "set_metadata": _obj({"metadata": _METADATA_WITH_NULL}, ["metadata"])}}

# ---------------------------------------------------------------------- quotas

_QUOTA = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$", "minimum": -1, "maximum": MAX_INT}


def quota_update(names: list[str], key: str = "quota_set", force: bool = True) -> dict[str, Any]:
    """The quota (class) set update body for the resources a microversion shows."""
    properties: dict[str, Any] = dict.fromkeys(names, _QUOTA)
    if force:
        properties["force"] = BOOLEAN
    return _wrap(key, _obj(properties))
