"""HTTP building blocks shared by every service: JSON responses, request ids, the access log."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("mcloud.access")

REQUEST_ID_HEADER = "x-openstack-request-id"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; ``body=None`` gives an empty body (204s, HEAD). Encoded by orjson (the
    same compact UTF-8 bytes as the standard library's, about 14 times faster: a list of 10,000
    ports is 10 MB), or by the standard library for what orjson refuses (an integer beyond 64 bits)."""
    if body is None:
        return Response(status_code=status, headers=headers)
    try:
        content = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def service_app(title: str, **state: Any) -> FastAPI:
    """The FastAPI app of one service, with ``state`` (the runtime, the service) on ``app.state``.

    No interactive docs, and FastAPI's OpenTelemetry hooks off: they look up the global
    providers on every request, and mCloud's access log and request ids already trace requests.
    """
    app = FastAPI(openapi_url="/openapi.json", docs_url=None, redoc_url=None, title=title,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    for name, value in state.items():
        setattr(app.state, name, value)
    return app


def new_request_id() -> str:
    """``req-<uuid4>``. An id names a request and guards nothing, so it comes from the fast
    pseudo-random generator (reseeded in every forked worker) rather than from the kernel."""
    return f"req-{uuid.UUID(int=random.getrandbits(128), version=4)}"


def request_state(scope: Scope) -> dict[str, Any]:
    """The per-request state dict Starlette exposes as ``request.state``."""
    return scope.setdefault("state", {})


class RequestMiddleware:
    """Gives every request an id (``x-openstack-request-id``) and writes one access-log line.

    The line names the request id, user and project (when a handler authenticated the
    request), method, path, status and duration. Query strings are left out of the log: they
    may carry secrets in some APIs.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        state = request_state(scope)
        state["request_id"] = request_id
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        status = 500
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                ctx = state.get("auth_context")
                user = getattr(ctx, "user_id", None) or "-"
                project = getattr(ctx, "project_id", None) or "-"
                access_log.info(
                    "%s user=%s project=%s %s %s %d %.1fms",
                    request_id,
                    user,
                    project,
                    method,
                    path,
                    status,
                    (time.perf_counter() - started) * 1000,
                )
