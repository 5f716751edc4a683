"""Placement routes: parse, authorize, call service.py, render Placement's JSON (1.0 - 1.39)."""

from __future__ import annotations

import re
import uuid as uuidlib
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from mcloud.core.auth import authenticate, runtime_of
from mcloud.core.errors import APIError, BadRequest, NotAcceptable, NotFound, install_fault_handlers, json_body
from mcloud.core.http import json_response, service_app
from mcloud.core.microversions import MicroversionMiddleware, Version, VersionRange, requested
from mcloud.core.runtime import Runtime
from mcloud.placement import policies
from mcloud.placement import schemas as sc
from mcloud.placement.service import (INVENTORY_DEFAULTS, CandidateQuery, ConsumerWrite, Index, Inventory,
                                      PlacementService, Provider, RequestGroup)

VERSIONS = VersionRange("placement", Version(1, 0), Version(1, 39))
JSON = "application/json"
QUERY_BAD_VALUE = "placement.query.bad_value"
QUERY_MISSING_VALUE = "placement.query.missing_value"
QUERY_DUPLICATE_KEY = "placement.query.duplicate_key"


def render_fault(error: APIError, request: Request) -> dict[str, Any]:
    """Placement's errors: ``{"errors": [{status, title, detail, code (>= 1.23), request_id}]}``."""
    state = request.scope.get("state", {})
    body: dict[str, Any] = {"status": error.status, "title": error.title, "detail": error.message}
    version = state.get("microversion")
    if version is not None and version >= Version(1, 23):
        body["code"] = error.details.get("code") or "placement.undefined_code"
    if "request_id" in state:
        body["request_id"] = state["request_id"]
    if error.status == 406 and version is None:
        body.update(max_version=str(VERSIONS.maximum), min_version=str(VERSIONS.minimum))
    return {"errors": [body]}


def svc(request: Request) -> PlacementService:
    return request.app.state.placement


def at(version: Version, major_minor: tuple[int, int]) -> bool:
    return (version.major, version.minor) >= major_minor


async def caller(request: Request, rule: str, since: tuple[int, int] = (1, 0), target: dict[str, Any] | None = None,
                 missing_status: int = 404) -> Version:
    """Authenticate, negotiate the version (404, or ``missing_status``, below ``since``), authorize."""
    ctx = await authenticate(request)
    version = requested(request)
    if not at(version, since):
        if missing_status == 405:
            error = APIError("The method specified is not allowed for this resource.")
            error.status = 405
            raise error
        raise NotFound("The resource could not be found.")
    runtime_of(request).policy.authorize(rule, ctx.credentials(), target or {})
    await svc(request).ensure_standards()
    accept = request.headers.get("accept")
    if accept and not any(t in accept for t in ("application/json", "application/*", "*/*")):
        raise NotAcceptable(f"Only {JSON} is provided")
    return version


def query(request: Request, allowed: set[str] | re.Pattern[str]) -> dict[str, list[str]]:
    """The query string, every key known (400 otherwise): key -> values."""
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        ok = key in allowed if isinstance(allowed, set) else bool(allowed.match(key))
        if not ok:
            raise BadRequest(f"Invalid query string parameters: Additional properties are not allowed "
                             f"('{key}' was unexpected)")
        out.setdefault(key, []).append(value)
    return out


def http_date(dt: datetime | None = None) -> str:
    dt = (dt or datetime.utcnow()).replace(tzinfo=timezone.utc)
    return format_datetime(dt, usegmt=True)


def respond(version: Version, body: Any, status: int = 200, modified: datetime | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """A JSON answer; from 1.15 on with ``last-modified`` and ``cache-control: no-cache``."""
    headers = dict(headers or {})
    if at(version, (1, 15)):
        headers.update({"cache-control": "no-cache", "last-modified": http_date(modified)})
    return json_response(body, status=status, headers=headers)


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)


def root_path(request: Request) -> str:
    return request.scope.get("root_path", "")


def location(request: Request, path: str) -> dict[str, str]:
    """A Location header: absolute, as WebOb makes Placement's (clients GET it as given)."""
    return {"location": f"{request.url.scheme}://{request.url.netloc}{root_path(request)}{path}"}


def canonical_uuid(value: str, what: str = "uuid") -> str:
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise BadRequest(f"Malformed {what}: {value}") from None


# ---------------------------------------------------------------------- renderers


def r_provider(request: Request, rp: Provider, version: Version) -> dict[str, Any]:
    url = f"{root_path(request)}/resource_providers/{rp.uuid}"
    rels = ["inventories", "usages"] + (["aggregates"] if at(version, (1, 1)) else []) + \
        (["traits"] if at(version, (1, 6)) else []) + (["allocations"] if at(version, (1, 11)) else [])
    out: dict[str, Any] = {"uuid": rp.uuid, "name": rp.name, "generation": rp.generation,
                           "links": [{"rel": "self", "href": url}] + [{"rel": r, "href": f"{url}/{r}"} for r in rels]}
    if at(version, (1, 14)):
        out["parent_provider_uuid"] = rp.parent_provider_uuid
        out["root_provider_uuid"] = rp.root_provider_uuid
    return out


def r_inventory(inv: Inventory, generation: int | None = None) -> dict[str, Any]:
    out = inv.fields()
    if generation is not None:
        out["resource_provider_generation"] = generation
    return out


def r_class(request: Request, name: str) -> dict[str, Any]:
    return {"name": name, "links": [{"rel": "self", "href": f"{root_path(request)}/resource_classes/{name}"}]}


def r_candidates(idx: Index, cands: list[Any], summary_ids: list[int], groups: dict[str, RequestGroup],
                 version: Version) -> dict[str, Any]:
    nodes = idx.nodes
    requests = []
    for c in cands:
        if at(version, (1, 12)):
            allocs: dict[str, Any] = {}
            for (rp, rc), amount in c.resources.items():
                allocs.setdefault(nodes[rp].uuid, {"resources": {}})["resources"][rc] = amount
            item: dict[str, Any] = {"allocations": allocs}
            if at(version, (1, 34)):
                item["mappings"] = {s: sorted(nodes[rp].uuid for rp in rps) for s, rps in c.mappings.items()}
        else:
            by_rp: dict[str, dict[str, int]] = {}
            for (rp, rc), amount in c.resources.items():
                by_rp.setdefault(nodes[rp].uuid, {})[rc] = amount
            item = {"allocations": [{"resource_provider": {"uuid": u}, "resources": r} for u, r in by_rp.items()]}
        requests.append(item)
    wanted = set().union(*(g.resources for g in groups.values()))
    all_classes = at(version, (1, 27))
    summaries: dict[str, Any] = {}
    for rp in summary_ids:
        node = nodes[rp]
        entry: dict[str, Any] = {"resources": {
            rc: {"capacity": inv.capacity, "used": idx.used.get((rp, rc), 0)}
            for rc, inv in idx.inv[rp].items() if all_classes or rc in wanted}}
        if at(version, (1, 17)):
            entry["traits"] = sorted(node.traits)
        if at(version, (1, 29)):
            entry["parent_provider_uuid"] = nodes[node.parent_id].uuid if node.parent_id else None
            entry["root_provider_uuid"] = nodes[node.root_id].uuid
        summaries[node.uuid] = entry
    return {"allocation_requests": requests, "provider_summaries": summaries}


# ---------------------------------------------------------------------- query parsing


def parse_resources(value: str) -> dict[str, int]:
    form = "Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024."
    if value.strip() == "":
        raise BadRequest(f"Badly formed resources parameter. {form} Got: empty string.")
    out: dict[str, int] = {}
    for part in value.split(","):
        name, sep, amount = part.partition(":")
        if not sep or ":" in amount:
            raise BadRequest(f"Badly formed resources parameter. {form} Got: {part}.")
        try:
            n = int(amount)
        except ValueError:
            raise BadRequest(f"Requested resource {name} expected positive integer amount. Got: {amount}.") from None
        if n < 1:
            raise BadRequest(f"Requested resource {name} requires amount >= 1. Got: {n}.")
        out[name] = n
    return out


def parse_traits(values: list[str], version: Version) -> tuple[list[frozenset[str]], set[str]]:
    """``required`` values: (AND of OR-sets, forbidden). ``!`` from 1.22, ``in:`` and repeats from 1.39."""
    allow_forbidden, allow_any = at(version, (1, 22)), at(version, (1, 39))
    if not allow_any:
        values = values[-1:]
    required: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        if value.startswith("in:"):
            if not allow_any:
                raise BadRequest("Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only "
                                 f"supported since microversion 1.39. Got: {value}")
            names = {t.strip() for t in value[3:].split(",")}
            if not all(names) or any(t.startswith("!") for t in names):
                raise BadRequest(f"Invalid query string parameters: Expected 'required' parameter value of the "
                                 f"form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}")
            required.append(frozenset(names))
            continue
        names_list = [t.strip() for t in value.split(",")]
        bad = {t.lstrip("!") for t in names_list if t.startswith("!")}
        if not all(names_list) or not all(bad):
            raise BadRequest(f"Invalid query string parameters: Expected 'required' parameter value of the form: "
                             f"HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: {value}")
        if bad and not allow_forbidden:
            raise BadRequest("Invalid query string parameters: Expected 'required' parameter value of the form: "
                             f"HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}")
        required += [frozenset([t]) for t in names_list if not t.startswith("!")]
        forbidden |= bad
    return required, forbidden


def parse_member_of(values: list[str], version: Version, suffix: str = "") -> tuple[list[set[str]], set[str]]:
    if not at(version, (1, 24)) and len(values) > 1:
        raise BadRequest(f"Multiple member_of{suffix} parameters are not supported")
    required: list[set[str]] = []
    forbidden: set[str] = set()
    for value in values:
        if "," in value and not value.startswith(("in:", "!in:")):
            raise BadRequest("Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword "
                             f"using the valid microversion. Got: {value}")
        neg = value.startswith("!")
        body = value[1:] if neg else value
        aggs = set(body[3:].split(",")) if body.startswith("in:") else {body}
        for agg in aggs:
            try:
                uuidlib.UUID(agg)
            except ValueError:
                raise BadRequest("Invalid query string parameters: Expected 'member_of' parameter to contain valid "
                                 f"UUID(s). Got: {agg}") from None
        if neg:
            if not at(version, (1, 32)):
                raise BadRequest(f"Forbidden member_of{suffix} parameters are not supported in the specified "
                                 "microversion")
            forbidden |= aggs
        else:
            required.append(aggs)
    return required, forbidden


def parse_in_tree(value: str, suffix: str = "") -> str:
    try:
        uuidlib.UUID(value.strip())
    except ValueError:
        raise BadRequest(f"Invalid query string parameters: Expected 'in_tree{suffix}' parameter to be a format of "
                         f"uuid. Got: {value}") from None
    return value.strip()


def candidate_query(request: Request, version: Version) -> CandidateQuery:
    """GET /allocation_candidates' query string, checked as Placement checks it at ``version``."""
    granular = at(version, (1, 25))
    suffix_pat = r"[a-zA-Z0-9_-]{1,64}" if at(version, (1, 33)) else r"[1-9][0-9]*"
    kinds = ["resources"] + (["required"] if at(version, (1, 17)) else []) + \
        (["member_of"] if at(version, (1, 21)) else []) + (["in_tree"] if at(version, (1, 31)) else [])
    group_key = re.compile(rf"^({'|'.join(kinds)})({suffix_pat})?$" if granular else rf"^({'|'.join(kinds)})()$")
    wide = {"limit"} if at(version, (1, 16)) else set()
    wide |= {"group_policy"} if granular else set()
    wide |= {"root_required"} if at(version, (1, 35)) else set()
    wide |= {"same_subtree"} if at(version, (1, 36)) else set()
    params = query(request, re.compile(rf"^(?:{'|'.join(wide) or '(?!)'})$|" + group_key.pattern))
    if not granular and "resources" not in params:
        raise BadRequest("Invalid query string parameters: 'resources' is a required property")
    q = CandidateQuery(groups={}, nested_aware=at(version, (1, 29)))
    if "limit" in params:
        if not re.fullmatch(r"[1-9][0-9]*", params["limit"][0]):
            raise BadRequest(f"Invalid query string parameters: '{params['limit'][0]}' does not match "
                             "'^[1-9][0-9]*$'")
        q.limit = int(params["limit"][0])
    if "group_policy" in params:
        q.group_policy = params["group_policy"][0]
        if q.group_policy not in ("none", "isolate"):
            raise BadRequest(f"Invalid query string parameters: '{q.group_policy}' is not one of ['none', 'isolate']")
    if "root_required" in params:
        if len(params["root_required"]) > 1:
            raise BadRequest("Query parameter 'root_required' may be specified only once.", code=QUERY_DUPLICATE_KEY)
        required, q.root_forbidden = parse_traits(params["root_required"], Version(1, 38))
        q.root_required = set().union(*required)
        clash = q.root_required & q.root_forbidden
        if clash:
            raise BadRequest(f"Conflicting required and forbidden traits found in root_required: "
                             f"{', '.join(sorted(clash))}", code=QUERY_BAD_VALUE)
    for value in params.get("same_subtree", []):
        suffixes = {x.strip() for x in value.split(",")}
        if "" in suffixes:
            raise BadRequest("Empty string (unsuffixed group) can not be specified in `same_subtree` ",
                             code=QUERY_BAD_VALUE)
        q.same_subtrees.append(suffixes)
    for key, values in params.items():
        match = group_key.match(key)
        if not match or key in wide:
            continue
        kind, suffix = match.group(1), match.group(2) or ""
        g = q.groups.setdefault(suffix, RequestGroup(suffix))
        if kind == "resources":
            g.resources = parse_resources(values[-1])
        elif kind == "required":
            g.required, g.forbidden = parse_traits(values, version)
        elif kind == "member_of":
            g.member_of, g.forbidden_aggs = parse_member_of(values, version, suffix)
        else:
            g.in_tree = parse_in_tree(values[-1], suffix)
    check_groups(q, version)
    return q


def check_groups(q: CandidateQuery, version: Version) -> None:
    groups = q.groups
    if at(version, (1, 36)):
        resourceless = {s for s, g in groups.items() if not g.resources}
        in_subtrees = set().union(*q.same_subtrees)
        if len(resourceless) == len(groups):
            raise BadRequest("There must be at least one resources or resources[$S] parameter.",
                             code=QUERY_MISSING_VALUE)
        bad = sorted(s for s in resourceless if s not in in_subtrees)
        if bad:
            raise BadRequest("Resourceless suffixed group request should be specified in `same_subtree` query param: "
                             f"bad group(s) - {bad}.", code=QUERY_BAD_VALUE)
        bad = sorted(s for s in in_subtrees if s not in groups)
        if bad:
            raise BadRequest(f"Real suffixes should be specified in `same_subtree`: {bad} not found in "
                             f"{sorted(groups)}.", code=QUERY_BAD_VALUE)
    else:
        orphans = [f"required{s}" for s, g in groups.items() if g.required and not g.resources]
        if orphans:
            raise BadRequest("All traits parameters must be associated with resources.  Found the following orphaned "
                             f"traits keys: {', '.join(orphans)}")
        orphans = [f"member_of{s}" for s, g in groups.items() if not g.resources and (g.member_of or g.forbidden_aggs)]
        if orphans:
            raise BadRequest("All member_of parameters must be associated with resources. Found the following "
                             f"orphaned member_of keys: {', '.join(orphans)}")
        if not all(g.resources for g in groups.values()):
            raise BadRequest("All request groups must specify resources.")
        if not groups:
            raise BadRequest("At least one request group (`resources` or `resources{$S}`) is required.")
    clash = sorted(f"required{s}: ({', '.join(sorted(any_of))})" for s, g in groups.items()
                   for any_of in g.required if any_of <= g.forbidden)
    if clash:
        raise BadRequest(f"Conflicting required and forbidden traits found in the following traits keys: "
                         f"{', '.join(clash)}")
    if not q.group_policy and len([g for g in groups.values() if g.same_provider]) > 1:
        raise BadRequest('The "group_policy" parameter is required when specifying more than one "resources{N}" '
                         "parameter.")


def consumer_writes(data: dict[str, Any], version: Version) -> list[ConsumerWrite]:
    """POST /allocations bodies (and the reshaper's allocations) as ConsumerWrites."""
    return [ConsumerWrite(canonical_uuid(consumer, "consumer_uuid"),
                          {rp: dict(a.resources) for rp, a in body.allocations.items()},
                          body.project_id, body.user_id, getattr(body, "consumer_generation", None),
                          at(version, (1, 28)), getattr(body, "consumer_type", None))
            for consumer, body in data.items()]


# ---------------------------------------------------------------------- routes


def build_router() -> APIRouter:  # noqa: C901 - one function holds the route table
    r = APIRouter()

    @r.get("/")
    async def home(request: Request) -> Response:
        version = requested(request)
        doc = {"id": f"v{VERSIONS.minimum}", "max_version": str(VERSIONS.maximum),
               "min_version": str(VERSIONS.minimum), "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}
        return respond(version, {"versions": [doc]})

    # ------------------------------------------------------------------ resource providers

    @r.get("/resource_providers")
    async def list_providers(request: Request) -> Response:
        version = await caller(request, "placement:resource_providers:list")
        allowed = {"name", "uuid"} | ({"member_of"} if at(version, (1, 3)) else set()) | \
            ({"resources"} if at(version, (1, 4)) else set()) | ({"in_tree"} if at(version, (1, 14)) else set()) | \
            ({"required"} if at(version, (1, 18)) else set())
        params = query(request, allowed)
        for key in ("uuid", "in_tree"):
            if key in params:
                try:
                    uuidlib.UUID(params[key][-1])
                except ValueError:
                    raise BadRequest(f"Invalid query string parameters: '{params[key][-1]}' is not a 'uuid'") from None
        filters: dict[str, Any] = {k: params[k][-1] for k in ("name", "uuid", "in_tree") if k in params}
        if "resources" in params:
            filters["resources"] = parse_resources(params["resources"][-1])
        if "required" in params:
            filters["required"], filters["forbidden"] = parse_traits(params["required"], version)
        if "member_of" in params:
            filters["member_of"], filters["forbidden_aggs"] = parse_member_of(params["member_of"], version)
        providers = await svc(request).list_providers(**filters)
        modified = max((p.updated_at for p in providers if p.updated_at), default=None)
        return respond(version, {"resource_providers": [r_provider(request, p, version) for p in providers]},
                       modified=modified)

    @r.post("/resource_providers")
    async def create_provider(request: Request) -> Response:
        version = await caller(request, "placement:resource_providers:create")
        body = await json_body(request, sc.ProviderCreate114 if at(version, (1, 14)) else sc.ProviderCreate,
                               media_type=JSON)
        rp = await svc(request).create_provider(body.name, body.uuid, getattr(body, "parent_provider_uuid", None))
        where = location(request, f"/resource_providers/{rp.uuid}")
        if at(version, (1, 20)):
            return respond(version, r_provider(request, rp, version), modified=rp.updated_at, headers=where)
        return empty(201, where)

    @r.get("/resource_providers/{uuid}")
    async def show_provider(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:show")
        rp = await svc(request).get_provider(uuid)
        return respond(version, r_provider(request, rp, version), modified=rp.updated_at)

    @r.put("/resource_providers/{uuid}")
    async def update_provider(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:update")
        await svc(request).get_provider(uuid)
        body = await json_body(request, sc.ProviderUpdate114 if at(version, (1, 14)) else sc.ProviderUpdate,
                               media_type=JSON)
        rp = await svc(request).update_provider(uuid, body.model_dump(exclude_unset=True), at(version, (1, 37)))
        return respond(version, r_provider(request, rp, version), modified=rp.updated_at)

    @r.delete("/resource_providers/{uuid}")
    async def delete_provider(request: Request, uuid: str) -> Response:
        await caller(request, "placement:resource_providers:delete")
        await svc(request).delete_provider(uuid)
        return empty()

    # ------------------------------------------------------------------ inventories

    def inventory_of(body: sc.InventoryRecord) -> Inventory:
        return Inventory(**{**INVENTORY_DEFAULTS, **body.inventory_fields()})

    @r.get("/resource_providers/{uuid}/inventories")
    async def list_inventories(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:inventories:list")
        rp, invs = await svc(request).get_inventories(uuid)
        return respond(version, {"resource_provider_generation": rp.generation,
                                 "inventories": {rc: r_inventory(inv) for rc, inv in invs.items()}})

    @r.post("/resource_providers/{uuid}/inventories")
    async def create_inventory(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:inventories:create")
        await svc(request).get_provider(uuid)
        body = await json_body(request, sc.InventoryCreate, media_type=JSON)
        rp, inv = await svc(request).add_inventory(uuid, body.resource_class, inventory_of(body), at(version, (1, 26)))
        return respond(version, r_inventory(inv, rp.generation), status=201,
                       headers=location(request, f"/resource_providers/{uuid}/inventories/{body.resource_class}"))

    @r.put("/resource_providers/{uuid}/inventories")
    async def set_inventories(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:inventories:update")
        await svc(request).get_provider(uuid)
        body = await json_body(request, sc.Inventories, media_type=JSON)
        rp, invs = await svc(request).set_inventories(
            uuid, body.resource_provider_generation, {rc: inventory_of(i) for rc, i in body.inventories.items()},
            at(version, (1, 26)))
        return respond(version, {"resource_provider_generation": rp.generation,
                                 "inventories": {rc: r_inventory(inv) for rc, inv in invs.items()}})

    @r.delete("/resource_providers/{uuid}/inventories")
    async def delete_inventories(request: Request, uuid: str) -> Response:
        await caller(request, "placement:resource_providers:inventories:delete", (1, 5), missing_status=405)
        await svc(request).delete_inventory(uuid, None)
        return empty()

    @r.get("/resource_providers/{uuid}/inventories/{rc}")
    async def show_inventory(request: Request, uuid: str, rc: str) -> Response:
        version = await caller(request, "placement:resource_providers:inventories:show")
        rp, invs = await svc(request).get_inventories(uuid)
        if rc not in invs:
            raise NotFound(f"No inventory of class {rc} for {uuid}")
        return respond(version, r_inventory(invs[rc], rp.generation))

    @r.put("/resource_providers/{uuid}/inventories/{rc}")
    async def update_inventory(request: Request, uuid: str, rc: str) -> Response:
        version = await caller(request, "placement:resource_providers:inventories:update")
        await svc(request).get_provider(uuid)
        body = await json_body(request, sc.InventoryUpdate, media_type=JSON)
        rp, inv = await svc(request).update_inventory(uuid, rc, body.resource_provider_generation,
                                                      inventory_of(body), at(version, (1, 26)))
        return respond(version, r_inventory(inv, rp.generation))

    @r.delete("/resource_providers/{uuid}/inventories/{rc}")
    async def delete_inventory(request: Request, uuid: str, rc: str) -> Response:
        await caller(request, "placement:resource_providers:inventories:delete")
        await svc(request).delete_inventory(uuid, rc)
        return empty()

    # ------------------------------------------------------------------ usages, allocations of a provider

    @r.get("/resource_providers/{uuid}/usages")
    async def provider_usages(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:usages")
        rp, usages = await svc(request).provider_usages(uuid)
        return respond(version, {"resource_provider_generation": rp.generation, "usages": usages})

    @r.get("/resource_providers/{uuid}/allocations")
    async def provider_allocations(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:allocations:list")
        rp, allocs = await svc(request).provider_allocations(uuid)
        if not at(version, (1, 28)):
            for a in allocs.values():
                a.pop("consumer_generation")
        return respond(version, {"resource_provider_generation": rp.generation, "allocations": allocs})

    # ------------------------------------------------------------------ aggregates

    @r.get("/resource_providers/{uuid}/aggregates")
    async def list_aggregates(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:aggregates:list", (1, 1))
        rp, aggs = await svc(request).get_aggregates(uuid)
        body: dict[str, Any] = {"aggregates": aggs}
        if at(version, (1, 19)):
            body["resource_provider_generation"] = rp.generation
        return respond(version, body)

    @r.put("/resource_providers/{uuid}/aggregates")
    async def set_aggregates(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:aggregates:update", (1, 1))
        await svc(request).get_provider(uuid)
        if at(version, (1, 19)):
            body = await json_body(request, sc.Aggregates119, media_type=JSON)
            aggs, generation = body.aggregates, body.resource_provider_generation
        else:
            aggs, generation = await json_body(request, sc.UniqueUuids, media_type=JSON), None
        rp = await svc(request).set_aggregates(uuid, aggs, generation)
        out: dict[str, Any] = {"aggregates": aggs}
        if at(version, (1, 19)):
            out["resource_provider_generation"] = rp.generation
        return respond(version, out)

    # ------------------------------------------------------------------ traits

    @r.get("/traits")
    async def list_traits(request: Request) -> Response:
        version = await caller(request, "placement:traits:list", (1, 6))
        params = query(request, {"name", "associated"})
        filters: dict[str, Any] = {}
        if "name" in params:
            op, sep, value = params["name"][-1].partition(":")
            if not sep:
                raise BadRequest('Badly formatted name parameter. Expected name query string parameter in form: '
                                 f'?name=[in|startswith]:[name1,name2|prefix]. Got: "{params["name"][-1]}"')
            if op == "in":
                filters["name_in"] = value.split(",")
            elif op == "startswith":
                filters["prefix"] = value
        if "associated" in params:
            value = params["associated"][-1].lower()
            if value not in ("true", "false"):
                raise BadRequest('The query parameter "associated" only accepts "true" or "false"')
            filters["associated"] = value == "true"
        return respond(version, {"traits": await svc(request).list_traits(**filters)})

    @r.get("/traits/{name}")
    async def show_trait(request: Request, name: str) -> Response:
        version = await caller(request, "placement:traits:show", (1, 6))
        if not await svc(request).trait_exists(name):
            raise NotFound(f"No such trait(s): {name}.")
        return empty(headers={"cache-control": "no-cache", "last-modified": http_date()}
                     if at(version, (1, 15)) else None)

    @r.put("/traits/{name}")
    async def put_trait(request: Request, name: str) -> Response:
        version = await caller(request, "placement:traits:update", (1, 6))
        if not re.fullmatch(sc.CUSTOM_PATTERN, name) or len(name) > 255:
            raise BadRequest('The trait is invalid. A valid trait must be no longer than 255 characters, start with '
                             'the prefix "CUSTOM_" and use following characters: "A"-"Z", "0"-"9" and "_"')
        created = await svc(request).put_trait(name)
        headers = location(request, f"/traits/{name}")
        if at(version, (1, 15)):
            headers.update({"cache-control": "no-cache", "last-modified": http_date()})
        return empty(201 if created else 204, headers)

    @r.delete("/traits/{name}")
    async def delete_trait(request: Request, name: str) -> Response:
        await caller(request, "placement:traits:delete", (1, 6))
        await svc(request).delete_trait(name)
        return empty()

    @r.get("/resource_providers/{uuid}/traits")
    async def provider_traits(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:traits:list", (1, 6))
        rp, traits = await svc(request).get_provider_traits(uuid)
        return respond(version, {"traits": traits, "resource_provider_generation": rp.generation})

    @r.put("/resource_providers/{uuid}/traits")
    async def set_provider_traits(request: Request, uuid: str) -> Response:
        version = await caller(request, "placement:resource_providers:traits:update", (1, 6))
        body = await json_body(request, sc.ProviderTraits, media_type=JSON)
        rp = await svc(request).set_provider_traits(uuid, body.traits, body.resource_provider_generation)
        return respond(version, {"traits": sorted(set(body.traits)), "resource_provider_generation": rp.generation})

    @r.delete("/resource_providers/{uuid}/traits")
    async def delete_provider_traits(request: Request, uuid: str) -> Response:
        await caller(request, "placement:resource_providers:traits:delete", (1, 6))
        await svc(request).set_provider_traits(uuid, [], None)
        return empty()

    # ------------------------------------------------------------------ resource classes

    @r.get("/resource_classes")
    async def list_classes(request: Request) -> Response:
        version = await caller(request, "placement:resource_classes:list", (1, 2))
        names = await svc(request).list_classes()
        return respond(version, {"resource_classes": [r_class(request, n) for n in names]})

    @r.post("/resource_classes")
    async def create_class(request: Request) -> Response:
        await caller(request, "placement:resource_classes:create", (1, 2))
        body = await json_body(request, sc.ResourceClassBody, media_type=JSON)
        await svc(request).create_class(body.name)
        return empty(201, location(request, f"/resource_classes/{body.name}"))

    @r.get("/resource_classes/{name}")
    async def show_class(request: Request, name: str) -> Response:
        version = await caller(request, "placement:resource_classes:show", (1, 2))
        if not await svc(request).class_exists(name):
            raise NotFound(f"No such resource class {name}.")
        return respond(version, r_class(request, name))

    @r.put("/resource_classes/{name}")
    async def put_class(request: Request, name: str) -> Response:
        version = await caller(request, "placement:resource_classes:update", (1, 2))
        if not at(version, (1, 7)):
            body = await json_body(request, sc.ResourceClassBody, media_type=JSON)
            await svc(request).rename_class(name, body.name)
            return json_response(r_class(request, body.name))
        if not re.fullmatch(sc.CUSTOM_PATTERN, name) or len(name) > 255:
            raise BadRequest(f"JSON does not validate: '{name}' does not match '{sc.CUSTOM_PATTERN}'")
        created = await svc(request).create_class(name, exist_ok=True)
        return empty(201 if created else 204, location(request, f"/resource_classes/{name}"))

    @r.delete("/resource_classes/{name}")
    async def delete_class(request: Request, name: str) -> Response:
        await caller(request, "placement:resource_classes:delete", (1, 2))
        await svc(request).delete_class(name)
        return empty()

    # ------------------------------------------------------------------ allocations

    @r.get("/allocations/{consumer}")
    async def consumer_allocations(request: Request, consumer: str) -> Response:
        version = await caller(request, "placement:allocations:list")
        found = await svc(request).consumer_allocations(consumer)
        body: dict[str, Any] = {"allocations": found["providers"] if found else {}}
        if found and found["providers"] and at(version, (1, 12)):
            body.update(project_id=found["project_id"], user_id=found["user_id"])
            if at(version, (1, 28)):
                body["consumer_generation"] = found["generation"]
            if at(version, (1, 38)):
                body["consumer_type"] = found["consumer_type"]
        return respond(version, body)

    @r.put("/allocations/{consumer}")
    async def put_allocations(request: Request, consumer: str) -> Response:
        version = await caller(request, "placement:allocations:update")
        consumer = canonical_uuid(consumer, "consumer_uuid")
        body = await json_body(request, sc.consumer_schema((version.major, version.minor), many=False),
                               media_type=JSON)
        if isinstance(body, sc.AllocationsList):
            allocations = {a.resource_provider.uuid: dict(a.resources) for a in body.allocations}
        else:
            allocations = {rp: dict(a.resources) for rp, a in body.allocations.items()}
        await svc(request).write_allocations([ConsumerWrite(
            consumer, allocations, getattr(body, "project_id", None), getattr(body, "user_id", None),
            getattr(body, "consumer_generation", None), at(version, (1, 28)), getattr(body, "consumer_type", None))])
        return empty()

    @r.post("/allocations")
    async def post_allocations(request: Request) -> Response:
        version = await caller(request, "placement:allocations:manage", (1, 13))
        data = await json_body(request, sc.post_schema((version.major, version.minor)), media_type=JSON)
        await svc(request).write_allocations(consumer_writes(data, version))
        return empty()

    @r.delete("/allocations/{consumer}")
    async def delete_allocations(request: Request, consumer: str) -> Response:
        await caller(request, "placement:allocations:delete")
        await svc(request).delete_allocations(consumer)
        return empty()

    @r.get("/usages")
    async def total_usages(request: Request) -> Response:
        ctx = await authenticate(request)
        version = requested(request)
        if not at(version, (1, 9)):
            raise NotFound("The resource could not be found.")
        project = request.query_params.get("project_id")
        runtime_of(request).policy.authorize("placement:usages", ctx.credentials(), {"project_id": project})
        params = query(request, {"project_id", "user_id"} | ({"consumer_type"} if at(version, (1, 38)) else set()))
        if "project_id" not in params:
            raise BadRequest("Invalid query string parameters: 'project_id' is a required property")
        for key, values in params.items():
            if not 1 <= len(values[-1]) <= 255:
                raise BadRequest(f"Invalid query string parameters: '{key}' must be 1 to 255 characters long")
        consumer_type = params.get("consumer_type", [None])[-1]
        if consumer_type is not None and not (consumer_type in ("all", "unknown")
                                              or re.fullmatch(sc.RC_PATTERN, consumer_type)):
            raise BadRequest(f"Invalid query string parameters: '{consumer_type}' does not match "
                             f"'{sc.RC_PATTERN}|^all|^unknown$'")
        usages = await svc(request).total_usages(params["project_id"][-1], params.get("user_id", [None])[-1],
                                                  consumer_type, by_type=at(version, (1, 38)))
        return respond(version, {"usages": usages})

    # ------------------------------------------------------------------ allocation candidates, reshaper

    @r.get("/allocation_candidates")
    async def allocation_candidates(request: Request) -> Response:
        version = await caller(request, "placement:allocation_candidates:list", (1, 10))
        q = candidate_query(request, version)
        idx, cands, summary_ids = await svc(request).allocation_candidates(q)
        return respond(version, r_candidates(idx, cands, summary_ids, q.groups, version))

    @r.post("/reshaper")
    async def reshape(request: Request) -> Response:
        version = await caller(request, "placement:reshaper:reshape", (1, 30))
        body = await json_body(request, sc.reshaper_schema((version.major, version.minor)), media_type=JSON)
        inventories = {rp: (inv.resource_provider_generation,
                            {rc: inventory_of(i) for rc, i in inv.inventories.items()})
                       for rp, inv in body.inventories.items()}
        await svc(request).write_allocations(consumer_writes(body.allocations, version), inventories,
                                             reserved_can_be_total=at(version, (1, 26)))
        return empty()

    return r


def build(runtime: Runtime, placement: PlacementService) -> Any:
    app: FastAPI = service_app("mCloud Placement", runtime=runtime, placement=placement)
    install_fault_handlers(app, render_fault, www_authenticate=lambda request: (
        f'Keystone uri="{request.url.scheme}://{request.url.netloc}/identity"'))
    runtime.policy.register_scope_types(policies.SCOPE_TYPES)
    # The routes join the app's own router: FastAPI re-walks included routers on every request.
    app.router.routes.extend(build_router().routes)
    return MicroversionMiddleware(app, VERSIONS)
