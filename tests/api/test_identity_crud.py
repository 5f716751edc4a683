"""Identity v3 CRUD and semantics, as a user of Keystone sees them."""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import Keystone, assert_error, uniq
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD


def names(items: list[dict]) -> set[str]:
    return {x["name"] for x in items}


def ids(items: list[dict]) -> set[str]:
    return {x["id"] for x in items}


# ---------------------------------------------------------------------- domains


async def test_domain_crud(ks: Keystone):
    name = uniq("dom")
    r = await ks.post("/domains", {"domain": {"name": name, "description": "d1"}}, expect=201)
    d = r.json()["domain"]
    assert len(d["id"]) == 32 and d["name"] == name and d["description"] == "d1" and d["enabled"] is True
    assert d["links"]["self"].endswith(f"/v3/domains/{d['id']}")

    assert (await ks.get(f"/domains/{d['id']}", expect=200)).json()["domain"]["name"] == name
    listed = (await ks.get("/domains", params={"name": name}, expect=200)).json()
    assert ids(listed["domains"]) == {d["id"]} and "links" in listed
    assert d["id"] in ids((await ks.get("/domains", expect=200)).json()["domains"])

    r = await ks.patch(f"/domains/{d['id']}", {"domain": {"description": "d2"}}, expect=200)
    assert r.json()["domain"]["description"] == "d2"

    # an enabled domain cannot be deleted; disable first
    assert_error(await ks.delete(f"/domains/{d['id']}"), 403)
    await ks.patch(f"/domains/{d['id']}", {"domain": {"enabled": False}}, expect=200)
    assert d["id"] in ids((await ks.get("/domains", params={"enabled": "false"})).json()["domains"])
    assert d["id"] not in ids((await ks.get("/domains", params={"enabled": "true"})).json()["domains"])
    await ks.delete(f"/domains/{d['id']}", expect=204)
    assert_error(await ks.get(f"/domains/{d['id']}"), 404)


async def test_domain_duplicate_name_conflicts(ks: Keystone):
    d = await ks.make_domain()
    assert_error(await ks.post("/domains", {"domain": {"name": d["name"]}}), 409)
    other = await ks.make_domain()
    assert_error(await ks.patch(f"/domains/{other['id']}", {"domain": {"name": d["name"]}}), 409)


async def test_default_domain_exists(ks: Keystone):
    d = (await ks.get("/domains/default", expect=200)).json()["domain"]
    assert d["id"] == "default" and d["name"] == "Default"


async def test_disabling_domain_revokes_its_users_tokens(ks: Keystone):
    d = await ks.make_domain()
    user, project, token = await ks.member(domain_id=d["id"])
    await ks.validate(token, expect=200)
    await ks.patch(f"/domains/{d['id']}", {"domain": {"enabled": False}}, expect=200)
    assert_error(await ks.validate(token), 404)
    r = await ks.auth(user_id=user["id"], password=user["password"])
    assert_error(r, 401)


async def test_deleting_domain_removes_its_contents(ks: Keystone):
    d = await ks.make_domain()
    user, project, _ = await ks.member(domain_id=d["id"])
    group = await ks.make_group(d["id"])
    await ks.patch(f"/domains/{d['id']}", {"domain": {"enabled": False}}, expect=200)
    await ks.delete(f"/domains/{d['id']}", expect=204)
    for path in (f"/users/{user['id']}", f"/projects/{project['id']}", f"/groups/{group['id']}"):
        assert_error(await ks.get(path), 404)


# ---------------------------------------------------------------------- projects


async def test_project_crud(ks: Keystone):
    name = uniq("proj")
    r = await ks.post("/projects", {"project": {"name": name, "description": "p", "domain_id": "default"}},
                      expect=201)
    p = r.json()["project"]
    assert p["name"] == name and p["domain_id"] == "default" and p["enabled"] is True
    assert p["parent_id"] == "default" and p["is_domain"] is False and p["tags"] == []
    assert (await ks.get(f"/projects/{p['id']}", expect=200)).json()["project"]["description"] == "p"
    assert ids((await ks.get("/projects", params={"name": name})).json()["projects"]) == {p["id"]}
    r = await ks.patch(f"/projects/{p['id']}", {"project": {"name": name + "x", "description": "q"}}, expect=200)
    assert r.json()["project"]["name"] == name + "x" and r.json()["project"]["description"] == "q"
    await ks.delete(f"/projects/{p['id']}", expect=204)
    assert_error(await ks.get(f"/projects/{p['id']}"), 404)
    assert_error(await ks.delete(f"/projects/{p['id']}"), 404)


async def test_project_without_domain_goes_to_token_domain(ks: Keystone):
    r = await ks.post("/projects", {"project": {"name": uniq("proj")}}, expect=201)
    assert r.json()["project"]["domain_id"] == "default"


async def test_project_duplicate_name_in_domain(ks: Keystone):
    p = await ks.make_project()
    assert_error(await ks.post("/projects", {"project": {"name": p["name"], "domain_id": "default"}}), 409)
    # the same name in another domain is fine
    d = await ks.make_domain()
    await ks.post("/projects", {"project": {"name": p["name"], "domain_id": d["id"]}}, expect=201)


async def test_project_hierarchy(ks: Keystone):
    d = await ks.make_domain()
    top = await ks.make_project(d["id"])
    assert top["parent_id"] == d["id"]
    r = await ks.post("/projects", {"project": {"name": uniq("child"), "parent_id": top["id"]}}, expect=201)
    child = r.json()["project"]
    assert child["parent_id"] == top["id"] and child["domain_id"] == d["id"]
    grandchild = (await ks.post("/projects", {"project": {"name": uniq("gc"), "parent_id": child["id"]}},
                                expect=201)).json()["project"]

    listed = (await ks.get("/projects", params={"parent_id": top["id"]})).json()["projects"]
    assert ids(listed) == {child["id"]}
    got = (await ks.get(f"/projects/{grandchild['id']}", params={"parents_as_list": ""}, expect=200)).json()
    assert [x["project"]["id"] for x in got["project"]["parents"]] == [child["id"], top["id"]]
    got = (await ks.get(f"/projects/{top['id']}", params={"subtree_as_list": ""}, expect=200)).json()
    assert {x["project"]["id"] for x in got["project"]["subtree"]} == {child["id"], grandchild["id"]}

    # a parent in another domain is refused
    other = await ks.make_domain()
    r = await ks.post("/projects", {"project": {"name": uniq("p"), "parent_id": top["id"], "domain_id": other["id"]}})
    assert_error(r, 400)
    # a non-leaf cannot be deleted; a parent with enabled children cannot be disabled
    assert_error(await ks.delete(f"/projects/{top['id']}"), 403)
    assert_error(await ks.patch(f"/projects/{top['id']}", {"project": {"enabled": False}}), 403)
    # nor can a project move
    assert_error(await ks.patch(f"/projects/{child['id']}", {"project": {"domain_id": other["id"]}}), 400)
    await ks.delete(f"/projects/{grandchild['id']}", expect=204)
    await ks.delete(f"/projects/{child['id']}", expect=204)
    await ks.delete(f"/projects/{top['id']}", expect=204)


async def test_project_unknown_parent_is_404(ks: Keystone):
    r = await ks.post("/projects", {"project": {"name": uniq("p"), "parent_id": "0" * 32}})
    assert_error(r, 404)


async def test_project_tags(ks: Keystone):
    p = await ks.make_project(tags=["alpha", "beta"])
    assert sorted(p["tags"]) == ["alpha", "beta"]
    path = f"/projects/{p['id']}/tags"
    assert sorted((await ks.get(path, expect=200)).json()["tags"]) == ["alpha", "beta"]

    r = await ks.put(f"{path}/gamma", expect=201)
    assert r.headers["location"].endswith(f"/projects/{p['id']}/tags/gamma")
    await ks.get(f"{path}/gamma", expect=204)
    await ks.head(f"{path}/gamma", expect=204)
    assert_error(await ks.get(f"{path}/nope"), 404)
    await ks.delete(f"{path}/alpha", expect=204)
    assert_error(await ks.delete(f"{path}/alpha"), 404)
    assert sorted((await ks.get(path)).json()["tags"]) == ["beta", "gamma"]

    r = await ks.put(path, {"tags": ["one", "two"]}, expect=200)
    assert sorted(r.json()["tags"]) == ["one", "two"]
    assert sorted((await ks.get(f"/projects/{p['id']}")).json()["project"]["tags"]) == ["one", "two"]

    # tags in the project body replace them too
    r = await ks.patch(f"/projects/{p['id']}", {"project": {"tags": ["three"]}}, expect=200)
    assert r.json()["project"]["tags"] == ["three"]
    await ks.delete(path, expect=204)
    assert (await ks.get(path)).json()["tags"] == []

    # a tag with '/' or ',' is refused
    assert_error(await ks.put(path, {"tags": ["a,b"]}), 400)
    assert_error(await ks.put(f"{path}/a,b"), 400)


async def test_unicode_project_tag(ks: Keystone):
    p = await ks.make_project()
    tag = "\u00e9t\u00e9-\u2603"
    r = await ks.put(f"/projects/{p['id']}/tags/{tag}", expect=201)
    assert r.headers["location"].endswith("/tags/%C3%A9t%C3%A9-%E2%98%83")
    await ks.get(f"/projects/{p['id']}/tags/{tag}", expect=204)
    assert (await ks.get(f"/projects/{p['id']}/tags")).json()["tags"] == [tag]


async def test_project_tag_filters(ks: Keystone):
    t1, t2 = uniq("tag"), uniq("tag")
    both = await ks.make_project(tags=[t1, t2])
    one = await ks.make_project(tags=[t1])
    two = await ks.make_project(tags=[t2])

    async def listed(**params: str) -> set[str]:
        r = await ks.get("/projects", params=params, expect=200)
        return ids(r.json()["projects"]) & {both["id"], one["id"], two["id"]}

    assert await listed(tags=f"{t1},{t2}") == {both["id"]}
    assert await listed(**{"tags-any": f"{t1},{t2}"}) == {both["id"], one["id"], two["id"]}
    assert await listed(**{"not-tags": f"{t1},{t2}"}) == {one["id"], two["id"]}
    assert await listed(**{"not-tags-any": t1}) == {two["id"]}


async def test_project_disable_and_enable(ks: Keystone):
    user, project, token = await ks.member()
    await ks.validate(token, expect=200)
    r = await ks.patch(f"/projects/{project['id']}", {"project": {"enabled": False}}, expect=200)
    assert r.json()["project"]["enabled"] is False
    # the project's tokens are revoked and no new one is issued
    assert_error(await ks.validate(token), 404)
    assert_error(await ks.get(f"/users/{user['id']}", token=token), 401)
    r = await ks.auth(user_id=user["id"], password=user["password"], scope={"project": {"id": project["id"]}})
    assert_error(r, 401)
    await ks.patch(f"/projects/{project['id']}", {"project": {"enabled": True}}, expect=200)
    await ks.token_for(user["id"], user["password"], project_id=project["id"])


async def test_project_immutable_option(ks: Keystone):
    p = await ks.make_project(options={"immutable": True})
    assert p["options"] == {"immutable": True}
    assert_error(await ks.patch(f"/projects/{p['id']}", {"project": {"description": "x"}}), 403)
    assert_error(await ks.delete(f"/projects/{p['id']}"), 403)
    await ks.patch(f"/projects/{p['id']}", {"project": {"options": {"immutable": False}}}, expect=200)
    await ks.delete(f"/projects/{p['id']}", expect=204)


# ---------------------------------------------------------------------- users


async def test_user_crud(ks: Keystone):
    project = await ks.make_project()
    name = uniq("user")
    body = {"name": name, "password": "s3cret-pw", "default_project_id": project["id"], "email": "u@example.org",
            "description": "a user", "options": {"ignore_password_expiry": True}}
    r = await ks.post("/users", {"user": body}, expect=201)
    u = r.json()["user"]
    assert "password" not in u
    assert u["name"] == name and u["domain_id"] == "default" and u["enabled"] is True
    assert u["default_project_id"] == project["id"] and u["email"] == "u@example.org"
    assert u["options"] == {"ignore_password_expiry": True}
    assert "password_expires_at" in u

    got = (await ks.get(f"/users/{u['id']}", expect=200)).json()["user"]
    assert got["name"] == name and "password" not in got
    assert ids((await ks.get("/users", params={"name": name})).json()["users"]) == {u["id"]}

    r = await ks.patch(f"/users/{u['id']}", {"user": {"description": "changed", "email": "v@example.org"}},
                       expect=200)
    assert r.json()["user"]["description"] == "changed" and r.json()["user"]["email"] == "v@example.org"
    r = await ks.patch(f"/users/{u['id']}", {"user": {"options": {"ignore_lockout_failure_attempts": True}}},
                       expect=200)
    assert r.json()["user"]["options"] == {"ignore_password_expiry": True, "ignore_lockout_failure_attempts": True}

    await ks.delete(f"/users/{u['id']}", expect=204)
    assert_error(await ks.get(f"/users/{u['id']}"), 404)
    assert_error(await ks.delete(f"/users/{u['id']}"), 404)
    assert_error(await ks.auth(user_id=u["id"], password="s3cret-pw"), 401)


async def test_user_duplicate_name(ks: Keystone):
    u = await ks.make_user()
    assert_error(await ks.post("/users", {"user": {"name": u["name"], "domain_id": "default"}}), 409)
    other = await ks.make_user()
    assert_error(await ks.patch(f"/users/{other['id']}", {"user": {"name": u["name"]}}), 409)


async def test_user_unknown_default_project_is_404(ks: Keystone):
    r = await ks.post("/users", {"user": {"name": uniq("u"), "default_project_id": "f" * 32}})
    assert_error(r, 404)


async def test_user_default_project_scopes_token(ks: Keystone):
    project = await ks.make_project()
    user = await ks.make_user(default_project_id=project["id"])
    # without a role on it, an unscoped request gets an unscoped token
    r = await ks.auth(user_id=user["id"], password=user["password"])
    assert r.status_code == 201 and "project" not in r.json()["token"]
    await ks.grant(user["id"], "member", project_id=project["id"])
    r = await ks.auth(user_id=user["id"], password=user["password"])
    assert r.status_code == 201
    assert r.json()["token"]["project"]["id"] == project["id"]
    # an explicit "unscoped" keeps it unscoped
    r = await ks.auth(user_id=user["id"], password=user["password"], scope="unscoped")
    assert r.status_code == 201 and "project" not in r.json()["token"]


async def test_password_change(ks: Keystone):
    user, project, token = await ks.member()
    old, new = user["password"], uniq("new-pw")
    # a wrong original password is refused and changes nothing
    r = await ks.post(f"/users/{user['id']}/password",
                      {"user": {"password": new, "original_password": "wrong"}}, token=token)
    assert_error(r, 401)
    await ks.validate(token, expect=200)

    r = await ks.post(f"/users/{user['id']}/password",
                      {"user": {"password": new, "original_password": old}}, token=token)
    assert r.status_code == 204, r.text
    assert_error(await ks.auth(user_id=user["id"], password=old), 401)
    r = await ks.auth(user_id=user["id"], password=new, scope={"project": {"id": project["id"]}})
    assert r.status_code == 201
    # the tokens issued before the change are revoked, the new one works
    assert_error(await ks.validate(token), 404)
    assert_error(await ks.get(f"/users/{user['id']}", token=token), 401)
    await ks.get(f"/users/{user['id']}", token=r.headers["x-subject-token"], expect=200)


async def test_admin_password_reset_revokes_tokens(ks: Keystone):
    user, project, token = await ks.member()
    await ks.patch(f"/users/{user['id']}", {"user": {"password": "reset-by-admin"}}, expect=200)
    assert_error(await ks.validate(token), 404)
    assert_error(await ks.auth(user_id=user["id"], password=user["password"]), 401)
    await ks.token_for(user["id"], "reset-by-admin")


async def test_user_disable_and_enable(ks: Keystone):
    user, project, token = await ks.member()
    r = await ks.patch(f"/users/{user['id']}", {"user": {"enabled": False}}, expect=200)
    assert r.json()["user"]["enabled"] is False
    assert_error(await ks.validate(token), 404)
    assert_error(await ks.auth(user_id=user["id"], password=user["password"]), 401)
    assert user["id"] in ids((await ks.get("/users", params={"enabled": "false"})).json()["users"])
    await ks.patch(f"/users/{user['id']}", {"user": {"enabled": True}}, expect=200)
    await ks.token_for(user["id"], user["password"], project_id=project["id"])


async def test_user_by_name_and_domain_name(ks: Keystone):
    d = await ks.make_domain()
    user = await ks.make_user(d["id"])
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user["name"], "domain": {"name": d["name"]}, "password": user["password"]}}}}}
    r = await ks.client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["token"]["user"]["domain"] == {"id": d["id"], "name": d["name"]}


async def test_user_projects_and_groups(ks: Keystone):
    user, project, token = await ks.member()
    group = await ks.make_group()
    await ks.put(f"/groups/{group['id']}/users/{user['id']}", expect=204)
    r = await ks.get(f"/users/{user['id']}/projects", token=token, expect=200)
    assert ids(r.json()["projects"]) == {project["id"]}
    r = await ks.get(f"/users/{user['id']}/groups", token=token, expect=200)
    assert ids(r.json()["groups"]) == {group["id"]}


# ---------------------------------------------------------------------- groups


async def test_group_crud_and_membership(ks: Keystone):
    name = uniq("grp")
    g = (await ks.post("/groups", {"group": {"name": name, "description": "g"}}, expect=201)).json()["group"]
    assert g["name"] == name and g["domain_id"] == "default" and g["description"] == "g"
    assert (await ks.get(f"/groups/{g['id']}", expect=200)).json()["group"]["name"] == name
    assert ids((await ks.get("/groups", params={"name": name})).json()["groups"]) == {g["id"]}
    r = await ks.patch(f"/groups/{g['id']}", {"group": {"description": "h"}}, expect=200)
    assert r.json()["group"]["description"] == "h"
    assert_error(await ks.post("/groups", {"group": {"name": name}}), 409)

    user = await ks.make_user()
    member_path = f"/groups/{g['id']}/users/{user['id']}"
    assert (await ks.head(member_path)).status_code == 404
    await ks.put(member_path, expect=204)
    await ks.head(member_path, expect=204)
    await ks.get(member_path, expect=204)
    assert ids((await ks.get(f"/groups/{g['id']}/users", expect=200)).json()["users"]) == {user["id"]}
    await ks.delete(member_path, expect=204)
    assert_error(await ks.get(member_path), 404)
    assert_error(await ks.delete(member_path), 404)
    assert (await ks.get(f"/groups/{g['id']}/users")).json()["users"] == []
    assert_error(await ks.put(f"/groups/{g['id']}/users/{'0' * 32}"), 404)

    await ks.delete(f"/groups/{g['id']}", expect=204)
    assert_error(await ks.get(f"/groups/{g['id']}"), 404)


async def test_group_grant_gives_members_access(ks: Keystone):
    project = await ks.make_project()
    group = await ks.make_group()
    user = await ks.make_user()
    await ks.grant(group["id"], "member", project_id=project["id"], group=True)
    scope = {"project": {"id": project["id"]}}
    assert_error(await ks.auth(user_id=user["id"], password=user["password"], scope=scope), 401)
    await ks.put(f"/groups/{group['id']}/users/{user['id']}", expect=204)
    token = await ks.token_for(user["id"], user["password"], project_id=project["id"])
    roles = names((await ks.validate(token)).json()["token"]["roles"])
    assert roles == {"member", "reader"}
    # leaving the group takes the access away at once
    await ks.delete(f"/groups/{group['id']}/users/{user['id']}", expect=204)
    assert_error(await ks.validate(token), 404)
    assert_error(await ks.auth(user_id=user["id"], password=user["password"], scope=scope), 401)


# ---------------------------------------------------------------------- roles


async def test_role_crud(ks: Keystone):
    name = uniq("role")
    r = await ks.post("/roles", {"role": {"name": name, "description": "a role"}}, expect=201)
    role = r.json()["role"]
    assert role["name"] == name and role["domain_id"] is None and role["description"] == "a role"
    assert (await ks.get(f"/roles/{role['id']}", expect=200)).json()["role"]["name"] == name
    assert ids((await ks.get("/roles", params={"name": name})).json()["roles"]) == {role["id"]}
    assert_error(await ks.post("/roles", {"role": {"name": name}}), 409)
    r = await ks.patch(f"/roles/{role['id']}", {"role": {"name": name + "x"}}, expect=200)
    assert r.json()["role"]["name"] == name + "x"
    await ks.delete(f"/roles/{role['id']}", expect=204)
    assert_error(await ks.get(f"/roles/{role['id']}"), 404)


async def test_bootstrap_roles_are_immutable(ks: Keystone):
    reader = await ks.role_id("reader")
    role = (await ks.get(f"/roles/{reader}")).json()["role"]
    assert role["options"].get("immutable") is True
    assert_error(await ks.delete(f"/roles/{reader}"), 403)
    assert_error(await ks.patch(f"/roles/{reader}", {"role": {"name": "reader2"}}), 403)


async def test_domain_specific_roles(ks: Keystone):
    d = await ks.make_domain()
    name = uniq("drole")
    role = (await ks.post("/roles", {"role": {"name": name, "domain_id": d["id"]}}, expect=201)).json()["role"]
    assert role["domain_id"] == d["id"]
    assert role["id"] not in ids((await ks.get("/roles")).json()["roles"])
    assert ids((await ks.get("/roles", params={"domain_id": d["id"]})).json()["roles"]) == {role["id"]}
    # the same name may exist globally and in another domain
    await ks.post("/roles", {"role": {"name": name}}, expect=201)
    # a domain role cannot be granted on a project of another domain
    user = await ks.make_user()
    project = await ks.make_project()
    assert_error(await ks.put(f"/projects/{project['id']}/users/{user['id']}/roles/{role['id']}"), 403)


async def test_bootstrapped_implied_roles(ks: Keystone):
    rid = {n: await ks.role_id(n) for n in ("admin", "manager", "member", "reader")}
    r = await ks.get("/role_inferences", expect=200)
    rules = {(x["prior_role"]["name"], i["name"]) for x in r.json()["role_inferences"] for i in x["implies"]}
    assert {("admin", "manager"), ("manager", "member"), ("member", "reader")} <= rules
    r = await ks.get(f"/roles/{rid['admin']}/implies", expect=200)
    inf = r.json()["role_inference"]
    assert inf["prior_role"]["id"] == rid["admin"] and [x["id"] for x in inf["implies"]] == [rid["manager"]]
    await ks.head(f"/roles/{rid['member']}/implies/{rid['reader']}", expect=204)
    r = await ks.get(f"/roles/{rid['member']}/implies/{rid['reader']}", expect=200)
    assert r.json()["role_inference"]["implies"]["id"] == rid["reader"]
    assert_error(await ks.get(f"/roles/{rid['reader']}/implies/{rid['member']}"), 404)
    # admin's token on the admin project carries the whole chain
    roles = names((await ks.validate(ks.token)).json()["token"]["roles"])
    assert {"admin", "manager", "member", "reader"} <= roles


async def test_implied_role_crud_and_effect(ks: Keystone):
    prior = await ks.make_role()
    implied = await ks.make_role()
    path = f"/roles/{prior['id']}/implies/{implied['id']}"
    r = await ks.put(path, expect=201)
    inf = r.json()["role_inference"]
    assert inf["prior_role"]["id"] == prior["id"] and inf["implies"]["id"] == implied["id"]
    await ks.head(path, expect=204)

    user, project, _ = await ks.member(role=prior["id"])
    token = await ks.token_for(user["id"], user["password"], project_id=project["id"])
    assert names((await ks.validate(token)).json()["token"]["roles"]) == {prior["name"], implied["name"]}

    # no loops, and admin cannot be implied
    assert_error(await ks.put(f"/roles/{implied['id']}/implies/{prior['id']}"), 403)
    admin = await ks.role_id("admin")
    assert_error(await ks.put(f"/roles/{prior['id']}/implies/{admin}"), 403)

    await ks.delete(path, expect=204)
    assert (await ks.head(path)).status_code == 404
    assert_error(await ks.delete(path), 404)
    token = await ks.token_for(user["id"], user["password"], project_id=project["id"])
    assert names((await ks.validate(token)).json()["token"]["roles"]) == {prior["name"]}


# ---------------------------------------------------------------------- grants


async def test_project_grant_crud(ks: Keystone):
    user = await ks.make_user()
    project = await ks.make_project()
    role = await ks.role_id("reader")
    path = f"/projects/{project['id']}/users/{user['id']}/roles/{role}"
    assert (await ks.head(path)).status_code == 404
    await ks.put(path, expect=204)
    await ks.put(path, expect=204)  # idempotent
    await ks.head(path, expect=204)
    await ks.get(path, expect=204)
    r = await ks.get(f"/projects/{project['id']}/users/{user['id']}/roles", expect=200)
    assert ids(r.json()["roles"]) == {role}
    token = await ks.token_for(user["id"], user["password"], project_id=project["id"])
    assert names((await ks.validate(token)).json()["token"]["roles"]) == {"reader"}
    await ks.delete(path, expect=204)
    assert_error(await ks.delete(path), 404)
    assert (await ks.get(f"/projects/{project['id']}/users/{user['id']}/roles")).json()["roles"] == []
    # removing the role revokes the token that relied on it
    assert_error(await ks.validate(token), 404)
    assert_error(await ks.get(f"/projects/{project['id']}", token=token), 401)


async def test_grant_with_unknown_parts_is_404(ks: Keystone):
    user = await ks.make_user()
    project = await ks.make_project()
    role = await ks.role_id("reader")
    nope = "0" * 32
    for path in (f"/projects/{nope}/users/{user['id']}/roles/{role}",
                 f"/projects/{project['id']}/users/{nope}/roles/{role}",
                 f"/projects/{project['id']}/users/{user['id']}/roles/{nope}",
                 f"/domains/{nope}/users/{user['id']}/roles/{role}",
                 f"/projects/{project['id']}/groups/{nope}/roles/{role}"):
        assert_error(await ks.put(path), 404)


async def test_domain_grant_and_domain_token(ks: Keystone):
    d = await ks.make_domain()
    user = await ks.make_user(d["id"])
    scope = {"domain": {"id": d["id"]}}
    assert_error(await ks.auth(user_id=user["id"], password=user["password"], scope=scope), 401)
    await ks.grant(user["id"], "reader", domain_id=d["id"])
    r = await ks.get(f"/domains/{d['id']}/users/{user['id']}/roles", expect=200)
    assert names(r.json()["roles"]) == {"reader"}
    r = await ks.auth(user_id=user["id"], password=user["password"], scope=scope)
    assert r.status_code == 201
    tok = r.json()["token"]
    assert tok["domain"] == {"id": d["id"], "name": d["name"]} and "project" not in tok
    assert names(tok["roles"]) == {"reader"} and tok["catalog"]
    # a domain role gives no project access by itself
    project = await ks.make_project(d["id"])
    r = await ks.auth(user_id=user["id"], password=user["password"], scope={"project": {"id": project["id"]}})
    assert_error(r, 401)
    # by name too
    r = await ks.auth(user_id=user["id"], password=user["password"], scope={"domain": {"name": d["name"]}})
    assert r.status_code == 201
    token = r.headers["x-subject-token"]
    await ks.delete(f"/domains/{d['id']}/users/{user['id']}/roles/{await ks.role_id('reader')}", expect=204)
    assert_error(await ks.validate(token), 404)


async def test_system_grant_and_system_token(ks: Keystone):
    user = await ks.make_user()
    scope = {"system": {"all": True}}
    assert_error(await ks.auth(user_id=user["id"], password=user["password"], scope=scope), 401)
    reader = await ks.role_id("reader")
    await ks.put(f"/system/users/{user['id']}/roles/{reader}", expect=204)
    await ks.head(f"/system/users/{user['id']}/roles/{reader}", expect=204)
    assert ids((await ks.get(f"/system/users/{user['id']}/roles", expect=200)).json()["roles"]) == {reader}
    r = await ks.auth(user_id=user["id"], password=user["password"], scope=scope)
    assert r.status_code == 201
    tok = r.json()["token"]
    assert tok["system"] == {"all": True} and names(tok["roles"]) == {"reader"}
    token = r.headers["x-subject-token"]
    # a system reader reads everything, writes nothing
    await ks.get("/users", token=token, expect=200)
    assert_error(await ks.post("/projects", {"project": {"name": uniq("p")}}, token=token), 403)
    await ks.delete(f"/system/users/{user['id']}/roles/{reader}", expect=204)
    assert_error(await ks.validate(token), 404)


async def test_group_system_grant(ks: Keystone):
    group = await ks.make_group()
    user = await ks.make_user()
    await ks.put(f"/groups/{group['id']}/users/{user['id']}", expect=204)
    reader = await ks.role_id("reader")
    await ks.put(f"/system/groups/{group['id']}/roles/{reader}", expect=204)
    assert ids((await ks.get(f"/system/groups/{group['id']}/roles")).json()["roles"]) == {reader}
    await ks.token_for(user["id"], user["password"], system=True)


async def test_inherited_domain_grant(ks: Keystone):
    d = await ks.make_domain()
    p1 = await ks.make_project(d["id"])
    user = await ks.make_user(d["id"])
    member = await ks.role_id("member")
    path = f"/OS-INHERIT/domains/{d['id']}/users/{user['id']}/roles/{member}/inherited_to_projects"
    await ks.put(path, expect=204)
    await ks.head(path, expect=204)
    r = await ks.get(f"/OS-INHERIT/domains/{d['id']}/users/{user['id']}/roles/inherited_to_projects", expect=200)
    assert ids(r.json()["roles"]) == {member}
    # the role reaches every project of the domain, existing and new, but not the domain itself
    p2 = await ks.make_project(d["id"])
    for p in (p1, p2):
        await ks.token_for(user["id"], user["password"], project_id=p["id"])
    r = await ks.auth(user_id=user["id"], password=user["password"], scope={"domain": {"id": d["id"]}})
    assert_error(r, 401)
    assert ids((await ks.get(f"/domains/{d['id']}/users/{user['id']}/roles")).json()["roles"]) == set()
    token = await ks.token_for(user["id"], user["password"], project_id=p1["id"])
    await ks.delete(path, expect=204)
    assert_error(await ks.validate(token), 404)
    r = await ks.auth(user_id=user["id"], password=user["password"], scope={"project": {"id": p1["id"]}})
    assert_error(r, 401)


async def test_inherited_project_grant_reaches_subtree_only(ks: Keystone):
    top = await ks.make_project()
    child = (await ks.post("/projects", {"project": {"name": uniq("c"), "parent_id": top["id"]}},
                           expect=201)).json()["project"]
    user = await ks.make_user()
    reader = await ks.role_id("reader")
    await ks.put(f"/OS-INHERIT/projects/{top['id']}/users/{user['id']}/roles/{reader}/inherited_to_projects",
                 expect=204)
    await ks.token_for(user["id"], user["password"], project_id=child["id"])
    r = await ks.auth(user_id=user["id"], password=user["password"], scope={"project": {"id": top["id"]}})
    assert_error(r, 401)


async def test_role_assignments_list(ks: Keystone):
    d = await ks.make_domain()
    project = await ks.make_project(d["id"])
    user = await ks.make_user(d["id"])
    group = await ks.make_group(d["id"])
    member, reader = await ks.role_id("member"), await ks.role_id("reader")
    await ks.grant(user["id"], "member", project_id=project["id"])
    await ks.grant(group["id"], "reader", domain_id=d["id"], group=True)
    await ks.put(f"/groups/{group['id']}/users/{user['id']}", expect=204)

    r = await ks.get("/role_assignments", params={"user.id": user["id"]}, expect=200)
    items = r.json()["role_assignments"]
    assert len(items) == 1
    a = items[0]
    assert a["role"] == {"id": member} and a["user"] == {"id": user["id"]}
    assert a["scope"] == {"project": {"id": project["id"]}}
    assert a["links"]["assignment"].endswith(f"/v3/projects/{project['id']}/users/{user['id']}/roles/{member}")

    r = await ks.get("/role_assignments", params={"scope.domain.id": d["id"]}, expect=200)
    items = r.json()["role_assignments"]
    assert [(x["group"]["id"], x["role"]["id"]) for x in items] == [(group["id"], reader)]

    r = await ks.get("/role_assignments", params={"scope.project.id": project["id"], "role.id": member})
    assert [x["user"]["id"] for x in r.json()["role_assignments"]] == [user["id"]]

    # effective: groups expanded to their members and implied roles listed with their prior role
    r = await ks.get("/role_assignments", params={"user.id": user["id"], "effective": ""}, expect=200)
    eff = r.json()["role_assignments"]
    got = {(x["role"]["id"], next(iter(x["scope"])), next(iter(x["scope"].values()))["id"]) for x in eff}
    assert got == {(member, "project", project["id"]), (reader, "project", project["id"]),
                   (reader, "domain", d["id"])}
    assert all("group" not in x for x in eff)
    via_group = [x for x in eff if "domain" in x["scope"]][0]
    assert via_group["links"]["membership"].endswith(f"/groups/{group['id']}/users/{user['id']}")
    implied = [x for x in eff if "project" in x["scope"] and x["role"]["id"] == reader][0]
    assert implied["links"]["prior_role"].endswith(f"/roles/{member}")

    # include_names adds names to roles, actors and scopes
    r = await ks.get("/role_assignments", params={"user.id": user["id"], "include_names": "1"}, expect=200)
    a = r.json()["role_assignments"][0]
    assert a["role"]["name"] == "member" and a["user"]["name"] == user["name"]
    assert a["user"]["domain"] == {"id": d["id"], "name": d["name"]}
    assert a["scope"]["project"]["name"] == project["name"]
    assert a["scope"]["project"]["domain"]["id"] == d["id"]

    # effective with a group filter cannot return anything
    assert_error(await ks.get("/role_assignments", params={"group.id": group["id"], "effective": ""}), 400)


async def test_role_assignments_inherited(ks: Keystone):
    d = await ks.make_domain()
    p = await ks.make_project(d["id"])
    user = await ks.make_user(d["id"])
    member = await ks.role_id("member")
    await ks.grant(user["id"], "member", domain_id=d["id"], inherited=True)
    r = await ks.get("/role_assignments", params={"user.id": user["id"]})
    (a,) = r.json()["role_assignments"]
    assert a["scope"] == {"domain": {"id": d["id"]}, "OS-INHERIT:inherited_to": "projects"}
    assert "/OS-INHERIT/domains/" in a["links"]["assignment"]
    r = await ks.get("/role_assignments", params={"user.id": user["id"], "effective": "", "role.id": member})
    eff = r.json()["role_assignments"]
    assert [x["scope"] for x in eff] == [{"project": {"id": p["id"]}}]


async def test_role_assignments_include_subtree(ks: Keystone):
    top = await ks.make_project()
    child = (await ks.post("/projects", {"project": {"name": uniq("c"), "parent_id": top["id"]}},
                           expect=201)).json()["project"]
    user = await ks.make_user()
    await ks.grant(user["id"], "reader", project_id=child["id"])
    r = await ks.get("/role_assignments", params={"scope.project.id": top["id"], "include_subtree": "1"},
                     expect=200)
    assert user["id"] in {x["user"]["id"] for x in r.json()["role_assignments"] if "user" in x}
    assert_error(await ks.get("/role_assignments", params={"include_subtree": "1"}), 400)


# ---------------------------------------------------------------------- catalog


async def test_region_crud(ks: Keystone):
    r = await ks.post("/regions", {"region": {"description": "generated"}}, expect=201)
    gen = r.json()["region"]
    assert gen["id"] and gen["description"] == "generated" and gen["parent_region_id"] is None
    rid = uniq("Region")
    r = await ks.put(f"/regions/{rid}", {"region": {"description": "named"}}, expect=201)
    assert r.json()["region"]["id"] == rid
    assert_error(await ks.put(f"/regions/{rid}", {"region": {}}), 409)
    assert_error(await ks.post("/regions", {"region": {"id": rid}}), 409)
    child = (await ks.post("/regions", {"region": {"id": uniq("Child"), "parent_region_id": rid}},
                           expect=201)).json()["region"]
    assert child["parent_region_id"] == rid
    assert ids((await ks.get("/regions", params={"parent_region_id": rid})).json()["regions"]) == {child["id"]}
    assert (await ks.get(f"/regions/{rid}", expect=200)).json()["region"]["description"] == "named"
    r = await ks.patch(f"/regions/{rid}", {"region": {"description": "renamed"}}, expect=200)
    assert r.json()["region"]["description"] == "renamed"
    # no loops; no delete of a region with children
    assert_error(await ks.patch(f"/regions/{rid}", {"region": {"parent_region_id": child["id"]}}), 400)
    assert_error(await ks.delete(f"/regions/{rid}"), 403)
    await ks.delete(f"/regions/{child['id']}", expect=204)
    await ks.delete(f"/regions/{rid}", expect=204)
    assert_error(await ks.get(f"/regions/{rid}"), 404)
    assert_error(await ks.post("/regions", {"region": {"parent_region_id": uniq("missing")}}), 404)


async def test_service_and_endpoint_crud(ks: Keystone):
    stype = uniq("type")
    r = await ks.post("/services", {"service": {"type": stype, "name": "svc", "description": "d"}}, expect=201)
    service = r.json()["service"]
    assert service["type"] == stype and service["name"] == "svc" and service["enabled"] is True
    assert ids((await ks.get("/services", params={"type": stype})).json()["services"]) == {service["id"]}
    r = await ks.patch(f"/services/{service['id']}", {"service": {"description": "e"}}, expect=200)
    assert r.json()["service"]["description"] == "e"

    region = uniq("Reg")
    await ks.post("/regions", {"region": {"id": region}}, expect=201)
    body = {"endpoint": {"service_id": service["id"], "interface": "public", "url": "http://x.test:1/v1",
                         "region_id": region}}
    e = (await ks.post("/endpoints", body, expect=201)).json()["endpoint"]
    assert e["interface"] == "public" and e["url"] == "http://x.test:1/v1" and e["region_id"] == region
    assert e["region"] == region and e["enabled"] is True and e["service_id"] == service["id"]
    r = await ks.get("/endpoints", params={"service_id": service["id"], "interface": "public"}, expect=200)
    assert ids(r.json()["endpoints"]) == {e["id"]}
    assert (await ks.get("/endpoints", params={"service_id": service["id"], "interface": "admin"})
            ).json()["endpoints"] == []
    r = await ks.patch(f"/endpoints/{e['id']}", {"endpoint": {"url": "http://y.test/v1"}}, expect=200)
    assert r.json()["endpoint"]["url"] == "http://y.test/v1"

    # the new service shows up in a new token's catalog and in /auth/catalog
    catalog = (await ks.get("/auth/catalog", expect=200)).json()["catalog"]
    entry = [c for c in catalog if c["type"] == stype]
    assert entry and entry[0]["endpoints"][0]["url"] == "http://y.test/v1"
    # a disabled endpoint leaves the catalog
    await ks.patch(f"/endpoints/{e['id']}", {"endpoint": {"enabled": False}}, expect=200)
    catalog = (await ks.get("/auth/catalog")).json()["catalog"]
    assert [c["endpoints"] for c in catalog if c["type"] == stype] in ([[]], [])

    await ks.delete(f"/endpoints/{e['id']}", expect=204)
    assert_error(await ks.get(f"/endpoints/{e['id']}"), 404)
    await ks.delete(f"/services/{service['id']}", expect=204)
    assert_error(await ks.get(f"/services/{service['id']}"), 404)


async def test_endpoint_references(ks: Keystone):
    service = (await ks.post("/services", {"service": {"type": uniq("t")}}, expect=201)).json()["service"]
    url = "http://z.test/"
    # an unknown service or region_id is a bad request (Keystone's ValidationError)
    r = await ks.post("/endpoints", {"endpoint": {"service_id": "0" * 32, "interface": "public", "url": url}})
    assert_error(r, 400)
    missing = uniq("NoSuchRegion")
    r = await ks.post("/endpoints", {"endpoint": {"service_id": service["id"], "interface": "public", "url": url,
                                                  "region_id": missing}})
    assert_error(r, 400)
    assert_error(await ks.get(f"/regions/{missing}"), 404)
    # the legacy "region" attribute creates the region on the fly
    legacy = uniq("Legacy")
    r = await ks.post("/endpoints", {"endpoint": {"service_id": service["id"], "interface": "internal", "url": url,
                                                  "region": legacy}}, expect=201)
    assert r.json()["endpoint"]["region_id"] == legacy
    await ks.get(f"/regions/{legacy}", expect=200)
    # deleting a service deletes its endpoints
    eid = r.json()["endpoint"]["id"]
    await ks.delete(f"/services/{service['id']}", expect=204)
    assert_error(await ks.get(f"/endpoints/{eid}"), 404)


# ---------------------------------------------------------------------- application credentials


async def appcred_auth(ks: Keystone, **ref: str):
    body = {"auth": {"identity": {"methods": ["application_credential"], "application_credential": ref}}}
    return await ks.client.post("/identity/v3/auth/tokens", json=body)


async def test_application_credential_lifecycle(ks: Keystone):
    user, project, token = await ks.member()
    me = ks.as_(token)
    base = f"/users/{user['id']}/application_credentials"
    r = await me.post(base, {"application_credential": {"name": "ci", "description": "for CI"}}, expect=201)
    cred = r.json()["application_credential"]
    assert cred["secret"] and cred["project_id"] == project["id"] and cred["unrestricted"] is False
    assert cred["user_id"] == user["id"] and names(cred["roles"]) == {"member", "reader"}
    assert cred["expires_at"] is None

    got = (await me.get(f"{base}/{cred['id']}", expect=200)).json()["application_credential"]
    assert "secret" not in got and got["name"] == "ci"
    assert ids((await me.get(base, expect=200)).json()["application_credentials"]) == {cred["id"]}
    assert ids((await me.get(base, params={"name": "ci"})).json()["application_credentials"]) == {cred["id"]}
    assert_error(await me.post(base, {"application_credential": {"name": "ci"}}), 409)

    # authenticate with id + secret
    r = await appcred_auth(ks, id=cred["id"], secret=cred["secret"])
    assert r.status_code == 201, r.text
    tok = r.json()["token"]
    assert tok["methods"] == ["application_credential"]
    assert tok["project"]["id"] == project["id"] and names(tok["roles"]) == {"member", "reader"}
    assert tok["application_credential"]["id"] == cred["id"]
    assert tok["application_credential"]["restricted"] is True
    ac_token = r.headers["x-subject-token"]
    # or with name + user
    r = await appcred_auth(ks, name="ci", secret=cred["secret"], user={"id": user["id"]})
    assert r.status_code == 201
    # a wrong secret is a 401
    assert_error(await appcred_auth(ks, id=cred["id"], secret="nope"), 401)

    # a restricted application credential cannot make or delete application credentials
    r = await ks.post(base, {"application_credential": {"name": "more"}}, token=ac_token)
    assert_error(r, 403)
    assert_error(await ks.delete(f"{base}/{cred['id']}", token=ac_token), 403)

    # deleting it revokes its tokens and its secret stops working
    await me.delete(f"{base}/{cred['id']}", expect=204)
    assert_error(await ks.validate(ac_token), 404)
    assert_error(await appcred_auth(ks, id=cred["id"], secret=cred["secret"]), 401)
    assert_error(await me.get(f"{base}/{cred['id']}"), 404)


async def test_unrestricted_application_credential_can_create_another(ks: Keystone):
    user, project, token = await ks.member()
    base = f"/users/{user['id']}/application_credentials"
    r = await ks.post(base, {"application_credential": {"name": "u", "unrestricted": True}}, token=token, expect=201)
    cred = r.json()["application_credential"]
    r = await appcred_auth(ks, id=cred["id"], secret=cred["secret"])
    assert r.json()["token"]["application_credential"]["restricted"] is False
    await ks.post(base, {"application_credential": {"name": "child"}}, token=r.headers["x-subject-token"],
                  expect=201)


async def test_application_credential_roles_and_expiry(ks: Keystone):
    user, project, token = await ks.member()
    base = f"/users/{user['id']}/application_credentials"
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    r = await ks.post(base, {"application_credential": {"name": "ro", "roles": [{"name": "reader"}],
                                                        "secret": "my-own-secret", "expires_at": expires}},
                      token=token, expect=201)
    cred = r.json()["application_credential"]
    assert cred["secret"] == "my-own-secret" and names(cred["roles"]) == {"reader"}
    assert cred["expires_at"].startswith(expires)
    r = await appcred_auth(ks, id=cred["id"], secret="my-own-secret")
    tok = r.json()["token"]
    assert names(tok["roles"]) == {"reader"}
    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "")).replace(tzinfo=None)

    assert when(tok["expires_at"]) <= when(cred["expires_at"])
    # a role the user does not have is a bad request, as in Keystone
    r = await ks.post(base, {"application_credential": {"name": "adm", "roles": [{"name": "admin"}]}}, token=token)
    assert_error(r, 400)
    # an expiry in the past is refused
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    r = await ks.post(base, {"application_credential": {"name": "old", "expires_at": past}}, token=token)
    assert_error(r, 400)


async def test_application_credential_needs_a_scoped_token(ks: Keystone):
    user = await ks.make_user()
    unscoped = await ks.token_for(user["id"], user["password"])
    r = await ks.post(f"/users/{user['id']}/application_credentials", {"application_credential": {"name": "x"}},
                      token=unscoped)
    assert r.status_code in (400, 403, 404), r.text
    assert r.json()["error"]["code"] == r.status_code


async def test_removing_role_revokes_application_credential_tokens(ks: Keystone):
    user, project, token = await ks.member()
    r = await ks.post(f"/users/{user['id']}/application_credentials", {"application_credential": {"name": "r"}},
                      token=token, expect=201)
    cred = r.json()["application_credential"]
    ac_token = (await appcred_auth(ks, id=cred["id"], secret=cred["secret"])).headers["x-subject-token"]
    member = await ks.role_id("member")
    await ks.delete(f"/projects/{project['id']}/users/{user['id']}/roles/{member}", expect=204)
    assert_error(await ks.validate(ac_token), 404)
    assert_error(await appcred_auth(ks, id=cred["id"], secret=cred["secret"]), 401)


async def test_disabled_user_application_credential_fails(ks: Keystone):
    user, project, token = await ks.member()
    r = await ks.post(f"/users/{user['id']}/application_credentials", {"application_credential": {"name": "d"}},
                      token=token, expect=201)
    cred = r.json()["application_credential"]
    await ks.patch(f"/users/{user['id']}", {"user": {"enabled": False}}, expect=200)
    assert_error(await appcred_auth(ks, id=cred["id"], secret=cred["secret"]), 401)


# ---------------------------------------------------------------------- credentials


async def test_credential_crud(ks: Keystone):
    user, project, token = await ks.member()
    me = ks.as_(token)
    r = await me.post("/credentials", {"credential": {"blob": '{"a": 1}', "type": "cert", "user_id": user["id"]}},
                      expect=201)
    c = r.json()["credential"]
    assert c["blob"] == '{"a": 1}' and c["type"] == "cert" and c["user_id"] == user["id"] and c["project_id"] is None
    assert (await me.get(f"/credentials/{c['id']}", expect=200)).json()["credential"]["blob"] == '{"a": 1}'
    assert ids((await me.get("/credentials", expect=200)).json()["credentials"]) == {c["id"]}
    assert c["id"] in ids((await ks.get("/credentials", params={"user_id": user["id"]})).json()["credentials"])
    assert c["id"] in ids((await ks.get("/credentials", params={"type": "cert"})).json()["credentials"])
    r = await me.patch(f"/credentials/{c['id']}", {"credential": {"blob": "new"}}, expect=200)
    assert r.json()["credential"]["blob"] == "new"
    await me.delete(f"/credentials/{c['id']}", expect=204)
    assert_error(await ks.get(f"/credentials/{c['id']}"), 404)
    # Keystone checks policy against the credential it found: a non-admin gets 403 for a missing one
    assert_error(await me.get(f"/credentials/{c['id']}"), 403)


async def test_ec2_credential_id_is_hash_of_access(ks: Keystone):
    user, project, token = await ks.member()
    access = uniq("access")
    blob = json.dumps({"access": access, "secret": "s"})
    r = await ks.post("/credentials", {"credential": {"blob": blob, "type": "ec2", "user_id": user["id"],
                                                      "project_id": project["id"]}}, token=token, expect=201)
    assert r.json()["credential"]["id"] == hashlib.sha256(access.encode()).hexdigest()
    r = await ks.post("/credentials", {"credential": {"blob": blob, "type": "ec2", "user_id": user["id"],
                                                      "project_id": project["id"]}}, token=token)
    assert_error(r, 409)
    r = await ks.post("/credentials", {"credential": {"blob": "not json", "type": "ec2", "user_id": user["id"],
                                                      "project_id": project["id"]}}, token=token)
    assert_error(r, 400)


# ---------------------------------------------------------------------- trusts


async def make_trust(ks: Keystone, **extra):
    trustor, project, trustor_token = await ks.member()
    trustee = await ks.make_user()
    body = {"trustor_user_id": trustor["id"], "trustee_user_id": trustee["id"], "project_id": project["id"],
            "impersonation": False, "roles": [{"name": "member"}], **extra}
    r = await ks.post("/OS-TRUST/trusts", {"trust": body}, token=trustor_token, expect=201)
    return r.json()["trust"], trustor, trustee, project, trustor_token


async def trust_auth(ks: Keystone, trustee: dict, trust_id: str):
    return await ks.auth(user_id=trustee["id"], password=trustee["password"],
                         scope={"OS-TRUST:trust": {"id": trust_id}})


async def test_trust_lifecycle(ks: Keystone):
    trust, trustor, trustee, project, trustor_token = await make_trust(ks)
    assert trust["trustor_user_id"] == trustor["id"] and trust["trustee_user_id"] == trustee["id"]
    assert trust["project_id"] == project["id"] and trust["impersonation"] is False
    assert names(trust["roles"]) == {"member"} and trust["remaining_uses"] is None

    r = await trust_auth(ks, trustee, trust["id"])
    assert r.status_code == 201, r.text
    tok = r.json()["token"]
    assert tok["OS-TRUST:trust"]["id"] == trust["id"]
    assert tok["OS-TRUST:trust"]["trustor_user"]["id"] == trustor["id"]
    assert tok["OS-TRUST:trust"]["trustee_user"]["id"] == trustee["id"]
    assert tok["user"]["id"] == trustee["id"] and tok["project"]["id"] == project["id"]
    assert "member" in names(tok["roles"])
    trust_token = r.headers["x-subject-token"]

    # trustor and trustee can read it; trustee lists its trusts
    trustee_token = await ks.token_for(trustee["id"], trustee["password"])
    for tok_ in (trustor_token, trustee_token):
        await ks.get(f"/OS-TRUST/trusts/{trust['id']}", token=tok_, expect=200)
        r = await ks.get(f"/OS-TRUST/trusts/{trust['id']}/roles", token=tok_, expect=200)
        assert names(r.json()["roles"]) == {"member"}
    r = await ks.get("/OS-TRUST/trusts", params={"trustee_user_id": trustee["id"]}, token=trustee_token, expect=200)
    assert ids(r.json()["trusts"]) == {trust["id"]}
    r = await ks.get("/OS-TRUST/trusts", params={"trustor_user_id": trustor["id"]}, token=trustor_token, expect=200)
    assert ids(r.json()["trusts"]) == {trust["id"]}
    member = await ks.role_id("member")
    await ks.head(f"/OS-TRUST/trusts/{trust['id']}/roles/{member}", token=trustor_token, expect=200)

    # only the trustee may use it
    r = await trust_auth(ks, trustor, trust["id"])
    assert r.status_code in (401, 403), r.text

    # deleting the trust revokes its tokens
    await ks.delete(f"/OS-TRUST/trusts/{trust['id']}", token=trustor_token, expect=204)
    assert_error(await ks.validate(trust_token), 404)
    assert_error(await ks.get(f"/OS-TRUST/trusts/{trust['id']}"), 404)
    assert_error(await trust_auth(ks, trustee, trust["id"]), 404)


async def test_trust_remaining_uses(ks: Keystone):
    trust, trustor, trustee, project, trustor_token = await make_trust(ks, remaining_uses=2)
    assert trust["remaining_uses"] == 2
    r = await trust_auth(ks, trustee, trust["id"])
    assert r.status_code == 201
    got = (await ks.get(f"/OS-TRUST/trusts/{trust['id']}", token=trustor_token)).json()["trust"]
    assert got["remaining_uses"] == 1
    assert (await trust_auth(ks, trustee, trust["id"])).status_code == 201
    # used up: Keystone no longer finds it
    assert_error(await trust_auth(ks, trustee, trust["id"]), 404)


async def test_trust_impersonation(ks: Keystone):
    trust, trustor, trustee, project, _ = await make_trust(ks, impersonation=True)
    r = await trust_auth(ks, trustee, trust["id"])
    assert r.status_code == 201
    tok = r.json()["token"]
    assert tok["user"]["id"] == trustor["id"]
    assert tok["OS-TRUST:trust"]["impersonation"] is True


async def test_trust_rules(ks: Keystone):
    trustor, project, trustor_token = await ks.member()
    trustee = await ks.make_user()
    base = {"trustor_user_id": trustor["id"], "trustee_user_id": trustee["id"], "project_id": project["id"],
            "impersonation": False}
    # a role the trustor does not have
    r = await ks.post("/OS-TRUST/trusts", {"trust": {**base, "roles": [{"name": "admin"}]}}, token=trustor_token)
    assert_error(r, 403)
    # a trust for someone else as trustor
    other = await ks.make_user()
    r = await ks.post("/OS-TRUST/trusts", {"trust": {**base, "trustor_user_id": other["id"],
                                                     "roles": [{"name": "member"}]}}, token=trustor_token)
    assert_error(r, 403)
    # a trust token cannot create application credentials
    r = await ks.post("/OS-TRUST/trusts", {"trust": {**base, "roles": [{"name": "member"}]}}, token=trustor_token,
                      expect=201)
    trust_token = (await trust_auth(ks, trustee, r.json()["trust"]["id"])).headers["x-subject-token"]
    r = await ks.post(f"/users/{trustee['id']}/application_credentials", {"application_credential": {"name": "x"}},
                      token=trust_token)
    assert_error(r, 403)
    # the trustor losing the role makes the trust token invalid
    member = await ks.role_id("member")
    await ks.delete(f"/projects/{project['id']}/users/{trustor['id']}/roles/{member}", expect=204)
    assert_error(await ks.validate(trust_token), 404)


# ---------------------------------------------------------------------- unified limits


async def test_registered_limits_and_limits(ks: Keystone):
    service = (await ks.post("/services", {"service": {"type": uniq("t")}}, expect=201)).json()["service"]
    rname = uniq("res")
    r = await ks.post("/registered_limits", {"registered_limits": [
        {"service_id": service["id"], "resource_name": rname, "default_limit": 10, "description": "d"}]}, expect=201)
    (reg,) = r.json()["registered_limits"]
    assert reg["default_limit"] == 10 and reg["resource_name"] == rname and reg["region_id"] is None
    assert (await ks.get(f"/registered_limits/{reg['id']}", expect=200)).json()["registered_limit"]["id"] == reg["id"]
    r = await ks.get("/registered_limits", params={"service_id": service["id"]}, expect=200)
    assert ids(r.json()["registered_limits"]) == {reg["id"]}
    r = await ks.patch(f"/registered_limits/{reg['id']}", {"registered_limit": {"default_limit": 20}}, expect=200)
    assert r.json()["registered_limit"]["default_limit"] == 20
    dup = {"service_id": service["id"], "resource_name": rname, "default_limit": 1}
    assert_error(await ks.post("/registered_limits", {"registered_limits": [dup]}), 409)

    user, project, token = await ks.member()
    r = await ks.post("/limits", {"limits": [{"service_id": service["id"], "project_id": project["id"],
                                              "resource_name": rname, "resource_limit": 5}]}, expect=201)
    (lim,) = r.json()["limits"]
    assert lim["project_id"] == project["id"] and lim["resource_limit"] == 5 and lim["domain_id"] is None
    assert ids((await ks.get("/limits", params={"project_id": project["id"]})).json()["limits"]) == {lim["id"]}
    r = await ks.patch(f"/limits/{lim['id']}", {"limit": {"resource_limit": 7}}, expect=200)
    assert r.json()["limit"]["resource_limit"] == 7
    # the project's member sees its own limit, not others
    assert ids((await ks.get("/limits", token=token, expect=200)).json()["limits"]) == {lim["id"]}
    await ks.get(f"/limits/{lim['id']}", token=token, expect=200)
    _, other_project, other_token = await ks.member()
    assert (await ks.get("/limits", token=other_token)).json()["limits"] == []
    assert_error(await ks.get(f"/limits/{lim['id']}", token=other_token), 403)

    assert_error(await ks.post("/limits", {"limits": [{"service_id": service["id"], "project_id": project["id"],
                                                       "resource_name": rname, "resource_limit": 5}]}), 409)
    # a limit needs a registered limit
    r = await ks.post("/limits", {"limits": [{"service_id": service["id"], "project_id": project["id"],
                                              "resource_name": uniq("unregistered"), "resource_limit": 5}]})
    assert_error(r, 403)
    # a registered limit in use cannot be deleted
    assert_error(await ks.delete(f"/registered_limits/{reg['id']}"), 403)
    await ks.delete(f"/limits/{lim['id']}", expect=204)
    assert_error(await ks.get(f"/limits/{lim['id']}"), 404)
    await ks.delete(f"/registered_limits/{reg['id']}", expect=204)
    assert_error(await ks.get(f"/registered_limits/{reg['id']}"), 404)

    model = (await ks.get("/limits/model", expect=200)).json()["model"]
    assert model["name"] == "flat"


async def test_limits_with_unknown_references_are_bad_requests(ks: Keystone):
    nope = "0" * 32
    r = await ks.post("/registered_limits", {"registered_limits": [
        {"service_id": nope, "resource_name": "x", "default_limit": 1}]})
    assert_error(r, 400)
    service = (await ks.post("/services", {"service": {"type": uniq("t")}}, expect=201)).json()["service"]
    r = await ks.post("/registered_limits", {"registered_limits": [
        {"service_id": service["id"], "region_id": uniq("noregion"), "resource_name": "x", "default_limit": 1}]})
    assert_error(r, 400)
    await ks.post("/registered_limits", {"registered_limits": [
        {"service_id": service["id"], "resource_name": "x", "default_limit": 1}]}, expect=201)
    r = await ks.post("/limits", {"limits": [{"service_id": service["id"], "project_id": nope,
                                              "resource_name": "x", "resource_limit": 1}]})
    assert_error(r, 400)
    # nothing was half-written by a failed batch
    r = await ks.post("/registered_limits", {"registered_limits": [
        {"service_id": service["id"], "resource_name": "y", "default_limit": 1},
        {"service_id": nope, "resource_name": "z", "default_limit": 1}]})
    assert_error(r, 400)
    r = await ks.get("/registered_limits", params={"service_id": service["id"]})
    assert {x["resource_name"] for x in r.json()["registered_limits"]} == {"x"}


# ---------------------------------------------------------------------- tokens


async def test_token_issue_validate_check_revoke(ks: Keystone):
    r = await ks.auth(name="demo", password=DEMO_PASSWORD, scope={"project": {"name": "demo",
                                                                              "domain": {"id": "default"}}})
    assert r.status_code == 201
    token = r.headers["x-subject-token"]
    body = r.json()["token"]
    assert body["methods"] == ["password"] and body["user"]["name"] == "demo"
    assert body["user"]["domain"] == {"id": "default", "name": "Default"}
    assert body["project"]["name"] == "demo" and body["project"]["domain"]["id"] == "default"
    assert names(body["roles"]) == {"member", "reader"}
    assert body["catalog"] and body["audit_ids"] and body["is_domain"] is False
    issued = datetime.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires > issued and abs((issued - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) < 60

    r = await ks.validate(token, expect=200)
    assert r.headers["x-subject-token"] == token
    assert r.json()["token"]["audit_ids"] == body["audit_ids"]
    await ks.head("/auth/tokens", headers={"X-Subject-Token": token}, expect=200)
    # a user may validate its own token with itself
    await ks.validate(token, token=token, expect=200)

    await ks.delete("/auth/tokens", headers={"X-Subject-Token": token}, expect=204)
    assert_error(await ks.validate(token), 404)
    assert (await ks.head("/auth/tokens", headers={"X-Subject-Token": token})).status_code == 404
    assert_error(await ks.delete("/auth/tokens", headers={"X-Subject-Token": token}), 404)
    # and as X-Auth-Token it is a 401
    assert_error(await ks.get("/auth/projects", token=token), 401)
    assert_error(await ks.validate(ks.token, token=token), 401)


async def test_token_errors(ks: Keystone):
    assert_error(await ks.validate("garbage"), 404)
    assert_error(await ks.get("/auth/tokens"), 404)
    assert_error(await ks.get("/users", token=None), 401)
    assert_error(await ks.get("/users", token="garbage"), 401)
    r = await ks.get("/users", token=None)
    assert "www-authenticate" in {k.lower() for k in r.headers} or r.status_code == 401


async def test_user_can_revoke_own_token_not_others(ks: Keystone):
    user, project, token = await ks.member()
    other, _, other_token = await ks.member()
    assert_error(await ks.validate(other_token, token=token), 403)
    assert_error(await ks.delete("/auth/tokens", token=token, headers={"X-Subject-Token": other_token}), 403)
    await ks.delete("/auth/tokens", token=token, headers={"X-Subject-Token": token}, expect=204)
    await ks.validate(other_token, expect=200)


async def test_nocatalog(ks: Keystone):
    r = await ks.auth(name="admin", password=ADMIN_PASSWORD, nocatalog=True,
                      scope={"project": {"name": "admin", "domain": {"id": "default"}}})
    assert r.status_code == 201 and "catalog" not in r.json()["token"] and r.json()["token"]["roles"]
    token = r.headers["x-subject-token"]
    assert "catalog" in (await ks.validate(token)).json()["token"]
    assert "catalog" not in (await ks.validate(token, params={"nocatalog": ""})).json()["token"]


async def test_unscoped_token(ks: Keystone):
    user = await ks.make_user()
    r = await ks.auth(user_id=user["id"], password=user["password"])
    assert r.status_code == 201
    tok = r.json()["token"]
    for key in ("project", "domain", "system", "roles", "catalog"):
        assert key not in tok
    token = r.headers["x-subject-token"]
    assert_error(await ks.get("/auth/catalog", token=token), 403)
    assert (await ks.get("/auth/projects", token=token, expect=200)).json()["projects"] == []


async def test_rescope_unscoped_token(ks: Keystone):
    user, project, _ = await ks.member()
    unscoped = await ks.token_for(user["id"], user["password"])
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                     "scope": {"project": {"id": project["id"]}}}}
    r = await ks.client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    tok = r.json()["token"]
    assert tok["project"]["id"] == project["id"] and "token" in tok["methods"]
    unscoped_audit = (await ks.validate(unscoped)).json()["token"]["audit_ids"][0]
    assert tok["audit_ids"][-1] == unscoped_audit
    scoped = r.headers["x-subject-token"]
    # revoking the original token revokes the tokens rescoped from it (Keystone's cascade default)
    await ks.delete("/auth/tokens", headers={"X-Subject-Token": unscoped}, expect=204)
    assert_error(await ks.validate(scoped), 404)


async def test_revoke_without_cascade_keeps_rescoped_tokens(ks: Keystone):
    user, project, _ = await ks.member()
    unscoped = await ks.token_for(user["id"], user["password"])
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                     "scope": {"project": {"id": project["id"]}}}}
    scoped = (await ks.client.post("/identity/v3/auth/tokens", json=body)).headers["x-subject-token"]
    await ks.delete("/auth/tokens", headers={"X-Subject-Token": unscoped}, params={"cascade": "false"}, expect=204)
    assert_error(await ks.validate(unscoped), 404)
    await ks.validate(scoped, expect=200)


async def test_project_scope_by_name_needs_domain(ks: Keystone):
    r = await ks.auth(name="demo", password=DEMO_PASSWORD, scope={"project": {"name": "demo"}})
    assert_error(r, 400)
    r = await ks.auth(name="demo", password=DEMO_PASSWORD, scope={"project": {"name": "demo",
                                                                              "domain": {"name": "Default"}}})
    assert r.status_code == 201
    # a project the user has no role on
    r = await ks.auth(name="demo", password=DEMO_PASSWORD, scope={"project": {"name": "admin",
                                                                              "domain": {"id": "default"}}})
    assert_error(r, 401)


async def test_domain_and_system_scoped_admin_tokens(ks: Keystone):
    r = await ks.auth(name="admin", password=ADMIN_PASSWORD, scope={"domain": {"id": "default"}})
    assert r.status_code == 201
    assert r.json()["token"]["domain"] == {"id": "default", "name": "Default"}
    r = await ks.auth(name="admin", password=ADMIN_PASSWORD, scope={"system": {"all": True}})
    assert r.status_code == 201
    tok = r.json()["token"]
    assert tok["system"] == {"all": True} and "admin" in names(tok["roles"]) and tok["catalog"]
    assert "project" not in tok and "domain" not in tok


async def test_auth_projects_domains_system_catalog(ks: Keystone):
    d = await ks.make_domain()
    user, project, token = await ks.member(domain_id=d["id"])
    await ks.grant(user["id"], "reader", domain_id=d["id"])
    disabled = await ks.make_project(d["id"])
    await ks.grant(user["id"], "member", project_id=disabled["id"])
    await ks.patch(f"/projects/{disabled['id']}", {"project": {"enabled": False}}, expect=200)

    r = await ks.get("/auth/projects", token=token, expect=200)
    assert ids(r.json()["projects"]) == {project["id"]}
    r = await ks.get("/auth/domains", token=token, expect=200)
    assert ids(r.json()["domains"]) == {d["id"]}
    r = await ks.get("/auth/system", token=token, expect=200)
    assert r.json()["system"] == []
    r = await ks.get("/auth/system", expect=200)
    assert r.json()["system"] == [{"all": True}]
    r = await ks.get("/auth/catalog", token=token, expect=200)
    cat = r.json()["catalog"]
    ident = [c for c in cat if c["type"] == "identity"]
    assert ident and {e["interface"] for e in ident[0]["endpoints"]} == {"public", "internal", "admin"}
    assert_error(await ks.get("/auth/catalog", token=None), 401)


async def test_wrong_password_and_unknown_user_look_the_same(ks: Keystone):
    user = await ks.make_user()
    a = await ks.auth(user_id=user["id"], password="wrong")
    b = await ks.auth(user_id="0" * 32, password="wrong")
    c = await ks.auth(name=uniq("nobody"), password="wrong")
    for r in (a, b, c):
        assert_error(r, 401)
    assert a.json() == b.json() == c.json()


async def test_token_revocation_survives_another_timezone(ks: Keystone):
    """Token times are UTC whatever the process's local time zone is."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        user, project, token = await ks.member()
        tok = (await ks.validate(token, expect=200)).json()["token"]
        issued = datetime.strptime(tok["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert abs((issued - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) < 60
        await ks.patch(f"/users/{user['id']}", {"user": {"enabled": False}}, expect=200)
        assert_error(await ks.validate(token), 404)
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.parametrize("scope", [
    {"project": {"id": "0" * 32}},
    {"domain": {"id": "0" * 32}},
])
async def test_scope_to_unknown_target_is_401(ks: Keystone, scope):
    assert_error(await ks.auth(name="admin", password=ADMIN_PASSWORD, scope=scope), 401)


async def test_deleting_project_user_or_role_revokes_tokens(ks: Keystone):
    user, project, token = await ks.member()
    await ks.delete(f"/projects/{project['id']}", expect=204)
    assert_error(await ks.validate(token), 404)

    user, project, token = await ks.member()
    await ks.delete(f"/users/{user['id']}", expect=204)
    assert_error(await ks.validate(token), 404)
    assert_error(await ks.get("/auth/projects", token=token), 401)

    role = await ks.make_role()
    user, project, _ = await ks.member(role=role["id"])
    await ks.grant(user["id"], "reader", project_id=project["id"])
    token = await ks.token_for(user["id"], user["password"], project_id=project["id"])
    other, _, other_token = await ks.member()
    await ks.delete(f"/roles/{role['id']}", expect=204)
    # as in Keystone, roles are looked up at validation: the deleted role is gone from the token,
    # and the token lives on with the roles the user still has
    assert names((await ks.validate(token, expect=200)).json()["token"]["roles"]) == {"reader"}
    await ks.validate(other_token, expect=200)
    await ks.token_for(user["id"], user["password"], project_id=project["id"])
    # with no role left at all, the token is gone
    reader = await ks.role_id("reader")
    await ks.delete(f"/projects/{project['id']}/users/{user['id']}/roles/{reader}", expect=204)
    assert_error(await ks.validate(token), 404)


async def test_list_users_by_domain(ks: Keystone):
    d = await ks.make_domain()
    u1 = await ks.make_user(d["id"])
    u2 = await ks.make_user(d["id"])
    await ks.make_user()
    r = await ks.get("/users", params={"domain_id": d["id"]}, expect=200)
    assert ids(r.json()["users"]) == {u1["id"], u2["id"]}
    r = await ks.get("/groups", params={"domain_id": d["id"]}, expect=200)
    assert r.json()["groups"] == []
    r = await ks.get("/projects", params={"domain_id": d["id"]}, expect=200)
    assert r.json()["projects"] == []


async def test_token_lifetime_and_rescope_between_projects(ks: Keystone):
    user, p1, token = await ks.member()
    p2 = await ks.make_project()
    await ks.grant(user["id"], "reader", project_id=p2["id"])
    tok = (await ks.validate(token)).json()["token"]
    issued = datetime.strptime(tok["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(tok["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert timedelta(minutes=59) < expires - issued <= timedelta(hours=1, seconds=1)
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                     "scope": {"project": {"id": p2["id"]}}}}
    r = await ks.client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    new = r.json()["token"]
    assert new["project"]["id"] == p2["id"] and names(new["roles"]) == {"reader"}
    # a rescoped token never outlives the one it came from
    assert new["expires_at"] == tok["expires_at"]


async def test_application_credential_cannot_choose_a_scope(ks: Keystone):
    user, project, token = await ks.member()
    cred = (await ks.post(f"/users/{user['id']}/application_credentials",
                          {"application_credential": {"name": "s"}}, token=token, expect=201)
            ).json()["application_credential"]
    other = await ks.make_project()
    body = {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": cred["id"], "secret": cred["secret"]}}, "scope": {"project": {"id": other["id"]}}}}
    r = await ks.client.post("/identity/v3/auth/tokens", json=body)
    assert_error(r, 401)
