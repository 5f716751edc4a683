"""Cinder v3's frame: version documents, Cinder's fault bodies (the same wsgi ``Fault`` as Nova's,
rendered by core's ``openstack_fault``), microversions 3.0 - 3.71, both URL forms and the routes
of every part.

Cinder's URLs carry the project id (``/v3/{project_id}/volumes``) or, since 3.67, need not
(``/v3/volumes``, the catalog's form). :class:`ProjectIdInPath` strips a project id from the path
before routing, so each part registers its routes once, under ``V3``; ``caller_of`` then refuses
a project id that is not the token's with Cinder's 400 "Malformed request url".

A route of any part authenticates, negotiates and authorizes with one call,
``caller = await caller_of(request, "volume:get")`` (401 / 400 / 406 / 403), reaches the service
with ``volume_of(request)``, asks ``caller.at(3, 63)`` for what depends on the microversion, and
raises ``mcloud.core.errors`` classes, which this module renders as Cinder does
(``{"itemNotFound": {"code": 404, "message": ...}}``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.core.auth import authenticate, runtime_of
from mcloud.core.caller import caller_from_context
from mcloud.core.errors import APIError, BadRequest, NotFound, install_fault_handlers, openstack_fault
from mcloud.core.http import service_app
from mcloud.core.microversions import MicroversionMiddleware, Version, VersionRange, requested
from mcloud.core.policy import optional_modules
from mcloud.core.routes import base_url, body_of, query, respond
from mcloud.core.runtime import Runtime
from mcloud.volume import policies
from mcloud.volume.service import Caller, VolumeService

MIN = Version(3, 0)
MAX = Version(3, 71)
VERSIONS = VersionRange("volume", MIN, MAX)
V3 = "/v3"
UPDATED = "2023-08-31T00:00:00Z"

#: Cinder's fault names by status (cinder/api/openstack/wsgi.py Fault); any other is computeFault
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 501: "notImplemented",
               503: "serviceUnavailable"}

#: the route modules of this part (volumes, snapshots, attachments) and of the other parts:
#: ``add_routes(app)`` of each that exists
OWN_PARTS = ("mcloud.volume.api_volumes", "mcloud.volume.api_snapshots",
             "mcloud.volume.api_attachments")
PARTS = ("mcloud.volume.api_types", "mcloud.volume.api_admin", "mcloud.volume.api_backups",
         "mcloud.volume.api_transfers", "mcloud.volume.api_groups")

#: Cinder's project_id_regex
_PROJECT_IN_PATH = re.compile(r"^/v3/([0-9a-f\-]+)(/.*)?$")


def render_fault(error: APIError, request: Request) -> dict[str, Any]:
    return openstack_fault(error, FAULT_NAMES)


# ---------------------------------------------------------------------- what every route uses


def volume_of(request: Request) -> VolumeService:
    return request.app.state.volume


async def caller_of(request: Request, rule: str | None = None, target: Mapping[str, Any] | None = None, *,
                    since: tuple[int, int] | None = None, until: tuple[int, int] | None = None) -> Caller:
    """Authenticate (401), negotiate the microversion (400/406), make the route exist only from
    ``since`` up to ``until`` (404 outside, as Cinder's VersionNotFoundForAPIMethod), refuse a
    project id in the URL that is not the token's (400), start the volume service, and authorize
    ``rule`` for ``target`` (default: the caller's own project and user) with Cinder's 403."""
    ctx = await authenticate(request)
    version = requested(request)
    if (since is not None and (version.major, version.minor) < since) or (
            until is not None and (version.major, version.minor) > until):
        raise NotFound(f"API version {version} is not supported on this method.")
    in_url = request.scope.get("state", {}).get("url_project_id")
    if in_url is not None and in_url != ctx.project_id:
        raise BadRequest("Malformed request url")
    runtime = runtime_of(request)
    volume = volume_of(request)
    await volume.start()
    caller = caller_from_context(Caller, ctx, runtime.policy, request.app.state.root_policy, version,
                                 request.scope.get("state", {}).get("request_id", ""))
    if rule is not None:
        caller.authorize(rule, target)
    return caller


def api_url(request: Request) -> str:
    """``http://host/volume/v3`` (``.../v3/{project_id}`` when the request named its project): the
    prefix of the links a view shows."""
    in_url = request.scope.get("state", {}).get("url_project_id")
    return base_url(request) + V3 + (f"/{in_url}" if in_url else "")


def links(request: Request, collection: str, resource_id: str) -> list[dict[str, str]]:
    """A resource's ``links``: self (versioned) and bookmark (unversioned), as Cinder's views."""
    in_url = request.scope.get("state", {}).get("url_project_id")
    tail = (f"/{in_url}" if in_url else "") + f"/{collection}/{resource_id}"
    return [{"href": base_url(request) + V3 + tail, "rel": "self"},
            {"href": base_url(request) + tail, "rel": "bookmark"}]


# ---------------------------------------------------------------------- version documents


def _version_doc(request: Request) -> dict[str, Any]:
    return {
        "id": "v3.0", "status": "CURRENT", "version": str(MAX), "min_version": str(MIN), "updated": UPDATED,
        "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                  {"rel": "self", "href": base_url(request) + V3 + "/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    }


async def versions(request: Request) -> Response:
    """``GET /volume/``: 300 Multiple Choices with the one version Cinder serves today (v2 went
    in Xena)."""
    return respond({"versions": [_version_doc(request)]}, status=300)


async def version_v3(request: Request) -> Response:
    """``GET /volume/v3/``: Cinder answers with the same list, 200."""
    return respond({"versions": [_version_doc(request)]})


#: Cinder's extension descriptors (name, alias, updated, description) of what mCloud serves
EXTENSIONS = (
    ("AdminActions", "os-admin-actions", "2012-08-25T00:00:00+00:00", "Enable admin actions."),
    ("AvailabilityZones", "os-availability-zone", "2013-06-27T00:00:00+00:00", "Describe Availability Zones."),
    ("Backups", "backups", "2012-12-12T00:00:00+00:00", "Backups support."),
    ("Capabilities", "capabilities", "2015-08-31T00:00:00+00:00", "Capabilities support."),
    ("ExtendedServices", "os-extended-services", "2014-01-10T00:00:00-00:00", "Extended services support."),
    ("ExtendedSnapshotAttributes", "os-extended-snapshot-attributes", "2012-06-19T00:00:00+00:00",
     "Extended SnapshotAttributes support."),
    ("Hosts", "os-hosts", "2011-06-29T00:00:00+00:00", "Admin-only host administration."),
    ("Qos_specs_manage", "qos-specs", "2013-08-02T00:00:00+00:00", "QoS specs support."),
    ("QuotaClasses", "os-quota-class-sets", "2012-03-12T00:00:00+00:00", "Quota classes management support."),
    ("Quotas", "os-quota-sets", "2011-08-08T00:00:00+00:00", "Quota management support."),
    ("SchedulerHints", "OS-SCH-HNT", "2013-04-18T00:00:00+00:00", "Pass arbitrary key/value pairs to the scheduler."),
    ("Scheduler_stats", "scheduler-stats", "2014-09-07T00:00:00+00:00", "Scheduler stats support."),
    ("Services", "os-services", "2012-10-28T00:00:00-00:00", "Services support."),
    ("SnapshotActions", "os-snapshot-actions", "2013-07-16T00:00:00+00:00", "Enable snapshot manager actions."),
    ("TypesExtraSpecs", "os-types-extra-specs", "2011-08-24T00:00:00+00:00", "Type extra specs support."),
    ("TypesManage", "os-types-manage", "2011-08-24T00:00:00+00:00", "Types manage support."),
    ("UsedLimits", "os-used-limits", "2013-10-03T00:00:00+00:00",
     "Provide data on limited resources that are being used."),
    ("VolumeActions", "os-volume-actions", "2012-05-31T00:00:00+00:00", "Enable volume actions."),
    ("VolumeHostAttribute", "os-vol-host-attr", "2011-11-03T00:00:00+00:00",
     "Expose host as an attribute of a volume."),
    ("VolumeImageMetadata", "os-vol-image-meta", "2012-12-07T00:00:00+00:00",
     "Show image metadata associated with the volume."),
    ("VolumeMigStatusAttribute", "os-vol-mig-status-attr", "2013-08-08T00:00:00+00:00",
     "Expose migration_status as an attribute of a volume."),
    ("VolumeTenantAttribute", "os-vol-tenant-attr", "2011-11-03T00:00:00+00:00",
     "Expose the internal project_id as an attribute of a volume."),
    ("VolumeTransfer", "os-volume-transfer", "2013-05-29T00:00:00+00:00", "Volume transfer management support."),
    ("VolumeTypeAccess", "os-volume-type-access", "2014-06-26T00:00:00Z", "Volume type access support."),
)


async def extensions(request: Request) -> Response:
    await caller_of(request)
    return respond({"extensions": [{"name": n, "alias": a, "updated": u, "description": d, "links": []}
                                   for n, a, u, d in EXTENSIONS]})


# ---------------------------------------------------------------------- the app


class ProjectIdInPath:
    """``/v3/{project_id}/rest`` routes as ``/v3/rest``, the project id kept in the request
    state (``url_project_id``) for ``caller_of`` to check and for links."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            path = scope["path"]
            inner = path[len(root):] if root and path.startswith(root) else path
            match = _PROJECT_IN_PATH.match(inner)
            if match:
                scope = dict(scope)
                rest = match.group(2) or "/"
                scope["path"] = root + V3 + rest
                scope["raw_path"] = scope["path"].encode()
                scope.setdefault("state", {})["url_project_id"] = match.group(1)
        await self.app(scope, receive, send)


def build(runtime: Runtime, volume: VolumeService) -> Any:
    app: FastAPI = service_app("mCloud Block Storage v3", runtime=runtime, volume=volume)
    app.router.redirect_slashes = False
    app.state.root_policy = runtime.policy
    install_fault_handlers(app, render_fault, www_authenticate=lambda request: (
        f'Keystone uri="{request.url.scheme}://{request.url.netloc}/identity"'))
    runtime.policy.register(policies.RULES)
    app.add_api_route("/", versions, methods=["GET"])
    app.add_api_route(V3, version_v3, methods=["GET"])
    app.add_api_route(V3 + "/", version_v3, methods=["GET"])
    app.add_api_route(V3 + "/extensions", extensions, methods=["GET"])
    for module in optional_modules(OWN_PARTS + PARTS):
        add = getattr(module, "add_routes", None)
        if add is not None:
            add(app)
    return ProjectIdInPath(MicroversionMiddleware(app, VERSIONS))


__all__ = ["MAX", "MIN", "PARTS", "V3", "VERSIONS", "BadRequest", "Caller", "api_url", "base_url", "body_of",
           "build", "caller_of", "links", "query", "respond", "volume_of"]
