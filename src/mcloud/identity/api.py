"""Identity v3 routes: parse, authorize, call service.py, render Keystone's JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from mcloud.core.auth import AuthContext, authenticate, runtime_of
from mcloud.core.errors import (APIError, BadRequest, Forbidden, NotFound, Unauthorized, holds_nul,
                                 install_fault_handlers)
from mcloud.core.http import json_response, service_app
from mcloud.core.runtime import Runtime
from mcloud.identity import models as m
from mcloud.identity import schemas as s
from mcloud.identity.service import SYSTEM_ALL, IdentityService, Token, parse_time

SUBJECT_HEADER = "x-subject-token"
# Keystone's [oslo_middleware] max_request_body_size: larger bodies are a 413
MAX_REQUEST_BODY_SIZE = 114688


def render_fault(error: APIError, _request: Request) -> dict[str, Any]:
    return {"error": {"code": error.status, "message": error.message, "title": error.title}}


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def svc(request: Request) -> IdentityService:
    return request.app.state.identity


def base_url(request: Request) -> str:
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def v3(request: Request) -> str:
    return base_url(request) + "/v3"


def authorize(request: Request, ctx: AuthContext, rule: str, target: dict[str, Any] | None = None,
              **path: Any) -> None:
    runtime_of(request).policy.authorize(rule, ctx.credentials(), {**path, "target": target or {}})


def is_admin(request: Request, ctx: AuthContext) -> bool:
    return runtime_of(request).policy.check("admin_required", ctx.credentials(), {})


async def body_of(request: Request, model: type[s.Body]) -> Any:
    """The request body parsed into ``model``; 400 in Keystone's form when it is not."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    from mcloud.core.errors import RequestTooLarge

    raw = await request.body()
    if len(raw) > MAX_REQUEST_BODY_SIZE:
        raise RequestTooLarge("Request is too large.")
    if not raw:
        raise BadRequest("The request body is missing: this request needs a JSON body.")
    try:
        body = model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    if b"\\u0000" in raw and holds_nul(json.loads(raw)):  # JSON can carry NUL only escaped
        raise BadRequest("Invalid input: a string in the body holds a NUL character.")
    return body


def flag(value: str | None) -> bool | None:
    """A boolean query filter as Keystone reads it: absent is None, ``0``/``false`` false."""
    if value is None:
        return None
    return value.lower() not in ("0", "false", "no", "off")


# ---------------------------------------------------------------------- renderers


def r_domain(request: Request, d: m.Domain) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "description": d.description or "", "enabled": d.enabled,
            "tags": [], "options": d.options or {}, "links": {"self": f"{v3(request)}/domains/{d.id}"}}


def r_project(request: Request, p: m.Project, tags: list[str]) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description or "",
            "enabled": p.enabled, "parent_id": p.parent_id or p.domain_id, "is_domain": False, "tags": tags,
            "options": p.options or {}, "links": {"self": f"{v3(request)}/projects/{p.id}"}}


def r_domain_as_project(request: Request, d: m.Domain) -> dict[str, Any]:
    """A domain seen through the projects API: Keystone's domains are projects acting as domains."""
    return {"id": d.id, "name": d.name, "domain_id": None, "description": d.description or "",
            "enabled": d.enabled, "parent_id": None, "is_domain": True, "tags": [], "options": d.options or {},
            "links": {"self": f"{v3(request)}/projects/{d.id}"}}


def r_user(request: Request, u: m.User) -> dict[str, Any]:
    out: dict[str, Any] = {"id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
                           "password_expires_at": None, "options": u.options or {},
                           "links": {"self": f"{v3(request)}/users/{u.id}"}}
    if u.default_project_id:
        out["default_project_id"] = u.default_project_id
    if u.description is not None:
        out["description"] = u.description
    if u.email is not None:
        out["email"] = u.email
    out.update(u.extra or {})
    return out


def r_group(request: Request, g: m.Group) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description or "",
            **(g.extra or {}), "links": {"self": f"{v3(request)}/groups/{g.id}"}}


def r_role(request: Request, r: m.Role) -> dict[str, Any]:
    out = {"id": r.id, "name": r.name, "domain_id": None if r.domain_id == m.NULL_DOMAIN else r.domain_id,
           "options": r.options or {}, "links": {"self": f"{v3(request)}/roles/{r.id}"}}
    if r.description is not None:
        out["description"] = r.description
    return out


def r_role_brief(request: Request, r: m.Role) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "links": {"self": f"{v3(request)}/roles/{r.id}"}}


def r_region(request: Request, r: m.Region) -> dict[str, Any]:
    return {"id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
            "links": {"self": f"{v3(request)}/regions/{r.id}"}}


def r_service(request: Request, x: m.Service) -> dict[str, Any]:
    out = {"id": x.id, "type": x.type, "enabled": x.enabled, "links": {"self": f"{v3(request)}/services/{x.id}"}}
    if x.name is not None:
        out["name"] = x.name
    if x.description is not None:
        out["description"] = x.description
    return out


def r_endpoint(request: Request, e: m.Endpoint) -> dict[str, Any]:
    return {"id": e.id, "interface": e.interface, "region": e.region_id, "region_id": e.region_id,
            "service_id": e.service_id, "url": e.url, "enabled": e.enabled,
            "links": {"self": f"{v3(request)}/endpoints/{e.id}"}}


def r_app_cred(request: Request, c: m.ApplicationCredential, roles: list[m.Role],
               secret: str | None = None) -> dict[str, Any]:
    out = {"id": c.id, "name": c.name, "description": c.description, "user_id": c.user_id,
           "project_id": c.project_id, "system": c.system,
           # Keystone echoes an application credential's expiry without a zone suffix
           "expires_at": c.expires_at.isoformat() if c.expires_at else None,
           "unrestricted": c.unrestricted, "access_rules": [],
           "roles": [{"id": r.id, "name": r.name, "domain_id": None if r.domain_id == m.NULL_DOMAIN else r.domain_id}
                     for r in roles],
           "links": {"self": f"{v3(request)}/users/{c.user_id}/application_credentials/{c.id}"}}
    if secret is not None:
        out["secret"] = secret
    return out


def r_credential(request: Request, c: m.Credential, blob: str) -> dict[str, Any]:
    return {"id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.type, "blob": blob,
            "links": {"self": f"{v3(request)}/credentials/{c.id}"}}


def r_trust(request: Request, t: m.Trust, roles: list[m.Role]) -> dict[str, Any]:
    return {"id": t.id, "trustor_user_id": t.trustor_user_id, "trustee_user_id": t.trustee_user_id,
            "project_id": t.project_id, "impersonation": t.impersonation, "expires_at": iso(t.expires_at),
            "remaining_uses": t.remaining_uses, "redelegated_trust_id": t.redelegated_trust_id,
            "redelegation_count": t.redelegation_count, "allow_redelegation": bool(t.redelegation_count),
            "roles": [r_role_brief(request, r) for r in roles],
            "roles_links": {"self": f"{v3(request)}/OS-TRUST/trusts/{t.id}/roles", "previous": None, "next": None},
            "links": {"self": f"{v3(request)}/OS-TRUST/trusts/{t.id}"}}


def r_registered_limit(request: Request, x: m.RegisteredLimit) -> dict[str, Any]:
    return {"id": x.id, "service_id": x.service_id, "region_id": x.region_id, "resource_name": x.resource_name,
            "default_limit": x.default_limit, "description": x.description,
            "links": {"self": f"{v3(request)}/registered_limits/{x.id}"}}


def r_limit(request: Request, x: m.Limit) -> dict[str, Any]:
    return {"id": x.id, "project_id": x.project_id, "domain_id": x.domain_id, "service_id": x.service_id,
            "region_id": x.region_id, "resource_name": x.resource_name, "resource_limit": x.resource_limit,
            "description": x.description, "links": {"self": f"{v3(request)}/limits/{x.id}"}}


def listing(request: Request, key: str, items: list[Any]) -> Response:
    return json_response({key: items, "links": {"self": str(request.url), "previous": None, "next": None}})


async def r_token(request: Request, token: Token, catalog: bool = True) -> dict[str, Any]:
    sc, p = token.scope, token.payload
    body: dict[str, Any] = {
        "methods": list(p.methods),
        "user": {"id": sc.user.id, "name": sc.user.name, "password_expires_at": None,
                 "domain": {"id": sc.user_domain.id, "name": sc.user_domain.name}},
        "audit_ids": list(p.audit_ids),
        "expires_at": iso(p.expires_at),
        "issued_at": iso(p.issued_at),
    }
    if sc.project is not None:
        assert sc.project_domain is not None
        body["project"] = {"id": sc.project.id, "name": sc.project.name,
                           "domain": {"id": sc.project_domain.id, "name": sc.project_domain.name}}
        body["is_domain"] = False
    elif sc.domain is not None:
        body["domain"] = {"id": sc.domain.id, "name": sc.domain.name}
    elif sc.system:
        body["system"] = {sc.system: True}
    if sc.project is not None or sc.domain is not None or sc.system:
        body["roles"] = [{"id": r.id, "name": r.name, **({"domain_id": r.domain_id} if r.domain_id else {})}
                         for r in sc.roles]
        if catalog:
            body["catalog"] = await svc(request).cached_catalog()
    if sc.application_credential is not None:
        ac = sc.application_credential
        body["application_credential"] = {"id": ac.id, "name": ac.name, "restricted": not ac.unrestricted}
    if sc.trust is not None:
        t = sc.trust
        body["OS-TRUST:trust"] = {"id": t.id, "impersonation": t.impersonation,
                                  "trustee_user": {"id": t.trustee_user_id},
                                  "trustor_user": {"id": t.trustor_user_id}}
    if sc.project is not None:
        body["is_admin_project"] = sc.is_admin_project
    return {"token": body}


# ---------------------------------------------------------------------- version documents


def version_doc(request: Request) -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": base_url(request) + "/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.identity-v3+json"}]}


def build_router() -> APIRouter:  # noqa: C901 - one function holds the route table
    r = APIRouter()

    @r.get("/")
    async def versions(request: Request) -> Response:
        return json_response({"versions": {"values": [version_doc(request)]}}, status=300)

    @r.get("/v3")
    @r.get("/v3/")
    async def version(request: Request) -> Response:
        return json_response({"version": version_doc(request)})

    # ------------------------------------------------------------------ auth

    @r.post("/v3/auth/tokens")
    async def issue_token(request: Request, nocatalog: str | None = None) -> Response:
        req = await body_of(request, s.AuthRequest)
        auth = req.auth.model_dump(exclude_unset=True)
        token = await svc(request).authenticate(auth)
        request.state.auth_context = token.context()
        body = await r_token(request, token, catalog=nocatalog is None)
        return json_response(body, status=201, headers={"X-Subject-Token": token.value})

    async def subject(request: Request, rule: str) -> tuple[AuthContext, Token]:
        ctx = await authenticate(request)
        value = request.headers.get(SUBJECT_HEADER)
        if not value:
            # as Keystone: policy first (a non-admin gets 403), then "no token in the request" is a 404
            authorize(request, ctx, rule, {})
            raise NotFound("Could not find token: no X-Subject-Token in the request.")
        try:
            token = await svc(request).validate(value)
        except Unauthorized:
            raise NotFound("Could not find token.") from None
        authorize(request, ctx, rule, {"token": {"user_id": token.payload.user_id}})
        return ctx, token

    @r.get("/v3/auth/tokens")
    async def validate_token(request: Request) -> Response:
        _, token = await subject(request, "identity:validate_token")
        catalog = "nocatalog" not in request.query_params
        # the body depends only on the token and the identity generation: render it once
        body = token.rendered.get(catalog)
        if body is None:
            body = token.rendered[catalog] = json_response(await r_token(request, token, catalog=catalog)).body
        return Response(body, media_type="application/json", headers={"X-Subject-Token": token.value})

    @r.head("/v3/auth/tokens")
    async def check_token(request: Request) -> Response:
        _, token = await subject(request, "identity:check_token")
        return Response(status_code=200, headers={"X-Subject-Token": token.value})

    @r.delete("/v3/auth/tokens")
    async def revoke_token(request: Request) -> Response:
        _, token = await subject(request, "identity:revoke_token")
        # Keystone 30 revokes the tokens rescoped from this one too, unless ?cascade=false
        await svc(request).revoke_token(token, chain=flag(request.query_params.get("cascade")) is not False)
        return Response(status_code=204)

    @r.get("/v3/auth/catalog")
    async def auth_catalog(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_auth_catalog")
        if ctx.scope_type is None:
            raise Forbidden("The catalog is only available to a scoped token.")
        return json_response({"catalog": await svc(request).cached_catalog(),
                              "links": {"self": str(request.url), "previous": None, "next": None}})

    @r.get("/v3/auth/projects")
    @r.get("/v3/OS-FEDERATION/projects")
    async def auth_projects(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_auth_projects")
        async with svc(request).db.read() as session:
            projects = await user_projects(request, session, ctx.user_id)
            tags = await svc(request).project_tags(session, [p.id for p in projects])
        return listing(request, "projects", [r_project(request, p, tags[p.id]) for p in projects])

    @r.get("/v3/auth/domains")
    @r.get("/v3/OS-FEDERATION/domains")
    async def auth_domains(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_auth_domains")
        i = svc(request)
        async with i.db.read() as session:
            domains = [d for d in (await session.execute(sa.select(m.Domain).where(m.Domain.enabled == sa.true())
                                                         .order_by(m.Domain.name))).scalars()
                       if await i.effective_role_ids(session, ctx.user_id, domain_id=d.id)]
        return listing(request, "domains", [r_domain(request, d) for d in domains])

    @r.get("/v3/auth/system")
    async def auth_system(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_auth_system")
        i = svc(request)
        async with i.db.read() as session:
            has = bool(await i.effective_role_ids(session, ctx.user_id, system=SYSTEM_ALL))
        return json_response({"system": [{"all": True}] if has else [],
                              "links": {"self": str(request.url), "previous": None, "next": None}})

    async def user_projects(request: Request, session: Any, user_id: str) -> list[m.Project]:
        i = svc(request)
        projects = (await session.execute(sa.select(m.Project).where(m.Project.enabled == sa.true())
                                          .order_by(m.Project.name))).scalars().all()
        domains = {d.id: d.enabled for d in (await session.execute(sa.select(m.Domain))).scalars()}
        return [p for p in projects if domains.get(p.domain_id)
                and await i.effective_role_ids(session, user_id, project=p)]

    # ------------------------------------------------------------------ domains

    @r.post("/v3/domains")
    async def create_domain(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.DomainCreateRequest)).domain
        authorize(request, ctx, "identity:create_domain", {"domain": body.model_dump()})
        async with svc(request).writing() as session:
            d = await svc(request).create_domain(session, name=body.name, description=body.description,
                                                 enabled=body.enabled, id=body.explicit_domain_id,
                                                 options=body.options)
        return json_response({"domain": r_domain(request, d)}, status=201)

    @r.get("/v3/domains")
    async def list_domains(request: Request, name: str | None = None, enabled: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_domains", {"domain": {"id": ctx.domain_id}})
        q = sa.select(m.Domain).order_by(m.Domain.name)
        if name is not None:
            q = q.where(m.Domain.name == name)
        if flag(enabled) is not None:
            q = q.where(m.Domain.enabled == flag(enabled))
        if not is_admin(request, ctx) and not (ctx.system_scope and "reader" in ctx.roles):
            q = q.where(m.Domain.id == ctx.domain_id)
        async with svc(request).db.read() as session:
            domains = (await session.execute(q)).scalars().all()
        return listing(request, "domains", [r_domain(request, d) for d in domains])

    @r.get("/v3/domains/{domain_id}")
    async def get_domain(request: Request, domain_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            d = await svc(request).get_domain(session, domain_id)
        authorize(request, ctx, "identity:get_domain", {"domain": {"id": d.id}})
        return json_response({"domain": r_domain(request, d)})

    @r.patch("/v3/domains/{domain_id}")
    async def update_domain(request: Request, domain_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.DomainUpdateRequest)).domain.model_dump(exclude_unset=True)
        changes.pop("tags", None)
        authorize(request, ctx, "identity:update_domain", {"domain": {"id": domain_id}})
        async with svc(request).writing() as session:
            d = await svc(request).update_domain(session, domain_id, changes)
        return json_response({"domain": r_domain(request, d)})

    @r.delete("/v3/domains/{domain_id}")
    async def delete_domain(request: Request, domain_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_domain", {"domain": {"id": domain_id}})
        async with svc(request).writing() as session:
            await svc(request).delete_domain(session, domain_id)
        return Response(status_code=204)

    # ------------------------------------------------------------------ projects

    @r.post("/v3/projects")
    async def create_project(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.ProjectCreateRequest)).project
        if body.is_domain:
            if body.parent_id or body.domain_id:
                raise BadRequest("A project acting as a domain has no parent and no domain.")
            authorize(request, ctx, "identity:create_domain", {"domain": {"name": body.name}})
            async with svc(request).writing() as session:
                d = await svc(request).create_domain(session, name=body.name, description=body.description,
                                                     enabled=body.enabled)
            return json_response({"project": r_domain_as_project(request, d)}, status=201)
        domain_id = body.domain_id or ctx.domain_id or ctx.project_domain_id or "default"
        authorize(request, ctx, "identity:create_project", {"project": {"domain_id": domain_id}})
        i = svc(request)
        async with i.writing() as session:
            p = await i.create_project(session, name=body.name, domain_id=body.domain_id or (
                None if body.parent_id else domain_id), parent_id=body.parent_id, description=body.description,
                enabled=body.enabled, tags=body.tags, options=body.options.model_dump(exclude_none=True))
            tags = await i.project_tags(session, [p.id])
        return json_response({"project": r_project(request, p, tags[p.id])}, status=201)

    @r.get("/v3/projects")
    async def list_projects(request: Request) -> Response:
        ctx = await authenticate(request)
        qp = request.query_params
        domain_id = qp.get("domain_id")
        authorize(request, ctx, "identity:list_projects", {"domain_id": domain_id or ctx.domain_id})
        q = sa.select(m.Project).order_by(m.Project.name)
        if not is_admin(request, ctx) and not (ctx.system_scope and "reader" in ctx.roles):
            domain_id = ctx.domain_id
        if domain_id is not None:
            q = q.where(m.Project.domain_id == domain_id)
        if qp.get("name") is not None:
            q = q.where(m.Project.name == qp["name"])
        if flag(qp.get("enabled")) is not None:
            q = q.where(m.Project.enabled == flag(qp.get("enabled")))
        if qp.get("parent_id") is not None:
            parent = qp["parent_id"]
            q = q.where((m.Project.parent_id == parent) | (m.Project.parent_id.is_(None) & (m.Project.domain_id == parent)))
        if flag(qp.get("is_domain")):
            dq = sa.select(m.Domain).order_by(m.Domain.name)
            if qp.get("name") is not None:
                dq = dq.where(m.Domain.name == qp["name"])
            if domain_id is not None:
                dq = dq.where(m.Domain.id == domain_id)
            async with svc(request).db.read() as session:
                domains = (await session.execute(dq)).scalars().all()
            return listing(request, "projects", [r_domain_as_project(request, d) for d in domains])
        i = svc(request)
        async with i.db.read() as session:
            projects = (await session.execute(q)).scalars().all()
            tags = await i.project_tags(session, [p.id for p in projects])
        def match(pid: str) -> bool:
            have = set(tags[pid])
            for key, test in (("tags", lambda w: w <= have), ("tags-any", lambda w: bool(w & have)),
                              ("not-tags", lambda w: not w <= have), ("not-tags-any", lambda w: not (w & have))):
                if qp.get(key) is not None and not test(set(qp[key].split(","))):
                    return False
            return True
        return listing(request, "projects", [r_project(request, p, tags[p.id]) for p in projects if match(p.id)])

    @r.get("/v3/projects/{project_id}")
    async def get_project(request: Request, project_id: str) -> Response:
        ctx = await authenticate(request)
        i = svc(request)
        qp = request.query_params
        async with i.db.read() as session:
            if await session.get(m.Project, project_id) is None and (d := await session.get(m.Domain, project_id)):
                authorize(request, ctx, "identity:get_domain", {"domain": {"id": d.id}})
                return json_response({"project": r_domain_as_project(request, d)})
            p = await i.get_project(session, project_id)
            authorize(request, ctx, "identity:get_project", {"project": {"id": p.id, "domain_id": p.domain_id}})
            tags = await i.project_tags(session, [p.id])
            out = r_project(request, p, tags[p.id])
            if "parents_as_list" in qp:
                parents = await i.ancestors(session, p)
                ptags = await i.project_tags(session, [x.id for x in parents])
                out["parents"] = [{"project": r_project(request, x, ptags[x.id])} for x in parents]
            if "subtree_as_list" in qp:
                subtree = await i.descendants(session, p.id)
                stags = await i.project_tags(session, [x.id for x in subtree])
                out["subtree"] = [{"project": r_project(request, x, stags[x.id])} for x in subtree]
        return json_response({"project": out})

    @r.patch("/v3/projects/{project_id}")
    async def update_project(request: Request, project_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.ProjectUpdateRequest)).project.model_dump(exclude_unset=True)
        if changes.get("is_domain"):
            raise BadRequest("Update of `is_domain` is not allowed.")
        changes.pop("is_domain", None)
        i = svc(request)
        async with i.writing() as session:
            if await session.get(m.Project, project_id) is None and await session.get(m.Domain, project_id):
                authorize(request, ctx, "identity:update_domain", {"domain": {"id": project_id}})
                changes = {k: v for k, v in changes.items() if k in ("name", "description", "enabled")}
                d = await i.update_domain(session, project_id, changes)
                return json_response({"project": r_domain_as_project(request, d)})
            p = await i.get_project(session, project_id)
            authorize(request, ctx, "identity:update_project", {"project": {"id": p.id, "domain_id": p.domain_id}})
            if p.options.get("immutable") and set(changes) - {"options"} and not (
                    changes.get("options", {}).get("immutable") is False):
                raise Forbidden(f"Project {project_id} is immutable and cannot be changed.")
            if "options" in changes:
                changes["options"] = {k: v for k, v in changes["options"].items() if v is not None}
            p = await i.update_project(session, project_id, changes)
            tags = await i.project_tags(session, [p.id])
        return json_response({"project": r_project(request, p, tags[p.id])})

    @r.delete("/v3/projects/{project_id}")
    async def delete_project(request: Request, project_id: str) -> Response:
        ctx = await authenticate(request)
        i = svc(request)
        async with i.writing() as session:
            if await session.get(m.Project, project_id) is None and await session.get(m.Domain, project_id):
                authorize(request, ctx, "identity:delete_domain", {"domain": {"id": project_id}})
                await i.delete_domain(session, project_id)
                return Response(status_code=204)
            p = await i.get_project(session, project_id)
            authorize(request, ctx, "identity:delete_project", {"project": {"id": p.id, "domain_id": p.domain_id}})
            if p.options.get("immutable"):
                raise Forbidden(f"Project {project_id} is immutable and cannot be deleted.")
            await i.delete_project(session, project_id)
        return Response(status_code=204)

    async def project_for(request: Request, ctx: AuthContext, project_id: str, rule: str, session: Any) -> m.Project:
        p = await svc(request).get_project(session, project_id)
        authorize(request, ctx, rule, {"project": {"id": p.id, "domain_id": p.domain_id}})
        return p

    @r.get("/v3/projects/{project_id}/tags")
    async def list_tags(request: Request, project_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            await project_for(request, ctx, project_id, "identity:list_project_tags", session)
            tags = (await svc(request).project_tags(session, [project_id]))[project_id]
        return json_response({"tags": tags})

    @r.put("/v3/projects/{project_id}/tags")
    async def replace_tags(request: Request, project_id: str) -> Response:
        ctx = await authenticate(request)
        body = await body_of(request, s.Tags)
        async with svc(request).writing() as session:
            await project_for(request, ctx, project_id, "identity:update_project_tags", session)
            tags = await svc(request).set_tags(session, project_id, body.tags)
        return json_response({"tags": tags})

    @r.delete("/v3/projects/{project_id}/tags")
    async def delete_tags(request: Request, project_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).writing() as session:
            await project_for(request, ctx, project_id, "identity:delete_project_tags", session)
            await svc(request).set_tags(session, project_id, [])
        return Response(status_code=204)

    @r.get("/v3/projects/{project_id}/tags/{tag}")
    @r.head("/v3/projects/{project_id}/tags/{tag}")
    async def get_tag(request: Request, project_id: str, tag: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            await project_for(request, ctx, project_id, "identity:get_project_tag", session)
            tags = (await svc(request).project_tags(session, [project_id]))[project_id]
        if tag not in tags:
            raise NotFound(f"Tag {tag} was not found on project {project_id}.")
        return Response(status_code=204)

    @r.put("/v3/projects/{project_id}/tags/{tag}")
    async def add_tag(request: Request, project_id: str, tag: str) -> Response:
        ctx = await authenticate(request)
        if not tag or "," in tag or "/" in tag or len(tag) > 255:
            raise BadRequest("Invalid tag: tags are 1 to 255 characters without ',' or '/'.")
        async with svc(request).writing() as session:
            await project_for(request, ctx, project_id, "identity:create_project_tag", session)
            await svc(request).add_tag(session, project_id, tag)
        # a header is latin-1: a unicode tag goes percent-encoded
        return Response(status_code=201,
                        headers={"Location": f"{v3(request)}/projects/{project_id}/tags/{quote(tag, safe='')}"})

    @r.delete("/v3/projects/{project_id}/tags/{tag}")
    async def delete_tag(request: Request, project_id: str, tag: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).writing() as session:
            await project_for(request, ctx, project_id, "identity:delete_project_tag", session)
            await svc(request).delete_tag(session, project_id, tag)
        return Response(status_code=204)

    # ------------------------------------------------------------------ users

    @r.post("/v3/users")
    async def create_user(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.UserCreateRequest)).user
        domain_id = body.domain_id or ctx.domain_id or ctx.project_domain_id or "default"
        authorize(request, ctx, "identity:create_user", {"user": {"domain_id": domain_id}})
        i = svc(request)
        async with i.writing() as session:
            u = await i.create_user(session, name=body.name, domain_id=domain_id, password=body.password,
                                    enabled=body.enabled, default_project_id=body.default_project_id,
                                    description=body.description, email=body.email,
                                    options=body.options.model_dump(exclude_none=True),
                                    extra={"project_id": body.project_id} if body.project_id else None)
        return json_response({"user": r_user(request, u)}, status=201)

    @r.get("/v3/users")
    async def list_users(request: Request) -> Response:
        ctx = await authenticate(request)
        qp = request.query_params
        domain_id = qp.get("domain_id")
        authorize(request, ctx, "identity:list_users", {"domain_id": domain_id or ctx.domain_id})
        if not is_admin(request, ctx) and not (ctx.system_scope and "reader" in ctx.roles):
            domain_id = ctx.domain_id
        q = sa.select(m.User).order_by(m.User.name)
        if domain_id is not None:
            q = q.where(m.User.domain_id == domain_id)
        if qp.get("name") is not None:
            q = q.where(m.User.name == qp["name"])
        if flag(qp.get("enabled")) is not None:
            q = q.where(m.User.enabled == flag(qp.get("enabled")))
        if qp.get("idp_id") or qp.get("protocol_id") or qp.get("unique_id"):
            return listing(request, "users", [])
        async with svc(request).db.read() as session:
            users = (await session.execute(q)).scalars().all()
        return listing(request, "users", [r_user(request, u) for u in users])

    async def user_for(request: Request, ctx: AuthContext, user_id: str, rule: str, session: Any) -> m.User:
        try:
            u = await svc(request).get_user(session, user_id)
        except NotFound:
            # do not tell a caller who may not read users whether one exists
            authorize(request, ctx, rule, {"user": {"id": user_id}}, user_id=user_id)
            raise
        authorize(request, ctx, rule, {"user": {"id": u.id, "domain_id": u.domain_id}}, user_id=user_id)
        return u

    @r.get("/v3/users/{user_id}")
    async def get_user(request: Request, user_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            u = await user_for(request, ctx, user_id, "identity:get_user", session)
        return json_response({"user": r_user(request, u)})

    @r.patch("/v3/users/{user_id}")
    async def update_user(request: Request, user_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.UserUpdateRequest)).user.model_dump(exclude_unset=True)
        i = svc(request)
        async with i.writing() as session:
            await user_for(request, ctx, user_id, "identity:update_user", session)
            u = await i.update_user(session, user_id, changes)
        return json_response({"user": r_user(request, u)})

    @r.delete("/v3/users/{user_id}")
    async def delete_user(request: Request, user_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).writing() as session:
            await user_for(request, ctx, user_id, "identity:delete_user", session)
            await svc(request).delete_user(session, user_id)
        return Response(status_code=204)

    @r.post("/v3/users/{user_id}/password")
    async def change_password(request: Request, user_id: str) -> Response:
        body = (await body_of(request, s.PasswordChangeRequest)).user
        await svc(request).change_password(user_id, body.original_password, body.password)
        return Response(status_code=204)

    @r.get("/v3/users/{user_id}/groups")
    async def user_groups(request: Request, user_id: str) -> Response:
        ctx = await authenticate(request)
        i = svc(request)
        async with i.db.read() as session:
            await user_for(request, ctx, user_id, "identity:list_groups_for_user", session)
            groups = (await session.execute(sa.select(m.Group).join(
                m.Membership, m.Membership.group_id == m.Group.id).where(m.Membership.user_id == user_id)
                .order_by(m.Group.name))).scalars().all()
        return listing(request, "groups", [r_group(request, g) for g in groups])

    @r.get("/v3/users/{user_id}/projects")
    async def user_project_list(request: Request, user_id: str) -> Response:
        ctx = await authenticate(request)
        i = svc(request)
        async with i.db.read() as session:
            await user_for(request, ctx, user_id, "identity:list_user_projects", session)
            projects = await user_projects(request, session, user_id)
            tags = await i.project_tags(session, [p.id for p in projects])
        return listing(request, "projects", [r_project(request, p, tags[p.id]) for p in projects])

    # ------------------------------------------------------------------ application credentials

    @r.post("/v3/users/{user_id}/application_credentials")
    async def create_app_cred(request: Request, user_id: str) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.ApplicationCredentialCreateRequest)).application_credential
        authorize(request, ctx, "identity:create_application_credential", user_id=user_id)
        if body.access_rules:
            raise BadRequest("Access rules are not supported by this cloud.")
        i = svc(request)
        if ctx.application_credential_id:
            async with i.db.read() as session:
                cred = await session.get(m.ApplicationCredential, ctx.application_credential_id)
                if cred is None or not cred.unrestricted:
                    raise Forbidden("A restricted application credential cannot create application credentials.")
        async with i.writing() as session:
            cred, secret, roles = await i.create_application_credential(
                session, ctx, user_id, name=body.name, description=body.description, secret=body.secret,
                expires_at=parse_time(body.expires_at, "expires_at"),
                roles=[x.model_dump(exclude_none=True) for x in body.roles], unrestricted=body.unrestricted)
        return json_response({"application_credential": r_app_cred(request, cred, roles, secret)}, status=201)

    @r.get("/v3/users/{user_id}/application_credentials")
    async def list_app_creds(request: Request, user_id: str, name: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_application_credentials", user_id=user_id)
        i = svc(request)
        async with i.db.read() as session:
            await i.get_user(session, user_id)
            q = sa.select(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user_id)
            if name is not None:
                q = q.where(m.ApplicationCredential.name == name)
            creds = (await session.execute(q.order_by(m.ApplicationCredential.name))).scalars().all()
            out = [r_app_cred(request, c, await i.application_credential_roles(session, c.id)) for c in creds]
        return listing(request, "application_credentials", out)

    @r.get("/v3/users/{user_id}/application_credentials/{cred_id}")
    async def get_app_cred(request: Request, user_id: str, cred_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_application_credential", user_id=user_id)
        i = svc(request)
        async with i.db.read() as session:
            c = await i.get_application_credential(session, user_id, cred_id)
            roles = await i.application_credential_roles(session, c.id)
        return json_response({"application_credential": r_app_cred(request, c, roles)})

    @r.delete("/v3/users/{user_id}/application_credentials/{cred_id}")
    async def delete_app_cred(request: Request, user_id: str, cred_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_application_credential", user_id=user_id)
        if ctx.application_credential_id:
            async with svc(request).db.read() as session:
                cred = await session.get(m.ApplicationCredential, ctx.application_credential_id)
                if cred is None or not cred.unrestricted:
                    raise Forbidden("A restricted application credential cannot delete application credentials.")
        async with svc(request).writing() as session:
            await svc(request).delete_application_credential(session, user_id, cred_id)
        return Response(status_code=204)

    # ------------------------------------------------------------------ groups

    @r.post("/v3/groups")
    async def create_group(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.GroupCreateRequest)).group
        domain_id = body.domain_id or ctx.domain_id or ctx.project_domain_id or "default"
        authorize(request, ctx, "identity:create_group", {"group": {"domain_id": domain_id}})
        async with svc(request).writing() as session:
            g = await svc(request).create_group(session, name=body.name, domain_id=domain_id,
                                                description=body.description,
                                                extra={"project_id": body.project_id} if body.project_id else None)
        return json_response({"group": r_group(request, g)}, status=201)

    @r.get("/v3/groups")
    async def list_groups(request: Request, name: str | None = None, domain_id: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_groups", {"group": {"domain_id": domain_id or ctx.domain_id}})
        if not is_admin(request, ctx) and not (ctx.system_scope and "reader" in ctx.roles):
            domain_id = ctx.domain_id
        q = sa.select(m.Group).order_by(m.Group.name)
        if domain_id is not None:
            q = q.where(m.Group.domain_id == domain_id)
        if name is not None:
            q = q.where(m.Group.name == name)
        async with svc(request).db.read() as session:
            groups = (await session.execute(q)).scalars().all()
        return listing(request, "groups", [r_group(request, g) for g in groups])

    async def group_for(request: Request, ctx: AuthContext, group_id: str, rule: str, session: Any,
                        user: m.User | None = None) -> m.Group:
        g = await svc(request).get_group(session, group_id)
        target: dict[str, Any] = {"group": {"id": g.id, "domain_id": g.domain_id}}
        if user is not None:
            target["user"] = {"id": user.id, "domain_id": user.domain_id}
        authorize(request, ctx, rule, target)
        return g

    @r.get("/v3/groups/{group_id}")
    async def get_group(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            g = await group_for(request, ctx, group_id, "identity:get_group", session)
        return json_response({"group": r_group(request, g)})

    @r.patch("/v3/groups/{group_id}")
    async def update_group(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.GroupUpdateRequest)).group.model_dump(exclude_unset=True)
        async with svc(request).writing() as session:
            await group_for(request, ctx, group_id, "identity:update_group", session)
            g = await svc(request).update_group(session, group_id, changes)
        return json_response({"group": r_group(request, g)})

    @r.delete("/v3/groups/{group_id}")
    async def delete_group(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).writing() as session:
            await group_for(request, ctx, group_id, "identity:delete_group", session)
            await svc(request).delete_group(session, group_id)
        return Response(status_code=204)

    @r.get("/v3/groups/{group_id}/users")
    async def group_users(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            await group_for(request, ctx, group_id, "identity:list_users_in_group", session)
            users = (await session.execute(sa.select(m.User).join(
                m.Membership, m.Membership.user_id == m.User.id).where(m.Membership.group_id == group_id)
                .order_by(m.User.name))).scalars().all()
        return listing(request, "users", [r_user(request, u) for u in users])

    async def membership(request: Request, group_id: str, user_id: str, rule: str, write: bool) -> Any:
        ctx = await authenticate(request)
        i = svc(request)
        async with (i.writing() if write else i.db.read()) as session:
            user = await i.get_user(session, user_id)
            await group_for(request, ctx, group_id, rule, session, user)
            if rule == "identity:add_user_to_group":
                await i.add_user_to_group(session, group_id, user_id)
            elif rule == "identity:remove_user_from_group":
                await i.remove_user_from_group(session, group_id, user_id)
            else:
                await i.check_user_in_group(session, group_id, user_id)
        return Response(status_code=204)

    @r.put("/v3/groups/{group_id}/users/{user_id}")
    async def add_member(request: Request, group_id: str, user_id: str) -> Response:
        return await membership(request, group_id, user_id, "identity:add_user_to_group", True)

    @r.head("/v3/groups/{group_id}/users/{user_id}")
    @r.get("/v3/groups/{group_id}/users/{user_id}")
    async def check_member(request: Request, group_id: str, user_id: str) -> Response:
        return await membership(request, group_id, user_id, "identity:check_user_in_group", False)

    @r.delete("/v3/groups/{group_id}/users/{user_id}")
    async def remove_member(request: Request, group_id: str, user_id: str) -> Response:
        return await membership(request, group_id, user_id, "identity:remove_user_from_group", True)

    # ------------------------------------------------------------------ roles

    @r.post("/v3/roles")
    async def create_role(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.RoleCreateRequest)).role
        authorize(request, ctx, "identity:create_role" if not body.domain_id else "identity:create_domain_role")
        async with svc(request).writing() as session:
            role = await svc(request).create_role(session, name=body.name, domain_id=body.domain_id,
                                                  description=body.description,
                                                  options=body.options.model_dump(exclude_none=True))
        return json_response({"role": r_role(request, role)}, status=201)

    @r.get("/v3/roles")
    async def list_roles(request: Request, name: str | None = None, domain_id: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_roles" if not domain_id else "identity:list_domain_roles",
                  domain_id=domain_id)
        q = sa.select(m.Role).where(m.Role.domain_id == (domain_id or m.NULL_DOMAIN)).order_by(m.Role.name)
        if name is not None:
            q = q.where(m.Role.name == name)
        async with svc(request).db.read() as session:
            roles = (await session.execute(q)).scalars().all()
        return listing(request, "roles", [r_role(request, x) for x in roles])

    @r.get("/v3/roles/{role_id}")
    async def get_role(request: Request, role_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            role = await svc(request).get_role(session, role_id)
        authorize(request, ctx, "identity:get_role" if role.domain_id == m.NULL_DOMAIN else "identity:get_domain_role",
                  {"role": {"id": role.id, "name": role.name}})
        return json_response({"role": r_role(request, role)})

    @r.patch("/v3/roles/{role_id}")
    async def update_role(request: Request, role_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.RoleUpdateRequest)).role.model_dump(exclude_unset=True)
        async with svc(request).writing() as session:
            role = await svc(request).get_role(session, role_id)
            authorize(request, ctx, "identity:update_role" if role.domain_id == m.NULL_DOMAIN
                      else "identity:update_domain_role")
            role = await svc(request).update_role(session, role_id, changes)
        return json_response({"role": r_role(request, role)})

    @r.delete("/v3/roles/{role_id}")
    async def delete_role(request: Request, role_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).writing() as session:
            role = await svc(request).get_role(session, role_id)
            authorize(request, ctx, "identity:delete_role" if role.domain_id == m.NULL_DOMAIN
                      else "identity:delete_domain_role")
            await svc(request).delete_role(session, role_id)
        return Response(status_code=204)

    def inference(request: Request, prior: m.Role, implied: m.Role | list[m.Role]) -> dict[str, Any]:
        implies = ([r_role_brief(request, x) for x in implied] if isinstance(implied, list)
                   else r_role_brief(request, implied))
        return {"prior_role": r_role_brief(request, prior), "implies": implies}

    @r.put("/v3/roles/{prior_id}/implies/{implied_id}")
    async def create_implied(request: Request, prior_id: str, implied_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:create_implied_role")
        async with svc(request).writing() as session:
            prior, implied = await svc(request).create_implied_role(session, prior_id, implied_id)
        return json_response({"role_inference": inference(request, prior, implied)}, status=201)

    @r.get("/v3/roles/{prior_id}/implies/{implied_id}")
    async def get_implied(request: Request, prior_id: str, implied_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_implied_role")
        async with svc(request).db.read() as session:
            prior, implied = await svc(request).get_implied_role(session, prior_id, implied_id)
        return json_response({"role_inference": inference(request, prior, implied)})

    @r.head("/v3/roles/{prior_id}/implies/{implied_id}")
    async def check_implied(request: Request, prior_id: str, implied_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:check_implied_role")
        async with svc(request).db.read() as session:
            await svc(request).get_implied_role(session, prior_id, implied_id)
        return Response(status_code=204)

    @r.delete("/v3/roles/{prior_id}/implies/{implied_id}")
    async def delete_implied(request: Request, prior_id: str, implied_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_implied_role")
        async with svc(request).writing() as session:
            await svc(request).delete_implied_role(session, prior_id, implied_id)
        return Response(status_code=204)

    @r.get("/v3/roles/{prior_id}/implies")
    async def list_implied(request: Request, prior_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_implied_roles")
        async with svc(request).db.read() as session:
            prior = await svc(request).get_role(session, prior_id)
            implied = (await svc(request).implied_roles(session, prior_id)).get(prior_id, [])
        return json_response({"role_inference": inference(request, prior, implied),
                              "links": {"self": str(request.url), "previous": None, "next": None}})

    @r.get("/v3/role_inferences")
    async def list_inferences(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_role_inference_rules")
        async with svc(request).db.read() as session:
            rules = await svc(request).implied_roles(session)
            priors = {x.id: x for x in await svc(request).roles_by_ids(session, rules)}
        return json_response({"role_inferences": [inference(request, priors[p], implied)
                                                  for p, implied in rules.items()],
                              "links": {"self": str(request.url), "previous": None, "next": None}})

    # ------------------------------------------------------------------ grants

    async def grant_target(request: Request, ctx: AuthContext, rule: str, actor: str, actor_id: str,
                           target: str, target_id: str) -> None:
        i = svc(request)
        t: dict[str, Any] = {}
        async with i.db.read() as session:
            if actor == "user":
                u = await session.get(m.User, actor_id)
                t["user"] = {"id": actor_id, "domain_id": u.domain_id if u else None}
            else:
                g = await session.get(m.Group, actor_id)
                t["group"] = {"id": actor_id, "domain_id": g.domain_id if g else None}
            if target == "project":
                p = await session.get(m.Project, target_id)
                t["project"] = {"id": target_id, "domain_id": p.domain_id if p else None}
            elif target == "domain":
                t["domain"] = {"id": target_id}
            # the role is part of Keystone's target: a domain manager may grant only
            # manager/member/reader, and only global roles or roles of the target's domain
            role_id = request.path_params.get("role_id")
            if role_id:
                role = await session.get(m.Role, role_id)
                t["role"] = {"id": role_id, "name": role.name if role else None,
                             "domain_id": None if role is None or role.domain_id == m.NULL_DOMAIN else role.domain_id}
        authorize(request, ctx, rule, t)

    def grant_routes(actor: str, target: str, prefix: str, suffix: str = "", inherited: bool = False) -> None:
        system = target == "system"
        rules = {k: (f"identity:{k}_system_grant_for_{actor}" if system else f"identity:{k}_grant")
                 for k in ("create", "check", "revoke", "list")}
        if system:
            rules["list"] = f"identity:list_system_grants_for_{actor}"
        else:
            rules["list"] = "identity:list_grants"
        one = prefix + "/roles/{role_id}" + suffix
        many = prefix + "/roles" + suffix

        def ids(params: dict[str, str]) -> tuple[str, str]:
            return params[f"{actor}_id"], SYSTEM_ALL if system else params[f"{target}_id"]

        async def put(request: Request) -> Response:
            ctx = await authenticate(request)
            actor_id, target_id = ids(request.path_params)
            await grant_target(request, ctx, rules["create"], actor, actor_id, target, target_id)
            async with svc(request).writing() as session:
                await svc(request).create_grant(session, actor, actor_id, target, target_id,
                                                request.path_params["role_id"], inherited)
            return Response(status_code=204)

        async def check(request: Request) -> Response:
            ctx = await authenticate(request)
            actor_id, target_id = ids(request.path_params)
            await grant_target(request, ctx, rules["check"], actor, actor_id, target, target_id)
            async with svc(request).db.read() as session:
                await svc(request).check_grant(session, actor, actor_id, target, target_id,
                                               request.path_params["role_id"], inherited)
            return Response(status_code=204)

        async def delete(request: Request) -> Response:
            ctx = await authenticate(request)
            actor_id, target_id = ids(request.path_params)
            await grant_target(request, ctx, rules["revoke"], actor, actor_id, target, target_id)
            async with svc(request).writing() as session:
                await svc(request).delete_grant(session, actor, actor_id, target, target_id,
                                                request.path_params["role_id"], inherited)
            return Response(status_code=204)

        async def listed(request: Request) -> Response:
            ctx = await authenticate(request)
            actor_id, target_id = ids(request.path_params)
            await grant_target(request, ctx, rules["list"], actor, actor_id, target, target_id)
            async with svc(request).db.read() as session:
                roles = await svc(request).list_grants(session, actor, actor_id, target, target_id, inherited)
            return listing(request, "roles", [r_role(request, x) for x in roles])

        name = f"{actor}_{target}_{'inherited' if inherited else 'direct'}"
        r.add_api_route(one, put, methods=["PUT"], name=f"put_{name}")
        r.add_api_route(one, check, methods=["HEAD", "GET"], name=f"check_{name}")
        r.add_api_route(one, delete, methods=["DELETE"], name=f"delete_{name}")
        r.add_api_route(many, listed, methods=["GET"], name=f"list_{name}")

    for actor in ("user", "group"):
        grant_routes(actor, "project", f"/v3/projects/{{project_id}}/{actor}s/{{{actor}_id}}")
        grant_routes(actor, "domain", f"/v3/domains/{{domain_id}}/{actor}s/{{{actor}_id}}")
        grant_routes(actor, "system", f"/v3/system/{actor}s/{{{actor}_id}}")
        grant_routes(actor, "domain", f"/v3/OS-INHERIT/domains/{{domain_id}}/{actor}s/{{{actor}_id}}",
                     "/inherited_to_projects", inherited=True)
        grant_routes(actor, "project", f"/v3/OS-INHERIT/projects/{{project_id}}/{actor}s/{{{actor}_id}}",
                     "/inherited_to_projects", inherited=True)

    @r.get("/v3/role_assignments")
    async def role_assignments(request: Request) -> Response:
        ctx = await authenticate(request)
        qp = request.query_params
        effective = "effective" in qp and flag(qp.get("effective") or "true")
        include_names = "include_names" in qp and flag(qp.get("include_names") or "true")
        include_subtree = "include_subtree" in qp and flag(qp.get("include_subtree") or "true")
        if effective and qp.get("group.id"):
            raise BadRequest("Combining effective and group filter will always result in an empty list.")
        if include_subtree and not qp.get("scope.project.id"):
            raise BadRequest("scope.project.id must be specified if include_subtree is also specified.")
        inherited_to = qp.get("scope.OS-INHERIT:inherited_to")
        scope_domain = qp.get("scope.domain.id")
        i = svc(request)
        if include_subtree:
            # Keystone's target for a tree is the project's domain
            async with i.db.read() as session:
                tree_root = await i.get_project(session, qp["scope.project.id"])
            authorize(request, ctx, "identity:list_role_assignments_for_tree", {"domain_id": tree_root.domain_id})
        else:
            authorize(request, ctx, "identity:list_role_assignments", {"domain_id": scope_domain or ctx.domain_id})
        async with i.db.read() as session:
            items = await i.list_role_assignments(
                session, user_id=qp.get("user.id"), group_id=qp.get("group.id"), role_id=qp.get("role.id"),
                project_id=qp.get("scope.project.id"), domain_id=scope_domain,
                system=qp.get("scope.system"), inherited=True if inherited_to == "projects" else None,
                effective=bool(effective), include_subtree=bool(include_subtree))
            if ctx.domain_id and not include_subtree:
                # as Keystone: a domain-scoped token sees only assignments on its domain and its projects
                own = set((await session.execute(sa.select(m.Project.id).where(
                    m.Project.domain_id == ctx.domain_id))).scalars())
                items = [a for a in items if a["scope"] == ("domain", ctx.domain_id)
                         or (a["scope"][0] == "project" and a["scope"][1] in own)]
            names: dict[str, Any] = {}
            if include_names:
                for model in (m.Role, m.User, m.Group, m.Project, m.Domain):
                    for obj in (await session.execute(sa.select(model))).scalars():
                        names[obj.id] = obj
        if not is_admin(request, ctx) and not (ctx.system_scope and "reader" in ctx.roles):
            # a domain reader sees assignments within its domain only
            if ctx.domain_id is None:
                raise Forbidden("You are not authorized to perform the requested action: identity:list_role_assignments.")
        base = v3(request)

        def named(obj_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {"id": obj_id}
            obj = names.get(obj_id)
            if include_names and obj is not None:
                out["name"] = obj.name
                dom = getattr(obj, "domain_id", None)
                if dom and dom != m.NULL_DOMAIN:
                    d = names.get(dom)
                    out["domain"] = {"id": dom, **({"name": d.name} if d else {})}
            return {**out, **(extra or {})}

        out = []
        for a in items:
            kind, target = a["scope"]
            inherited = a["inherited"]
            entry: dict[str, Any] = {"role": named(a["role_id"])}
            if "user_id" in a:
                entry["user"] = named(a["user_id"])
            if "group_id" in a:
                entry["group"] = named(a["group_id"])
            if kind == "system":
                entry["scope"] = {"system": {"all": True}}
                scope_path = "system"
            else:
                entry["scope"] = {kind: named(target)}
                scope_path = f"{kind}s/{target}"
            if inherited:
                entry["scope"]["OS-INHERIT:inherited_to"] = "projects"
            actor_path = f"users/{a['user_id']}" if "user_id" in a and not a.get("via_group") else (
                f"groups/{a.get('group_id') or a.get('via_group')}")
            if a.get("source_inherited"):
                src_kind = "domains" if kind == "project" and names.get(a["source_target"]) and isinstance(
                    names.get(a["source_target"]), m.Domain) else "projects"
                link = f"{base}/OS-INHERIT/{src_kind}/{a['source_target']}/{actor_path}/roles/{a['role_id']}/inherited_to_projects"
            elif inherited:
                link = f"{base}/OS-INHERIT/{scope_path}/{actor_path}/roles/{a['role_id']}/inherited_to_projects"
            else:
                link = f"{base}/{scope_path}/{actor_path}/roles/{a.get('prior_role') or a['role_id']}"
            entry["links"] = {"assignment": link}
            if a.get("via_group"):
                entry["links"]["membership"] = f"{base}/groups/{a['via_group']}/users/{a['user_id']}"
            if a.get("prior_role"):
                entry["links"]["prior_role"] = f"{base}/roles/{a['prior_role']}"
            out.append(entry)
        return listing(request, "role_assignments", out)

    # ------------------------------------------------------------------ catalog

    @r.post("/v3/regions")
    async def create_region(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.RegionCreateRequest)).region
        authorize(request, ctx, "identity:create_region")
        async with svc(request).writing() as session:
            region = await svc(request).create_region(session, id=body.id, description=body.description or "",
                                                      parent_region_id=body.parent_region_id)
        return json_response({"region": r_region(request, region)}, status=201)

    @r.put("/v3/regions/{region_id}")
    async def put_region(request: Request, region_id: str) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.RegionCreateRequest)).region
        if body.id is not None and body.id != region_id:
            raise BadRequest("The region id in the body must match the one in the URL.")
        authorize(request, ctx, "identity:create_region")
        async with svc(request).writing() as session:
            region = await svc(request).create_region(session, id=region_id, description=body.description or "",
                                                      parent_region_id=body.parent_region_id)
        return json_response({"region": r_region(request, region)}, status=201)

    @r.get("/v3/regions")
    async def list_regions(request: Request, parent_region_id: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_regions")
        q = sa.select(m.Region).order_by(m.Region.id)
        if parent_region_id is not None:
            q = q.where(m.Region.parent_region_id == parent_region_id)
        async with svc(request).db.read() as session:
            regions = (await session.execute(q)).scalars().all()
        return listing(request, "regions", [r_region(request, x) for x in regions])

    @r.get("/v3/regions/{region_id}")
    async def get_region(request: Request, region_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_region")
        async with svc(request).db.read() as session:
            region = await svc(request)._get(session, m.Region, region_id, "region")
        return json_response({"region": r_region(request, region)})

    @r.patch("/v3/regions/{region_id}")
    async def update_region(request: Request, region_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.RegionUpdateRequest)).region.model_dump(exclude_unset=True)
        authorize(request, ctx, "identity:update_region")
        async with svc(request).writing() as session:
            region = await svc(request).update_region(session, region_id, changes)
        return json_response({"region": r_region(request, region)})

    @r.delete("/v3/regions/{region_id}")
    async def delete_region(request: Request, region_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_region")
        async with svc(request).writing() as session:
            await svc(request).delete_region(session, region_id)
        return Response(status_code=204)

    @r.post("/v3/services")
    async def create_service(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.ServiceCreateRequest)).service
        authorize(request, ctx, "identity:create_service")
        async with svc(request).writing() as session:
            x = await svc(request).create_service(session, type=body.type, name=body.name,
                                                  description=body.description, enabled=body.enabled)
        return json_response({"service": r_service(request, x)}, status=201)

    @r.get("/v3/services")
    async def list_services(request: Request, type: str | None = None, name: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_services")
        q = sa.select(m.Service).order_by(m.Service.type)
        if type is not None:
            q = q.where(m.Service.type == type)
        if name is not None:
            q = q.where(m.Service.name == name)
        async with svc(request).db.read() as session:
            services = (await session.execute(q)).scalars().all()
        return listing(request, "services", [r_service(request, x) for x in services])

    @r.get("/v3/services/{service_id}")
    async def get_service(request: Request, service_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_service")
        async with svc(request).db.read() as session:
            x = await svc(request)._get(session, m.Service, service_id, "service")
        return json_response({"service": r_service(request, x)})

    @r.patch("/v3/services/{service_id}")
    async def update_service(request: Request, service_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.ServiceUpdateRequest)).service.model_dump(exclude_unset=True)
        authorize(request, ctx, "identity:update_service")
        async with svc(request).writing() as session:
            x = await svc(request)._get(session, m.Service, service_id, "service")
            for key, value in changes.items():
                setattr(x, key, value)
        return json_response({"service": r_service(request, x)})

    @r.delete("/v3/services/{service_id}")
    async def delete_service(request: Request, service_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_service")
        async with svc(request).writing() as session:
            await svc(request).delete_service(session, service_id)
        return Response(status_code=204)

    @r.post("/v3/endpoints")
    async def create_endpoint(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.EndpointCreateRequest)).endpoint
        authorize(request, ctx, "identity:create_endpoint")
        async with svc(request).writing() as session:
            e = await svc(request).create_endpoint(session, service_id=body.service_id, interface=body.interface,
                                                   url=body.url, region_id=body.region_id,
                                                   legacy_region=body.region, enabled=body.enabled)
        return json_response({"endpoint": r_endpoint(request, e)}, status=201)

    @r.get("/v3/endpoints")
    async def list_endpoints(request: Request, service_id: str | None = None, interface: str | None = None,
                             region_id: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_endpoints")
        q = sa.select(m.Endpoint).order_by(m.Endpoint.service_id, m.Endpoint.interface)
        if service_id is not None:
            q = q.where(m.Endpoint.service_id == service_id)
        if interface is not None:
            q = q.where(m.Endpoint.interface == interface)
        if region_id is not None:
            q = q.where(m.Endpoint.region_id == region_id)
        async with svc(request).db.read() as session:
            endpoints = (await session.execute(q)).scalars().all()
        return listing(request, "endpoints", [r_endpoint(request, e) for e in endpoints])

    @r.get("/v3/endpoints/{endpoint_id}")
    async def get_endpoint(request: Request, endpoint_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_endpoint")
        async with svc(request).db.read() as session:
            e = await svc(request)._get(session, m.Endpoint, endpoint_id, "endpoint")
        return json_response({"endpoint": r_endpoint(request, e)})

    @r.patch("/v3/endpoints/{endpoint_id}")
    async def update_endpoint(request: Request, endpoint_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.EndpointUpdateRequest)).endpoint.model_dump(exclude_unset=True)
        authorize(request, ctx, "identity:update_endpoint")
        i = svc(request)
        async with i.writing() as session:
            e = await i._get(session, m.Endpoint, endpoint_id, "endpoint")
            if "region" in changes or "region_id" in changes:
                changes["region_id"] = await i.endpoint_region(session, changes.get("region_id"),
                                                               changes.pop("region", None))
            if changes.get("service_id") and await session.get(m.Service, changes["service_id"]) is None:
                raise BadRequest("Expecting to find endpoint service_id in service table.")
            for key, value in changes.items():
                setattr(e, key, value)
        return json_response({"endpoint": r_endpoint(request, e)})

    @r.delete("/v3/endpoints/{endpoint_id}")
    async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_endpoint")
        async with svc(request).writing() as session:
            e = await svc(request)._get(session, m.Endpoint, endpoint_id, "endpoint")
            await session.delete(e)
        return Response(status_code=204)

    # ------------------------------------------------------------------ credentials

    @r.post("/v3/credentials")
    async def create_credential(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.CredentialCreateRequest)).credential
        authorize(request, ctx, "identity:create_credential", {"credential": {"user_id": body.user_id}})
        i = svc(request)
        async with i.writing() as session:
            c = await i.create_credential(session, user_id=body.user_id, type=body.type, blob=body.blob,
                                          project_id=body.project_id)
        return json_response({"credential": r_credential(request, c, body.blob)}, status=201)

    @r.get("/v3/credentials")
    async def list_credentials(request: Request, user_id: str | None = None, type: str | None = None) -> Response:
        ctx = await authenticate(request)
        i = svc(request)
        q = sa.select(m.Credential).order_by(m.Credential.id)
        if user_id is not None:
            q = q.where(m.Credential.user_id == user_id)
        if type is not None:
            q = q.where(m.Credential.type == type)
        policy = runtime_of(request).policy
        async with i.db.read() as session:
            creds = [c for c in (await session.execute(q)).scalars()
                     if policy.check("identity:list_credentials", ctx.credentials(),
                                     {"target.credential.user_id": c.user_id})]
        return listing(request, "credentials", [r_credential(request, c, i.decrypt_blob(c.encrypted_blob))
                                                for c in creds])

    async def credential_for(request: Request, ctx: AuthContext, cred_id: str, rule: str, session: Any) -> m.Credential:
        c = await session.get(m.Credential, cred_id)
        authorize(request, ctx, rule, {"credential": {"user_id": c.user_id if c else None}})
        if c is None:
            raise NotFound(f"Could not find credential: {cred_id}.")
        return c

    @r.get("/v3/credentials/{cred_id}")
    async def get_credential(request: Request, cred_id: str) -> Response:
        ctx = await authenticate(request)
        i = svc(request)
        async with i.db.read() as session:
            c = await credential_for(request, ctx, cred_id, "identity:get_credential", session)
        return json_response({"credential": r_credential(request, c, i.decrypt_blob(c.encrypted_blob))})

    @r.patch("/v3/credentials/{cred_id}")
    async def update_credential(request: Request, cred_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.CredentialUpdateRequest)).credential.model_dump(exclude_unset=True)
        i = svc(request)
        async with i.writing() as session:
            c = await credential_for(request, ctx, cred_id, "identity:update_credential", session)
            if changes.get("user_id") and changes["user_id"] != c.user_id:
                authorize(request, ctx, "identity:update_credential", {"credential": {"user_id": changes["user_id"]}})
                await i.get_user(session, changes["user_id"])
            if "blob" in changes:
                c.encrypted_blob = i.encrypt_blob(changes.pop("blob"))
            for key, value in changes.items():
                setattr(c, key, value)
            blob = i.decrypt_blob(c.encrypted_blob)
        return json_response({"credential": r_credential(request, c, blob)})

    @r.delete("/v3/credentials/{cred_id}")
    async def delete_credential(request: Request, cred_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).writing() as session:
            c = await credential_for(request, ctx, cred_id, "identity:delete_credential", session)
            await session.delete(c)
        return Response(status_code=204)

    # ------------------------------------------------------------------ trusts

    @r.post("/v3/OS-TRUST/trusts")
    async def create_trust(request: Request) -> Response:
        ctx = await authenticate(request)
        body = (await body_of(request, s.TrustCreateRequest)).trust
        authorize(request, ctx, "identity:create_trust", {"trust": {"trustor_user_id": body.trustor_user_id}})
        i = svc(request)
        async with i.writing() as session:
            trust, roles = await i.create_trust(
                session, ctx, trustor_user_id=body.trustor_user_id, trustee_user_id=body.trustee_user_id,
                project_id=body.project_id, impersonation=body.impersonation,
                roles=[x.model_dump(exclude_none=True) for x in body.roles],
                expires_at=parse_time(body.expires_at, "expires_at"), remaining_uses=body.remaining_uses,
                allow_redelegation=body.allow_redelegation, redelegation_count=body.redelegation_count)
        return json_response({"trust": r_trust(request, trust, roles)}, status=201)

    @r.get("/v3/OS-TRUST/trusts")
    async def list_trusts(request: Request, trustor_user_id: str | None = None,
                          trustee_user_id: str | None = None) -> Response:
        ctx = await authenticate(request)
        if trustor_user_id:
            authorize(request, ctx, "identity:list_trusts_for_trustor", {"trust": {"trustor_user_id": trustor_user_id}})
        elif trustee_user_id:
            authorize(request, ctx, "identity:list_trusts_for_trustee", {"trust": {"trustee_user_id": trustee_user_id}})
        else:
            authorize(request, ctx, "identity:list_trusts")
        i = svc(request)
        q = sa.select(m.Trust).where(m.Trust.deleted_at.is_(None))
        if trustor_user_id:
            q = q.where(m.Trust.trustor_user_id == trustor_user_id)
        if trustee_user_id:
            q = q.where(m.Trust.trustee_user_id == trustee_user_id)
        async with i.db.read() as session:
            trusts = [t for t in (await session.execute(q)).scalars()
                      if not (t.expires_at and t.expires_at <= datetime.utcnow())]
            out = [r_trust(request, t, await i.trust_roles(session, t.id)) for t in trusts]
        return listing(request, "trusts", out)

    async def trust_for(request: Request, ctx: AuthContext, trust_id: str, rule: str, session: Any) -> m.Trust:
        t = await svc(request).get_trust(session, trust_id)
        authorize(request, ctx, rule, {"trust": {"trustor_user_id": t.trustor_user_id,
                                                 "trustee_user_id": t.trustee_user_id}})
        return t

    @r.get("/v3/OS-TRUST/trusts/{trust_id}")
    async def get_trust(request: Request, trust_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            t = await trust_for(request, ctx, trust_id, "identity:get_trust", session)
            roles = await svc(request).trust_roles(session, t.id)
        return json_response({"trust": r_trust(request, t, roles)})

    @r.delete("/v3/OS-TRUST/trusts/{trust_id}")
    async def delete_trust(request: Request, trust_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).writing() as session:
            await trust_for(request, ctx, trust_id, "identity:delete_trust", session)
            await svc(request).delete_trust(session, trust_id)
        return Response(status_code=204)

    @r.get("/v3/OS-TRUST/trusts/{trust_id}/roles")
    async def trust_roles(request: Request, trust_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            t = await trust_for(request, ctx, trust_id, "identity:list_roles_for_trust", session)
            roles = await svc(request).trust_roles(session, t.id)
        return listing(request, "roles", [r_role(request, x) for x in roles])

    @r.get("/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}")
    @r.head("/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}")
    async def trust_role(request: Request, trust_id: str, role_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            t = await trust_for(request, ctx, trust_id, "identity:get_role_for_trust", session)
            roles = [x for x in await svc(request).trust_roles(session, t.id) if x.id == role_id]
        if not roles:
            raise NotFound(f"Could not find role {role_id} in trust {trust_id}.")
        return json_response({"role": r_role(request, roles[0])})

    # ------------------------------------------------------------------ unified limits

    @r.get("/v3/limits/model")
    async def limit_model(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_limit_model")
        return json_response({"model": {"name": "flat", "description": (
            "Limit enforcement and validation does not take project hierarchy into consideration.")}})

    @r.post("/v3/registered_limits")
    async def create_registered_limits(request: Request) -> Response:
        ctx = await authenticate(request)
        body = await body_of(request, s.RegisteredLimitsCreateRequest)
        authorize(request, ctx, "identity:create_registered_limits")
        async with svc(request).writing() as session:
            items = await svc(request).create_registered_limits(
                session, [x.model_dump() for x in body.registered_limits])
        return json_response({"registered_limits": [r_registered_limit(request, x) for x in items]}, status=201)

    @r.get("/v3/registered_limits")
    async def list_registered_limits(request: Request, service_id: str | None = None, region_id: str | None = None,
                                     resource_name: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_registered_limits")
        q = sa.select(m.RegisteredLimit).order_by(m.RegisteredLimit.resource_name)
        for col, value in ((m.RegisteredLimit.service_id, service_id), (m.RegisteredLimit.region_id, region_id),
                           (m.RegisteredLimit.resource_name, resource_name)):
            if value is not None:
                q = q.where(col == value)
        async with svc(request).db.read() as session:
            items = (await session.execute(q)).scalars().all()
        return listing(request, "registered_limits", [r_registered_limit(request, x) for x in items])

    @r.get("/v3/registered_limits/{limit_id}")
    async def get_registered_limit(request: Request, limit_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_registered_limit")
        async with svc(request).db.read() as session:
            x = await svc(request)._get(session, m.RegisteredLimit, limit_id, "registered limit")
        return json_response({"registered_limit": r_registered_limit(request, x)})

    @r.patch("/v3/registered_limits/{limit_id}")
    async def update_registered_limit(request: Request, limit_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.RegisteredLimitUpdateRequest)).registered_limit.model_dump(
            exclude_unset=True)
        authorize(request, ctx, "identity:update_registered_limit")
        i = svc(request)
        async with i.writing() as session:
            x = await i._get(session, m.RegisteredLimit, limit_id, "registered limit")
            if changes.get("service_id") and await session.get(m.Service, changes["service_id"]) is None:
                raise BadRequest("Expecting to find service_id in registered_limit.")
            if changes.get("region_id") and await session.get(m.Region, changes["region_id"]) is None:
                raise BadRequest("Expecting to find region_id in registered_limit.")
            for key, value in changes.items():
                setattr(x, key, value)
        return json_response({"registered_limit": r_registered_limit(request, x)})

    @r.delete("/v3/registered_limits/{limit_id}")
    async def delete_registered_limit(request: Request, limit_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_registered_limit")
        async with svc(request).writing() as session:
            x = await svc(request)._get(session, m.RegisteredLimit, limit_id, "registered limit")
            in_use = (await session.execute(sa.select(m.Limit.id).where(
                m.Limit.service_id == x.service_id, m.Limit.resource_name == x.resource_name))).first()
            if in_use:
                raise Forbidden("The registered limit is referenced by project limits: delete them first.")
            await session.delete(x)
        return Response(status_code=204)

    @r.post("/v3/limits")
    async def create_limits(request: Request) -> Response:
        ctx = await authenticate(request)
        body = await body_of(request, s.LimitsCreateRequest)
        authorize(request, ctx, "identity:create_limits")
        async with svc(request).writing() as session:
            items = await svc(request).create_limits(session, [x.model_dump() for x in body.limits])
        return json_response({"limits": [r_limit(request, x) for x in items]}, status=201)

    @r.get("/v3/limits")
    async def list_limits(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_limits")
        qp = request.query_params
        q = sa.select(m.Limit).order_by(m.Limit.resource_name)
        for key in ("service_id", "region_id", "resource_name", "project_id", "domain_id"):
            if qp.get(key) is not None:
                q = q.where(getattr(m.Limit, key) == qp[key])
        if not is_admin(request, ctx) and not (ctx.system_scope and "reader" in ctx.roles):
            q = q.where((m.Limit.project_id == ctx.project_id) if ctx.project_id else (m.Limit.domain_id == ctx.domain_id))
        async with svc(request).db.read() as session:
            items = (await session.execute(q)).scalars().all()
        return listing(request, "limits", [r_limit(request, x) for x in items])

    @r.get("/v3/limits/{limit_id}")
    async def get_limit(request: Request, limit_id: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            x = await svc(request)._get(session, m.Limit, limit_id, "limit")
            # Keystone's target carries the limit's project (with its domain) or its domain
            p = await session.get(m.Project, x.project_id) if x.project_id else None
        authorize(request, ctx, "identity:get_limit", {"limit": {
            "project_id": x.project_id, "domain": {"id": x.domain_id},
            "project": {"id": x.project_id, "domain_id": p.domain_id if p else None}}})
        return json_response({"limit": r_limit(request, x)})

    @r.patch("/v3/limits/{limit_id}")
    async def update_limit(request: Request, limit_id: str) -> Response:
        ctx = await authenticate(request)
        changes = (await body_of(request, s.LimitUpdateRequest)).limit.model_dump(exclude_unset=True)
        authorize(request, ctx, "identity:update_limit")
        async with svc(request).writing() as session:
            x = await svc(request)._get(session, m.Limit, limit_id, "limit")
            for key, value in changes.items():
                setattr(x, key, value)
        return json_response({"limit": r_limit(request, x)})

    @r.delete("/v3/limits/{limit_id}")
    async def delete_limit(request: Request, limit_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_limit")
        async with svc(request).writing() as session:
            x = await svc(request)._get(session, m.Limit, limit_id, "limit")
            await session.delete(x)
        return Response(status_code=204)

    return r


class _Validator:
    """Identity's implementation of core's TokenValidator."""

    def __init__(self, identity: IdentityService):
        self.identity = identity

    async def validate(self, token: str) -> AuthContext:
        return (await self.identity.validate(token)).context()


def build(runtime: Runtime, identity: IdentityService) -> FastAPI:
    app = service_app("mCloud Identity v3", runtime=runtime, identity=identity)
    install_fault_handlers(app, render_fault, www_authenticate=lambda request: f'Keystone uri="{base_url(request)}"')
    from mcloud.identity import api_extensions  # noqa: PLC0415 - it imports this module's helpers

    # The routes join the app's own router: FastAPI re-walks included routers on every request.
    for router in (build_router(), api_extensions.build_router()):
        app.router.routes.extend(router.routes)
    return app


def token_validator(identity: IdentityService) -> _Validator:
    return _Validator(identity)
