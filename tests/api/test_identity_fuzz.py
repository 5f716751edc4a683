"""Property-based fuzzing of the identity API: whatever a client sends, the answer is never a
5xx, and every error is Keystone's ``{"error": {"code", "title", "message"}}`` body.

The routes come from the identity routers themselves, so a new route is fuzzed without touching
this file. The admin's token is used (so requests get past policy into validation and the
service code), but the ids the fuzzer may name are those of objects made here, in a domain of
their own: the bootstrapped admin, its project and the Default domain stay out of reach so
that the rest of the session's tests keep their cloud.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest_asyncio
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcloud.identity import api, api_extensions
from tests.api.conftest import V3, Keystone, admin_keystone, uniq

# MCLOUD_FUZZ_EXAMPLES=5000 for a deeper hunt; the default keeps the file well under a minute
SETTINGS = settings(max_examples=int(os.environ.get("MCLOUD_FUZZ_EXAMPLES", "250")), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

# ---------------------------------------------------------------------- routes

ROUTES: list[tuple[str, str]] = sorted({
    (method, route.path)
    for router in (api.build_router(), api_extensions.build_router())
    for route in router.routes if isinstance(route, APIRoute)
    for method in route.methods
})
PARAM = re.compile(r"\{([^}]+)\}")
BODY_ROUTES = [(m, p) for m, p in ROUTES if m in ("POST", "PUT", "PATCH")]
QUERY_ROUTES = [(m, p) for m, p in ROUTES if m in ("GET", "HEAD", "DELETE")]


def test_the_router_has_the_identity_api():
    paths = {p for _, p in ROUTES}
    assert {"/v3/users", "/v3/projects/{project_id}", "/v3/auth/tokens", "/v3/role_assignments",
            "/v3/OS-TRUST/trusts"} <= paths
    assert len(BODY_ROUTES) > 30 and len(QUERY_ROUTES) > 50


# ---------------------------------------------------------------------- the fuzzer's own objects


@dataclasses.dataclass
class Fuzz:
    ks: Keystone
    pools: dict[str, list[str]]
    subject_tokens: list[str]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz(cloud) -> AsyncIterator[Fuzz]:
    async with admin_keystone(cloud) as (ks, _):
        d = await ks.make_domain()
        project = await ks.make_project(d["id"])
        child = (await ks.post("/projects", {"project": {"name": uniq("c"), "parent_id": project["id"]}},
                               expect=201)).json()["project"]
        user, _, user_token = await ks.member(project=project)
        group = await ks.make_group(d["id"])
        role = await ks.make_role()
        drole = await ks.make_role(domain_id=d["id"])
        region = uniq("FuzzRegion")
        await ks.post("/regions", {"region": {"id": region}}, expect=201)
        service = (await ks.post("/services", {"service": {"type": uniq("fuzz")}}, expect=201)).json()["service"]
        endpoint = (await ks.post("/endpoints", {"endpoint": {"service_id": service["id"], "interface": "public",
                                                              "url": "http://fuzz.test/"}}, expect=201)
                    ).json()["endpoint"]
        rname = uniq("res")
        reg = (await ks.post("/registered_limits", {"registered_limits": [
            {"service_id": service["id"], "resource_name": rname, "default_limit": 3}]}, expect=201)
        ).json()["registered_limits"][0]
        lim = (await ks.post("/limits", {"limits": [{"service_id": service["id"], "project_id": project["id"],
                                                     "resource_name": rname, "resource_limit": 2}]}, expect=201)
               ).json()["limits"][0]
        u = ks.as_(user_token)
        cred = (await u.post("/credentials", {"credential": {"user_id": user["id"], "type": "cert", "blob": "b"}},
                             expect=201)).json()["credential"]
        appcred = (await u.post(f"/users/{user['id']}/application_credentials",
                                {"application_credential": {"name": "fuzz"}}, expect=201)
                   ).json()["application_credential"]
        trustee = await ks.make_user(d["id"])
        trust = (await u.post("/OS-TRUST/trusts", {"trust": {
            "trustor_user_id": user["id"], "trustee_user_id": trustee["id"], "project_id": project["id"],
            "impersonation": False, "roles": [{"name": "member"}]}}, expect=201)).json()["trust"]
        roles = [role["id"], drole["id"]]
        pools = {
            "domain_id": [d["id"]], "project_id": [project["id"], child["id"]],
            "user_id": [user["id"], trustee["id"]], "group_id": [group["id"]], "role_id": roles,
            "prior_id": roles, "implied_id": roles, "region_id": [region], "service_id": [service["id"]],
            "endpoint_id": [endpoint["id"]], "limit_id": [lim["id"], reg["id"]], "cred_id": [cred["id"], appcred["id"]],
            "trust_id": [trust["id"]], "tag": ["t1", "x"],
        }
        pools["*"] = sorted({x for v in pools.values() for x in v})
        yield Fuzz(ks, pools, [user_token])


# ---------------------------------------------------------------------- strategies

FIELDS = ["name", "domain_id", "parent_id", "enabled", "description", "password", "tags", "options", "id", "type",
          "url", "interface", "service_id", "region_id", "region", "user_id", "project_id", "blob", "email",
          "trustor_user_id", "trustee_user_id", "impersonation", "roles", "remaining_uses", "expires_at",
          "resource_name", "default_limit", "resource_limit", "unrestricted", "secret", "original_password",
          "parent_region_id", "default_project_id", "is_domain", "explicit_domain_id", "access_rules",
          "allow_redelegation", "redelegation_count", "immutable", "identity", "methods", "scope", "all"]
ENVELOPES = ["domain", "project", "user", "group", "role", "region", "service", "endpoint", "credential", "trust",
             "application_credential", "registered_limits", "limits", "registered_limit", "limit", "tags", "auth"]
ODD_STRINGS = ["", " ", "..", "%", "%00", "\x00", "null", "true", "0" * 32, "f" * 64, "x" * 300, "\u2603" * 70,
               "a/b", "a,b", "' OR 1=1 --", "<script>", "\ud7ff", "RegionOne", "member", "reader", "unscoped"]

text = st.one_of(st.text(max_size=40), st.sampled_from(ODD_STRINGS), st.text(min_size=256, max_size=2000))
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), text)
anything = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                     st.dictionaries(st.one_of(st.sampled_from(FIELDS), text), c,
                                                                     max_size=5)),
                        max_leaves=12)
known_object = st.dictionaries(st.sampled_from(FIELDS), anything, max_size=8)


@st.composite
def bodies(draw: st.DrawFn, path: str) -> Any:
    """A JSON body: mostly shaped like the route's real body, with random contents."""
    guess = next((e for e in ENVELOPES if f"/{e}" in path), None)
    envelope = st.sampled_from(ENVELOPES) if guess is None else st.one_of(st.just(guess), st.sampled_from(ENVELOPES))
    inner = st.one_of(known_object, st.lists(known_object, max_size=3), anything)
    return draw(st.one_of(
        st.builds(lambda k, v: {k: v}, envelope, inner),
        st.builds(lambda k, v, extra: {k: v, **extra}, envelope, inner, st.dictionaries(text, anything, max_size=2)),
        anything,
    ))


# Valid bodies per route (``{pool}`` names a fuzz-owned id, ``{text}`` a random string), which the
# fuzzer then mutates: this gets requests past the schema into the service code.
TEMPLATES: dict[tuple[str, str], Any] = {
    ("POST", "/v3/domains"): {"domain": {"name": "{text}", "description": "{text}"}},
    ("PATCH", "/v3/domains/{domain_id}"): {"domain": {"description": "{text}"}},
    ("POST", "/v3/projects"): {"project": {"name": "{text}", "domain_id": "{domain_id}", "parent_id": "{project_id}",
                                           "tags": ["{text}"], "options": {"immutable": False}}},
    ("PATCH", "/v3/projects/{project_id}"): {"project": {"description": "{text}", "tags": ["{text}"],
                                                         "enabled": True}},
    ("PUT", "/v3/projects/{project_id}/tags"): {"tags": ["{text}", "{text}"]},
    ("POST", "/v3/users"): {"user": {"name": "{text}", "domain_id": "{domain_id}", "password": "{text}",
                                     "default_project_id": "{project_id}", "options": {"lock_password": False}}},
    ("PATCH", "/v3/users/{user_id}"): {"user": {"description": "{text}", "email": "{text}",
                                                "default_project_id": "{project_id}"}},
    ("POST", "/v3/users/{user_id}/password"): {"user": {"password": "{text}", "original_password": "{text}"}},
    ("POST", "/v3/users/{user_id}/application_credentials"): {"application_credential": {
        "name": "{text}", "roles": [{"name": "member"}], "expires_at": "2999-01-01T00:00:00Z"}},
    ("POST", "/v3/groups"): {"group": {"name": "{text}", "domain_id": "{domain_id}"}},
    ("PATCH", "/v3/groups/{group_id}"): {"group": {"description": "{text}"}},
    ("POST", "/v3/roles"): {"role": {"name": "{text}", "domain_id": "{domain_id}"}},
    ("PATCH", "/v3/roles/{role_id}"): {"role": {"description": "{text}"}},
    ("POST", "/v3/regions"): {"region": {"id": "{text}", "parent_region_id": "{region_id}"}},
    ("PUT", "/v3/regions/{region_id}"): {"region": {"description": "{text}", "parent_region_id": "{region_id}"}},
    ("PATCH", "/v3/regions/{region_id}"): {"region": {"description": "{text}", "parent_region_id": "{region_id}"}},
    ("POST", "/v3/services"): {"service": {"type": "{text}", "name": "{text}"}},
    ("PATCH", "/v3/services/{service_id}"): {"service": {"description": "{text}"}},
    ("POST", "/v3/endpoints"): {"endpoint": {"service_id": "{service_id}", "interface": "public",
                                             "url": "http://{text}/", "region_id": "{region_id}"}},
    ("PATCH", "/v3/endpoints/{endpoint_id}"): {"endpoint": {"url": "http://{text}/", "region": "{text}"}},
    ("POST", "/v3/credentials"): {"credential": {"user_id": "{user_id}", "type": "ec2", "project_id": "{project_id}",
                                                 "blob": "{\"access\": \"{text}\"}"}},
    ("PATCH", "/v3/credentials/{cred_id}"): {"credential": {"blob": "{text}", "project_id": "{project_id}"}},
    ("POST", "/v3/OS-TRUST/trusts"): {"trust": {
        "trustor_user_id": "{user_id}", "trustee_user_id": "{user_id}", "project_id": "{project_id}",
        "impersonation": False, "roles": [{"name": "member"}], "remaining_uses": 1,
        "expires_at": "2999-01-01T00:00:00Z", "allow_redelegation": True}},
    ("POST", "/v3/registered_limits"): {"registered_limits": [{
        "service_id": "{service_id}", "resource_name": "{text}", "default_limit": 1, "region_id": "{region_id}"}]},
    ("PATCH", "/v3/registered_limits/{limit_id}"): {"registered_limit": {"default_limit": 4,
                                                                         "region_id": "{region_id}"}},
    ("POST", "/v3/limits"): {"limits": [{"service_id": "{service_id}", "project_id": "{project_id}",
                                         "resource_name": "{text}", "resource_limit": 1}]},
    ("PATCH", "/v3/limits/{limit_id}"): {"limit": {"resource_limit": 1, "description": "{text}"}},
}


@st.composite
def mutated(draw: st.DrawFn, fz: Fuzz, template: Any) -> Any:
    """The template with its placeholders filled and up to three fields changed, dropped or added."""
    def fill(t: Any) -> Any:
        if isinstance(t, str):
            return PARAM.sub(lambda mm: draw(st.text(max_size=20)) if mm.group(1) == "text"
                             else draw(st.sampled_from(fz.pools.get(mm.group(1), fz.pools["*"]))), t)
        if isinstance(t, dict):
            return {k: fill(v) for k, v in t.items()}
        if isinstance(t, list):
            return [fill(v) for v in t]
        return t

    body = fill(template)
    (key, inner), = body.items()
    target = inner[0] if isinstance(inner, list) and inner else inner
    if isinstance(target, dict):
        for _ in range(draw(st.integers(0, 3))):
            field = draw(st.one_of(st.sampled_from(sorted(target) or FIELDS), st.sampled_from(FIELDS)))
            action = draw(st.sampled_from(["set", "set", "id", "drop"]))
            if action == "drop":
                target.pop(field, None)
            elif action == "id":
                target[field] = draw(st.sampled_from(fz.pools["*"]))
            else:
                target[field] = draw(anything)
    return body


def path_values(fz: Fuzz, path: str) -> st.SearchStrategy[dict[str, str]]:
    names = PARAM.findall(path)
    return st.fixed_dictionaries({
        n: st.sampled_from(["own", "own", "own", "own", "any", "text"]).flatmap(
            lambda kind, n=n: st.sampled_from(fz.pools.get(n, fz.pools["*"])) if kind == "own"
            else st.sampled_from(fz.pools["*"]) if kind == "any" else text)
        .filter(lambda v: v.lower() != "default")
        for n in names})


QUERY_KEYS = ["name", "enabled", "domain_id", "parent_id", "tags", "tags-any", "not-tags", "not-tags-any", "effective",
              "include_names", "include_subtree", "user.id", "group.id", "role.id", "scope.project.id",
              "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to", "parents_as_list",
              "subtree_as_list", "nocatalog", "type", "interface", "service_id", "region_id", "resource_name",
              "project_id", "trustor_user_id", "trustee_user_id", "is_domain", "cascade", "limit", "marker",
              "parent_region_id", "allow_expired", "idp_id", "unique_id"]
queries = st.dictionaries(st.one_of(st.sampled_from(QUERY_KEYS), text),
                          st.one_of(text, st.sampled_from(["true", "false", "1", "0", "projects", "all"])),
                          max_size=4)


def url_for(path: str, values: dict[str, str]) -> str:
    return "/identity" + PARAM.sub(lambda mm: quote(values[mm.group(1)], safe=""), path)


def check(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what} -> {r.status_code}: {r.text[:500]}"
    if r.status_code >= 400 and r.request.method != "HEAD":
        body = r.json()
        assert set(body) == {"error"}, f"{what} -> {r.status_code}: {r.text[:300]}"
        assert body["error"]["code"] == r.status_code and body["error"]["title"] and body["error"]["message"]


# ---------------------------------------------------------------------- the properties


@SETTINGS
@given(data=st.data())
async def test_random_bodies_never_5xx(fuzz: Fuzz, data: st.DataObject):
    method, path = data.draw(st.sampled_from(BODY_ROUTES), label="route")
    url = url_for(path, data.draw(path_values(fuzz, path), label="path"))
    kind = data.draw(st.sampled_from(["template", "template", "template", "json", "bytes"]), label="kind")
    if kind == "template" and (method, path) in TEMPLATES:
        content = json.dumps(data.draw(mutated(fuzz, TEMPLATES[method, path]), label="body")).encode()
    elif kind == "bytes":
        content = data.draw(st.binary(max_size=200), label="raw")
    else:
        content = json.dumps(data.draw(bodies(path), label="body")).encode()
    # the fuzz user's own token reaches what only an owner may do (application credentials, trusts)
    token = data.draw(st.sampled_from([fuzz.ks.token, fuzz.ks.token, fuzz.subject_tokens[0]]), label="token")
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    r = await fuzz.ks.client.request(method, url, content=content, headers=headers)
    check(r, f"{method} {url} {content[:200]!r}")


@SETTINGS
@given(data=st.data())
async def test_random_ids_and_queries_never_5xx(fuzz: Fuzz, data: st.DataObject):
    method, path = data.draw(st.sampled_from(QUERY_ROUTES), label="route")
    url = url_for(path, data.draw(path_values(fuzz, path), label="path"))
    params = data.draw(queries, label="query")
    headers = {"X-Auth-Token": fuzz.ks.token}
    if path == "/v3/auth/tokens":
        headers["X-Subject-Token"] = data.draw(st.one_of(st.sampled_from(fuzz.subject_tokens),
                                                         text.filter(lambda t: t != fuzz.ks.token)), label="subject")
    try:
        r = await fuzz.ks.client.request(method, url, params=params, headers=headers)
    except (UnicodeEncodeError, httpx.InvalidURL, httpx.LocalProtocolError):
        return  # a header or URL no HTTP client can send
    check(r, f"{method} {url} {params}")


scope = st.one_of(
    st.none(), anything, st.just("unscoped"),
    st.fixed_dictionaries({}, optional={"project": anything, "domain": anything, "system": anything,
                                        "OS-TRUST:trust": anything, "unscoped": anything}),
)
identity = st.fixed_dictionaries(
    {"methods": st.one_of(st.lists(st.sampled_from(["password", "token", "application_credential", "totp", "x"]),
                                   max_size=3), anything)},
    optional={"password": st.one_of(anything, st.fixed_dictionaries({"user": st.one_of(
        anything, st.fixed_dictionaries({}, optional={"id": text, "name": text, "password": anything,
                                                      "domain": anything}))})),
              "token": st.one_of(anything, st.fixed_dictionaries({"id": text})),
              "application_credential": st.one_of(anything, st.fixed_dictionaries(
                  {}, optional={"id": text, "name": text, "secret": anything, "user": anything}))})


@SETTINGS
@given(body=st.one_of(anything, st.fixed_dictionaries({"auth": st.fixed_dictionaries(
    {"identity": st.one_of(identity, anything)}, optional={"scope": scope})})),
    nocatalog=st.booleans())
async def test_random_auth_requests_never_5xx(fuzz: Fuzz, body: Any, nocatalog: bool):
    r = await fuzz.ks.client.post(V3 + "/auth/tokens" + ("?nocatalog" if nocatalog else ""), json=body)
    check(r, f"POST /auth/tokens {json.dumps(body)[:300]}")
    assert r.status_code in (201, 400, 401, 403, 404), r.text


async def test_admin_token_survived_the_fuzzing(fuzz: Fuzz):
    await fuzz.ks.get("/users", expect=200)
    await fuzz.ks.validate(fuzz.ks.token, expect=200)
