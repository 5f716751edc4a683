"""Routes of Keystone's smaller v3 APIs: policies (and OS-ENDPOINT-POLICY), OS-EP-FILTER endpoint
groups and project endpoints, domain configuration, OS-EC2 credentials and OAuth1 consumers.

Same shape as ``api.py`` (parse, authorize, call service_extensions.py, render); ``api.build``
includes :func:`build_router` after its own routes. As in Keystone, every GET also answers HEAD
(the server sends no body for it).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mcloud.core.auth import AuthContext, authenticate
from mcloud.core.errors import Forbidden
from mcloud.core.http import json_response
from mcloud.identity import models as m
from mcloud.identity import schemas_extensions as sx
from mcloud.identity import service_extensions as x
from mcloud.identity.api import authorize, body_of, listing, r_endpoint, r_project, svc, v3

# Keystone's primary authentication methods: a token obtained any other way (application
# credential, OAuth1, EC2) is a delegation, and cannot manage EC2 credentials.
PRIMARY_AUTH_METHODS = frozenset({"password", "token", "totp", "external", "mapped", "openid", "saml2",
                                  "kerberos", "x509"})


# ---------------------------------------------------------------------- renderers


def r_policy(request: Request, p: m.Policy) -> dict[str, Any]:
    return {"id": p.id, "type": p.type, "blob": p.blob, "links": {"self": f"{v3(request)}/policies/{p.id}"}}


def r_endpoint_group(request: Request, g: m.EndpointGroup) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "description": g.description, "filters": g.filters or {},
            "links": {"self": f"{v3(request)}/OS-EP-FILTER/endpoint_groups/{g.id}"}}


def r_project_endpoint_group(request: Request, row: m.ProjectEndpointGroup) -> dict[str, Any]:
    return {"endpoint_group_id": row.endpoint_group_id, "project_id": row.project_id,
            "links": {"self": f"{v3(request)}/OS-EP-FILTER/endpoint_groups/{row.endpoint_group_id}"
                              f"/projects/{row.project_id}"}}


def r_ec2(request: Request, c: m.Credential, blob: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": c.user_id, "tenant_id": c.project_id, "access": blob.get("access"),
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id"),
            "links": {"self": f"{v3(request)}/users/{c.user_id}/credentials/OS-EC2/{blob.get('access')}"}}


def r_consumer(request: Request, c: m.OAuth1Consumer, secret: str | None = None) -> dict[str, Any]:
    out = {"id": c.id, "description": c.description,
           "links": {"self": f"{v3(request)}/OS-OAUTH1/consumers/{c.id}"}}
    if secret is not None:
        out["secret"] = secret
    return out


def no_content() -> Response:
    return Response(status_code=204)


async def projects_listing(request: Request, session: Any, projects: list[m.Project]) -> Response:
    tags = await svc(request).project_tags(session, [p.id for p in projects])
    return listing(request, "projects", [r_project(request, p, tags[p.id]) for p in projects])


def require_primary_auth(ctx: AuthContext) -> None:
    """Keystone refuses delegated tokens (trusts, application credentials, ...) on OS-EC2."""
    if ctx.trust_id or not ctx.methods or not PRIMARY_AUTH_METHODS.issuperset(ctx.methods):
        raise Forbidden("You are not authorized to perform the requested action: Delegated tokens cannot "
                        "access credentials directly.")


def build_router() -> APIRouter:  # noqa: C901 - one function holds the route table
    r = APIRouter()

    # ------------------------------------------------------------------ policies

    @r.post("/v3/policies")
    async def create_policy(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:create_policy")
        body = (await body_of(request, sx.PolicyCreateRequest)).policy
        async with svc(request).writing() as session:
            p = await x.create_policy(session, blob=body.blob, type=body.type)
        return json_response({"policy": r_policy(request, p)}, status=201)

    @r.get("/v3/policies")
    @r.head("/v3/policies")
    async def list_policies(request: Request, type: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_policies")
        async with svc(request).db.read() as session:
            policies = await x.list_policies(session, type)
        return listing(request, "policies", [r_policy(request, p) for p in policies])

    @r.get("/v3/policies/{policy_id}")
    @r.head("/v3/policies/{policy_id}")
    async def get_policy(request: Request, policy_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_policy")
        async with svc(request).db.read() as session:
            p = await x.get_policy(session, policy_id)
        return json_response({"policy": r_policy(request, p)})

    @r.patch("/v3/policies/{policy_id}")
    async def update_policy(request: Request, policy_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:update_policy")
        changes = (await body_of(request, sx.PolicyUpdateRequest)).policy.model_dump(exclude_unset=True)
        async with svc(request).writing() as session:
            p = await x.update_policy(session, policy_id, changes)
        return json_response({"policy": r_policy(request, p)})

    @r.delete("/v3/policies/{policy_id}")
    async def delete_policy(request: Request, policy_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_policy")
        async with svc(request).writing() as session:
            await x.delete_policy(session, policy_id)
        return no_content()

    # ------------------------------------------------------------------ OS-ENDPOINT-POLICY

    async def association(request: Request, action: str, rule: str, policy_id: str, *,
                          endpoint_id: str | None = None, service_id: str | None = None,
                          region_id: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, rule)
        i = svc(request)
        async with (i.db.read() if action == "check" else i.writing()) as session:
            await x.get_policy(session, policy_id)
            if endpoint_id is not None:
                await i._get(session, m.Endpoint, endpoint_id, "endpoint")
            if service_id is not None:
                await i._get(session, m.Service, service_id, "service")
            if region_id is not None:
                await i._get(session, m.Region, region_id, "region")
            call = {"create": x.create_policy_association, "check": x.check_policy_association,
                    "delete": x.delete_policy_association}[action]
            await call(session, policy_id, endpoint_id=endpoint_id, service_id=service_id, region_id=region_id)
        return no_content()

    def association_routes(path: str, kind: str, *ids: str) -> None:
        def names(params: dict[str, str]) -> dict[str, str]:
            return {key: params[key] for key in ids}

        @r.put(path)
        async def put(request: Request) -> Response:
            return await association(request, "create", f"identity:create_policy_association_for_{kind}",
                                     request.path_params["policy_id"], **names(request.path_params))

        @r.get(path)
        @r.head(path)
        async def check(request: Request) -> Response:
            return await association(request, "check", f"identity:check_policy_association_for_{kind}",
                                     request.path_params["policy_id"], **names(request.path_params))

        @r.delete(path)
        async def delete(request: Request) -> Response:
            return await association(request, "delete", f"identity:delete_policy_association_for_{kind}",
                                     request.path_params["policy_id"], **names(request.path_params))

    prefix = "/v3/policies/{policy_id}/OS-ENDPOINT-POLICY"
    association_routes(prefix + "/endpoints/{endpoint_id}", "endpoint", "endpoint_id")
    association_routes(prefix + "/services/{service_id}", "service", "service_id")
    association_routes(prefix + "/services/{service_id}/regions/{region_id}", "region_and_service",
                       "service_id", "region_id")

    @r.get(prefix + "/endpoints")
    @r.head(prefix + "/endpoints")
    async def endpoints_for_policy(request: Request, policy_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_endpoints_for_policy")
        async with svc(request).db.read() as session:
            await x.get_policy(session, policy_id)
            endpoints = await x.list_endpoints_for_policy(session, policy_id)
        return listing(request, "endpoints", [r_endpoint(request, e) for e in endpoints])

    @r.get("/v3/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy")
    @r.head("/v3/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy")
    async def policy_for_endpoint(request: Request, endpoint_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_policy_for_endpoint")
        i = svc(request)
        async with i.db.read() as session:
            e = await i._get(session, m.Endpoint, endpoint_id, "endpoint")
            p = await x.policy_for_endpoint(session, e)
        return json_response({"policy": r_policy(request, p)})

    # ------------------------------------------------------------------ OS-EP-FILTER endpoint groups

    ep = "/v3/OS-EP-FILTER"

    @r.post(ep + "/endpoint_groups")
    async def create_endpoint_group(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:create_endpoint_group")
        body = (await body_of(request, sx.EndpointGroupCreateRequest)).endpoint_group
        async with svc(request).writing() as session:
            g = await x.create_endpoint_group(session, name=body.name, description=body.description,
                                              filters=body.filters.model_dump(exclude_unset=True))
        return json_response({"endpoint_group": r_endpoint_group(request, g)}, status=201)

    @r.get(ep + "/endpoint_groups")
    @r.head(ep + "/endpoint_groups")
    async def list_endpoint_groups(request: Request, name: str | None = None) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_endpoint_groups")
        async with svc(request).db.read() as session:
            groups = await x.list_endpoint_groups(session, name)
        return listing(request, "endpoint_groups", [r_endpoint_group(request, g) for g in groups])

    @r.get(ep + "/endpoint_groups/{group_id}")
    @r.head(ep + "/endpoint_groups/{group_id}")
    async def get_endpoint_group(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_endpoint_group")
        async with svc(request).db.read() as session:
            g = await x.get_endpoint_group(session, group_id)
        return json_response({"endpoint_group": r_endpoint_group(request, g)})

    @r.patch(ep + "/endpoint_groups/{group_id}")
    async def update_endpoint_group(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:update_endpoint_group")
        body = (await body_of(request, sx.EndpointGroupUpdateRequest)).endpoint_group
        changes = body.model_dump(exclude_unset=True)
        if body.filters is not None:
            changes["filters"] = body.filters.model_dump(exclude_unset=True)
        async with svc(request).writing() as session:
            g = await x.update_endpoint_group(session, group_id, changes)
        return json_response({"endpoint_group": r_endpoint_group(request, g)})

    @r.delete(ep + "/endpoint_groups/{group_id}")
    async def delete_endpoint_group(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_endpoint_group")
        async with svc(request).writing() as session:
            await x.delete_endpoint_group(session, group_id)
        return no_content()

    @r.get(ep + "/endpoint_groups/{group_id}/endpoints")
    @r.head(ep + "/endpoint_groups/{group_id}/endpoints")
    async def endpoints_in_group(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_endpoints_associated_with_endpoint_group")
        async with svc(request).db.read() as session:
            g = await x.get_endpoint_group(session, group_id)
            endpoints = await x.endpoints_in_group(session, g)
        return listing(request, "endpoints", [r_endpoint(request, e) for e in endpoints])

    @r.get(ep + "/endpoint_groups/{group_id}/projects")
    @r.head(ep + "/endpoint_groups/{group_id}/projects")
    async def projects_for_group(request: Request, group_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_projects_associated_with_endpoint_group")
        async with svc(request).db.read() as session:
            # Keystone answers an empty list, not 404, for a group that does not exist
            projects = await x.projects_for_endpoint_group(session, group_id)
            return await projects_listing(request, session, projects)

    @r.put(ep + "/endpoint_groups/{group_id}/projects/{project_id}")
    async def add_group_to_project(request: Request, group_id: str, project_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:add_endpoint_group_to_project")
        i = svc(request)
        async with i.writing() as session:
            await x.add_endpoint_group_to_project(i, session, group_id, project_id)
        return no_content()

    @r.get(ep + "/endpoint_groups/{group_id}/projects/{project_id}")
    @r.head(ep + "/endpoint_groups/{group_id}/projects/{project_id}")
    async def get_group_in_project(request: Request, group_id: str, project_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_endpoint_group_in_project")
        i = svc(request)
        async with i.db.read() as session:
            row = await x.get_endpoint_group_in_project(i, session, group_id, project_id)
        return json_response({"project_endpoint_group": r_project_endpoint_group(request, row)})

    @r.delete(ep + "/endpoint_groups/{group_id}/projects/{project_id}")
    async def remove_group_from_project(request: Request, group_id: str, project_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:remove_endpoint_group_from_project")
        i = svc(request)
        async with i.writing() as session:
            await x.remove_endpoint_group_from_project(i, session, group_id, project_id)
        return no_content()

    @r.get(ep + "/projects/{project_id}/endpoint_groups")
    @r.head(ep + "/projects/{project_id}/endpoint_groups")
    async def groups_for_project(request: Request, project_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_endpoint_groups_for_project")
        i = svc(request)
        async with i.db.read() as session:
            groups = await x.endpoint_groups_for_project(i, session, project_id)
        return listing(request, "endpoint_groups", [r_endpoint_group(request, g) for g in groups])

    # ------------------------------------------------------------------ OS-EP-FILTER project endpoints

    @r.put(ep + "/projects/{project_id}/endpoints/{endpoint_id}")
    async def add_endpoint_to_project(request: Request, project_id: str, endpoint_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:add_endpoint_to_project")
        i = svc(request)
        async with i.writing() as session:
            await x.add_endpoint_to_project(i, session, project_id, endpoint_id)
        return no_content()

    @r.get(ep + "/projects/{project_id}/endpoints/{endpoint_id}")
    @r.head(ep + "/projects/{project_id}/endpoints/{endpoint_id}")
    async def check_endpoint_in_project(request: Request, project_id: str, endpoint_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:check_endpoint_in_project")
        i = svc(request)
        async with i.db.read() as session:
            await x.check_endpoint_in_project(i, session, project_id, endpoint_id)
        return no_content()

    @r.delete(ep + "/projects/{project_id}/endpoints/{endpoint_id}")
    async def remove_endpoint_from_project(request: Request, project_id: str, endpoint_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:remove_endpoint_from_project")
        async with svc(request).writing() as session:
            await x.remove_endpoint_from_project(session, project_id, endpoint_id)
        return no_content()

    @r.get(ep + "/projects/{project_id}/endpoints")
    @r.head(ep + "/projects/{project_id}/endpoints")
    async def endpoints_for_project(request: Request, project_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_endpoints_for_project")
        i = svc(request)
        async with i.db.read() as session:
            endpoints = await x.endpoints_for_project(i, session, project_id)
        return listing(request, "endpoints", [r_endpoint(request, e) for e in endpoints])

    @r.get(ep + "/endpoints/{endpoint_id}/projects")
    @r.head(ep + "/endpoints/{endpoint_id}/projects")
    async def projects_for_endpoint(request: Request, endpoint_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_projects_for_endpoint")
        i = svc(request)
        async with i.db.read() as session:
            projects = await x.projects_for_endpoint(i, session, endpoint_id)
            return await projects_listing(request, session, projects)

    # ------------------------------------------------------------------ domain configuration

    async def domain_config_body(request: Request) -> dict[str, Any]:
        return (await body_of(request, sx.DomainConfigRequest)).config

    @r.put("/v3/domains/{domain_id}/config")
    async def create_domain_config(request: Request, domain_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:create_domain_config")
        body = await domain_config_body(request)
        i = svc(request)
        async with i.writing() as session:
            await i.get_domain(session, domain_id)
            config, created = await x.create_domain_config(i, session, domain_id, body)
        return json_response({"config": config}, status=201 if created else 200)

    def config_path(request: Request) -> tuple[str, str | None, str | None]:
        """(domain_id, group, option) of a /v3/domains/{domain_id}/config[/{group}[/{option}]] path."""
        params = request.path_params
        return params["domain_id"], params.get("group"), params.get("option")

    async def show_domain_config(request: Request) -> Response:
        domain_id, group, option = config_path(request)
        ctx = await authenticate(request)
        i = svc(request)
        if group == x.SECURITY_COMPLIANCE:
            authorize(request, ctx, "identity:get_security_compliance_domain_config")
            async with i.db.read() as session:
                await i.get_domain(session, domain_id)
            return json_response({"config": x.security_compliance_config(domain_id, option)})
        authorize(request, ctx, "identity:get_domain_config")
        async with i.db.read() as session:
            await i.get_domain(session, domain_id)
            config = await x.get_domain_config(session, domain_id, group, option)
        return json_response({"config": config})

    async def patch_domain_config(request: Request) -> Response:
        domain_id, group, option = config_path(request)
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:update_domain_config")
        body = await domain_config_body(request)
        i = svc(request)
        async with i.writing() as session:
            await i.get_domain(session, domain_id)
            config = await x.update_domain_config(i, session, domain_id, body, group, option)
        return json_response({"config": config})

    async def remove_domain_config(request: Request) -> Response:
        domain_id, group, option = config_path(request)
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_domain_config")
        i = svc(request)
        async with i.writing() as session:
            await i.get_domain(session, domain_id)
            await x.delete_domain_config(session, domain_id, group, option)
        return no_content()

    for path in ("/v3/domains/{domain_id}/config", "/v3/domains/{domain_id}/config/{group}",
                 "/v3/domains/{domain_id}/config/{group}/{option}"):
        r.get(path)(show_domain_config)
        r.head(path)(show_domain_config)
        r.patch(path)(patch_domain_config)
        r.delete(path)(remove_domain_config)

    async def domain_config_default(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_domain_config_default")
        group, option = request.path_params.get("group"), request.path_params.get("option")
        return json_response({"config": x.config_defaults(svc(request), group, option)})

    for path in ("/v3/domains/config/default", "/v3/domains/config/{group}/default",
                 "/v3/domains/config/{group}/{option}/default"):
        r.get(path)(domain_config_default)
        r.head(path)(domain_config_default)

    # ------------------------------------------------------------------ OS-EC2 credentials

    @r.post("/v3/users/{user_id}/credentials/OS-EC2")
    async def create_ec2_credential(request: Request, user_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:ec2_create_credential", {"credential": {"user_id": user_id}})
        body = await body_of(request, sx.EC2CredentialCreate)
        i = svc(request)
        async with i.writing() as session:
            await i.get_user(session, user_id)
            await i.get_project(session, body.tenant_id)
            require_primary_auth(ctx)
            cred, blob = await x.create_ec2_credential(i, session, user_id, body.tenant_id, trust_id=ctx.trust_id,
                                                       app_cred_id=ctx.application_credential_id)
        return json_response({"credential": r_ec2(request, cred, blob)}, status=201)

    @r.get("/v3/users/{user_id}/credentials/OS-EC2")
    @r.head("/v3/users/{user_id}/credentials/OS-EC2")
    async def list_ec2_credentials(request: Request, user_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:ec2_list_credentials", user_id=user_id)
        require_primary_auth(ctx)
        i = svc(request)
        async with i.db.read() as session:
            creds = await x.list_ec2_credentials(i, session, user_id)
        return listing(request, "credentials", [r_ec2(request, c, blob) for c, blob in creds])

    async def ec2_credential(request: Request, ctx: AuthContext, user_id: str, access: str, rule: str,
                             session: Any) -> tuple[m.Credential, dict[str, Any]]:
        # as in Keystone, the policy target is the stored credential: an unknown access key is 404
        cred = await x.find_ec2_credential(session, access)
        authorize(request, ctx, rule, {"credential": {"user_id": cred.user_id}}, user_id=user_id)
        blob = await x.get_ec2_credential(svc(request), session, user_id, cred)
        require_primary_auth(ctx)
        return cred, blob

    @r.get("/v3/users/{user_id}/credentials/OS-EC2/{access}")
    @r.head("/v3/users/{user_id}/credentials/OS-EC2/{access}")
    async def get_ec2_credential(request: Request, user_id: str, access: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).db.read() as session:
            cred, blob = await ec2_credential(request, ctx, user_id, access, "identity:ec2_get_credential", session)
        return json_response({"credential": r_ec2(request, cred, blob)})

    @r.delete("/v3/users/{user_id}/credentials/OS-EC2/{access}")
    async def delete_ec2_credential(request: Request, user_id: str, access: str) -> Response:
        ctx = await authenticate(request)
        async with svc(request).writing() as session:
            cred, _ = await ec2_credential(request, ctx, user_id, access, "identity:ec2_delete_credential",
                                           session)
            await session.delete(cred)
        return no_content()

    # ------------------------------------------------------------------ OAuth1 consumers

    @r.post("/v3/OS-OAUTH1/consumers")
    async def create_consumer(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:create_consumer")
        # Keystone takes a missing body for a consumer without a description
        body = (await body_of(request, sx.ConsumerCreateRequest)).consumer if await request.body() \
            else sx.ConsumerCreate()
        i = svc(request)
        async with i.writing() as session:
            c, secret = await x.create_consumer(i, session, description=body.description)
        return json_response({"consumer": r_consumer(request, c, secret)}, status=201)

    @r.get("/v3/OS-OAUTH1/consumers")
    @r.head("/v3/OS-OAUTH1/consumers")
    async def list_consumers(request: Request) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:list_consumers")
        async with svc(request).db.read() as session:
            consumers = await x.list_consumers(session)
        return listing(request, "consumers", [r_consumer(request, c) for c in consumers])

    @r.get("/v3/OS-OAUTH1/consumers/{consumer_id}")
    @r.head("/v3/OS-OAUTH1/consumers/{consumer_id}")
    async def get_consumer(request: Request, consumer_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:get_consumer")
        async with svc(request).db.read() as session:
            c = await x.get_consumer(session, consumer_id)
        return json_response({"consumer": r_consumer(request, c)})

    @r.patch("/v3/OS-OAUTH1/consumers/{consumer_id}")
    async def update_consumer(request: Request, consumer_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:update_consumer")
        changes = (await body_of(request, sx.ConsumerUpdateRequest)).consumer.model_dump(exclude_unset=True)
        async with svc(request).writing() as session:
            c = await x.update_consumer(session, consumer_id, changes)
        return json_response({"consumer": r_consumer(request, c)})

    @r.delete("/v3/OS-OAUTH1/consumers/{consumer_id}")
    async def delete_consumer(request: Request, consumer_id: str) -> Response:
        ctx = await authenticate(request)
        authorize(request, ctx, "identity:delete_consumer")
        async with svc(request).writing() as session:
            await x.delete_consumer(session, consumer_id)
        return no_content()

    return r

