"""``/servers/{id}/os-volume_attachments``: Nova's volume attachments of a server (list, show,
attach, update, detach), the request schema gated by microversion as Nova's (``tag`` 2.49,
``delete_on_termination`` 2.79, updating delete_on_termination 2.85); the views in
service_servers_volumes.attachment_view (``attachment_id`` and ``bdm_uuid`` from 2.89)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import api_servers_volumes_proxy
from mcloud.compute import schemas as sc
from mcloud.compute.api import V21, body_of, caller_of, compute_of, respond
from mcloud.compute.service_servers_volumes import ServerVolumes, attachment_view

DEVICE = {"type": ["string", "null"], "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"}
TAG = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}
CREATE = {"type": "object", "properties": {"volumeAttachment": {
    "type": "object", "properties": {"volumeId": sc.UUID, "device": DEVICE},
    "required": ["volumeId"], "additionalProperties": False}},
    "required": ["volumeAttachment"], "additionalProperties": False}
UPDATE = copy.deepcopy(CREATE)


def _schema(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(base)
    schema["properties"]["volumeAttachment"]["properties"].update(extra)
    return schema


def create_schema(caller: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if caller.at(2, 49):
        extra["tag"] = TAG
    if caller.at(2, 79):
        extra["delete_on_termination"] = sc.BOOLEAN
    return _schema(CREATE, extra)


def update_schema(caller: Any) -> dict[str, Any]:
    # Nova's update schema takes (and ignores) the attachment's other fields; from 2.85 it sets
    # delete_on_termination
    extra: dict[str, Any] = {"id": sc.UUID, "serverId": sc.UUID, "tag": TAG, "device": DEVICE}
    if caller.at(2, 85):
        extra["delete_on_termination"] = sc.BOOLEAN
    return _schema(UPDATE, extra)


def _volumes(request: Request) -> ServerVolumes:
    return ServerVolumes(compute_of(request).servers)


async def list_attachments(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    inst, bdms = await _volumes(request).list(caller, server_id)
    limit, offset = request.query_params.get("limit"), request.query_params.get("offset")
    start = int(offset) if offset and offset.isdigit() else 0
    end = start + int(limit) if limit and limit.isdigit() else None
    return respond({"volumeAttachments": [attachment_view(caller, b, inst.uuid) for b in bdms[start:end]]})


async def show_attachment(request: Request, server_id: str, volume_id: str) -> Response:
    caller = await caller_of(request)
    inst, bdm = await _volumes(request).show(caller, server_id, volume_id)
    return respond({"volumeAttachment": attachment_view(caller, bdm, inst.uuid)})


async def attach(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    body = (await body_of(request, create_schema(caller)))["volumeAttachment"]
    dot = body.get("delete_on_termination")
    inst, bdm = await _volumes(request).attach(caller, server_id, body["volumeId"], body.get("device"),
                                               body.get("tag"), sc.as_bool(dot) if dot is not None else False)
    return respond({"volumeAttachment": attachment_view(caller, bdm, inst.uuid, created=True)})


async def update_attachment(request: Request, server_id: str, volume_id: str) -> Response:
    caller = await caller_of(request)
    body = (await body_of(request, update_schema(caller)))["volumeAttachment"]
    dot = body.get("delete_on_termination")
    await _volumes(request).update(caller, server_id, volume_id, body["volumeId"],
                                   sc.as_bool(dot) if dot is not None else None)
    return respond(None, 202)


async def detach(request: Request, server_id: str, volume_id: str) -> Response:
    caller = await caller_of(request)
    await _volumes(request).detach(caller, server_id, volume_id)
    return respond(None, 202)


def add_routes(app: FastAPI) -> None:
    route = app.add_api_route
    s = V21 + "/servers/{server_id}/os-volume_attachments"
    route(s, list_attachments, methods=["GET"])
    route(s, attach, methods=["POST"])
    route(s + "/{volume_id}", show_attachment, methods=["GET"])
    route(s + "/{volume_id}", update_attachment, methods=["PUT"], status_code=202)
    route(s + "/{volume_id}", detach, methods=["DELETE"], status_code=202)
    api_servers_volumes_proxy.add_routes(app)


__all__ = ["add_routes"]
