"""API errors, raised by service logic and rendered by each service in its own fault format.

Service code raises these (``raise NotFound("Could not find user: x")``); the service's
``api.py`` installs :func:`install_fault_handlers` with a :data:`FaultRenderer` that turns
status, title and message into the body OpenStack clients expect from that service
(Keystone ``{"error": {...}}``, Nova ``{"itemNotFound": {...}}``, Neutron ``{"NeutronError": ...}``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from mcloud.core.http import json_response

log = logging.getLogger("mcloud.errors")


class APIError(Exception):
    """An error with an HTTP status that a client should see."""

    status = 500
    #: extra response headers, e.g. WWW-Authenticate for 401
    headers: dict[str, str] = {}

    def __init__(self, message: str | None = None, **details: Any):
        self.message = message or HTTPStatus(self.status).description or HTTPStatus(self.status).phrase
        self.details = details
        super().__init__(self.message)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class BadRequest(APIError):
    status = 400


class Unauthorized(APIError):
    status = 401


class Forbidden(APIError):
    status = 403


class NotFound(APIError):
    status = 404


class MethodNotAllowed(APIError):
    status = 405


class NotAcceptable(APIError):
    status = 406


class Conflict(APIError):
    status = 409


class Gone(APIError):
    status = 410


class PreconditionFailed(APIError):
    status = 412


class RequestTooLarge(APIError):
    status = 413


class UnsupportedMediaType(APIError):
    status = 415


class NotImplementedYet(APIError):
    status = 501


class ServiceUnavailable(APIError):
    status = 503


#: (error, request) -> the JSON body, or a whole Response for a service whose faults are not
#: always JSON (Glance's follow the request's Accept header). ``error`` is always an APIError.
FaultRenderer = Callable[[APIError, Request], "dict[str, Any] | Response"]


def describe_validation_error(exc: RequestValidationError) -> str:
    """One readable sentence for the first problem pydantic found in a request."""
    errors = exc.errors()
    if not errors:
        return "The request is malformed."
    first = errors[0]
    kind = first.get("type", "")
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    field = ".".join(loc)
    if kind == "json_invalid":
        return "Malformed request body: the body is not valid JSON."
    if kind == "extra_forbidden":
        return f"Invalid input for field '{field}': additional properties are not allowed."
    if kind == "missing":
        if not field:
            return "The request body is missing."
        return f"Invalid input for field '{field}': it is a required property."
    msg = first.get("msg", "invalid value")
    if not field:
        return f"Malformed request body: {msg}."
    return f"Invalid input for field '{field}': {msg}."


def holds_nul(value: Any) -> bool:
    """Whether a parsed JSON value holds a NUL character in any string, key or value.

    No service stores one (PostgreSQL refuses it), so input holding one is a 400."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    return False


class _NulGuard:
    """A URL holding ``%00`` is a 400 in the service's format before any handler sees it."""

    def __init__(self, app: ASGIApp, respond: Callable[[APIError, Request], Response]):
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"%00" in scope.get("raw_path", b"") or b"%00" in scope["query_string"]):
            error = BadRequest("Invalid input: the URL holds a NUL character (%00).")
            await self.respond(error, Request(scope))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_fault_handlers(app: FastAPI, render: FaultRenderer,
                           www_authenticate: Callable[[Request], str] | None = None) -> None:
    """Make every error raised inside ``app`` answer in the service's fault format.

    ``www_authenticate`` gives the challenge a 401 carries (RFC 7235), which for OpenStack
    services names the identity endpoint: ``Keystone uri="https://.../identity"``.
    """

    def respond(error: APIError, request: Request) -> Response:
        headers = dict(error.headers)
        if error.status == 401 and www_authenticate is not None:
            headers.setdefault("WWW-Authenticate", www_authenticate(request))
        body = render(error, request)
        if isinstance(body, Response):
            body.status_code = error.status
            body.headers.update(headers)
            return body
        return json_response(body, status=error.status, headers=headers)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        return respond(exc, request)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return respond(BadRequest(describe_validation_error(exc)), request)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error = APIError(exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None)
        error.status = exc.status_code
        error.headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Allow names every method of the path, not one route's
            allowed = {m for route in request.app.router.routes
                       if route.matches(request.scope)[0] != Match.NONE for m in getattr(route, "methods", ()) or ()}
            if allowed:
                error.headers["Allow"] = ", ".join(sorted(allowed))
        if exc.status_code == 404:
            error.message = "The resource could not be found."
        elif exc.status_code == 405:
            error.message = "The method is not allowed for the requested URL."
        return respond(error, request)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(APIError("An unexpected error prevented the server from fulfilling your request."), request)

    app.add_middleware(_NulGuard, respond=respond)
    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def openstack_fault(error: APIError, names: dict[int, str], default: str = "computeFault") -> dict[str, Any]:
    """The fault body of Nova's and Cinder's wsgi ``Fault`` (both services share it):
    ``{"itemNotFound": {"code": 404, "message": ...}}``, the name from ``names`` by status (any
    other status: ``default``), and ``retryAfter`` on a 413/429 that carries ``Retry-After``.
    A 401 is keystonemiddleware's body: it answers before the service sees the request."""
    if error.status == 401:
        return {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}
    body: dict[str, Any] = {"code": error.status, "message": error.message}
    if error.status in (413, 429) and "Retry-After" in error.headers:
        body["retryAfter"] = error.headers["Retry-After"]
    return {names.get(error.status, default): body}


_ADAPTERS: dict[Any, Any] = {}


async def json_body(request: Request, schema: Any, *, max_size: int = 1 << 20,
                    media_type: str | None = None) -> Any:
    """The request body parsed and validated: 400 when it is missing, not JSON, holds a NUL or
    does not fit ``schema`` (a pydantic model or ``TypeAdapter``); 413 past ``max_size`` bytes;
    415 when ``media_type`` is given and the body is sent as anything else."""
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415 - keep core import light

    if media_type is not None:
        sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not sent and int(request.headers.get("content-length") or 0) > 0:
            raise BadRequest("content-type header required when content-length > 0")
        if sent != media_type:
            raise UnsupportedMediaType(f"The media type {sent or 'None'} is not supported, use {media_type}.")
    raw = await request.body()
    if len(raw) > max_size:
        raise RequestTooLarge("Request is too large.")
    if not raw.strip():
        raise BadRequest("The request body is missing: this request needs a JSON body.")
    adapter = schema if isinstance(schema, TypeAdapter) else _ADAPTERS.get(schema)
    if adapter is None:
        adapter = _ADAPTERS[schema] = TypeAdapter(schema)
    try:
        value = adapter.validate_json(raw)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(RequestValidationError(exc.errors()))) from None
    if b"\\u0000" in raw and holds_nul(json.loads(raw)):  # JSON can carry NUL only escaped
        raise BadRequest("Invalid input: a string in the body holds a NUL character.")
    return value
