"""Glance v2's request checks and its published JSON schemas (/v2/schemas/...).

Glance validates images against a JSON schema whose ``additionalProperties`` are strings;
:func:`check_image` applies the same rules to a create body or a patched value and answers
400 in Glance's words when one fails.
"""

from __future__ import annotations

import re
from typing import Any

from mcloud.core.errors import BadRequest
from mcloud.image.config import ImageConfig

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
_UUID = re.compile(UUID_PATTERN)
INT32_MAX = 2**31 - 1


def image_properties(config: ImageConfig) -> dict[str, Any]:
    """The base properties of Glance's image schema."""
    return {
        "id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
        "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
        "status": {"type": "string", "readOnly": True, "description": "Status of the image",
                   "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                            "pending_delete", "deactivated"]},
        "visibility": {"type": "string", "description": "Scope of image accessibility",
                       "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean",
                      "description": "If true, image will not appear in default image list response."},
        "checksum": {"type": ["null", "string"], "readOnly": True, "description": "md5 hash of image contents.",
                     "maxLength": 32},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True,
                         "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True,
                          "description": "Hexdigest of the image contents using the algorithm specified by the "
                                         "os_hash_algo", "maxLength": 128},
        "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
        "size": {"type": ["null", "integer"], "readOnly": True, "description": "Size of image file in bytes"},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True, "description": "Virtual size of image in bytes"},
        "container_format": {"type": ["null", "string"], "description": "Format of the container",
                             "enum": [None, *config.container_formats]},
        "disk_format": {"type": ["null", "string"], "description": "Format of the disk",
                        "enum": [None, *config.disk_formats]},
        "created_at": {"type": "string", "readOnly": True, "description": "Date and time of image registration"},
        "updated_at": {"type": "string", "readOnly": True,
                       "description": "Date and time of the last image modification"},
        "tags": {"type": "array", "description": "List of strings related to the image",
                 "items": {"type": "string", "maxLength": 255}},
        "direct_url": {"type": "string", "readOnly": True,
                       "description": "URL to access the image file kept in external store"},
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
        "self": {"type": "string", "readOnly": True, "description": "An image self url"},
        "file": {"type": "string", "readOnly": True, "description": "An image file url"},
        "stores": {"type": "string", "readOnly": True,
                   "description": "Store in which image data resides.  Only present when the operator has enabled "
                                  "multiple stores.  May be a comma-separated list of store identifiers."},
        "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
        "locations": {"type": "array", "items": {"type": "object", "properties": {
            "url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}},
            "required": ["url", "metadata"]},
            "description": "A set of URLs to access the image file kept in external store"},
    }


LINKS = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
         {"rel": "describedby", "href": "{schema}"}]


def image_schema(config: ImageConfig) -> dict[str, Any]:
    return {"name": "image", "properties": image_properties(config), "additionalProperties": {"type": "string"},
            "links": LINKS}


def images_schema(config: ImageConfig) -> dict[str, Any]:
    return {"name": "images", "properties": {
        "images": {"type": "array", "items": image_schema(config)},
        "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}]}


MEMBER_PROPERTIES: dict[str, Any] = {
    "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
    "image_id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
    "created_at": {"type": "string", "description": "Date and time of image member creation"},
    "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
    "status": {"type": "string", "description": "The status of this image member",
               "enum": ["pending", "accepted", "rejected"]},
    "schema": {"readOnly": True, "type": "string"},
}


def member_schema() -> dict[str, Any]:
    return {"name": "member", "properties": MEMBER_PROPERTIES}


def members_schema() -> dict[str, Any]:
    return {"name": "members", "properties": {"members": {"type": "array", "items": member_schema()},
                                              "schema": {"type": "string"}},
            "links": [{"rel": "describedby", "href": "{schema}"}]}


def _fail(key: str, why: str) -> BadRequest:
    return BadRequest(f"Provided object does not match schema 'image': {why}\n\nFailed validating "
                      f"'{key}' in schema['properties']['{key}']")


def check_value(config: ImageConfig, key: str, value: Any) -> None:
    """One image attribute against Glance's schema (custom properties must be strings)."""
    props = image_properties(config)
    spec = props.get(key)
    if spec is None:
        if not isinstance(value, str):
            raise BadRequest(f"Provided object does not match schema 'image': {value!r} is not of type "
                             f"'string'\n\nFailed validating 'type' in schema['additionalProperties']")
        if len(key) > 255:
            raise BadRequest("Custom property should not be greater than 255 characters.")
        return
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    ok = ((value is None and "null" in types)
          or (isinstance(value, bool) and "boolean" in types)
          or (isinstance(value, int) and not isinstance(value, bool) and "integer" in types)
          or (isinstance(value, str) and "string" in types)
          or (isinstance(value, list) and "array" in types))
    if not ok:
        raise _fail(key, f"{value!r} is not of type {', '.join(repr(t) for t in types)}")
    if "enum" in spec and value not in spec["enum"]:
        raise _fail(key, f"{value!r} is not one of {spec['enum']}")
    if isinstance(value, str) and "maxLength" in spec and len(value) > spec["maxLength"]:
        raise _fail(key, f"{value!r} is too long")
    if key == "id" and not _UUID.match(value):
        raise _fail(key, f"{value!r} does not match '{UUID_PATTERN}'")
    if key in ("min_ram", "min_disk") and not 0 <= value <= INT32_MAX:
        raise _fail(key, f"{value!r} is not within 0 and {INT32_MAX}")
    if key == "tags":
        for tag in value:
            if not isinstance(tag, str):
                raise _fail(key, f"{tag!r} is not of type 'string'")
            if len(tag) > 255:
                raise _fail(key, f"{tag!r} is too long")


def check_image(config: ImageConfig, body: dict[str, Any]) -> None:
    for key, value in body.items():
        check_value(config, key, value)
