"""Routes of snapshots: ``/v3/snapshots`` (list, detail, create, show, update, delete), their
metadata and ``POST /snapshots/{id}/action`` (os-reset_status, os-force_delete,
os-update_snapshot_status)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.core.errors import BadRequest, NotFound
from mcloud.core.validation import validate
from mcloud.volume import schemas
from mcloud.volume.api import V3, body_of, caller_of, query, respond, volume_of
from mcloud.volume.api_volumes import listing
from mcloud.volume.schemas import as_bool


async def list_snapshots(request: Request, detail: bool) -> Response:
    caller = await caller_of(request, "volume:get_all_snapshots")
    params = query(request)
    out, rows, count = await volume_of(request).snapshots.list(caller, params, detail=detail)
    return listing(request, "snapshots", detail, out, rows, count, params)


async def index(request: Request) -> Response:
    return await list_snapshots(request, detail=False)


async def detail(request: Request) -> Response:
    return await list_snapshots(request, detail=True)


async def create(request: Request) -> Response:
    caller = await caller_of(request, "volume:create_snapshot")
    body = (await body_of(request, schemas.SNAPSHOT_CREATE))["snapshot"]
    # a null volume_id passes the schema (Cinder's uuid_allow_null) and is Cinder's 404 "Volume None ..."
    force = body.get("force")
    if caller.at(3, 66):
        # 3.66: an in-use volume needs no force; force=false is refused (Cinder's message)
        if force is not None and not as_bool(force, "force"):
            raise BadRequest("Invalid value 'False' for force: since microversion 3.66 a snapshot of an in-use "
                             "volume needs no force flag and force=False is not allowed.")
        forced = True
    else:
        forced = as_bool(force, "force") if force is not None else False
    name = body.get("name", body.get("display_name"))
    view = await volume_of(request).snapshots.create(
        caller, body["volume_id"], name.strip() if isinstance(name, str) else name, force=forced,
        description=body.get("description"), metadata=body.get("metadata"))
    return respond({"snapshot": view}, status=202)


async def show(request: Request) -> Response:
    caller = await caller_of(request, "volume:get_snapshot")
    return respond({"snapshot": await volume_of(request).snapshots.get(caller, request.path_params["snapshot_id"])})


async def update(request: Request) -> Response:
    caller = await caller_of(request, "volume:update_snapshot")
    body = await body_of(request, schemas.SNAPSHOT_UPDATE)
    view = await volume_of(request).snapshots.update(caller, request.path_params["snapshot_id"], body["snapshot"])
    return respond({"snapshot": view})


async def delete(request: Request) -> Response:
    caller = await caller_of(request, "volume:delete_snapshot")
    await volume_of(request).snapshots.delete(caller, request.path_params["snapshot_id"])
    return respond(None, status=202)


async def action(request: Request) -> Response:
    caller = await caller_of(request)
    body = await body_of(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Malformed request body")
    (name, arg), = body.items()
    sid = request.path_params["snapshot_id"]
    snapshots = volume_of(request).snapshots
    if name == "os-reset_status":
        validate(body, schemas.SNAPSHOT_RESET_STATUS)
        await snapshots.reset_status(caller, sid, arg["status"])
    elif name == "os-force_delete":
        await snapshots.delete(caller, sid, force=True)
    elif name == "os-update_snapshot_status":
        validate(body, schemas.SNAPSHOT_UPDATE_STATUS)
        await snapshots.update_status(caller, sid, arg["status"], arg.get("progress"))
    else:
        raise BadRequest(f"There is no such action: {name}")
    return respond(None, status=202)


async def metadata_show(request: Request) -> Response:
    caller = await caller_of(request, "volume:get_snapshot_metadata")
    return respond({"metadata": await volume_of(request).snapshots.metadata(caller,
                                                                           request.path_params["snapshot_id"])})


async def metadata_set(request: Request) -> Response:
    caller = await caller_of(request, "volume:update_snapshot_metadata")
    body = await body_of(request, schemas.METADATA_BODY)
    out = await volume_of(request).snapshots.set_metadata(caller, request.path_params["snapshot_id"],
                                                          body["metadata"], replace=request.method == "PUT")
    return respond({"metadata": out})


async def metadata_item_show(request: Request) -> Response:
    caller = await caller_of(request, "volume:get_snapshot_metadata")
    key = request.path_params["key"]
    meta = await volume_of(request).snapshots.metadata(caller, request.path_params["snapshot_id"])
    if key not in meta:
        raise NotFound(f"Metadata key: {key} could not be found.")
    return respond({"meta": {key: meta[key]}})


async def metadata_item_update(request: Request) -> Response:
    caller = await caller_of(request, "volume:update_snapshot_metadata")
    body = await body_of(request, schemas.META_ITEM)
    if request.path_params["key"] not in body["meta"]:
        raise BadRequest("Request body and URI mismatch")
    await volume_of(request).snapshots.set_metadata(caller, request.path_params["snapshot_id"], body["meta"],
                                                    replace=False)
    return respond({"meta": body["meta"]})


async def metadata_item_delete(request: Request) -> Response:
    caller = await caller_of(request, "volume:delete_snapshot_metadata")
    await volume_of(request).snapshots.delete_metadata(caller, request.path_params["snapshot_id"],
                                                       request.path_params["key"])
    return respond(None, status=200)


def add_routes(app: FastAPI) -> None:
    app.add_api_route(V3 + "/snapshots", index, methods=["GET"])
    app.add_api_route(V3 + "/snapshots", create, methods=["POST"])
    app.add_api_route(V3 + "/snapshots/detail", detail, methods=["GET"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}", show, methods=["GET"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}", update, methods=["PUT"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}", delete, methods=["DELETE"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}/action", action, methods=["POST"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}/metadata", metadata_show, methods=["GET"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}/metadata", metadata_set, methods=["POST", "PUT"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}/metadata/{key}", metadata_item_show, methods=["GET"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}/metadata/{key}", metadata_item_update, methods=["PUT"])
    app.add_api_route(V3 + "/snapshots/{snapshot_id}/metadata/{key}", metadata_item_delete, methods=["DELETE"])
