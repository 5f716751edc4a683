"""Glance v2 routes: parse, authorize, call service.py, render Glance's JSON.

Faults are webob's, as Glance's are: ``{"message", "code": "404 Not Found", "title"}`` for a
client that accepts JSON, an HTML page for one that prefers HTML, plain text otherwise.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mcloud.core.auth import AuthContext, authenticate, runtime_of
from mcloud.core.errors import (APIError, BadRequest, Forbidden, NotFound, RequestTooLarge, UnsupportedMediaType,
                                holds_nul, install_fault_handlers)
from mcloud.core.http import json_response, service_app
from mcloud.core.runtime import Runtime
from mcloud.core.tasks import Task
from mcloud.image import models as m
from mcloud.image import schemas as s
from mcloud.image.service import (BASE, DISALLOWED, HIDDEN_PROPERTIES, READ_ONLY, RESERVED, RESERVED_NAMESPACE,
                                  SORT_KEYS, Caller, ImageService, ImageView)

MAX_REQUEST_BODY_SIZE = 65535  # Glance's max_request_body_size for JSON requests
PATCH_TYPES = {"application/openstack-images-v2.0-json-patch": 4,
               "application/openstack-images-v2.1-json-patch": 10}
API_VERSIONS = [f"2.{n}" for n in range(17, -1, -1)]

# ---------------------------------------------------------------------- faults (webob's formats)

_BODY = "{explanation}<br /><br />\n{detail}\n\n"


def _wants(request: Request) -> str:
    """Which of webob's renderings the Accept header picks: html, json or plain."""
    accept = request.headers.get("accept", "")
    best, best_q = "plain", 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        found = re.search(r"q=([0-9.]+)", params)
        if found:
            try:
                q = float(found.group(1))
            except ValueError:
                q = 0.0
        for offer, name in (("text/html", "html"), ("application/json", "json")):
            matches = media == offer or media == "*/*" or media == offer.split("/")[0] + "/*"
            if matches and q > best_q:
                best, best_q = name, q
    return best


def render_fault(error: APIError, request: Request) -> Response:
    status = f"{error.status} {error.title}"
    body = _BODY.format(explanation=error.message, detail="")
    kind = _wants(request)
    if kind == "json":
        return Response(json.dumps({"message": body, "code": status, "title": error.title}),
                        media_type="application/json")
    if kind == "html":
        page = (f"<html>\n <head>\n  <title>{html.escape(status)}</title>\n </head>\n <body>\n  <h1>"
                f"{html.escape(status)}</h1>\n  {html.escape(error.message)}<br /><br />\n\n\n\n </body>\n</html>")
        return Response(page, media_type="text/html")
    return PlainTextResponse(f"{status}\n\n{error.message}\n\n\n\n  ")


# ---------------------------------------------------------------------- helpers


def svc(request: Request) -> ImageService:
    return request.app.state.image


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


async def who(request: Request) -> tuple[AuthContext, Caller]:
    ctx = await authenticate(request)
    admin = runtime_of(request).policy.check("context_is_admin", ctx.credentials(), {})
    return ctx, Caller(ctx.project_id, admin)


def authorize(request: Request, ctx: AuthContext, rule: str, target: dict[str, Any]) -> None:
    runtime_of(request).policy.authorize(rule, ctx.credentials(), target)


def image_target(image: m.Image, member_of: bool, ctx: AuthContext) -> dict[str, Any]:
    target = {"project_id": image.owner, "owner": image.owner, "visibility": image.visibility}
    if member_of:
        target["member_id"] = ctx.project_id
    return target


async def member_of(session: Any, image: m.Image, caller: Caller) -> bool:
    if not caller.project_id or image.owner == caller.project_id:
        return False
    return await session.get(m.ImageMember, (image.id, caller.project_id)) is not None


async def image_for(request: Request, session: Any, rule: str, image_id: str,
                    *, for_update: bool = False) -> tuple[AuthContext, Caller, m.Image]:
    """The caller, and the image they see, authorized for ``rule`` (404 when they cannot see it)."""
    ctx, caller = await who(request)
    image = await svc(request).get_image(session, caller, image_id, for_update=for_update)
    authorize(request, ctx, rule, image_target(image, await member_of(session, image, caller), ctx))
    return ctx, caller, image


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_REQUEST_BODY_SIZE:
        raise RequestTooLarge("Request is too large.")
    if not raw.strip():
        raise BadRequest("Body expected in request.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Malformed JSON in request body.") from None
    if holds_nul(body):
        raise BadRequest("Invalid input: a string in the body holds a NUL character.")
    return body


def r_image(view: ImageView) -> dict[str, Any]:
    img = view.image
    out: dict[str, Any] = {k: v for k, v in view.properties.items() if k not in HIDDEN_PROPERTIES}
    out.update({
        "name": img.name, "disk_format": img.disk_format, "container_format": img.container_format,
        "visibility": img.visibility, "size": img.size, "virtual_size": img.virtual_size, "status": img.status,
        "checksum": img.checksum, "protected": img.protected, "min_ram": img.min_ram, "min_disk": img.min_disk,
        "owner": img.owner, "os_hidden": img.os_hidden, "os_hash_algo": img.os_hash_algo,
        "os_hash_value": img.os_hash_value, "id": img.id, "created_at": iso(img.created_at),
        "updated_at": iso(img.updated_at), "tags": view.tags, "self": f"/v2/images/{img.id}",
        "file": f"/v2/images/{img.id}/file", "schema": "/v2/schemas/image"})
    if view.stores:
        out["stores"] = ",".join(view.stores)
    return out


def r_member(member: m.ImageMember) -> dict[str, Any]:
    return {"created_at": iso(member.created_at), "image_id": member.image_id, "member_id": member.member,
            "schema": "/v2/schemas/member", "status": member.status, "updated_at": iso(member.updated_at)}


def r_task(task: Task) -> dict[str, Any]:
    payload = task.payload or {}
    status = {"pending": "pending", "running": "processing", "succeeded": "success", "failed": "failure"}
    return {"id": task.id, "image_id": task.resource_id, "type": "api_image_import",
            "status": status.get(task.status, task.status), "owner": task.owner_project,
            "message": task.message or "", "result": task.result,
            "input": {"image_id": task.resource_id, "import_req": payload.get("import_req"),
                      "backend": payload.get("stores")},
            "progress": task.progress, "created_at": iso(task.created_at), "updated_at": iso(task.updated_at),
            "expires_at": None, "request_id": payload.get("request_id"), "user_id": payload.get("user_id"),
            "schema": "/v2/schemas/task"}


def versions_doc(request: Request) -> dict[str, Any]:
    root = request.scope.get("root_path", "")
    base = f"{request.url.scheme}://{request.url.netloc}{root}/v2/"
    return {"versions": [{"id": f"v{v}", "status": "CURRENT" if i == 0 else "SUPPORTED",
                          "links": [{"rel": "self", "href": base}]} for i, v in enumerate(API_VERSIONS)]}


# ---------------------------------------------------------------------- list filters

_OPS = {"eq": "__eq__", "neq": "__ne__", "gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}
_IN_KEYS = ("name", "id", "status", "container_format", "disk_format")
_INT_COLUMNS = ("size", "virtual_size", "min_ram", "min_disk")
_STRING_COLUMNS = ("owner", "checksum", "os_hash_value", "os_hash_algo")
_RESERVED_PARAMS = {"limit", "marker", "sort_key", "sort_dir", "sort", "member_status", "tag", "visibility",
                    "os_hidden", "protected"}


def _parse_time(key: str, value: str) -> tuple[str, datetime]:
    op, _, stamp = value.partition(":") if re.match(r"^[a-z]+:", value) else ("eq", "", value)
    if op not in _OPS:
        raise BadRequest(f"Unable to filter by unknown operator '{op}'.")
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f'Bad "{key}" query filter format. Use ISO 8601 DateTime notation.') from None
    if parsed.tzinfo is not None:
        parsed = (parsed - parsed.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return op, parsed


def list_filters(params: list[tuple[str, str]]) -> tuple[list[Any], dict[str, str]]:
    """(column conditions, custom property filters) from the query string, Glance's way."""
    conditions: list[Any] = []
    properties: dict[str, str] = {}
    for key, value in params:
        if key in _RESERVED_PARAMS:
            continue
        if key == "changes-since":
            raise BadRequest('The "changes-since" filter is no longer available on v2.')
        if key.endswith("_min") or key.endswith("_max"):
            column = key[:-4]
            if column in _INT_COLUMNS:
                try:
                    number = int(value)
                except ValueError:
                    raise BadRequest("Unable to filter on a range with a non-numeric value.") from None
                col = getattr(m.Image, column)
                conditions.append(col >= number if key.endswith("_min") else col <= number)
                continue
        if key in ("created_at", "updated_at"):
            op, when = _parse_time(key, value)
            conditions.append(getattr(getattr(m.Image, key), _OPS[op])(when))
        elif key in _IN_KEYS:
            col = getattr(m.Image, key)
            if value.startswith("in:"):
                items = [v.strip('"') for v in re.findall(r'"[^"]*"|[^,]+', value[3:])]
                conditions.append(col.in_(items))
            else:
                conditions.append(col == value)
        elif key in _INT_COLUMNS:
            try:
                conditions.append(getattr(m.Image, key) == int(value))
            except ValueError:
                raise BadRequest(f"Invalid value '{value}' for '{key}' filter: it must be an integer.") from None
        elif key in _STRING_COLUMNS:
            conditions.append(getattr(m.Image, key) == value)
        else:
            properties[key] = value
    return conditions, properties


def sorting(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    keys = [v.strip() for k, v in params if k == "sort_key"]
    dirs = [v.strip() for k, v in params if k == "sort_dir"]
    sort = [v for k, v in params if k == "sort"]

    def check_key(key: str) -> str:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}.")
        return key

    def check_dir(direction: str) -> str:
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
        return direction

    if sort:
        if keys or dirs:
            raise BadRequest("Old and new sorting syntax cannot be combined")
        out = []
        for item in sort[-1].strip().split(","):
            key, _, direction = item.partition(":")
            out.append((check_key(key.strip()), check_dir(direction.strip() or "desc")))
        return out
    keys = [check_key(k) for k in keys] or ["created_at"]
    dirs = [check_dir(d) for d in dirs]
    if len(dirs) > 1 and len(dirs) != len(keys):
        raise BadRequest("Number of sort dirs does not match the number of sort keys")
    if not dirs:
        dirs = ["desc"]
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    return list(zip(keys, dirs, strict=True))


# ---------------------------------------------------------------------- JSON patch


def _pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise BadRequest("Pointer must be a string.")
    if not pointer.startswith("/"):
        raise BadRequest(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise BadRequest(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise BadRequest(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/":
        raise BadRequest(f"Pointer `{pointer}` does not contains valid token.")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise BadRequest(f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.')
    return [part.replace("~1", "/").replace("~0", "~").strip() for part in pointer.lstrip("/").split("/")]


def parse_patch(request: Request, body: Any, service: ImageService) -> list[dict[str, Any]]:
    version = PATCH_TYPES[request.headers.get("content-type", "").split(";")[0].strip().lower()]
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    ops = ("add", "remove", "replace")
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        if version == 10:
            op = raw.get("op")
            if op is None:
                raise BadRequest("Unable to find `op` in JSON Schema change. It must be one of the following: "
                                 "add, remove, replace.")
            if op not in ops:
                raise BadRequest(f"Invalid operation: `{op}`. It must be one of the following: add, remove, replace.")
            if "path" not in raw:
                raise BadRequest("Unable to find 'path' in JSON Schema change")
            path = _pointer(raw["path"])
        else:
            present = [k for k in ops if k in raw]
            if len(present) > 1:
                raise BadRequest('Operation objects must contain only one member named "add", "remove", or '
                                 '"replace".')
            if not present:
                raise BadRequest('Operation objects must contain exactly one member named "add", "remove", or '
                                 '"replace".')
            op = present[0]
            path = _pointer(raw[op])
        limits = {"locations": {"add": 2, "remove": 2, "replace": 1}}
        if len(path) != limits.get(path[0], {}).get(op, 1):
            raise BadRequest(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
        change: dict[str, Any] = {"op": op, "path": path, "version": version}
        if op != "remove":
            if "value" not in raw:
                raise BadRequest(f'Operation "{op}" requires a member named "value".')
            change["value"] = raw["value"]
        root = path[0]
        if root in READ_ONLY:
            raise Forbidden(f"Attribute '{root}' is read-only.")
        if root in RESERVED or root.startswith(RESERVED_NAMESPACE):
            raise Forbidden(f"Attribute '{root}' is reserved.")
        if op != "remove" and root != "locations":
            s.check_value(service.config, root, change["value"])
        changes.append(change)
    return changes


# ---------------------------------------------------------------------- the app


class _StartWorker:
    """Starts the image service's task worker with the first request this process serves (the
    app has no lifespan: `mcloud up` checks every mount right after it starts listening)."""

    def __init__(self, app: ASGIApp, image: ImageService):
        self.app = app
        self.image = image

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.image.tasks.started:
            self.image.start()
        await self.app(scope, receive, send)


def build(runtime: Runtime, image: ImageService) -> FastAPI:
    app = service_app("mCloud Image v2", runtime=runtime, image=image)
    app.router.redirect_slashes = False  # /v2/images/ is not the list: Glance answers 404
    # a 401 names where to get a token, as keystonemiddleware's does
    install_fault_handlers(app, render_fault, www_authenticate=lambda request: (
        f'Keystone uri="{request.url.scheme}://{request.url.netloc}/identity"'))
    app.add_middleware(_StartWorker, image=image)
    from mcloud.image import api_metadefs

    for route in [*router.routes, *api_metadefs.router.routes]:
        app.router.routes.append(route)
    return app


router = APIRouter()


@router.get("/")
async def versions_root(request: Request) -> Response:
    return json_response(versions_doc(request), status=300)


@router.get("/versions")
async def versions(request: Request) -> Response:
    return json_response(versions_doc(request))


@router.get("/v2/schemas/image")
async def schema_image(request: Request) -> Response:
    await authenticate(request)
    return json_response(s.image_schema(svc(request).config))


@router.get("/v2/schemas/images")
async def schema_images(request: Request) -> Response:
    await authenticate(request)
    return json_response(s.images_schema(svc(request).config))


@router.get("/v2/schemas/member")
async def schema_member(request: Request) -> Response:
    await authenticate(request)
    return json_response(s.member_schema())


@router.get("/v2/schemas/members")
async def schema_members(request: Request) -> Response:
    await authenticate(request)
    return json_response(s.members_schema())


@router.get("/v2/info/import")
async def info_import(request: Request) -> Response:
    await authenticate(request)
    return json_response({"import-methods": {"description": "Import methods available.", "type": "array",
                                             "value": svc(request).import_methods()}})


@router.get("/v2/info/stores")
async def info_stores(request: Request) -> Response:
    await authenticate(request)
    service = svc(request)
    stores = []
    for store in service.stores.values():
        item: dict[str, Any] = {"id": store.id, "description": store.description}
        if store.id == service.default_store:
            item["default"] = True
        stores.append(item)
    return json_response({"stores": stores})


@router.get("/v2/info/stores/detail")
async def info_stores_detail(request: Request) -> Response:
    ctx = await authenticate(request)
    authorize(request, ctx, "stores_info_detail", {"project_id": ctx.project_id})
    service = svc(request)
    stores = []
    for name, store in service.stores.items():
        item: dict[str, Any] = {"id": store.id, "description": store.description, "type": type(store).__module__
                                .rsplit(".", 1)[-1], "weight": 0,
                                "properties": dict(getattr(store, "properties", {}) or {})}
        if name == service.default_store:
            item["default"] = True
        stores.append(item)
    return json_response({"stores": stores})


@router.get("/v2/info/usage")
async def info_usage(request: Request) -> Response:
    ctx, caller = await who(request)
    if not caller.project_id:
        raise Forbidden("Usage is reported for a project: use a project-scoped token.")
    async with svc(request).db.read() as session:
        usages = await svc(request).usages(session, caller.project_id)
    return json_response({"usage": {k: {"limit": u.limit if u.limit is not None else -1, "usage": u.usage}
                                    for k, u in usages.items()}})


@router.get("/v2/images")
async def list_images(request: Request) -> Response:
    ctx, caller = await who(request)
    authorize(request, ctx, "get_images", {"project_id": ctx.project_id})
    service = svc(request)
    params = list(request.query_params.multi_items())
    single = dict(params)
    limit_raw = single.get("limit")
    limit = service.config.limit_param_default
    if limit_raw is not None:
        try:
            limit = int(limit_raw)
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
        if limit < 0:
            raise BadRequest("limit param must be positive")
    limit = min(limit, service.config.api_limit_max)
    member_status = single.get("member_status", "accepted")
    if member_status not in ("pending", "accepted", "rejected", "all"):
        raise BadRequest(f"Invalid status: {member_status}")
    visibility = single.get("visibility")
    if visibility is not None and visibility not in ("community", "public", "private", "shared", "all"):
        raise BadRequest(f"Invalid visibility value: {visibility}")
    os_hidden = single.get("os_hidden", "false").lower()
    if os_hidden not in ("true", "false"):
        raise BadRequest(f"Invalid value '{os_hidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'.")
    conditions, properties = list_filters(params)
    conditions.append(m.Image.os_hidden == (os_hidden == "true"))
    if "protected" in single:
        protected = single["protected"]
        if protected not in ("true", "false"):
            raise BadRequest(f"Invalid value '{protected}' for 'protected' filter. Valid values are 'true' or 'false'.")
        conditions.append(m.Image.protected == (protected == "true"))
    tags = [v.strip() for k, v in params if k == "tag"]
    sort = sorting(params)
    async with service.db.read() as session:
        images, more = await service.list_images(
            session, caller, conditions=conditions, tags=tags, properties=properties, member_status=member_status,
            visibility=visibility, sort=sort, limit=limit, marker=single.get("marker"))
        views = await service.views(session, images)
    query = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {"images": [r_image(v) for v in views], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if query:
        body["first"] = f"/v2/images?{urlencode(query)}"
    if more and images:
        body["next"] = f"/v2/images?{urlencode([*query, ('marker', images[-1].id)])}"
    return json_response(body)


@router.post("/v2/images")
async def create_image(request: Request) -> Response:
    ctx, caller = await who(request)
    service = svc(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Provided object does not match schema 'image': the body must be a JSON object")
    for key in DISALLOWED:
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    for key in READ_ONLY:
        if key in body and key != "id":
            raise Forbidden(f"Attribute '{key}' is read-only.")
    s.check_image(service.config, body)
    tags = body.pop("tags", [])
    fields = {k: body.pop(k) for k in list(body) if k in BASE}
    for key in body:
        if key in RESERVED or key.startswith(RESERVED_NAMESPACE):
            raise Forbidden(f"Attribute '{key}' is reserved.")
    owner = fields.get("owner") or ctx.project_id
    authorize(request, ctx, "add_image", {"project_id": ctx.project_id, "owner": owner,
                                          "visibility": fields.get("visibility", "shared")})
    if fields.get("visibility") == "public":
        authorize(request, ctx, "publicize_image", {"project_id": ctx.project_id, "owner": owner})
    if fields.get("visibility") == "community":
        authorize(request, ctx, "communitize_image", {"project_id": ctx.project_id, "owner": owner})
    if "owner" in fields and fields["owner"] != ctx.project_id and not caller.is_admin:
        raise Forbidden("You are not permitted to create images owned by another project.")
    async with service.db.write() as session:
        image = await service.create_image(session, caller, fields, body, tags)
        view = await service.view(session, image)
    headers = {"Location": f"/v2/images/{image.id}",
               "OpenStack-image-import-methods": ",".join(service.import_methods()),
               "OpenStack-image-store-ids": ",".join(service.stores)}
    return json_response(r_image(view), status=201, headers=headers)


@router.get("/v2/images/{image_id}")
async def show_image(request: Request, image_id: str) -> Response:
    service = svc(request)
    async with service.db.read() as session:
        ctx, caller, image = await image_for(request, session, "get_image", image_id)
        view = await service.view(session, image)
    return json_response(r_image(view))


@router.patch("/v2/images/{image_id}")
async def update_image(request: Request, image_id: str) -> Response:
    ctx, caller = await who(request)
    service = svc(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in PATCH_TYPES:
        allowed = ", ".join(sorted(PATCH_TYPES))
        error = UnsupportedMediaType(f"Image PATCH expects Content-Type one of: {allowed}")
        error.headers = {"Accept-Patch": allowed}
        raise error
    async with service.db.write() as session:
        image = await service.get_image(session, caller, image_id, for_update=True)
        target = image_target(image, await member_of(session, image, caller), ctx)
        authorize(request, ctx, "modify_image", target)
        changes = parse_patch(request, await json_body(request), service)
        for change in changes:
            key = change["path"][0]
            if key == "visibility" and change.get("value") == "public" and image.visibility != "public":
                authorize(request, ctx, "publicize_image", target)
            if key == "visibility" and change.get("value") == "community" and image.visibility != "community":
                authorize(request, ctx, "communitize_image", target)
        await service.update_image(session, caller, image, changes)
        view = await service.view(session, image)
    return json_response(r_image(view))


@router.delete("/v2/images/{image_id}")
async def delete_image(request: Request, image_id: str) -> Response:
    service = svc(request)
    async with service.db.read() as session:
        ctx, caller, image = await image_for(request, session, "delete_image", image_id)
    await service.delete_image(caller, image_id)
    return Response(status_code=204)


async def _authorized(request: Request, image_id: str, rule: str) -> tuple[Caller, m.Image]:
    async with svc(request).db.read() as session:
        _ctx, caller, image = await image_for(request, session, rule, image_id)
    return caller, image


def _octet_stream(request: Request) -> int | None:
    content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    if content_type != "application/octet-stream":
        raise UnsupportedMediaType(f"Content-Type must be application/octet-stream, not {content_type}")
    length = request.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


@router.put("/v2/images/{image_id}/file")
async def upload_file(request: Request, image_id: str) -> Response:
    caller, image = await _authorized(request, image_id, "upload_image")
    service = svc(request)
    size = _octet_stream(request)
    if image.status == "queued" and (not image.disk_format or not image.container_format):
        raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
    store = request.headers.get("x-image-meta-store")
    await service.upload(caller, image_id, request.stream(), size_hint=size, store_id=store)
    return Response(status_code=204)


@router.put("/v2/images/{image_id}/stage")
async def stage_file(request: Request, image_id: str) -> Response:
    caller, _image = await _authorized(request, image_id, "upload_image")
    service = svc(request)
    if "glance-direct" not in service.import_methods():
        raise NotFound("glance-direct import method is not enabled")
    size = _octet_stream(request)
    await service.stage(caller, image_id, request.stream(), size_hint=size)
    return Response(status_code=204)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.get("/v2/images/{image_id}/file")
async def download_file(request: Request, image_id: str) -> Response:
    service = svc(request)
    async with service.db.read() as session:
        ctx, caller, image = await image_for(request, session, "download_image", image_id)
        if image.status == "deactivated" and not caller.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
        location = await service.data_location(session, image)
    if location is None or image.size is None:
        return Response(status_code=204)
    size = image.size
    headers = {"Content-Type": "application/octet-stream"}
    if image.checksum:
        headers["Content-MD5"] = image.checksum
    spec = request.headers.get("range") or request.headers.get("content-range")
    if spec:
        start, end = _parse_range(spec, size)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        return StreamingResponse(service.read(location, start, end - start + 1), status_code=206, headers=headers)
    headers["Content-Length"] = str(size)
    return StreamingResponse(service.read(location), headers=headers)


class RangeNotSatisfiable(APIError):
    status = 416


def _parse_range(spec: str, size: int) -> tuple[int, int]:
    spec = spec.strip()
    found = _RANGE.match(spec)
    if found is None:
        content = re.match(r"^bytes (\d+)-(\d+)/(\d+|\*)$", spec)  # Content-Range, as old clients send
        if content is None:
            raise BadRequest(f"Invalid Range header: {spec}")
        first, last = int(content.group(1)), int(content.group(2))
    else:
        a, b = found.groups()
        if a == "" and b == "":
            raise BadRequest(f"Invalid Range header: {spec}")
        if a == "":
            length = int(b)
            if length == 0:
                raise _unsatisfiable(size)
            first, last = max(size - length, 0), size - 1
        else:
            first = int(a)
            last = int(b) if b else size - 1
    if first > last or first >= size:
        raise _unsatisfiable(size)
    return first, min(last, size - 1)


def _unsatisfiable(size: int) -> APIError:
    error = RangeNotSatisfiable("Requested range not satisfiable")
    error.headers = {"Content-Range": f"bytes */{size}"}
    return error


@router.post("/v2/images/{image_id}/import")
async def import_image(request: Request, image_id: str) -> Response:
    await authenticate(request)
    service = svc(request)
    body = await json_body(request)
    copying = isinstance(body, dict) and isinstance(body.get("method"), dict) and \
        body["method"].get("name") == "copy-image"
    if copying and "copy-image" not in service.import_methods():
        raise BadRequest("Unknown import method name 'copy-image'.")
    caller, _image = await _authorized(request, image_id, "copy_image" if copying else "modify_image")
    if not isinstance(body, dict):
        raise BadRequest("Import request requires a 'method' field.")
    method = body.get("method")
    if not isinstance(method, dict):
        raise BadRequest("Import request requires a 'method' field.")
    name = method.get("name")
    if not isinstance(name, str):
        raise BadRequest("Import request requires a 'name' field.")
    must_succeed = body.get("all_stores_must_succeed", True)
    if not isinstance(must_succeed, bool):
        raise BadRequest("'all_stores_must_succeed' must be boolean value only")
    all_stores = body.get("all_stores", False)
    if not isinstance(all_stores, bool):
        raise BadRequest("'all_stores' must be boolean value only")
    stores = body.get("stores")
    header = request.headers.get("x-image-meta-store")
    if stores is not None:
        if not isinstance(stores, list) or not all(isinstance(x, str) for x in stores):
            raise BadRequest("'stores' must be a list of store identifiers")
    elif header:
        stores = [header]
    uri = method.get("uri")
    if uri is not None and not isinstance(uri, str):
        raise BadRequest("'uri' must be a string")
    await service.start_import(caller, image_id, name, uri=uri, stores=stores, all_stores=all_stores,
                               all_stores_must_succeed=must_succeed,
                               request_id=getattr(request.state, "request_id", None), import_req=body)
    return Response(status_code=202)


@router.delete("/v2/stores/{store_id}/{image_id}")
async def delete_from_store(request: Request, store_id: str, image_id: str) -> Response:
    service = svc(request)
    caller, _image = await _authorized(request, image_id, "delete_image_location")
    await service.delete_from_store(caller, image_id, store_id)
    return Response(status_code=204)


@router.get("/v2/images/{image_id}/tasks")
async def image_tasks(request: Request, image_id: str) -> Response:
    service = svc(request)
    async with service.db.read() as session:
        ctx, caller, image = await image_for(request, session, "get_image", image_id)
        tasks = await service.image_tasks(session, image)
    return json_response({"tasks": [r_task(t) for t in tasks]})


@router.post("/v2/tasks")
async def create_task(request: Request) -> Response:
    """The legacy tasks API (admin only): an ``import`` task fetches ``import_from`` like web-download."""
    ctx, caller = await who(request)
    authorize(request, ctx, "tasks_api_access", {"project_id": ctx.project_id})
    authorize(request, ctx, "add_task", {"project_id": ctx.project_id})
    service = svc(request)
    body = await json_body(request)
    if not isinstance(body, dict) or body.get("type") != "import" or not isinstance(body.get("input"), dict):
        raise BadRequest("Task type must be 'import' with an 'input' object.")
    data = body["input"]
    uri = data.get("import_from")
    props = data.get("image_properties") or {}
    if not isinstance(uri, str) or not isinstance(props, dict):
        raise BadRequest("Input of an import task needs 'import_from' (a URL) and 'image_properties'.")
    if not service.web_download_allowed(uri):
        raise BadRequest(f"URI for web-download does not pass filtering: {uri}")
    s.check_image(service.config, props)
    props = dict(props)
    tags = props.pop("tags", [])
    fields = {k: props.pop(k) for k in list(props) if k in BASE}
    for key in (*READ_ONLY, *DISALLOWED):
        if key in fields and key != "id":
            raise Forbidden(f"Attribute '{key}' is read-only.")
    async with service.db.write() as session:
        image = await service.create_image(session, caller, fields, props, tags)
    task_id = await service.start_import(caller, image.id, "web-download", uri=uri,
                                         request_id=getattr(request.state, "request_id", None), import_req=body)
    async with service.db.read() as session:
        task = await service.tasks.get(session, task_id)
    assert task is not None
    out = r_task(task)
    out.update(type="import", input=data)
    return json_response(out, status=201)


@router.get("/v2/tasks")
async def list_tasks(request: Request) -> Response:
    ctx, caller = await who(request)
    authorize(request, ctx, "tasks_api_access", {"project_id": ctx.project_id})
    authorize(request, ctx, "get_tasks", {"project_id": ctx.project_id})
    service = svc(request)
    async with service.db.read() as session:
        rows = await session.execute(sa.select(Task).where(Task.kind == "image.import")
                                     .order_by(Task.created_at.desc()).limit(service.config.api_limit_max))
        tasks = list(rows.scalars())
    return json_response({"tasks": [r_task(t) for t in tasks], "first": "/v2/tasks", "schema": "/v2/schemas/tasks"})


@router.get("/v2/tasks/{task_id}")
async def show_task(request: Request, task_id: str) -> Response:
    ctx, caller = await who(request)
    authorize(request, ctx, "tasks_api_access", {"project_id": ctx.project_id})
    authorize(request, ctx, "get_task", {"project_id": ctx.project_id})
    service = svc(request)
    async with service.db.read() as session:
        task = await service.tasks.get(session, task_id)
    if task is None or task.kind != "image.import":
        raise NotFound(f"Task with the given ID {task_id} could not be found")
    return json_response(r_task(task))


@router.put("/v2/images/{image_id}/tags/{tag}")
async def add_tag(request: Request, image_id: str, tag: str) -> Response:
    service = svc(request)
    if len(tag) > 255:
        raise BadRequest(f"Provided object does not match schema 'image': {tag!r} is too long")
    async with service.db.write() as session:
        ctx, caller, image = await image_for(request, session, "modify_image", image_id, for_update=True)
        await service.add_tag(session, image, tag)
    return Response(status_code=204)


@router.delete("/v2/images/{image_id}/tags/{tag}")
async def delete_tag(request: Request, image_id: str, tag: str) -> Response:
    service = svc(request)
    async with service.db.write() as session:
        ctx, caller, image = await image_for(request, session, "modify_image", image_id, for_update=True)
        await service.delete_tag(session, image, tag)
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/actions/{action}")
async def image_action(request: Request, image_id: str, action: str) -> Response:
    if action not in ("deactivate", "reactivate"):
        raise NotFound("The resource could not be found.")
    service = svc(request)
    async with service.db.write() as session:
        ctx, caller, image = await image_for(request, session, action, image_id, for_update=True)
        if action == "deactivate":
            await service.deactivate(image)
        else:
            await service.reactivate(image)
    return Response(status_code=204)


@router.get("/v2/images/{image_id}/members")
async def list_members(request: Request, image_id: str) -> Response:
    ctx, caller = await who(request)
    service = svc(request)
    async with service.db.read() as session:
        image = await service.get_image(session, caller, image_id)
        is_member = await member_of(session, image, caller)
        if image.visibility != "shared" and not caller.is_admin and image.owner != caller.project_id:
            raise NotFound(f"No image found with ID {image_id}")
        authorize(request, ctx, "get_members", image_target(image, is_member, ctx))
        members = await service.members(session, caller, image)
    return json_response({"members": [r_member(x) for x in members], "schema": "/v2/schemas/members"})


@router.post("/v2/images/{image_id}/members")
async def add_member(request: Request, image_id: str) -> Response:
    service = svc(request)
    body = await json_body(request)
    if not isinstance(body, dict) or "member" not in body:
        raise BadRequest("Member to be added not specified")
    member_id = body["member"]
    if not isinstance(member_id, str) or not member_id.strip() or len(member_id) > 255:
        raise BadRequest("Member to be added not specified")
    async with service.db.write() as session:
        ctx, caller, image = await image_for(request, session, "add_member", image_id, for_update=True)
        member = await service.add_member(session, caller, image, member_id)
    return json_response(r_member(member))


@router.get("/v2/images/{image_id}/members/{member_id}")
async def show_member(request: Request, image_id: str, member_id: str) -> Response:
    service = svc(request)
    async with service.db.read() as session:
        ctx, caller, image = await image_for(request, session, "get_member", image_id)
        member = await service.get_member(session, caller, image, member_id)
    return json_response(r_member(member))


@router.put("/v2/images/{image_id}/members/{member_id}")
async def update_member(request: Request, image_id: str, member_id: str) -> Response:
    ctx, caller = await who(request)
    service = svc(request)
    body = await json_body(request)
    if not isinstance(body, dict) or "status" not in body:
        raise BadRequest("Status not specified")
    status = body["status"]
    if not isinstance(status, str) or status not in ("pending", "accepted", "rejected"):
        raise BadRequest(f"Provided object does not match schema 'member': {status!r} is not one of "
                         "['pending', 'accepted', 'rejected']")
    async with service.db.write() as session:
        image = await service.get_image(session, caller, image_id, for_update=True)
        await service.get_member(session, caller, image, member_id)
        authorize(request, ctx, "modify_member", image_target(image, await member_of(session, image, caller), ctx))
        member = await service.update_member(session, caller, image, member_id, status)
    return json_response(r_member(member))


@router.delete("/v2/images/{image_id}/members/{member_id}")
async def delete_member(request: Request, image_id: str, member_id: str) -> Response:
    service = svc(request)
    async with service.db.write() as session:
        ctx, caller, image = await image_for(request, session, "delete_member", image_id, for_update=True)
        await service.delete_member(session, caller, image, member_id)
    return Response(status_code=204)


__all__ = ["build", "render_fault", "sa"]
