"""Routes of volumes: ``/v3/volumes`` (list, detail, summary 3.12, create, show, update, delete),
their metadata and ``POST /volumes/{id}/action`` (every volume action, the old attach flow's too)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.core.errors import BadRequest
from mcloud.core.pagination import next_link
from mcloud.core.validation import validate
from mcloud.volume import schemas
from mcloud.volume.api import V3, api_url, body_of, caller_of, links, query, respond, volume_of
from mcloud.volume.schemas import as_bool


def _links(request: Request) -> Any:
    return lambda collection, resource_id: links(request, collection, resource_id)


def page_links(request: Request, collection: str, rows: list[Any], params: dict[str, list[str]],
               limit_default: int) -> list[dict[str, str]]:
    """``<collection>_links`` with the next page when this one is full (Cinder's collection links)."""
    asked = params.get("limit")
    limit = int(asked[-1]) if asked and asked[-1].isdigit() else limit_default
    if not rows or len(rows) < limit:
        return []
    flat = {k: v[-1] for k, v in params.items()}
    return [next_link(f"{api_url(request)}/{collection}", flat, rows[-1].id, limit)]


def listing(request: Request, collection: str, detail: bool, out: list[dict[str, Any]], rows: list[Any],
            count: int | None, params: dict[str, list[str]]) -> Response:
    """A list's body: ``{collection: [...]}``, ``<collection>_links`` to the next page when this
    one is full, ``count`` when asked for (3.45)."""
    body: dict[str, Any] = {collection: out}
    more = page_links(request, f"{collection}/detail" if detail else collection, rows, params,
                      volume_of(request).config.max_limit)
    if more:
        body[f"{collection}_links"] = more
    if count is not None:
        body["count"] = count
    return respond(body)


async def list_volumes(request: Request, detail: bool) -> Response:
    caller = await caller_of(request, "volume:get_all")
    params = query(request)
    out, rows, count = await volume_of(request).volumes.list(caller, params, detail=detail, links=_links(request))
    return listing(request, "volumes", detail, out, rows, count, params)


async def index(request: Request) -> Response:
    return await list_volumes(request, detail=False)


async def detail(request: Request) -> Response:
    return await list_volumes(request, detail=True)


async def summary(request: Request) -> Response:
    caller = await caller_of(request, "volume:get_all", since=(3, 12))
    return respond(await volume_of(request).volumes.summary(caller, query(request)))


async def create(request: Request) -> Response:
    caller = await caller_of(request, "volume:create")
    schema = (schemas.VOLUME_CREATE_V353 if caller.at(3, 53) else schemas.VOLUME_CREATE_V347 if caller.at(3, 47)
              else schemas.VOLUME_CREATE_V313 if caller.at(3, 13) else schemas.VOLUME_CREATE)
    body = (await body_of(request, schema))["volume"]
    if body.get("multiattach") is not None and as_bool(body["multiattach"], "multiattach"):
        raise BadRequest("multiattach parameter has been removed. The default behavior is to use multiattach "
                         "enabled volume types. Contact your administrator to create a multiattach enabled volume "
                         "type and use it to create multiattach volumes.")

    def text(*keys: str) -> str | None:
        for key in keys:
            if body.get(key) is not None:
                return str(body[key]).strip()
        return None

    view = await volume_of(request).volumes.create(
        caller, body.get("size"), image_id=body.get("imageRef") or body.get("image_id"),
        snapshot_id=body.get("snapshot_id"), source_volid=body.get("source_volid"),
        name=text("name", "display_name"), description=text("description", "display_description"),
        volume_type=body.get("volume_type"), availability_zone=body.get("availability_zone"),
        metadata=body.get("metadata"), backup_id=body.get("backup_id"),
        group_id=body.get("group_id") if caller.at(3, 13) else None, links=_links(request))
    return respond({"volume": view}, status=202)


async def show(request: Request) -> Response:
    caller = await caller_of(request, "volume:get")
    view = await volume_of(request).volumes.get(caller, request.path_params["volume_id"], links=_links(request))
    return respond({"volume": view})


async def update(request: Request) -> Response:
    caller = await caller_of(request, "volume:update")
    body = (await body_of(request, schemas.VOLUME_UPDATE_V353 if caller.at(3, 53) else schemas.VOLUME_UPDATE))
    view = await volume_of(request).volumes.update(caller, request.path_params["volume_id"], body["volume"],
                                                   links=_links(request))
    return respond({"volume": view})


async def delete(request: Request) -> Response:
    caller = await caller_of(request, "volume:delete")
    params = query(request)
    cascade = as_bool((params.get("cascade") or ["false"])[-1], "cascade")
    force = as_bool((params.get("force") or ["false"])[-1], "force") if caller.at(3, 23) else False
    await volume_of(request).volumes.delete(caller, request.path_params["volume_id"], cascade=cascade, force=force)
    return respond(None, status=202)


# ---------------------------------------------------------------------- metadata


async def metadata_show(request: Request) -> Response:
    caller = await caller_of(request, "volume:get_volume_metadata")
    return respond({"metadata": await volume_of(request).volumes.metadata(caller, request.path_params["volume_id"])})


async def metadata_create(request: Request) -> Response:
    caller = await caller_of(request, "volume:create_volume_metadata")
    body = await body_of(request, schemas.METADATA_BODY)
    out = await volume_of(request).volumes.set_metadata(caller, request.path_params["volume_id"], body["metadata"],
                                                        replace=False, rule="volume:create_volume_metadata")
    return respond({"metadata": out})


async def metadata_replace(request: Request) -> Response:
    caller = await caller_of(request, "volume:update_volume_metadata")
    body = await body_of(request, schemas.METADATA_BODY)
    out = await volume_of(request).volumes.set_metadata(caller, request.path_params["volume_id"], body["metadata"],
                                                        replace=True)
    return respond({"metadata": out})


async def metadata_item_show(request: Request) -> Response:
    caller = await caller_of(request, "volume:get_volume_metadata")
    key = request.path_params["key"]
    meta = await volume_of(request).volumes.metadata(caller, request.path_params["volume_id"])
    if key not in meta:
        from mcloud.core.errors import NotFound  # noqa: PLC0415

        raise NotFound(f"Metadata key: {key} could not be found.")
    return respond({"meta": {key: meta[key]}})


async def metadata_item_update(request: Request) -> Response:
    caller = await caller_of(request, "volume:update_volume_metadata")
    body = await body_of(request, schemas.META_ITEM)
    key = request.path_params["key"]
    if key not in body["meta"]:
        raise BadRequest("Request body and URI mismatch")
    await volume_of(request).volumes.set_metadata(caller, request.path_params["volume_id"], body["meta"],
                                                  replace=False)
    return respond({"meta": body["meta"]})


async def metadata_item_delete(request: Request) -> Response:
    caller = await caller_of(request, "volume:delete_volume_metadata")
    await volume_of(request).volumes.delete_metadata(caller, request.path_params["volume_id"],
                                                     request.path_params["key"])
    return respond(None, status=200)


# ---------------------------------------------------------------------- actions

ACTION_SCHEMAS = {
    "os-extend": schemas.EXTEND, "os-retype": schemas.RETYPE, "os-set_bootable": schemas.SET_BOOTABLE,
    "os-update_readonly_flag": schemas.READONLY, "os-reset_status": schemas.RESET_STATUS,
    "os-attach": schemas.ATTACH, "os-detach": schemas.DETACH, "os-initialize_connection": schemas.INITIALIZE,
    "os-terminate_connection": schemas.TERMINATE, "os-force_detach": schemas.FORCE_DETACH,
    "os-set_image_metadata": schemas.SET_IMAGE_METADATA, "os-unset_image_metadata": schemas.UNSET_IMAGE_METADATA,
    "revert": schemas.REVERT,
}


async def action(request: Request) -> Response:
    caller = await caller_of(request)
    body = await body_of(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("There is no such action: None" if not body else "Malformed request body")
    (name, arg), = body.items()
    if name == "os-volume_upload_image":
        validate(body, schemas.UPLOAD_V31 if caller.at(3, 1) else schemas.UPLOAD)
    elif name in ACTION_SCHEMAS:
        validate(body, ACTION_SCHEMAS[name])
    vid = request.path_params["volume_id"]
    vol = volume_of(request)
    volumes, attachments = vol.volumes, vol.attachments
    arg = arg or {}
    if name == "os-extend":
        await volumes.extend(caller, vid, schemas.as_size(arg["new_size"]))
    elif name == "os-retype":
        await volumes.retype(caller, vid, arg["new_type"], arg.get("migration_policy"))
    elif name == "os-set_bootable":
        await volumes.set_bootable(caller, vid, as_bool(arg["bootable"], "bootable"))
        return respond(None, status=200)
    elif name == "os-update_readonly_flag":
        await volumes.set_readonly(caller, vid, as_bool(arg["readonly"], "readonly"))
    elif name == "os-reset_status":
        await volumes.reset_status(caller, vid, arg.get("status"), arg.get("attach_status"),
                                   arg.get("migration_status"))
    elif name == "os-force_delete":
        await volumes.force_delete(caller, vid)
    elif name == "os-volume_upload_image":
        out = await volumes.upload_to_image(
            caller, vid, image_name=arg["image_name"], force=as_bool(arg.get("force", False), "force"),
            disk_format=arg.get("disk_format", "raw"), container_format=arg.get("container_format", "bare"),
            visibility=arg.get("visibility") if caller.at(3, 1) else None,
            protected=as_bool(arg.get("protected", False), "protected") if caller.at(3, 1) else False)
        return respond({"os-volume_upload_image": out}, status=202)
    elif name == "os-set_image_metadata":
        return respond({"metadata": await volumes.set_image_metadata(caller, vid, arg["metadata"])})
    elif name == "os-unset_image_metadata":
        await volumes.unset_image_metadata(caller, vid, arg["key"])
        return respond(None, status=200)
    elif name == "os-show_image_metadata":
        return respond({"metadata": await volumes.image_metadata(caller, vid)})
    elif name == "revert":
        if not caller.at(3, 40):
            raise BadRequest("There is no such action: revert")
        await volumes.revert(caller, vid, arg.get("snapshot_id"))
    elif name == "os-reserve":
        await attachments.reserve(caller, vid)
    elif name == "os-unreserve":
        await attachments.unreserve(caller, vid)
    elif name == "os-begin_detaching":
        await attachments.begin_detaching(caller, vid)
    elif name == "os-roll_detaching":
        await attachments.roll_detaching(caller, vid)
    elif name == "os-attach":
        await attachments.attach(caller, vid, instance_uuid=arg.get("instance_uuid"),
                                 host_name=arg.get("host_name"), mountpoint=arg["mountpoint"],
                                 mode=arg.get("mode", "rw"))
    elif name == "os-detach":
        await attachments.detach(caller, vid, arg.get("attachment_id"))
    elif name == "os-force_detach":
        await attachments.detach(caller, vid, arg.get("attachment_id"),
                                 rule="volume_extension:volume_admin_actions:force_detach")
    elif name == "os-initialize_connection":
        connector = arg["connector"]
        if not isinstance(connector, dict):
            raise BadRequest("Invalid input received: connector must be an object.")
        info = await attachments.initialize_connection(caller, vid, connector)
        return respond({"connection_info": info})
    elif name == "os-terminate_connection":
        await attachments.terminate_connection(caller, vid)
    else:
        raise BadRequest(f"There is no such action: {name}")
    return respond(None, status=202)


def add_routes(app: FastAPI) -> None:
    app.add_api_route(V3 + "/volumes", index, methods=["GET"])
    app.add_api_route(V3 + "/volumes", create, methods=["POST"])
    app.add_api_route(V3 + "/volumes/detail", detail, methods=["GET"])
    app.add_api_route(V3 + "/volumes/summary", summary, methods=["GET"])
    app.add_api_route(V3 + "/volumes/{volume_id}", show, methods=["GET"])
    app.add_api_route(V3 + "/volumes/{volume_id}", update, methods=["PUT"])
    app.add_api_route(V3 + "/volumes/{volume_id}", delete, methods=["DELETE"])
    app.add_api_route(V3 + "/volumes/{volume_id}/action", action, methods=["POST"])
    app.add_api_route(V3 + "/volumes/{volume_id}/metadata", metadata_show, methods=["GET"])
    app.add_api_route(V3 + "/volumes/{volume_id}/metadata", metadata_create, methods=["POST"])
    app.add_api_route(V3 + "/volumes/{volume_id}/metadata", metadata_replace, methods=["PUT"])
    app.add_api_route(V3 + "/volumes/{volume_id}/metadata/{key}", metadata_item_show, methods=["GET"])
    app.add_api_route(V3 + "/volumes/{volume_id}/metadata/{key}", metadata_item_update, methods=["PUT"])
    app.add_api_route(V3 + "/volumes/{volume_id}/metadata/{key}", metadata_item_delete, methods=["DELETE"])
