"""Nova's volume proxies (``/os-volumes`` and ``/os-snapshots``, deprecated: they answer up to
2.35 and are a 404 from 2.36, as Nova's): the volume service's volumes and snapshots in Nova's
camelCase shape (nova/api/openstack/compute/volumes.py and snapshots.py), made, listed, shown and
deleted through ``compute.volume``'s in-process functions with a volume caller of the same user
(seam 3), so Cinder's checks, quotas and states are the volume service's own. Nova's answers:
create 200 with the volume (not Cinder's 202), a quota refusal 403 (Cinder's 413), lists paged by
``offset``/``limit`` over Cinder's list (newest first), only the first attachment shown and
``[{}]`` for a volume attached nowhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import schemas as sc
from mcloud.compute.api import V21, base_url, body_of, caller_of, compute_of, query, respond
from mcloud.compute.service_servers_volumes import volume_caller
from mcloud.core.errors import APIError, BadRequest, Forbidden

UNTIL = (2, 35)
RULE = "os_compute_api:os-volumes:"
#: Nova's os-volumes create schema (nova/api/openstack/compute/schemas/volumes.py)
CREATE_VOLUME = {"type": "object", "properties": {"volume": {
    "type": "object", "properties": {
        "volume_type": {"type": "string"},
        "metadata": {"type": "object"},
        "snapshot_id": {"type": "string"},
        "size": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
        "availability_zone": {"type": "string"},
        "display_name": {"type": "string"},
        "display_description": {"type": "string"}},
    "required": ["size"], "additionalProperties": False}},
    "required": ["volume"], "additionalProperties": False}
CREATE_SNAPSHOT = {"type": "object", "properties": {"snapshot": {
    "type": "object", "properties": {
        "volume_id": {"type": "string"}, "force": sc.BOOLEAN,
        "display_name": {"type": "string"}, "display_description": {"type": "string"}},
    "required": ["volume_id"], "additionalProperties": False}},
    "required": ["snapshot"], "additionalProperties": False}
#: Nova's [api] max_limit: the most a list gives
MAX_LIMIT = 1000


def volume_body(vol: dict[str, Any]) -> dict[str, Any]:
    """A Cinder volume view as Nova's ``_translate_volume_summary_view`` shows it."""
    attachments: list[dict[str, Any]] = [{}]
    if vol.get("attachments"):
        first = vol["attachments"][0]
        att = {"id": vol["id"], "volumeId": vol["id"], "serverId": first["server_id"]}
        if first.get("device"):
            att["device"] = first["device"]
        attachments = [att]
    return {"id": vol["id"], "status": vol["status"], "size": vol["size"],
            "availabilityZone": vol["availability_zone"], "createdAt": vol["created_at"],
            "attachments": attachments, "displayName": vol["name"], "displayDescription": vol["description"],
            "volumeType": vol.get("volume_type"), "snapshotId": vol.get("snapshot_id"),
            "metadata": dict(vol.get("metadata") or {})}


def snapshot_body(snap: dict[str, Any]) -> dict[str, Any]:
    """A Cinder snapshot view as Nova's ``_translate_snapshot_summary_view`` shows it."""
    return {"id": snap["id"], "volumeId": snap["volume_id"], "status": snap["status"], "size": snap["size"],
            "createdAt": snap["created_at"], "displayName": snap["name"],
            "displayDescription": snap["description"]}


def _page(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nova's ``common.limited``: ``offset`` then at most ``limit`` (0 or absent: max_limit); 400
    for a value that is not a non-negative integer."""
    params = query(request)
    limit = sc.query_limit(params, MAX_LIMIT) or MAX_LIMIT
    offset = 0
    if "offset" in params:
        raw = params["offset"][-1]
        if not raw.isdigit():
            raise BadRequest(f"Invalid input for query parameters offset. Value: {raw}.")
        offset = int(raw)
    return items[offset:offset + limit]


def _quota_is_403(exc: APIError) -> APIError:
    """Nova turns Cinder's 413 over-quota into its 403 (OverQuota → HTTPForbidden)."""
    return Forbidden(exc.message) if exc.status == 413 else exc


# ---------------------------------------------------------------------- os-volumes


async def create_volume(request: Request) -> Response:
    caller = await caller_of(request, RULE + "create", until=UNTIL)
    body = (await body_of(request, CREATE_VOLUME))["volume"]
    volume = compute_of(request).volume
    vcaller = volume_caller(caller)
    try:
        vol = await volume.volumes.create(
            vcaller, body["size"], snapshot_id=body.get("snapshot_id"), name=body.get("display_name"),
            volume_type=body.get("volume_type"), availability_zone=body.get("availability_zone"),
            metadata={str(k): str(v) for k, v in (body.get("metadata") or {}).items()},
            description=body.get("display_description"))
    except APIError as exc:
        raise _quota_is_403(exc) from None
    location = f"{base_url(request)}{V21}/os-volumes/{vol['id']}"
    return respond({"volume": volume_body(vol)}, 200, headers={"Location": location})


# ---------------------------------------------------------------------- os-snapshots


async def create_snapshot(request: Request) -> Response:
    caller = await caller_of(request, RULE + "snapshots:create", until=UNTIL)
    body = (await body_of(request, CREATE_SNAPSHOT))["snapshot"]
    force = sc.as_bool(body.get("force", False))
    try:
        snap = await compute_of(request).volume.snapshots.create(
            volume_caller(caller), body["volume_id"], body.get("display_name"), force,
            description=body.get("display_description"))
    except APIError as exc:
        raise _quota_is_403(exc) from None
    return respond({"snapshot": snapshot_body(snap)})


# ---------------------------------------------------------------------- list, show and delete, both kinds

#: collection → (the volume service's part, the policy rules' prefix, Nova's view)
KINDS: dict[str, tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "volumes": ("volumes", "", volume_body), "snapshots": ("snapshots", "snapshots:", snapshot_body)}


def lister(collection: str, rule: str) -> Callable[[Request], Awaitable[Response]]:
    part, prefix, body = KINDS[collection]

    async def list_items(request: Request) -> Response:
        caller = await caller_of(request, RULE + prefix + rule, until=UNTIL)
        views, _rows, _count = await getattr(compute_of(request).volume, part).list(
            volume_caller(caller), {}, detail=True)
        return respond({collection: [body(v) for v in _page(request, views)]})
    return list_items


def shower(collection: str) -> Callable[[Request, str], Awaitable[Response]]:
    part, prefix, body = KINDS[collection]

    async def show_item(request: Request, item_id: str) -> Response:
        caller = await caller_of(request, RULE + prefix + "show", until=UNTIL)
        item = await getattr(compute_of(request).volume, part).get(volume_caller(caller), item_id)
        return respond({collection[:-1]: body(item)})
    return show_item


def deleter(collection: str) -> Callable[[Request, str], Awaitable[Response]]:
    part, prefix, _body = KINDS[collection]

    async def delete_item(request: Request, item_id: str) -> Response:
        caller = await caller_of(request, RULE + prefix + "delete", until=UNTIL)
        await getattr(compute_of(request).volume, part).delete(volume_caller(caller), item_id)
        return respond(None, 202)
    return delete_item


def add_routes(app: FastAPI) -> None:
    creates = {"volumes": create_volume, "snapshots": create_snapshot}
    for collection in ("volumes", "snapshots"):
        base = f"{V21}/os-{collection}"
        app.add_api_route(base, lister(collection, "list"), methods=["GET"])
        app.add_api_route(base, creates[collection], methods=["POST"])
        app.add_api_route(base + "/detail", lister(collection, "detail"), methods=["GET"])
        app.add_api_route(base + "/{item_id}", shower(collection), methods=["GET"])
        app.add_api_route(base + "/{item_id}", deleter(collection), methods=["DELETE"], status_code=202)


__all__ = ["add_routes", "snapshot_body", "volume_body"]
