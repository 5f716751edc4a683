"""Nova v2.1's frame: version documents, Nova's fault bodies, microversions 2.1 - 2.104, and the
routes of every part (servers here and in ``api_servers*.py``; ``api_resources``, ``api_hosts``
and ``api_agent`` add theirs through ``add_routes(app)``).

Every route of every part starts the same way::

    caller = await caller_of(request, "os_compute_api:os-flavor-manage:create")  # 401/400/406/403
    compute = compute_of(request)
    if caller.at(2, 55): ...

and raises ``mcloud.core.errors`` classes, which this module renders as Nova does
(``{"itemNotFound": {"code": 404, "message": ...}}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import policies
from mcloud.compute.service import Caller, ComputeService, caller_from_context
from mcloud.core.auth import authenticate, runtime_of
from mcloud.core.errors import APIError, BadRequest, NotFound, install_fault_handlers, openstack_fault
from mcloud.core.http import service_app
from mcloud.core.microversions import MicroversionMiddleware, Version, VersionRange, requested
from mcloud.core.routes import base_url, body_of, query, respond
from mcloud.core.runtime import Runtime

MIN = Version(2, 1)
MAX = Version(2, 104)
VERSIONS = VersionRange("compute", MIN, MAX, legacy_header="X-OpenStack-Nova-API-Version")
V21 = "/v2.1"

#: Nova's fault names by status (nova/api/openstack/wsgi.py Fault); any other is computeFault
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
               501: "notImplemented", 503: "serviceUnavailable"}

#: the other parts' route modules: ``add_routes(app)`` of each that exists
PARTS = ("mcloud.compute.api_resources", "mcloud.compute.api_hosts", "mcloud.compute.api_agent",
         "mcloud.compute.api_servers_volumes")


def render_fault(error: APIError, request: Request) -> dict[str, Any]:
    return openstack_fault(error, FAULT_NAMES)


# ---------------------------------------------------------------------- what every route uses


def compute_of(request: Request) -> ComputeService:
    return request.app.state.compute


def version_of(request: Request) -> Version:
    """The request's microversion (400/406 when the header was malformed or out of range)."""
    return requested(request)


async def caller_of(request: Request, rule: str | None = None, target: Mapping[str, Any] | None = None, *,
                    since: tuple[int, int] | None = None, until: tuple[int, int] | None = None) -> Caller:
    """Authenticate (401), negotiate the microversion (400/406), make the route exist only from
    ``since`` up to ``until`` (404 outside, as Nova), start the compute service, and authorize
    ``rule`` for ``target`` (default: the caller's own project and user) with Nova's 403."""
    ctx = await authenticate(request)
    version = requested(request)
    if since is not None and (version.major, version.minor) < since:
        raise NotFound("The resource could not be found.")
    if until is not None and (version.major, version.minor) > until:
        raise NotFound("The resource could not be found.")
    runtime = runtime_of(request)
    compute = compute_of(request)
    await compute.start()
    caller = caller_from_context(ctx, runtime.policy, request.app.state.root_policy, version,
                                 request.scope.get("state", {}).get("request_id", ""))
    if rule is not None:
        caller.authorize(rule, target)
    return caller


# ---------------------------------------------------------------------- version documents

UPDATED = {"v2.0": "2025-07-04T12:00:00Z", "v2.1": "2013-07-23T11:33:21Z"}


def _version(vid: str) -> dict[str, Any]:
    v21 = vid == "v2.1"
    return {
        "id": vid, "status": "CURRENT" if v21 else "DEPRECATED",
        "version": str(MAX) if v21 else "", "min_version": str(MIN) if v21 else "",
        "updated": UPDATED[vid],
        "links": [{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json",
                         "type": f"application/vnd.openstack.compute+json;version={'2.1' if v21 else '2'}"}],
    }


def _href(request: Request, vid: str) -> str:
    return f"{base_url(request)}/{'v2.1' if vid == 'v2.1' else 'v2'}/"


async def versions(request: Request) -> Response:
    out = []
    for vid in ("v2.0", "v2.1"):
        doc = _version(vid)
        out.append({k: doc[k] for k in ("id", "status", "version", "min_version", "updated")}
                   | {"links": [{"rel": "self", "href": _href(request, vid)}]})
    return respond({"versions": out})


def _version_doc(vid: str) -> Any:
    async def show(request: Request) -> Response:
        doc = _version(vid)
        doc["links"].insert(0, {"rel": "self", "href": _href(request, vid)})
        return respond({"version": doc})
    return show


# ---------------------------------------------------------------------- the app


def build(runtime: Runtime, compute: ComputeService) -> Any:
    from mcloud.compute import api_servers  # noqa: PLC0415

    app: FastAPI = service_app("mCloud Compute v2.1", runtime=runtime, compute=compute)
    # Nova's router has no redirects: "/os-simple-tenant-usage/" (an empty id) is a 404, not a 307
    app.router.redirect_slashes = False
    # compute's namespace of the enforcer; Caller.network_caller() reaches network's through it
    app.state.root_policy = runtime.policy
    install_fault_handlers(app, render_fault, www_authenticate=lambda request: (
        f'Keystone uri="{request.url.scheme}://{request.url.netloc}/identity"'))
    runtime.policy.register(policies.RULES)
    runtime.policy.register_scope_types(policies.SCOPE_TYPES)
    app.add_api_route("/", versions, methods=["GET"])
    app.add_api_route(V21, _version_doc("v2.1"), methods=["GET"])
    app.add_api_route(V21 + "/", _version_doc("v2.1"), methods=["GET"])
    app.add_api_route("/v2", _version_doc("v2.0"), methods=["GET"])
    app.add_api_route("/v2/", _version_doc("v2.0"), methods=["GET"])
    api_servers.add_routes(app)
    for module in policies.optional_modules(PARTS):
        add = getattr(module, "add_routes", None)
        if add is not None:
            add(app)
    app.add_middleware(ComputeRequestId)
    return MicroversionMiddleware(app, VERSIONS)


class ComputeRequestId:
    """Nova answers with its request id twice: ``x-openstack-request-id`` (core's middleware adds
    it) and ``x-compute-request-id`` (the same id; clients such as Tempest read this one)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                request_id = scope.get("state", {}).get("request_id")
                if request_id:
                    message["headers"] = [*message.get("headers", []),
                                          (b"x-compute-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


__all__ = ["V21", "VERSIONS", "BadRequest", "Caller", "base_url", "body_of", "build", "caller_of", "compute_of",
           "query", "respond", "version_of"]
