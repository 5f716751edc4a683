"""Request bodies and query strings, checked as Nova checks them: JSON schema (Nova's validators
are JSON schemas too), with Nova's messages ("Invalid input for field/attribute X. Value: V. ...").

``validate(body, schema)`` and ``check_query(params, allowed)`` are for every part's routes.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid as uuidlib
from typing import Any

import jsonschema

from mcloud.core.errors import BadRequest

_VALIDATORS: dict[int, Any] = {}


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    @checker.checks("uuid")
    def _uuid(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return is_uuid(value)

    @checker.checks("base64")
    def _b64(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return decode_base64(value) is not None

    @checker.checks("ipv4")
    def _ipv4(value: object) -> bool:
        import ipaddress  # noqa: PLC0415

        try:
            return not isinstance(value, str) or isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
        except ValueError:
            return False

    @checker.checks("ipv6")
    def _ipv6(value: object) -> bool:
        import ipaddress  # noqa: PLC0415

        try:
            return not isinstance(value, str) or isinstance(ipaddress.ip_address(value), ipaddress.IPv6Address)
        except ValueError:
            return False

    return checker


FORMATS = _format_checker()


def validate(body: Any, schema: dict[str, Any]) -> Any:
    """``body`` checked against ``schema``; a mismatch is Nova's 400 text."""
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = jsonschema.Draft4Validator(schema, format_checker=FORMATS)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body), key=_relevance)
    if error is not None:
        if len(error.path) > 0:
            detail = (f"Invalid input for field/attribute {error.path.pop()}. "
                      f"Value: {_show(error.instance)}. {error.message}")
        else:
            detail = error.message
        raise BadRequest(detail)
    return body


def _relevance(error: jsonschema.ValidationError) -> Any:
    # the deepest error first (Nova reports what is wrong inside, not "is not valid under any")
    return (-len(error.path), error.validator not in ("anyOf", "oneOf"))


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:200] + "..."


def is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return len(value.replace("-", "")) == 32


def decode_base64(value: str) -> bytes | None:
    """Strict base64 as Nova accepts it (padding required, whitespace ignored), else None."""
    data = re.sub(r"\s", "", value)
    if len(data) % 4:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


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
