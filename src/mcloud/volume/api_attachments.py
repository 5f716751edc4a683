"""Routes of the attachments API (3.27+): ``/v3/attachments`` (list, detail, create, show, update,
delete) and ``POST /attachments/{id}/action`` with ``os-complete`` (3.44)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.volume import schemas
from mcloud.volume.api import V3, body_of, caller_of, query, respond, volume_of

SINCE = (3, 27)


async def index(request: Request) -> Response:
    caller = await caller_of(request, since=SINCE)
    return respond({"attachments": await volume_of(request).attachments.list(caller, query(request), detail=False)})


async def detail(request: Request) -> Response:
    caller = await caller_of(request, since=SINCE)
    return respond({"attachments": await volume_of(request).attachments.list(caller, query(request), detail=True)})


async def create(request: Request) -> Response:
    caller = await caller_of(request, "volume:attachment_create", since=SINCE)
    body = (await body_of(request, schemas.ATTACHMENT_CREATE_V354 if caller.at(3, 54)
                          else schemas.ATTACHMENT_CREATE))["attachment"]
    view = await volume_of(request).attachments.create(caller, body["volume_uuid"], body.get("instance_uuid"),
                                                       body.get("connector"), body.get("mode", "rw"))
    return respond({"attachment": view})


async def show(request: Request) -> Response:
    caller = await caller_of(request, since=SINCE)
    return respond({"attachment": await volume_of(request).attachments.get(caller,
                                                                          request.path_params["attachment_id"])})


async def update(request: Request) -> Response:
    caller = await caller_of(request, "volume:attachment_update", since=SINCE)
    body = await body_of(request, schemas.ATTACHMENT_UPDATE)
    view = await volume_of(request).attachments.update(caller, request.path_params["attachment_id"],
                                                       body["attachment"]["connector"])
    return respond({"attachment": view})


async def delete(request: Request) -> Response:
    caller = await caller_of(request, "volume:attachment_delete", since=SINCE)
    left = await volume_of(request).attachments.delete(caller, request.path_params["attachment_id"])
    return respond({"attachments": left})


async def action(request: Request) -> Response:
    caller = await caller_of(request, "volume:attachment_complete", since=(3, 44))
    await body_of(request, {"type": "object", "properties": {"os-complete": {}}, "required": ["os-complete"],
                            "additionalProperties": False})
    await volume_of(request).attachments.complete(caller, request.path_params["attachment_id"])
    return respond(None, status=204)


def add_routes(app: FastAPI) -> None:
    app.add_api_route(V3 + "/attachments", index, methods=["GET"])
    app.add_api_route(V3 + "/attachments", create, methods=["POST"])
    app.add_api_route(V3 + "/attachments/detail", detail, methods=["GET"])
    app.add_api_route(V3 + "/attachments/{attachment_id}", show, methods=["GET"])
    app.add_api_route(V3 + "/attachments/{attachment_id}", update, methods=["PUT"])
    app.add_api_route(V3 + "/attachments/{attachment_id}", delete, methods=["DELETE"])
    app.add_api_route(V3 + "/attachments/{attachment_id}/action", action, methods=["POST"])
