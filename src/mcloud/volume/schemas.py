"""Request bodies as Cinder checks them (cinder/api/schemas/*.py, parameter_types.py): JSON schemas
checked by ``mcloud.core.validation.validate`` (Cinder's message "Invalid input for
field/attribute X. Value: V. ..."), and the helpers that read Cinder's loose values (booleans
as strings, sizes as strings)."""

from __future__ import annotations

import copy
from typing import Any

from mcloud.core.errors import BadRequest

TRUE = ("true", "1", "on", "yes", "y", "t")
FALSE = ("false", "0", "off", "no", "n", "f")
BOOLEAN = {"type": ["boolean", "string"],
           "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
                    False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"]}
UUID = {"type": "string", "format": "uuid"}
OPTIONAL_UUID = {"oneOf": [UUID, {"type": "null"}]}
NAME_OR_NULL = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
DB_MAX_INT = 0x7FFFFFFF
SIZE = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1, "maximum": DB_MAX_INT}
METADATA = {"type": "object", "patternProperties": {"^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string",
                                                                                   "maxLength": 255}},
            "additionalProperties": False}
METADATA_OR_NULL = {**METADATA, "type": ["object", "null"]}


def action(name: str, props: dict[str, Any] | None = None, required: tuple[str, ...] = (),
           nullable: bool = False, **extra: Any) -> dict[str, Any]:
    """The schema of ``{"<name>": {...}}`` (``props`` None: any value, as ``os-reserve: {}``)."""
    inner: dict[str, Any] = {} if props is None else {
        "type": ["object", "null"] if nullable else "object", "properties": props,
        "required": list(required), "additionalProperties": False, **extra}
    if props is not None and not required:
        del inner["required"]
    return {"type": "object", "properties": {name: inner}, "required": [name], "additionalProperties": False}


VOLUME_CREATE = {
    "type": "object",
    "properties": {
        "volume": {
            "type": "object",
            "properties": {
                "name": NAME_OR_NULL, "description": DESCRIPTION, "display_name": NAME_OR_NULL,
                "display_description": DESCRIPTION, "volume_type": NAME_OR_NULL, "metadata": METADATA_OR_NULL,
                "snapshot_id": OPTIONAL_UUID, "source_volid": OPTIONAL_UUID, "consistencygroup_id": OPTIONAL_UUID,
                "size": {**SIZE, "type": ["integer", "string", "null"]},
                "availability_zone": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                "multiattach": {**BOOLEAN, "type": ["boolean", "string", "null"], "enum": [*BOOLEAN["enum"], None]},
                "image_id": NAME_OR_NULL, "imageRef": NAME_OR_NULL,
            },
            "additionalProperties": True,
        },
        "OS-SCH-HNT:scheduler_hints": {"type": ["object", "null"]},
    },
    "required": ["volume"],
    "additionalProperties": False,
}
VOLUME_CREATE_V313 = copy.deepcopy(VOLUME_CREATE)
VOLUME_CREATE_V313["properties"]["volume"]["properties"]["group_id"] = NAME_OR_NULL
VOLUME_CREATE_V347 = copy.deepcopy(VOLUME_CREATE_V313)
VOLUME_CREATE_V347["properties"]["volume"]["properties"]["backup_id"] = OPTIONAL_UUID
VOLUME_CREATE_V353 = copy.deepcopy(VOLUME_CREATE_V347)
VOLUME_CREATE_V353["properties"]["volume"]["additionalProperties"] = False

VOLUME_UPDATE = {
    "type": "object",
    "properties": {"volume": {"type": "object", "properties": {
        "name": NAME_OR_NULL, "description": DESCRIPTION, "display_name": NAME_OR_NULL,
        "display_description": DESCRIPTION, "metadata": METADATA}, "additionalProperties": False}},
    "required": ["volume"], "additionalProperties": False,
}
VOLUME_UPDATE_V353 = copy.deepcopy(VOLUME_UPDATE)
VOLUME_UPDATE_V353["properties"]["volume"]["anyOf"] = [
    {"required": [k]} for k in ("name", "description", "display_name", "display_description", "metadata")]

METADATA_BODY = {"type": "object", "properties": {"metadata": METADATA}, "required": ["metadata"],
                 "additionalProperties": False}
META_ITEM = {"type": "object", "properties": {"meta": {**METADATA, "minProperties": 1, "maxProperties": 1}},
             "required": ["meta"], "additionalProperties": False}

ATTACH = action("os-attach", {"instance_uuid": UUID, "mountpoint": {"type": "string", "minLength": 1,
                                                                     "maxLength": 255},
                              "host_name": {"type": "string", "maxLength": 255},
                              "mode": {"type": "string", "enum": ["rw", "ro"]}},
                ("mountpoint",), anyOf=[{"required": ["instance_uuid"]}, {"required": ["host_name"]}])
DETACH = action("os-detach", {"attachment_id": OPTIONAL_UUID}, nullable=True)
EXTEND = action("os-extend", {"new_size": SIZE}, ("new_size",))
RETYPE = action("os-retype", {"new_type": {"type": "string"},
                              "migration_policy": {"type": ["string", "null"], "enum": ["on-demand", "never", None]}},
                ("new_type",))
SET_BOOTABLE = action("os-set_bootable", {"bootable": BOOLEAN}, ("bootable",))
READONLY = action("os-update_readonly_flag", {"readonly": BOOLEAN}, ("readonly",))
UPLOAD = action("os-volume_upload_image", {
    "image_name": {"type": "string", "minLength": 1, "maxLength": 255}, "force": BOOLEAN,
    "disk_format": {"type": "string", "enum": ["raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx", "ploop"]},
    "container_format": {"type": "string", "enum": ["bare", "ovf", "ova", "aki", "ari", "ami", "docker",
                                                    "compressed"]}}, ("image_name",))
UPLOAD_V31 = copy.deepcopy(UPLOAD)
UPLOAD_V31["properties"]["os-volume_upload_image"]["properties"].update(
    visibility={"type": "string", "enum": ["community", "public", "private", "shared"]}, protected=BOOLEAN)
INITIALIZE = action("os-initialize_connection", {"connector": {"type": ["object", "string"]}}, ("connector",))
TERMINATE = action("os-terminate_connection", {"connector": {"type": ["string", "object", "null"]}},
                   ("connector",))
RESET_STATUS = action("os-reset_status", {
    "status": {"type": "string", "format": "volume_status"},
    "attach_status": {"type": "string", "enum": ["attached", "detached"]},
    "migration_status": {"type": "string", "enum": ["migrating", "error", "success", "completing", "none",
                                                    "starting"]}})
FORCE_DETACH = action("os-force_detach", {"connector": {"type": ["string", "object", "null"]},
                                          "attachment_id": {"type": ["string", "null"]}})
SET_IMAGE_METADATA = action("os-set_image_metadata", {"metadata": {
    "type": "object", "patternProperties": {"^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string"}},
    "additionalProperties": False}}, ("metadata",))
UNSET_IMAGE_METADATA = action("os-unset_image_metadata", {"key": {"type": "string", "minLength": 1,
                                                                  "maxLength": 255}}, ("key",))
REVERT = action("revert", {"snapshot_id": {"type": ["string", "null"]}}, additionalProperties=True)
REVERT["properties"]["revert"]["additionalProperties"] = True

SNAPSHOT_CREATE = {
    "type": "object",
    "properties": {"snapshot": {"type": "object", "properties": {
        "name": NAME_OR_NULL, "display_name": NAME_OR_NULL, "description": DESCRIPTION,
        "volume_id": OPTIONAL_UUID, "force": BOOLEAN, "metadata": METADATA_OR_NULL},
        "required": ["volume_id"], "additionalProperties": False}},
    "required": ["snapshot"], "additionalProperties": False,
}
SNAPSHOT_UPDATE = {
    "type": "object",
    "properties": {"snapshot": {"type": "object", "properties": {
        "name": NAME_OR_NULL, "description": DESCRIPTION, "display_name": NAME_OR_NULL,
        "display_description": DESCRIPTION}, "additionalProperties": False,
        "anyOf": [{"required": [k]} for k in ("name", "description", "display_name", "display_description")]}},
    "required": ["snapshot"], "additionalProperties": False,
}
SNAPSHOT_RESET_STATUS = action("os-reset_status", {"status": {"type": "string"}}, ("status",))
SNAPSHOT_UPDATE_STATUS = action("os-update_snapshot_status", {
    "status": {"type": "string", "enum": ["available", "error", "creating", "deleting", "error_deleting"]},
    "progress": {"type": "string", "format": "progress"}}, ("status",))

ATTACHMENT_CREATE = {
    "type": "object",
    "properties": {"attachment": {"type": "object", "properties": {
        "instance_uuid": UUID, "connector": {"type": ["object", "null"]}, "volume_uuid": UUID},
        "required": ["volume_uuid"], "additionalProperties": False}},
    "required": ["attachment"], "additionalProperties": False,
}
ATTACHMENT_CREATE_V354 = copy.deepcopy(ATTACHMENT_CREATE)
ATTACHMENT_CREATE_V354["properties"]["attachment"]["properties"]["mode"] = {"type": "string", "enum": ["rw", "ro"]}
ATTACHMENT_UPDATE = {
    "type": "object",
    "properties": {"attachment": {"type": "object", "properties": {
        "connector": {"type": "object", "minProperties": 1}}, "required": ["connector"],
        "additionalProperties": False}},
    "required": ["attachment"], "additionalProperties": False,
}


def int_param(params: dict[str, list[str]], key: str) -> int | None:
    """A non-negative integer query parameter (Cinder's ``limit``/``offset`` checks), None when absent."""
    if not params.get(key):
        return None
    raw = params[key][-1]
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{key} param must be an integer") from None
    if value < 0:
        raise BadRequest(f"{key} param must be positive")
    return value


def as_bool(value: Any, name: str = "value") -> bool:
    """Cinder's strutils.bool_from_string(strict=True): 400 for anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise BadRequest(f"Invalid input received: {name}={value}. Valid values are: "
                     f"{', '.join(TRUE + FALSE)}")


def as_size(value: Any) -> int:
    """A size the schema let through (an integer or a string of digits), > 0, else Cinder's 400."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if size <= 0 or str(value).strip() != str(size):
        raise BadRequest(f"Invalid input received: Volume size '{value}' must be an integer and greater than 0")
    return size
