"""Cinder's volume transfer routes: ``/os-volume-transfer`` (every version) and
``/volume-transfers`` (3.55+): list, detail, create, show, delete and ``/{id}/accept``. Thin:
parse and check at the request's microversion, call ``volume.transfers``, render Cinder's views
(cinder/api/views/transfers.py: links under ``os-volume-transfer``)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.core.errors import BadRequest
from mcloud.volume.api import V3, body_of, caller_of, links, query, respond, volume_of
from mcloud.volume.api_backups import last
from mcloud.volume.api_volumes import page_links
from mcloud.volume.models_backups import Transfer
from mcloud.volume.schemas import BOOLEAN, UUID, as_bool
from mcloud.volume.views import timestamp

COLLECTION = "os-volume-transfer"
CREATE = {
    "type": "object",
    "properties": {"transfer": {"type": "object", "properties": {
        "volume_id": UUID, "name": {"type": ["string", "null"], "maxLength": 255}},
        "required": ["volume_id"], "additionalProperties": False}},
    "required": ["transfer"], "additionalProperties": False,
}
CREATE_V355 = copy.deepcopy(CREATE)
CREATE_V355["properties"]["transfer"]["properties"]["no_snapshots"] = BOOLEAN
ACCEPT = {
    "type": "object",
    "properties": {"accept": {"type": "object", "properties": {"auth_key": {"type": ["string", "integer"]}},
                              "required": ["auth_key"], "additionalProperties": False}},
    "required": ["accept"], "additionalProperties": False,
}
PAGING = ("marker", "limit", "offset", "sort", "sort_key", "sort_dir", "all_tenants")


def summary(request: Request, row: Transfer) -> dict[str, Any]:
    return {"id": row.id, "volume_id": row.volume_id, "name": row.display_name,
            "links": links(request, COLLECTION, row.id)}


def detail(request: Request, caller: Any, row: Transfer, auth_key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "created_at": timestamp(row.created_at), "name": row.display_name,
                           "volume_id": row.volume_id}
    if auth_key is not None:
        out["auth_key"] = auth_key
    out["links"] = links(request, COLLECTION, row.id)
    if caller.at(3, 55):
        out["no_snapshots"] = row.no_snapshots
    if caller.at(3, 57):
        out.update(destination_project_id=row.destination_project_id, source_project_id=row.source_project_id,
                   accepted=row.accepted)
    return out


async def _list(request: Request, with_detail: bool, since: tuple[int, int] | None) -> Response:
    caller = await caller_of(request, since=since)
    params = query(request)
    all_tenants = "all_tenants" in params and as_bool(last(params, "all_tenants"), "all_tenants")
    filters = {k: v[-1] for k, v in params.items() if k not in PAGING}
    paged = caller.at(3, 59)
    sort = dirs = None
    limit = marker = None
    offset = 0
    if paged:
        sort = [k for k in (last(params, "sort") or last(params, "sort_key") or "").split(",") if k] or None
        dirs = [d for d in (last(params, "sort_dir") or "").split(",") if d] or None
        limit, marker = last(params, "limit"), last(params, "marker")
        offset_text = last(params, "offset") or "0"
        if not offset_text.isdigit():
            raise BadRequest(f"Invalid input received: offset must be a non-negative integer, not {offset_text}.")
        offset = int(offset_text)
    rows, size = await volume_of(request).transfers.list(caller, filters, all_tenants=all_tenants, sort=sort,
                                                         sort_dirs=dirs, limit=limit, marker=marker, offset=offset)
    body: dict[str, Any] = {"transfers": [detail(request, caller, r) if with_detail else summary(request, r)
                                          for r in rows]}
    more = page_links(request, f"{COLLECTION}/detail" if with_detail else COLLECTION, rows, params, size)
    if paged and more:
        body["transfers_links"] = more
    return respond(body)


def routes(since: tuple[int, int] | None) -> dict[str, Any]:
    async def list_transfers(request: Request) -> Response:
        return await _list(request, False, since)

    async def list_transfers_detail(request: Request) -> Response:
        return await _list(request, True, since)

    async def create(request: Request) -> Response:
        caller = await caller_of(request, since=since)
        body = (await body_of(request, CREATE_V355 if caller.at(3, 55) else CREATE))["transfer"]
        name = body.get("name")
        row, key = await volume_of(request).transfers.create(
            caller, body["volume_id"], name.strip() if isinstance(name, str) else name,
            no_snapshots=caller.at(3, 55) and as_bool(body.get("no_snapshots", False), "no_snapshots"))
        return respond({"transfer": detail(request, caller, row, auth_key=key)}, status=202)

    async def show(request: Request) -> Response:
        caller = await caller_of(request, since=since)
        row = await volume_of(request).transfers.get(caller, request.path_params["transfer_id"])
        return respond({"transfer": detail(request, caller, row)})

    async def delete(request: Request) -> Response:
        caller = await caller_of(request, since=since)
        await volume_of(request).transfers.delete(caller, request.path_params["transfer_id"])
        return Response(status_code=202)

    async def accept(request: Request) -> Response:
        caller = await caller_of(request, since=since)
        body = (await body_of(request, ACCEPT))["accept"]
        row = await volume_of(request).transfers.accept(caller, request.path_params["transfer_id"],
                                                        str(body["auth_key"]))
        return respond({"transfer": summary(request, row)}, status=202)

    return {"list": list_transfers, "detail": list_transfers_detail, "create": create, "show": show,
            "delete": delete, "accept": accept}


def add_routes(app: FastAPI) -> None:
    for prefix, since in ((COLLECTION, None), ("volume-transfers", (3, 55))):
        r = routes(since)
        base = f"{V3}/{prefix}"
        app.add_api_route(base, r["list"], methods=["GET"])
        app.add_api_route(base, r["create"], methods=["POST"])
        app.add_api_route(base + "/detail", r["detail"], methods=["GET"])
        app.add_api_route(base + "/{transfer_id}", r["show"], methods=["GET"])
        app.add_api_route(base + "/{transfer_id}", r["delete"], methods=["DELETE"])
        app.add_api_route(base + "/{transfer_id}/accept", r["accept"], methods=["POST"])
