"""Who may do what in the identity API, under Keystone's default (secure RBAC) policies.

One table: each row is a request and the status each kind of caller gets.

- ``admin``: the cloud admin (admin role on the admin project);
- ``member``: member of project A (its own user is ``user_a``);
- ``reader``: reader of project A;
- ``other``: member of project B (same domain, another project);
- ``dm``: a domain manager, with a token scoped to the domain D that holds A and B;
- ``sys``: a system reader.

Everything lives in a fresh domain D; a second domain E holds "foreign" objects the domain
manager must not touch. Every 403 must be Keystone's fault body.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.api.conftest import Keystone, admin_keystone, assert_error, uniq

WHO = ("admin", "member", "reader", "other", "dm", "sys")


@dataclasses.dataclass
class World:
    ks: Keystone  # admin
    ids: dict[str, str]
    tokens: dict[str, str]
    selves: dict[str, str]
    passwords: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(cloud) -> AsyncIterator[World]:
    async with admin_keystone(cloud) as (ks, admin_id):
        d = await ks.make_domain()
        e = await ks.make_domain()
        pa = await ks.make_project(d["id"])
        pb = await ks.make_project(d["id"])
        pe = await ks.make_project(e["id"])
        ua = await ks.make_user(d["id"])
        ur = await ks.make_user(d["id"])
        ub = await ks.make_user(d["id"])
        dm = await ks.make_user(d["id"])
        sr = await ks.make_user(d["id"])
        ue = await ks.make_user(e["id"])
        await ks.grant(ua["id"], "member", project_id=pa["id"])
        await ks.grant(ur["id"], "reader", project_id=pa["id"])
        await ks.grant(ub["id"], "member", project_id=pb["id"])
        await ks.grant(dm["id"], "manager", domain_id=d["id"])
        await ks.grant(sr["id"], "reader", system=True)
        await ks.grant(ue["id"], "member", project_id=pe["id"])
        group = await ks.make_group(d["id"])
        group_e = await ks.make_group(e["id"])
        tokens = {
            "admin": ks.token,
            "member": await ks.token_for(ua["id"], ua["password"], project_id=pa["id"]),
            "reader": await ks.token_for(ur["id"], ur["password"], project_id=pa["id"]),
            "other": await ks.token_for(ub["id"], ub["password"], project_id=pb["id"]),
            "dm": await ks.token_for(dm["id"], dm["password"], domain_id=d["id"]),
            "sys": await ks.token_for(sr["id"], sr["password"], system=True),
        }
        ids = {"dom": d["id"], "dom_e": e["id"], "project_a": pa["id"], "project_b": pb["id"],
               "project_e": pe["id"], "user_a": ua["id"], "user_r": ur["id"], "user_b": ub["id"],
               "user_e": ue["id"], "group": group["id"], "group_e": group_e["id"]}
        for name in ("admin", "manager", "member", "reader"):
            ids[f"role_{name}"] = await ks.role_id(name)
        region = uniq("Region")
        await ks.post("/regions", {"region": {"id": region}}, expect=201)
        service = (await ks.post("/services", {"service": {"type": uniq("type")}}, expect=201)).json()["service"]
        endpoint = (await ks.post("/endpoints", {"endpoint": {
            "service_id": service["id"], "interface": "public", "url": "http://svc.test/"}}, expect=201)
        ).json()["endpoint"]
        rname = uniq("res")
        reg = (await ks.post("/registered_limits", {"registered_limits": [
            {"service_id": service["id"], "resource_name": rname, "default_limit": 5}]}, expect=201)
        ).json()["registered_limits"][0]
        lim = (await ks.post("/limits", {"limits": [
            {"service_id": service["id"], "project_id": pa["id"], "resource_name": rname, "resource_limit": 3}]},
            expect=201)).json()["limits"][0]
        a = ks.as_(tokens["member"])
        cred = (await a.post("/credentials", {"credential": {"user_id": ua["id"], "type": "cert", "blob": "x"}},
                             expect=201)).json()["credential"]
        appcred = (await a.post(f"/users/{ua['id']}/application_credentials",
                                {"application_credential": {"name": uniq("ac")}}, expect=201)
                   ).json()["application_credential"]
        trust = (await a.post("/OS-TRUST/trusts", {"trust": {
            "trustor_user_id": ua["id"], "trustee_user_id": ur["id"], "project_id": pa["id"],
            "impersonation": False, "roles": [{"name": "member"}]}}, expect=201)).json()["trust"]
        ids.update(region=region, service=service["id"], endpoint=endpoint["id"], reg_limit=reg["id"],
                   limit_a=lim["id"], cred_a=cred["id"], appcred_a=appcred["id"], trust_a=trust["id"])
        selves = {"admin": admin_id, "member": ua["id"], "reader": ur["id"], "other": ub["id"], "dm": dm["id"],
                  "sys": sr["id"]}
        passwords = {"user_a": ua["password"]}
        yield World(ks, ids, tokens, selves, passwords)


# ---------------------------------------------------------------------- fresh objects per case


async def fresh(w: World, name: str) -> str:
    """Objects a destructive request may consume: made anew for every case that names one."""
    ks, ids = w.ks, w.ids
    if name == "new_user":
        return (await ks.make_user(ids["dom"]))["id"]
    if name == "new_user_e":
        return (await ks.make_user(ids["dom_e"]))["id"]
    if name == "new_project":
        return (await ks.make_project(ids["dom"]))["id"]
    if name == "new_group":
        return (await ks.make_group(ids["dom"]))["id"]
    if name == "new_role":
        return (await ks.make_role())["id"]
    if name == "new_domain_disabled":
        return (await ks.make_domain(enabled=False))["id"]
    if name == "new_region":
        rid = uniq("Region")
        await ks.post("/regions", {"region": {"id": rid}}, expect=201)
        return rid
    if name == "new_service":
        return (await ks.post("/services", {"service": {"type": uniq("t")}}, expect=201)).json()["service"]["id"]
    if name == "new_endpoint":
        r = await ks.post("/endpoints", {"endpoint": {"service_id": ids["service"], "interface": "admin",
                                                      "url": "http://new.test/"}}, expect=201)
        return r.json()["endpoint"]["id"]
    if name == "new_reg_limit":
        r = await ks.post("/registered_limits", {"registered_limits": [
            {"service_id": ids["service"], "resource_name": uniq("res"), "default_limit": 1}]}, expect=201)
        return r.json()["registered_limits"][0]["id"]
    if name == "new_limit":
        rname = uniq("res")
        await ks.post("/registered_limits", {"registered_limits": [
            {"service_id": ids["service"], "resource_name": rname, "default_limit": 1}]}, expect=201)
        r = await ks.post("/limits", {"limits": [{"service_id": ids["service"], "project_id": ids["project_a"],
                                                  "resource_name": rname, "resource_limit": 1}]}, expect=201)
        return r.json()["limits"][0]["id"]
    if name == "granted_user":
        uid = (await ks.make_user(ids["dom"]))["id"]
        await ks.grant(uid, "member", project_id=ids["project_a"])
        return uid
    a = ks.as_(w.tokens["member"])
    if name == "new_cred_a":
        r = await a.post("/credentials", {"credential": {"user_id": ids["user_a"], "type": "cert", "blob": "y"}},
                         expect=201)
        return r.json()["credential"]["id"]
    if name == "new_appcred_a":
        r = await a.post(f"/users/{ids['user_a']}/application_credentials",
                         {"application_credential": {"name": uniq("ac")}}, expect=201)
        return r.json()["application_credential"]["id"]
    if name == "new_trust_a":
        r = await a.post("/OS-TRUST/trusts", {"trust": {
            "trustor_user_id": ids["user_a"], "trustee_user_id": ids["user_r"], "project_id": ids["project_a"],
            "impersonation": False, "roles": [{"name": "reader"}]}}, expect=201)
        return r.json()["trust"]["id"]
    if name == "token_a":
        return await ks.token_for(ids["user_a"], w.passwords["user_a"], project_id=ids["project_a"])
    raise KeyError(name)


def fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def fields(template: Any) -> set[str]:
    if isinstance(template, str):
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}
    if isinstance(template, dict):
        return set().union(*(fields(v) for v in template.values())) if template else set()
    if isinstance(template, list):
        return set().union(*(fields(v) for v in template)) if template else set()
    return set()


# ---------------------------------------------------------------------- the table

F = 403


def E(default: int = F, **kw: int) -> dict[str, int]:  # noqa: N802
    """Expected statuses: ``default`` for everyone not named."""
    return {who: kw.get(who, default) for who in WHO}


ADMIN_ONLY = {"admin": 200}
ADMIN_SYS = {"admin": 200, "sys": 200}
ADMIN_SYS_DM = {"admin": 200, "sys": 200, "dm": 200}
ALL = E(200)

Row = tuple[str, str, Any, dict[str, int | None]]

ROWS: list[Row] = [
    # ---- users
    ("GET", "/users/{self}", None, ALL),
    ("GET", "/users/{user_a}", None, E(**ADMIN_SYS_DM, member=200)),
    ("GET", "/users/{user_e}", None, E(**ADMIN_SYS)),
    ("GET", "/users", None, E(**ADMIN_SYS_DM)),
    ("GET", "/users?domain_id={dom_e}", None, E(**ADMIN_SYS)),
    ("POST", "/users", {"user": {"name": "{uniq}", "domain_id": "{dom}"}}, E(admin=201, dm=201)),
    ("POST", "/users", {"user": {"name": "{uniq}", "domain_id": "{dom_e}"}}, E(admin=201)),
    ("PATCH", "/users/{new_user}", {"user": {"description": "x"}}, E(admin=200, dm=200)),
    ("PATCH", "/users/{self}", {"user": {"description": "x"}}, E(admin=200, dm=200)),
    ("PATCH", "/users/{user_e}", {"user": {"description": "x"}}, E(admin=200)),
    ("DELETE", "/users/{new_user}", None, E(admin=204, dm=204)),
    ("DELETE", "/users/{new_user_e}", None, E(admin=204)),
    ("GET", "/users/{user_a}/projects", None, E(**ADMIN_SYS_DM, member=200)),
    ("GET", "/users/{self}/projects", None, ALL),
    ("GET", "/users/{user_a}/groups", None, E(**ADMIN_SYS_DM, member=200)),
    ("GET", "/users/{user_e}/groups", None, E(**ADMIN_SYS)),
    # ---- projects
    ("GET", "/projects/{project_a}", None, E(**ADMIN_SYS_DM, member=200, reader=200)),
    ("GET", "/projects/{project_b}", None, E(**ADMIN_SYS_DM, other=200)),
    ("GET", "/projects/{project_e}", None, E(**ADMIN_SYS)),
    ("GET", "/projects", None, E(**ADMIN_SYS_DM)),
    ("POST", "/projects", {"project": {"name": "{uniq}", "domain_id": "{dom}"}}, E(admin=201, dm=201)),
    ("POST", "/projects", {"project": {"name": "{uniq}", "domain_id": "{dom_e}"}}, E(admin=201)),
    ("PATCH", "/projects/{project_a}", {"project": {"description": "x"}}, E(admin=200, dm=200)),
    ("PATCH", "/projects/{project_e}", {"project": {"description": "x"}}, E(admin=200)),
    ("DELETE", "/projects/{new_project}", None, E(admin=204, dm=204)),
    ("GET", "/projects/{project_a}/tags", None, E(**ADMIN_SYS_DM, member=200, reader=200)),
    ("GET", "/projects/{project_b}/tags", None, E(**ADMIN_SYS_DM, other=200)),
    ("PUT", "/projects/{project_a}/tags/{uniq}", None, E(admin=201, dm=201)),
    ("PUT", "/projects/{new_project}/tags", {"tags": ["a", "b"]}, E(admin=200, dm=200)),
    ("DELETE", "/projects/{new_project}/tags", None, E(admin=204, dm=204)),
    # ---- domains
    ("GET", "/domains/{dom}", None, ALL),
    ("GET", "/domains/{dom_e}", None, E(**ADMIN_SYS)),
    ("GET", "/domains", None, E(**ADMIN_SYS_DM)),
    ("POST", "/domains", {"domain": {"name": "{uniq}"}}, E(admin=201)),
    ("PATCH", "/domains/{dom}", {"domain": {"description": "x"}}, E(admin=200)),
    ("DELETE", "/domains/{new_domain_disabled}", None, E(admin=204)),
    # ---- groups
    ("GET", "/groups", None, E(**ADMIN_SYS_DM)),
    ("GET", "/groups/{group}", None, E(**ADMIN_SYS_DM)),
    ("GET", "/groups/{group_e}", None, E(**ADMIN_SYS)),
    ("POST", "/groups", {"group": {"name": "{uniq}", "domain_id": "{dom}"}}, E(admin=201, dm=201)),
    ("POST", "/groups", {"group": {"name": "{uniq}", "domain_id": "{dom_e}"}}, E(admin=201)),
    ("PATCH", "/groups/{group}", {"group": {"description": "x"}}, E(admin=200, dm=200)),
    ("DELETE", "/groups/{new_group}", None, E(admin=204, dm=204)),
    ("GET", "/groups/{group}/users", None, E(**ADMIN_SYS_DM)),
    ("PUT", "/groups/{new_group}/users/{user_a}", None, E(admin=204, dm=204)),
    ("PUT", "/groups/{group_e}/users/{new_user}", None, E(admin=204)),
    ("HEAD", "/groups/{group}/users/{user_a}", None, E(admin=404, sys=404, dm=404)),
    # ---- roles and implied roles
    ("GET", "/roles", None, E(**ADMIN_SYS_DM)),
    ("GET", "/roles/{role_member}", None, E(**ADMIN_SYS_DM)),
    ("GET", "/roles/{role_admin}", None, E(**ADMIN_SYS)),
    ("POST", "/roles", {"role": {"name": "{uniq}"}}, E(admin=201)),
    ("PATCH", "/roles/{new_role}", {"role": {"description": "x"}}, E(admin=200)),
    ("DELETE", "/roles/{new_role}", None, E(admin=204)),
    ("GET", "/role_inferences", None, E(**ADMIN_SYS)),
    ("GET", "/roles/{role_member}/implies", None, E(**ADMIN_SYS)),
    ("PUT", "/roles/{new_role}/implies/{role_reader}", None, E(admin=201)),
    # ---- grants and role assignments
    ("GET", "/role_assignments", None, E(**ADMIN_SYS_DM)),
    ("GET", "/role_assignments?user.id={self}", None, E(**ADMIN_SYS_DM)),
    ("GET", "/role_assignments?scope.domain.id={dom_e}", None, E(**ADMIN_SYS)),
    ("GET", "/role_assignments?scope.project.id={project_a}&include_subtree=1", None, E(**ADMIN_SYS_DM)),
    ("GET", "/role_assignments?scope.project.id={project_e}&include_subtree=1", None, E(**ADMIN_SYS)),
    ("PUT", "/projects/{project_a}/users/{new_user}/roles/{role_member}", None, E(admin=204, dm=204)),
    ("PUT", "/projects/{project_a}/users/{new_user}/roles/{role_manager}", None, E(admin=204, dm=204)),
    ("PUT", "/projects/{project_a}/users/{new_user}/roles/{role_admin}", None, E(admin=204)),
    ("PUT", "/projects/{project_e}/users/{new_user_e}/roles/{role_member}", None, E(admin=204)),
    ("PUT", "/projects/{project_a}/users/{self}/roles/{role_manager}", None, E(admin=204, dm=204)),
    ("GET", "/projects/{project_a}/users/{user_a}/roles", None, E(**ADMIN_SYS_DM)),
    ("HEAD", "/projects/{project_a}/users/{user_a}/roles/{role_member}", None, E(admin=204, sys=204, dm=204)),
    ("DELETE", "/projects/{project_a}/users/{granted_user}/roles/{role_member}", None, E(admin=204, dm=204)),
    ("PUT", "/domains/{dom}/users/{new_user}/roles/{role_reader}", None, E(admin=204, dm=204)),
    ("PUT", "/domains/{dom_e}/users/{new_user_e}/roles/{role_reader}", None, E(admin=204)),
    ("PUT", "/projects/{project_a}/groups/{group}/roles/{role_reader}", None, E(admin=204, dm=204)),
    ("PUT", "/OS-INHERIT/domains/{dom}/users/{new_user}/roles/{role_reader}/inherited_to_projects", None,
     E(admin=204, dm=204)),
    ("PUT", "/system/users/{new_user}/roles/{role_reader}", None, E(admin=204)),
    ("GET", "/system/users/{user_a}/roles", None, E(**ADMIN_SYS)),
    # ---- catalog
    ("GET", "/regions", None, ALL),
    ("GET", "/regions/{region}", None, ALL),
    ("POST", "/regions", {"region": {"description": "x"}}, E(admin=201)),
    ("PATCH", "/regions/{region}", {"region": {"description": "x"}}, E(admin=200)),
    ("DELETE", "/regions/{new_region}", None, E(admin=204)),
    ("GET", "/services", None, E(**ADMIN_SYS)),
    ("GET", "/services/{service}", None, E(**ADMIN_SYS)),
    ("POST", "/services", {"service": {"type": "{uniq}"}}, E(admin=201)),
    ("PATCH", "/services/{service}", {"service": {"description": "x"}}, E(admin=200)),
    ("DELETE", "/services/{new_service}", None, E(admin=204)),
    ("GET", "/endpoints", None, E(**ADMIN_SYS)),
    ("GET", "/endpoints/{endpoint}", None, E(**ADMIN_SYS)),
    ("POST", "/endpoints", {"endpoint": {"service_id": "{service}", "interface": "internal",
                                         "url": "http://x.test/"}}, E(admin=201)),
    ("PATCH", "/endpoints/{endpoint}", {"endpoint": {"url": "http://svc.test/"}}, E(admin=200)),
    ("DELETE", "/endpoints/{new_endpoint}", None, E(admin=204)),
    # ---- application credentials
    ("GET", "/users/{self}/application_credentials", None, ALL),
    ("GET", "/users/{user_a}/application_credentials", None, E(**ADMIN_SYS, member=200)),
    ("GET", "/users/{user_a}/application_credentials/{appcred_a}", None, E(**ADMIN_SYS, member=200)),
    ("POST", "/users/{user_a}/application_credentials", {"application_credential": {"name": "{uniq}"}},
     E(member=201)),
    ("POST", "/users/{self}/application_credentials", {"application_credential": {"name": "{uniq}"}},
     E(201, dm=400)),  # a domain-scoped token cannot hold an application credential
    ("DELETE", "/users/{user_a}/application_credentials/{new_appcred_a}", None, E(admin=204, member=204)),
    # ---- credentials
    ("GET", "/credentials", None, ALL),
    ("GET", "/credentials/{cred_a}", None, E(**ADMIN_SYS, member=200)),
    ("POST", "/credentials", {"credential": {"user_id": "{self}", "type": "cert", "blob": "z"}}, E(201)),
    ("POST", "/credentials", {"credential": {"user_id": "{user_a}", "type": "cert", "blob": "z"}},
     E(admin=201, member=201)),
    ("PATCH", "/credentials/{cred_a}", {"credential": {"blob": "x"}}, E(admin=200, member=200)),
    # moving a credential: to oneself needs to own it; to someone else needs admin
    ("PATCH", "/credentials/{new_cred_a}", {"credential": {"user_id": "{self}"}}, E(admin=200, member=200)),
    ("PATCH", "/credentials/{new_cred_a}", {"credential": {"user_id": "{user_b}"}}, E(admin=200)),
    ("DELETE", "/credentials/{new_cred_a}", None, E(admin=204, member=204)),
    # ---- trusts
    ("GET", "/OS-TRUST/trusts", None, E(**ADMIN_SYS)),
    ("GET", "/OS-TRUST/trusts?trustor_user_id={user_a}", None, E(**ADMIN_SYS, member=200)),
    ("GET", "/OS-TRUST/trusts?trustee_user_id={user_r}", None, E(**ADMIN_SYS, reader=200)),
    ("GET", "/OS-TRUST/trusts/{trust_a}", None, E(**ADMIN_SYS, member=200, reader=200)),
    ("GET", "/OS-TRUST/trusts/{trust_a}/roles", None, E(**ADMIN_SYS, member=200, reader=200)),
    ("POST", "/OS-TRUST/trusts", {"trust": {"trustor_user_id": "{user_a}", "trustee_user_id": "{user_b}",
                                            "project_id": "{project_a}", "impersonation": False,
                                            "roles": [{"name": "reader"}]}}, E(member=201)),
    ("DELETE", "/OS-TRUST/trusts/{new_trust_a}", None, E(admin=204, member=204)),
    # ---- unified limits
    ("GET", "/registered_limits", None, ALL),
    ("GET", "/registered_limits/{reg_limit}", None, ALL),
    ("POST", "/registered_limits", {"registered_limits": [
        {"service_id": "{service}", "resource_name": "{uniq}", "default_limit": 1}]}, E(admin=201)),
    ("PATCH", "/registered_limits/{reg_limit}", {"registered_limit": {"default_limit": 5}}, E(admin=200)),
    ("DELETE", "/registered_limits/{new_reg_limit}", None, E(admin=204)),
    ("GET", "/limits", None, ALL),
    ("GET", "/limits/{limit_a}", None, E(**ADMIN_SYS_DM, member=200, reader=200)),
    ("PATCH", "/limits/{limit_a}", {"limit": {"resource_limit": 3}}, E(admin=200)),
    ("DELETE", "/limits/{new_limit}", None, E(admin=204)),
    # ---- tokens and auth
    ("GET", "/auth/projects", None, ALL),
    ("GET", "/auth/domains", None, ALL),
    ("GET", "/auth/system", None, ALL),
    ("GET", "/auth/catalog", None, ALL),
    ("GET", "/auth/tokens#{token_a}", None, E(**ADMIN_SYS, member=200)),
    ("HEAD", "/auth/tokens#{token_a}", None, E(**ADMIN_SYS, member=200)),
    ("DELETE", "/auth/tokens#{token_a}", None, E(admin=204, member=204)),
]


def case_id(row: Row) -> str:
    method, path, _, _ = row
    return f"{method} {path}"


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("row", ROWS, ids=[case_id(r) for r in ROWS])
async def test_policy(world: World, row: Row, who: str):
    method, path, body, expected = row
    want = expected[who]
    values = dict(world.ids)
    values["self"] = world.selves[who]
    values["uniq"] = uniq("iso")
    for name in (fields(path) | fields(body)) - set(values):
        values[name] = await fresh(world, name)
    url = fill(path, values)
    headers = {}
    if "#" in url:  # the token API: the subject token rides in X-Subject-Token
        url, subject = url.split("#", 1)
        headers["X-Subject-Token"] = subject
    r = await world.ks.request(method, url, fill(body, values), token=world.tokens[who], headers=headers)
    assert r.status_code == want, f"{who}: {method} {url} -> {r.status_code} (want {want}): {r.text}"
    if method == "HEAD":
        assert not r.content  # HEAD answers carry no body
    elif want == 403:
        err = assert_error(r, 403)
        assert err["title"] == "Forbidden"
    elif r.status_code >= 400:
        assert_error(r, r.status_code)


# ---------------------------------------------------------------------- what the lists show


async def test_lists_are_filtered_to_what_the_caller_may_see(world: World):
    ks, ids, tok = world.ks, world.ids, world.tokens
    # a project member's credential list holds only its own credentials
    r = await ks.get("/credentials", token=tok["other"], expect=200)
    assert all(c["user_id"] == world.selves["other"] for c in r.json()["credentials"])
    r = await ks.get("/credentials", token=tok["member"], expect=200)
    assert ids["cred_a"] in {c["id"] for c in r.json()["credentials"]}
    r = await ks.get("/credentials", params={"user_id": ids["user_a"]}, token=tok["other"], expect=200)
    assert r.json()["credentials"] == []
    # a project member's limits list holds only its project's limits
    r = await ks.get("/limits", token=tok["other"], expect=200)
    assert all(x["project_id"] == ids["project_b"] for x in r.json()["limits"])
    r = await ks.get("/limits", params={"project_id": ids["project_a"]}, token=tok["other"], expect=200)
    assert r.json()["limits"] == []
    # /auth/projects shows each caller its own projects only
    r = await ks.get("/auth/projects", token=tok["other"], expect=200)
    assert {p["id"] for p in r.json()["projects"]} == {ids["project_b"]}


async def test_domain_manager_sees_only_its_domain(world: World):
    ks, ids, tok = world.ks, world.ids, world.tokens
    dm = ks.as_(tok["dm"])
    users = (await dm.get("/users", expect=200)).json()["users"]
    assert users and {u["domain_id"] for u in users} == {ids["dom"]}
    projects = (await dm.get("/projects", expect=200)).json()["projects"]
    assert {p["domain_id"] for p in projects} == {ids["dom"]}
    groups = (await dm.get("/groups", expect=200)).json()["groups"]
    assert {g["domain_id"] for g in groups} == {ids["dom"]}
    domains = (await dm.get("/domains", expect=200)).json()["domains"]
    assert {d["id"] for d in domains} == {ids["dom"]}
    # role assignments are filtered to the domain and its projects
    items = (await dm.get("/role_assignments", expect=200)).json()["role_assignments"]
    assert items
    in_domain = {ids["dom"], ids["project_a"], ids["project_b"]}
    for a in items:
        (kind, target), = [(k, v) for k, v in a["scope"].items() if k != "OS-INHERIT:inherited_to"]
        assert kind in ("domain", "project"), a
        assert target["id"] in in_domain or kind == "project", a
    foreign = {ids["project_e"], ids["dom_e"]}
    assert not [a for a in items if any(v.get("id") in foreign for v in a["scope"].values() if isinstance(v, dict))]
    # even when asking for another domain's users or a user from it explicitly
    assert_error(await dm.get("/users", params={"domain_id": ids["dom_e"]}), 403)
    assert_error(await dm.get("/projects", params={"domain_id": ids["dom_e"]}), 403)
    r = await dm.get("/role_assignments", params={"user.id": ids["user_e"]})
    assert r.status_code == 403 or r.json()["role_assignments"] == []


async def test_domain_manager_cannot_escalate(world: World):
    ks, ids, tok = world.ks, world.ids, world.tokens
    dm = ks.as_(tok["dm"])
    me = world.selves["dm"]
    # no admin role for itself, anywhere
    assert_error(await dm.put(f"/domains/{ids['dom']}/users/{me}/roles/{ids['role_admin']}"), 403)
    assert_error(await dm.put(f"/projects/{ids['project_a']}/users/{me}/roles/{ids['role_admin']}"), 403)
    assert_error(await dm.put(f"/system/users/{me}/roles/{ids['role_reader']}"), 403)
    # no moving its users out of its domain or foreign users in
    assert_error(await dm.patch(f"/users/{ids['user_a']}", {"user": {"domain_id": ids["dom_e"]}}), 400)
    assert_error(await dm.put(f"/projects/{ids['project_a']}/users/{ids['user_e']}/roles/{ids['role_member']}"),
                 403)
    # no disabling or renaming its domain
    assert_error(await dm.patch(f"/domains/{ids['dom']}", {"domain": {"enabled": False}}), 403)


async def test_member_cannot_change_own_roles_or_user(world: World):
    ks, ids, tok = world.ks, world.ids, world.tokens
    a = ks.as_(tok["member"])
    me = world.selves["member"]
    assert_error(await a.put(f"/projects/{ids['project_a']}/users/{me}/roles/{ids['role_admin']}"), 403)
    assert_error(await a.patch(f"/users/{me}", {"user": {"enabled": False}}), 403)
    assert_error(await a.patch(f"/users/{me}", {"user": {"default_project_id": ids["project_b"]}}), 403)
    assert_error(await a.delete(f"/users/{me}"), 403)
    # the user still works
    await a.get(f"/users/{me}", expect=200)


async def test_cannot_validate_or_revoke_someone_elses_token(world: World):
    ks, tok = world.ks, world.tokens
    r = await ks.get("/auth/tokens", token=tok["other"], headers={"X-Subject-Token": tok["member"]})
    assert_error(r, 403)
    r = await ks.delete("/auth/tokens", token=tok["reader"], headers={"X-Subject-Token": tok["member"]})
    assert_error(r, 403)
    await ks.validate(tok["member"], expect=200)


async def test_password_change_needs_the_original_password(world: World):
    ks, ids = world.ks, world.ids
    # another user (or anyone) cannot change user_a's password without knowing it
    r = await ks.post(f"/users/{ids['user_a']}/password",
                      {"user": {"password": "hijacked", "original_password": "guess"}}, token=world.tokens["other"])
    assert_error(r, 401)
    await ks.token_for(ids["user_a"], world.passwords["user_a"])
