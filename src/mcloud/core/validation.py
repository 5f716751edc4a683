"""JSON-schema checks of request bodies with the message Nova and Cinder give alike
(their ``api/validation/validators.py``): "Invalid input for field/attribute X. Value: V. <why>".

``validate(body, schema)`` raises core's 400; the ``uuid`` format is checked strictly (32 hex
digits, dashes optional, as oslo's ``is_uuid_like``), ``base64`` as Nova decodes it
(``decode_base64``); the other formats are jsonschema's (ipv4, ipv6, ...).
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


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uuid")
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or is_uuid(value)


@FORMATS.checks("base64")
def _base64(value: object) -> bool:
    return not isinstance(value, str) or decode_base64(value) is not None


def validate(body: Any, schema: dict[str, Any]) -> Any:
    """``body`` checked against ``schema`` (Draft 4, as oslo's validators); a mismatch is a 400
    naming the deepest field at fault."""
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = jsonschema.Draft4Validator(schema, format_checker=FORMATS)
    error = jsonschema.exceptions.best_match(
        validator.iter_errors(body), key=lambda e: (-len(e.path), e.validator not in ("anyOf", "oneOf")))
    if error is not None:
        if len(error.path) > 0:
            shown = repr(error.instance) if not isinstance(error.instance, str) else error.instance
            shown = shown if len(shown) <= 200 else shown[:200] + "..."
            raise BadRequest(f"Invalid input for field/attribute {error.path.pop()}. Value: {shown}. "
                             f"{error.message}")
        raise BadRequest(error.message)
    return body
