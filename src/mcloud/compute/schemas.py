"""Request bodies and query strings, checked as Nova checks them: JSON schema (Nova's validators
are JSON schemas too), with Nova's messages ("Invalid input for field/attribute X. Value: V. ...").

``validate(body, schema)`` (core.validation's, shared with the volume service) and
``check_query(params, allowed)`` are for every part's routes.
"""

from __future__ import annotations

from typing import Any

from mcloud.core.errors import BadRequest
from mcloud.core.validation import decode_base64, is_uuid, validate

__all__ = ["decode_base64", "is_uuid", "validate"]


def check_query(params: dict[str, list[str]], allowed: set[str], strict: bool) -> None:
    """Nova's query schemas: unknown parameters are ignored, or (2.75+ for servers, 2.102+ for most
    APIs: ``strict``) a 400."""
    if not strict:
        return
    for key in params:
        if key not in allowed:
            raise BadRequest(f"Invalid input for query parameters {key}. Value: {params[key]}. "
                             f"Additional properties are not allowed ('{key}' was unexpected)")


def query_limit(params: dict[str, list[str]], maximum: int | None = None) -> int | None:
    """The ``limit`` query parameter (None when absent), at most ``maximum``; Nova's 400 when it
    is not a non-negative integer."""
    if "limit" not in params:
        return None
    raw = params["limit"][-1]
    try:
        limit = int(raw)
    except ValueError:
        limit = -1
    if limit < 0:
        raise BadRequest(f"Invalid input for query parameters limit. Value: {raw}.")
    return limit if maximum is None else min(limit, maximum)


# ---------------------------------------------------------------------- pieces

def string(min_length: int = 0, max_length: int = 255, **kw: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, **kw}


# Nova's parameter_types.name: no leading/trailing whitespace, printable
NAME = {"type": "string", "minLength": 1, "maxLength": 255,
        "pattern": r"^(?! )[^\x00-\x1f\x7f]*(?<! )$"}
NAME_WITH_SPACES = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[^\x00-\x1f\x7f]*$"}
DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 255,
               "pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"}
UUID = {"type": "string", "format": "uuid"}
BOOLEAN = {"type": ["boolean", "string"],
           "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
                    False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"]}
METADATA = {"type": "object",
            "patternProperties": {r"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
            "additionalProperties": False}
TAG = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": r"^[^,/]*$"}
TAGS = {"type": "array", "items": TAG, "maxItems": 50}
ACCESS_IPV4 = {"type": "string", "format": "ipv4"}
ACCESS_IPV6 = {"type": "string", "format": "ipv6"}
HOSTNAME = {"type": "string", "minLength": 2, "maxLength": 63,
            "pattern": r"^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"}
FQDN = {"type": "string", "minLength": 2, "maxLength": 255,
        "pattern": r"^[a-zA-Z0-9]+[a-zA-Z0-9-.]*[a-zA-Z0-9]+$"}
POSITIVE_INT = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "minLength": 1}


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "on", "yes", "y", "t")
