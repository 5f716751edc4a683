"""Nova's image proxy (``/images``, deprecated: it answers up to 2.35 and is a 404 from 2.36, as
Nova's): the image service's images as Nova shows them (``minRam``, ``minDisk``, ``metadata`` =
the custom properties, SAVING/ACTIVE/... and ``progress``, the ``server`` a snapshot came from),
delete, and the image metadata API. Clients of microversion 2.1 (Tempest's compute images
tests, novaclient's ``image-*``) read snapshots made by createImage through it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import schemas as sc
from mcloud.compute.api import V21, base_url, body_of, caller_of, compute_of, query, respond
from mcloud.compute.service import Caller, utc
from mcloud.core.errors import APIError, BadRequest, Forbidden, NotFound
from mcloud.core.pagination import next_link

UNTIL = (2, 35)
#: Nova's image status from Glance's, and the progress it shows (nova/api/openstack/compute/views/images.py)
STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
          "uploading": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR",
          "deactivated": "ERROR"}
PROGRESS = {"queued": 25, "saving": 50, "importing": 50, "uploading": 50, "active": 100}
META_ALL = {"type": "object", "properties": {"metadata": {"type": "object"}}, "required": ["metadata"],
            "additionalProperties": False}
META_ONE = {"type": "object", "properties": {"meta": {"type": "object", "minProperties": 1, "maxProperties": 1}},
            "required": ["meta"], "additionalProperties": False}


def _links(request: Request, image_id: str) -> list[dict[str, str]]:
    base = base_url(request)
    glance = base.rsplit("/", 1)[0] + "/image"
    return [{"rel": "self", "href": f"{base}{V21}/images/{image_id}"},
            {"rel": "bookmark", "href": f"{base}/images/{image_id}"},
            {"rel": "alternate", "type": "application/vnd.openstack.image", "href": f"{glance}/images/{image_id}"}]


def _image_body(request: Request, view: Any) -> dict[str, Any]:
    image = view.image
    props = dict(view.properties)
    out: dict[str, Any] = {
        "id": image.id, "name": image.name, "minRam": int(image.min_ram or 0), "minDisk": int(image.min_disk or 0),
        "metadata": props, "created": utc(image.created_at), "updated": utc(image.updated_at),
        "status": STATUS.get(image.status, "UNKNOWN"), "progress": PROGRESS.get(image.status, 0),
        "links": _links(request, image.id), "OS-EXT-IMG-SIZE:size": image.size,
    }
    server = props.get("instance_uuid")
    if server:
        base = base_url(request)
        out["server"] = {"id": server, "links": [{"rel": "self", "href": f"{base}{V21}/servers/{server}"},
                                                 {"rel": "bookmark", "href": f"{base}/servers/{server}"}]}
    return out


async def _image(compute: Any, session: Any, caller: Caller, image_id: str) -> Any:
    try:
        return await compute.image.get_image(session, caller.image_caller(), image_id)
    except APIError as exc:
        if exc.status == 404:
            raise NotFound("Image not found.") from None
        raise


def _may_change(caller: Caller, image: Any) -> None:
    if not caller.is_admin and image.owner != caller.project_id:
        raise Forbidden(f"You are not authorized to change image {image.id}.")


async def list_images(request: Request) -> Response:
    return await _list(request, False)


async def list_images_detail(request: Request) -> Response:
    return await _list(request, True)


async def _list(request: Request, detail: bool) -> Response:
    from mcloud.image import models as im  # noqa: PLC0415

    caller = await caller_of(request, until=UNTIL)
    compute = compute_of(request)
    params = {k: v[-1] for k, v in query(request).items()}
    conds: list[Any] = []
    props: dict[str, str] = {}
    if "name" in params:
        conds.append(im.Image.name == params["name"])
    if "status" in params:
        glance = [g for g, n in STATUS.items() if n == params["status"].upper()]
        conds.append(im.Image.status.in_(glance or ["-"]))
    for key, column in (("minRam", im.Image.min_ram), ("minDisk", im.Image.min_disk)):
        if key in params:
            try:
                conds.append(column >= int(params[key]))
            except ValueError:
                raise BadRequest(f"Invalid {key} filter [{params[key]}]") from None
    if "changes-since" in params:
        from mcloud.compute.service_servers import parse_time  # noqa: PLC0415

        conds.append(im.Image.updated_at >= parse_time(params["changes-since"], "changes-since"))
    if "server" in params:
        props["instance_uuid"] = params["server"].rstrip("/").rsplit("/", 1)[-1]
    if "type" in params:
        props["image_type"] = params["type"]
    limit = sc.query_limit(query(request))
    async with compute.db.read() as session:
        images, more = await compute.image.list_images(session, caller.image_caller(), conditions=conds,
                                                       properties=props, limit=limit, marker=params.get("marker"))
        views = await compute.image.views(session, images)
    if detail:
        items = [_image_body(request, v) for v in views]
    else:
        items = [{"id": v.image.id, "name": v.image.name, "links": _links(request, v.image.id)} for v in views]
    body: dict[str, Any] = {"images": items}
    if more and images and limit:
        path = f"{base_url(request)}{V21}/images" + ("/detail" if detail else "")
        keep = {k: v for k, v in params.items() if k not in ("marker", "limit")}
        body["images_links"] = [next_link(path, keep, images[-1].id, limit)]
    return respond(body)


async def show_image(request: Request, image_id: str) -> Response:
    caller = await caller_of(request, until=UNTIL)
    compute = compute_of(request)
    async with compute.db.read() as session:
        image = await _image(compute, session, caller, image_id)
        view = await compute.image.view(session, image)
    return respond({"image": _image_body(request, view)})


async def delete_image(request: Request, image_id: str) -> Response:
    caller = await caller_of(request, until=UNTIL)
    compute = compute_of(request)
    async with compute.db.read() as session:
        image = await _image(compute, session, caller, image_id)
    _may_change(caller, image)
    try:
        await compute.image.delete_image(caller.image_caller(), image_id)
    except APIError as exc:
        if exc.status == 404:
            raise NotFound("Image not found.") from None
        raise
    return respond(None, 204)


# ---------------------------------------------------------------------- image metadata


async def _metadata(request: Request, image_id: str) -> dict[str, str]:
    caller = await caller_of(request, until=UNTIL)
    compute = compute_of(request)
    async with compute.db.read() as session:
        image = await _image(compute, session, caller, image_id)
        return dict((await compute.image.view(session, image)).properties)


async def _set_metadata(request: Request, image_id: str, items: dict[str, Any], replace: bool) -> dict[str, str]:
    caller = await caller_of(request, until=UNTIL)
    compute = compute_of(request)
    for key, value in items.items():
        if not isinstance(value, str) or not key or len(key) > 255 or len(value) > 255:
            raise BadRequest(f"Invalid metadata item {key}")
    async with compute.db.write() as session:
        image = await _image(compute, session, caller, image_id)
        _may_change(caller, image)
        current = dict((await compute.image.view(session, image)).properties)
        changes = [{"op": "remove", "path": [k]} for k in current if replace and k not in items]
        changes += [{"op": "add", "path": [k], "value": v} for k, v in items.items()]
        try:
            await compute.image.update_image(session, caller.image_caller(), image, changes)
        except APIError as exc:
            if exc.status == 413:
                raise Forbidden("Quota exceeded for metadata_items.") from None
            raise
        return dict((await compute.image.view(session, image)).properties)


async def list_image_metadata(request: Request, image_id: str) -> Response:
    return respond({"metadata": await _metadata(request, image_id)})


async def update_image_metadata(request: Request, image_id: str) -> Response:
    body = sc.validate(await body_of(request), META_ALL)
    return respond({"metadata": await _set_metadata(request, image_id, body["metadata"], False)})


async def replace_image_metadata(request: Request, image_id: str) -> Response:
    body = sc.validate(await body_of(request), META_ALL)
    return respond({"metadata": await _set_metadata(request, image_id, body["metadata"], True)})


async def show_image_metadata_item(request: Request, image_id: str, key: str) -> Response:
    meta = await _metadata(request, image_id)
    if key not in meta:
        raise NotFound(f"Image {image_id} has no metadata item {key}.")
    return respond({"meta": {key: meta[key]}})


async def set_image_metadata_item(request: Request, image_id: str, key: str) -> Response:
    body = sc.validate(await body_of(request), META_ONE)
    if key not in body["meta"]:
        raise BadRequest("Request body and URI mismatch")
    meta = await _set_metadata(request, image_id, body["meta"], False)
    return respond({"meta": {key: meta[key]}})


async def delete_image_metadata_item(request: Request, image_id: str, key: str) -> Response:
    caller = await caller_of(request, until=UNTIL)
    compute = compute_of(request)
    async with compute.db.write() as session:
        image = await _image(compute, session, caller, image_id)
        _may_change(caller, image)
        current = (await compute.image.view(session, image)).properties
        if key not in current:
            raise NotFound(f"Image {image_id} has no metadata item {key}.")
        await compute.image.update_image(session, caller.image_caller(), image, [{"op": "remove", "path": [key]}])
    return respond(None, 204)


def add_routes(app: FastAPI) -> None:
    i = V21 + "/images"
    route = app.add_api_route
    route(i, list_images, methods=["GET"])
    route(i + "/detail", list_images_detail, methods=["GET"])
    route(i + "/{image_id}", show_image, methods=["GET"])
    route(i + "/{image_id}", delete_image, methods=["DELETE"], status_code=204)
    route(i + "/{image_id}/metadata", list_image_metadata, methods=["GET"])
    route(i + "/{image_id}/metadata", update_image_metadata, methods=["POST"])
    route(i + "/{image_id}/metadata", replace_image_metadata, methods=["PUT"])
    route(i + "/{image_id}/metadata/{key}", show_image_metadata_item, methods=["GET"])
    route(i + "/{image_id}/metadata/{key}", set_image_metadata_item, methods=["PUT"])
    route(i + "/{image_id}/metadata/{key}", delete_image_metadata_item, methods=["DELETE"], status_code=204)


__all__ = ["add_routes"]
