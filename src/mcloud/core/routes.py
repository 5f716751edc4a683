"""What every route of the Nova-style APIs (compute, volume) uses to read a request and answer:
the JSON body checked against a schema, the response, the mount's URL, the query string."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mcloud.core.errors import json_body
from mcloud.core.http import json_response
from mcloud.core.validation import validate


async def body_of(request: Request, schema: dict[str, Any] | None = None) -> Any:
    """The JSON body (400 when missing or malformed), checked against a JSON ``schema``."""
    body = await json_body(request, Any)
    if schema is not None:
        validate(body, schema)
    return body


def respond(body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(body, status=status, headers=headers)


def base_url(request: Request) -> str:
    """``http://host/compute``, ``http://host/volume``: the mount's URL, for links."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


def query(request: Request) -> dict[str, list[str]]:
    """Every query parameter with all its values, in order."""
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out
