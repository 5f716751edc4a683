"""Cinder's backup routes: ``/backups`` (list, detail, create), ``/backups/{id}`` (show, update
3.9, delete), ``/backups/{id}/restore``, ``/backups/{id}/action`` (os-reset_status,
os-force_delete) and the admin's ``/backups/{id}/export_record`` and ``/backups/import_record``. Thin: parse and check at the request's microversion, call
``volume.backups``, render Cinder's views (cinder/api/views/backups.py, v3/views/backups.py)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.core.errors import BadRequest
from mcloud.core.validation import validate
from mcloud.volume.api import V3, body_of, caller_of, links, query, respond, volume_of
from mcloud.volume.api_volumes import listing
from mcloud.volume.models_backups import Backup
from mcloud.volume.schemas import BOOLEAN, DESCRIPTION, METADATA, METADATA_OR_NULL, NAME_OR_NULL, OPTIONAL_UUID, \
    UUID, action, as_bool
from mcloud.volume.views import timestamp

CONTAINER = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
CREATE = {
    "type": "object",
    "properties": {"backup": {"type": "object", "properties": {
        "volume_id": UUID, "container": CONTAINER, "description": DESCRIPTION, "incremental": BOOLEAN,
        "force": BOOLEAN, "name": NAME_OR_NULL, "snapshot_id": OPTIONAL_UUID},
        "required": ["volume_id"], "additionalProperties": False}},
    "required": ["backup"], "additionalProperties": False,
}
CREATE_V343 = copy.deepcopy(CREATE)
CREATE_V343["properties"]["backup"]["properties"]["metadata"] = METADATA_OR_NULL
CREATE_V351 = copy.deepcopy(CREATE_V343)
CREATE_V351["properties"]["backup"]["properties"]["availability_zone"] = {"type": ["string", "null"]}
UPDATE = {
    "type": "object",
    "properties": {"backup": {"type": ["object", "null"], "properties": {
        "name": NAME_OR_NULL, "description": DESCRIPTION}, "additionalProperties": False}},
    "required": ["backup"], "additionalProperties": False,
}
UPDATE_V343 = copy.deepcopy(UPDATE)
UPDATE_V343["properties"]["backup"]["properties"]["metadata"] = METADATA
RESTORE = {
    "type": "object",
    "properties": {"restore": {"type": ["object", "null"], "properties": {
        "name": NAME_OR_NULL, "volume_id": OPTIONAL_UUID}, "additionalProperties": False}},
    "required": ["restore"], "additionalProperties": False,
}
RESET_STATUS = action("os-reset_status", {"status": {"type": "string", "enum": ["available", "error"]}},
                      ("status",))

IMPORT = {
    "type": "object",
    "properties": {"backup-record": {"type": "object", "properties": {
        "backup_service": {"type": "string", "minLength": 0, "maxLength": 255},
        "backup_url": {"type": "string", "minLength": 0}},
        "required": ["backup_service", "backup_url"], "additionalProperties": False}},
    "required": ["backup-record"], "additionalProperties": False,
}

#: the filters anyone may give (Cinder's _get_backup_filter_options) and what else a list takes
FILTERS = ("name", "status", "volume_id")
ADMIN_FILTERS = ("project_id", "availability_zone", "container", "parent_id")
PAGING = ("marker", "limit", "offset", "sort", "sort_key", "sort_dir", "with_count", "all_tenants")


def _clean(value: str | None) -> str | None:
    """Cinder strips leading and trailing spaces of names and descriptions."""
    return value.strip() if isinstance(value, str) else value


def summary(request: Request, row: Backup) -> dict[str, Any]:
    return {"id": row.id, "name": row.display_name, "links": links(request, "backups", row.id)}


def detail(request: Request, caller: Any, row: Backup, has_dependents: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "status": row.status, "size": row.size, "object_count": row.object_count,
        "availability_zone": row.availability_zone, "container": row.container,
        "created_at": timestamp(row.created_at), "updated_at": timestamp(row.updated_at),
        "name": row.display_name, "description": row.display_description, "fail_reason": row.fail_reason,
        "volume_id": row.volume_id, "links": links(request, "backups", row.id),
        "is_incremental": row.parent_id is not None, "has_dependent_backups": has_dependents,
        "snapshot_id": row.snapshot_id, "data_timestamp": timestamp(row.data_timestamp),
    }
    if caller.at(3, 43):
        out["metadata"] = dict(row.metadata_ or {})
    if caller.at(3, 18) and caller.can("backup:backup_project_attribute"):
        out["os-backup-project-attr:project_id"] = row.project_id
    if caller.at(3, 56) and caller.can("backup:backup_project_attribute"):
        out["user_id"] = row.user_id
    return out


def last(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


async def _list(request: Request, with_detail: bool) -> Response:
    caller = await caller_of(request, "backup:get_all")
    params = query(request)
    admin = caller.is_admin
    all_tenants = as_bool(last(params, "all_tenants"), "all_tenants") if "all_tenants" in params else False
    filters: dict[str, str] = {}
    for key, values in params.items():
        if key in PAGING:
            continue
        if key in FILTERS or (admin and key in ADMIN_FILTERS):
            filters[key] = values[-1]
        elif caller.at(3, 33):
            raise BadRequest(f"Invalid input received: Invalid filters {key} are found in query options.")
    sort = [k for k in (last(params, "sort") or "").split(",") if k] or \
        [k for k in (last(params, "sort_key") or "").split(",") if k]
    dirs = [d for d in (last(params, "sort_dir") or "").split(",") if d] or ["desc"]
    offset_text = last(params, "offset") or "0"
    if not offset_text.isdigit():
        raise BadRequest(f"Invalid input received: offset must be a non-negative integer, not {offset_text}.")
    with_count = caller.at(3, 45) and "with_count" in params and as_bool(last(params, "with_count"), "with_count")
    rows, deps, count, _ = await volume_of(request).backups.list(
        caller, filters, all_tenants=all_tenants, sort=sort, sort_dirs=dirs, limit=last(params, "limit"),
        marker=last(params, "marker"), offset=int(offset_text), with_count=with_count)
    items = [detail(request, caller, r, r.id in deps) if with_detail else summary(request, r) for r in rows]
    return listing(request, "backups", with_detail, items, rows, count, params)


async def list_backups(request: Request) -> Response:
    return await _list(request, False)


async def list_backups_detail(request: Request) -> Response:
    return await _list(request, True)


async def create_backup(request: Request) -> Response:
    caller = await caller_of(request)
    schema = CREATE_V351 if caller.at(3, 51) else CREATE_V343 if caller.at(3, 43) else CREATE
    body = (await body_of(request, schema))["backup"]
    row = await volume_of(request).backups.create(
        caller, body["volume_id"], name=_clean(body.get("name")), description=_clean(body.get("description")),
        container=body.get("container"), incremental=as_bool(body.get("incremental", False), "incremental"),
        force=as_bool(body.get("force", False), "force"), snapshot_id=body.get("snapshot_id"),
        metadata=body.get("metadata") if caller.at(3, 43) else None,
        availability_zone=body.get("availability_zone") if caller.at(3, 51) else None)
    return respond({"backup": summary(request, row)}, status=202)


async def show_backup(request: Request) -> Response:
    caller = await caller_of(request)
    backups = volume_of(request).backups
    row = await backups.get(caller, request.path_params["backup_id"])
    async with volume_of(request).db.read() as session:
        deps = await backups.dependents(session, [row.id])
    return respond({"backup": detail(request, caller, row, row.id in deps)})


async def update_backup(request: Request) -> Response:
    caller = await caller_of(request, since=(3, 9))
    body = (await body_of(request, UPDATE_V343 if caller.at(3, 43) else UPDATE))["backup"] or {}
    values: dict[str, Any] = {}
    for key in ("name", "description"):
        if key in body:
            values[key] = _clean(body[key])
    if caller.at(3, 43) and "metadata" in body:
        values["metadata"] = body["metadata"]
    row = await volume_of(request).backups.update(caller, request.path_params["backup_id"], values)
    return respond({"backup": summary(request, row)})


async def delete_backup(request: Request) -> Response:
    caller = await caller_of(request)
    await volume_of(request).backups.delete(caller, request.path_params["backup_id"])
    return Response(status_code=202)


async def restore_backup(request: Request) -> Response:
    caller = await caller_of(request)
    body = (await body_of(request, RESTORE))["restore"] or {}
    out = await volume_of(request).backups.restore(caller, request.path_params["backup_id"],
                                                    volume_id=body.get("volume_id"), name=_clean(body.get("name")))
    return respond({"restore": out}, status=202)


async def export_record(request: Request) -> Response:
    caller = await caller_of(request)
    record = await volume_of(request).backups.export_record(caller, request.path_params["backup_id"])
    return respond({"backup-record": record})


async def import_record(request: Request) -> Response:
    caller = await caller_of(request)
    body = (await body_of(request, IMPORT))["backup-record"]
    row = await volume_of(request).backups.import_record(caller, body["backup_service"], body["backup_url"])
    return respond({"backup": summary(request, row)}, status=201)


async def backup_action(request: Request) -> Response:
    caller = await caller_of(request)
    body = await body_of(request)
    backups = volume_of(request).backups
    backup_id = request.path_params["backup_id"]
    if isinstance(body, dict) and "os-reset_status" in body:
        validate(body, RESET_STATUS)
        await backups.reset_status(caller, backup_id, body["os-reset_status"]["status"])
    elif isinstance(body, dict) and "os-force_delete" in body:
        await backups.delete(caller, backup_id, force=True)
    else:
        raise BadRequest("There is no such action: %s" % (", ".join(body) if isinstance(body, dict) else body))
    return Response(status_code=202)


def add_routes(app: FastAPI) -> None:
    app.add_api_route(V3 + "/backups", list_backups, methods=["GET"])
    app.add_api_route(V3 + "/backups", create_backup, methods=["POST"])
    app.add_api_route(V3 + "/backups/detail", list_backups_detail, methods=["GET"])
    app.add_api_route(V3 + "/backups/import_record", import_record, methods=["POST"])
    app.add_api_route(V3 + "/backups/{backup_id}", show_backup, methods=["GET"])
    app.add_api_route(V3 + "/backups/{backup_id}", update_backup, methods=["PUT"])
    app.add_api_route(V3 + "/backups/{backup_id}", delete_backup, methods=["DELETE"])
    app.add_api_route(V3 + "/backups/{backup_id}/restore", restore_backup, methods=["POST"])
    app.add_api_route(V3 + "/backups/{backup_id}/action", backup_action, methods=["POST"])
    app.add_api_route(V3 + "/backups/{backup_id}/export_record", export_record, methods=["GET"])
