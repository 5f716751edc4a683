"""Bad requests to the identity API: Keystone's status codes and fault bodies, and nothing
half-written behind a refused request."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Keystone, assert_error, uniq
from tests.conftest import ADMIN_PASSWORD

# (collection path, envelope key, a valid body for it given a unique name)
NAMED = [
    ("/domains", "domain", lambda n: {"name": n}),
    ("/projects", "project", lambda n: {"name": n}),
    ("/users", "user", lambda n: {"name": n}),
    ("/groups", "group", lambda n: {"name": n}),
    ("/roles", "role", lambda n: {"name": n}),
]


async def count_named(ks: Keystone, path: str, key: str, name: Any) -> int:
    if not isinstance(name, str):
        return 0
    r = await ks.get(path, params={"name": name}, expect=200)
    return len(r.json()[key + "s"])


# ---------------------------------------------------------------------- malformed bodies

POST_ROUTES = ["/domains", "/projects", "/users", "/groups", "/roles", "/regions", "/services", "/endpoints",
               "/credentials", "/OS-TRUST/trusts", "/registered_limits", "/limits", "/auth/tokens"]


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize("raw", [b"{not json", b"", b"[]", b"null", b"\"a string\"", b"{}", b"\xff\xfe"])
async def test_malformed_post_bodies(ks: Keystone, path: str, raw: bytes):
    r = await ks.request("POST", path, content=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 400)


@pytest.mark.parametrize("path", ["/domains/default", "/projects/{p}", "/users/{u}", "/regions/RegionOne"])
@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1]", b"{}"])
async def test_malformed_patch_bodies(ks: Keystone, path: str, raw: bytes):
    p = await ks.make_project()
    u = await ks.make_user()
    r = await ks.request("PATCH", path.format(p=p["id"], u=u["id"]), content=raw,
                         headers={"Content-Type": "application/json"})
    assert_error(r, 400)


async def test_malformed_put_bodies(ks: Keystone):
    p = await ks.make_project(tags=["keep"])
    for raw in (b"{", b"", b'{"tags": "x"}', b'{"tags": [1]}', b'{"tags": ["a/b"]}', b'{"tag": []}'):
        r = await ks.request("PUT", f"/projects/{p['id']}/tags", content=raw,
                             headers={"Content-Type": "application/json"})
        assert_error(r, 400)
    assert (await ks.get(f"/projects/{p['id']}/tags")).json()["tags"] == ["keep"]
    assert_error(await ks.put(f"/projects/{p['id']}/tags", {"tags": [f"t{i}" for i in range(81)]}), 400)
    assert_error(await ks.put(f"/regions/{uniq('R')}", {"region": {"bogus": 1}, "x": 1}), 400)


# ---------------------------------------------------------------------- wrong types, missing and over-long fields


BAD_FIELDS: list[tuple[str, Any]] = [
    ("enabled", "yes"),
    ("enabled", 1),
    ("enabled", None),
    ("name", 42),
    ("name", None),
    ("name", ""),
    ("name", "   "),
    ("name", ["a"]),
    ("name", {"a": 1}),
    ("name", "x" * 256),
    ("description", 7),
    ("domain_id", 5),
]


NOT_A_FIELD_OF = {"enabled": ("group", "role"), "domain_id": ("domain",)}
WRONG_TYPES = [
    (path, key, body, field, value)
    for path, key, body in NAMED
    for field, value in BAD_FIELDS
    if key not in NOT_A_FIELD_OF.get(field, ())
]


@pytest.mark.parametrize("path,key,body,field,value", WRONG_TYPES,
                         ids=[f"{k}.{f}={str(v)[:12]!r}" for _, k, _, f, v in WRONG_TYPES])
async def test_wrong_types_are_400_and_nothing_is_written(ks: Keystone, path, key, body, field, value):
    name = uniq(key)
    sent = {**body(name), field: value}
    r = await ks.post(path, {key: sent})
    err = assert_error(r, 400)
    assert field in err["message"], err["message"]
    assert await count_named(ks, path, key, name) == 0
    if field == "name" and isinstance(value, str) and value:
        assert await count_named(ks, path, key, value) == 0


async def test_project_name_is_at_most_64(ks: Keystone):
    assert_error(await ks.post("/projects", {"project": {"name": "p" * 65}}), 400)
    assert await count_named(ks, "/projects", "project", "p" * 65) == 0
    r = await ks.post("/projects", {"project": {"name": uniq("p").ljust(64, "x")}}, expect=201)
    p = r.json()["project"]
    assert len(p["name"]) == 64
    assert_error(await ks.patch(f"/projects/{p['id']}", {"project": {"name": "q" * 65}}), 400)
    assert (await ks.get(f"/projects/{p['id']}")).json()["project"]["name"] == p["name"]


@pytest.mark.parametrize("path,key,body", NAMED, ids=[x[1] for x in NAMED])
async def test_missing_name_and_wrong_envelope(ks: Keystone, path, key, body):
    assert_error(await ks.post(path, {key: {"description": "no name"}}), 400)
    assert_error(await ks.post(path, {key: "not an object"}), 400)
    assert_error(await ks.post(path, {key: None}), 400)
    name = uniq(key)
    # the wrong envelope, or an extra top-level member, is refused
    assert_error(await ks.post(path, {"thing": body(name)}), 400)
    assert_error(await ks.post(path, {key: body(name), "extra": 1}), 400)
    assert await count_named(ks, path, key, name) == 0


async def test_patch_with_wrong_types_changes_nothing(ks: Keystone):
    u = await ks.make_user(description="before")
    for bad in ({"enabled": "no"}, {"name": 1}, {"name": ""}, {"name": "x" * 256}, {"password": 12},
                {"options": {"lock_password": "yes"}}, {"description": 5}):
        assert_error(await ks.patch(f"/users/{u['id']}", {"user": {"email": "after@example.org", **bad}}), 400)
    got = (await ks.get(f"/users/{u['id']}")).json()["user"]
    assert got["description"] == "before" and got["enabled"] is True and got["name"] == u["name"]
    assert "email" not in got
    await ks.token_for(u["id"], u["password"])


async def test_catalog_bad_input(ks: Keystone):
    service = (await ks.post("/services", {"service": {"type": uniq("t")}}, expect=201)).json()["service"]
    assert_error(await ks.post("/services", {"service": {"name": "no type"}}), 400)
    assert_error(await ks.post("/services", {"service": {"type": 3}}), 400)
    assert_error(await ks.post("/services", {"service": {"type": "x", "enabled": "true"}}), 400)
    good = {"service_id": service["id"], "interface": "public", "url": "http://ok.test/"}
    for bad in ({"interface": "private"}, {"interface": None}, {"url": "not a url"}, {"url": 5}, {"url": ""},
                {"enabled": "false"}, {"service_id": None}):
        assert_error(await ks.post("/endpoints", {"endpoint": {**good, **bad}}), 400)
    for missing in ("service_id", "interface", "url"):
        assert_error(await ks.post("/endpoints", {"endpoint": {k: v for k, v in good.items() if k != missing}}), 400)
    r = await ks.get("/endpoints", params={"service_id": service["id"]})
    assert r.json()["endpoints"] == []
    assert_error(await ks.post("/regions", {"region": {"description": 5}}), 400)
    assert_error(await ks.post("/regions", {"region": {"id": 5}}), 400)
    rid = uniq("R")
    assert_error(await ks.put(f"/regions/{rid}", {"region": {"id": "another"}}), 400)
    assert_error(await ks.get(f"/regions/{rid}"), 404)


async def test_limits_bad_input(ks: Keystone):
    service = (await ks.post("/services", {"service": {"type": uniq("t")}}, expect=201)).json()["service"]
    good = {"service_id": service["id"], "resource_name": uniq("r"), "default_limit": 1}
    for bad in ({"default_limit": "1"}, {"default_limit": -2}, {"default_limit": 1.5}, {"default_limit": 2 ** 40},
                {"resource_name": ""}, {"resource_name": "x" * 256}, {"unknown": 1}):
        assert_error(await ks.post("/registered_limits", {"registered_limits": [{**good, **bad}]}), 400)
    assert_error(await ks.post("/registered_limits", {"registered_limits": []}), 400)
    assert_error(await ks.post("/registered_limits", {"registered_limits": good}), 400)
    assert (await ks.get("/registered_limits", params={"service_id": service["id"]})).json()["registered_limits"] == []
    await ks.post("/registered_limits", {"registered_limits": [good]}, expect=201)
    p = await ks.make_project()
    lim = {"service_id": service["id"], "project_id": p["id"], "resource_name": good["resource_name"],
           "resource_limit": 1}
    for bad in ({"resource_limit": "1"}, {"resource_limit": None}, {"project_id": 5}, {"extra": True}):
        assert_error(await ks.post("/limits", {"limits": [{**lim, **bad}]}), 400)
    # both a project and a domain, or neither
    assert_error(await ks.post("/limits", {"limits": [{**lim, "domain_id": "default"}]}), 400)
    assert_error(await ks.post("/limits", {"limits": [{k: v for k, v in lim.items() if k != "project_id"}]}), 400)
    assert (await ks.get("/limits", params={"project_id": p["id"]})).json()["limits"] == []


async def test_trust_and_app_cred_bad_input(ks: Keystone):
    user, project, token = await ks.member()
    trustee = await ks.make_user()
    good = {"trustor_user_id": user["id"], "trustee_user_id": trustee["id"], "project_id": project["id"],
            "impersonation": False, "roles": [{"name": "member"}]}
    for bad in ({"impersonation": "no"}, {"remaining_uses": 0}, {"remaining_uses": "1"}, {"expires_at": "someday"},
                {"roles": "member"}, {"trustee_user_id": None}):
        assert_error(await ks.post("/OS-TRUST/trusts", {"trust": {**good, **bad}}, token=token), 400)
    assert_error(await ks.post("/OS-TRUST/trusts", {"trust": {k: v for k, v in good.items()
                                                             if k != "impersonation"}}, token=token), 400)
    r = await ks.get("/OS-TRUST/trusts", params={"trustor_user_id": user["id"]}, token=token)
    assert r.json()["trusts"] == []
    # an unknown trustee is a 404
    assert_error(await ks.post("/OS-TRUST/trusts", {"trust": {**good, "trustee_user_id": "0" * 32}}, token=token), 404)

    base = f"/users/{user['id']}/application_credentials"
    for bad in ({"name": 5}, {"name": ""}, {"unrestricted": "yes"}, {"expires_at": "tomorrow"},
                {"roles": [{"name": 5}]}, {"secret": ""}):
        assert_error(await ks.post(base, {"application_credential": {"name": "x", **bad}}, token=token), 400)
    assert_error(await ks.post(base, {"application_credential": {}}, token=token), 400)
    assert (await ks.get(base, token=token)).json()["application_credentials"] == []


async def test_credential_bad_input(ks: Keystone):
    user, project, token = await ks.member()
    good = {"user_id": user["id"], "type": "cert", "blob": "b"}
    for bad in ({"blob": 5}, {"blob": ""}, {"type": None}, {"user_id": 5}):
        assert_error(await ks.post("/credentials", {"credential": {**good, **bad}}, token=token), 400)
    for missing in ("blob", "type", "user_id"):
        body = {k: v for k, v in good.items() if k != missing}
        r = await ks.post("/credentials", {"credential": body}, token=token)
        assert r.status_code in (400, 403), r.text
        assert_error(r, r.status_code)
    # an ec2 credential needs a project
    r = await ks.post("/credentials", {"credential": {**good, "type": "ec2", "blob": '{"access": "a"}'}}, token=token)
    assert_error(r, 400)
    assert (await ks.get("/credentials", token=token)).json()["credentials"] == []


async def test_password_change_bad_input(ks: Keystone):
    user = await ks.make_user()
    path = f"/users/{user['id']}/password"
    for body in ({"user": {"password": "new"}}, {"user": {"original_password": user["password"]}},
                 {"user": {"password": 5, "original_password": user["password"]}}, {"password": "x"}, {}):
        assert_error(await ks.post(path, body), 400)
    await ks.token_for(user["id"], user["password"])
    r = await ks.post(f"/users/{'0' * 32}/password", {"user": {"password": "a", "original_password": "b"}})
    assert r.status_code in (401, 404), r.text
    assert_error(r, r.status_code)


# ---------------------------------------------------------------------- authentication input


def password_auth(user: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, **extra}}


@pytest.mark.parametrize("body", [
    {"auth": {}},
    {"auth": {"identity": {}}},
    {"auth": {"identity": {"methods": "password"}}},
    {"auth": {"identity": {"methods": []}}},
    {"auth": {"identity": {"methods": ["password"]}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin"}}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}},
    {"auth": {"identity": {"methods": ["token"], "token": {}}}},
    {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "x"}}}},
    {"auth": "x"},
    {"notauth": {}},
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"project": {"name": "admin"}}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"project": {"id": "x"}, "domain": {"id": "default"}}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"system": {"all": True}, "unscoped": {}}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"galaxy": {}}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}, scope=5),
    # references of the wrong shape (these once crashed the server)
    password_auth({"name": "admin", "domain": True, "password": ADMIN_PASSWORD}),
    password_auth({"name": "admin", "domain": ["default"], "password": ADMIN_PASSWORD}),
    password_auth({"name": {"x": 1}, "domain": {"id": "default"}, "password": ADMIN_PASSWORD}),
    password_auth({"id": ["x"], "password": ADMIN_PASSWORD}),
    password_auth({"name": "admin", "domain": {"id": 7}, "password": ADMIN_PASSWORD}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"project": True}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"project": {"name": "admin", "domain": [1]}}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"domain": "default"}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"OS-TRUST:trust": 5}),
    password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                  scope={"system": [True]}),
    {"auth": {"identity": {"methods": ["application_credential"],
                           "application_credential": {"id": {"a": 1}, "secret": "s"}}}},
    {"auth": {"identity": {"methods": ["application_credential"],
                           "application_credential": {"name": "n", "secret": "s", "user": {"id": 5}}}}},
])
async def test_bad_auth_bodies_are_400(ks: Keystone, body):
    r = await ks.client.post("/identity/v3/auth/tokens", json=body)
    assert_error(r, 400)


async def test_old_keystoneauth_unscoped_scope(ks: Keystone):
    body = password_auth({"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
                         scope={"unscoped": {}})
    r = await ks.client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    assert "project" not in r.json()["token"] and "roles" not in r.json()["token"]


async def test_unsupported_auth_method_is_401(ks: Keystone):
    r = await ks.client.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["kerberos"]}}})
    assert_error(r, 401)


async def test_wrong_password_and_unknown_user_give_the_same_401(ks: Keystone):
    user = await ks.make_user()
    answers = [
        await ks.auth(user_id=user["id"], password="wrong"),
        await ks.auth(user_id="0" * 32, password="wrong"),
        await ks.auth(name=user["name"], password="wrong"),
        await ks.auth(name=uniq("ghost"), password="wrong"),
        await ks.auth(name=user["name"], password=user["password"], domain_id="0" * 32),
    ]
    for r in answers:
        assert_error(r, 401)
        assert "x-subject-token" not in r.headers
    assert len({r.text for r in answers}) == 1, [r.text for r in answers]
    # a disabled user's correct password looks the same as a wrong one
    await ks.patch(f"/users/{user['id']}", {"user": {"enabled": False}}, expect=200)
    r = await ks.auth(user_id=user["id"], password=user["password"])
    assert r.text == answers[0].text


# ---------------------------------------------------------------------- conflicts and unknown ids


@pytest.mark.parametrize("path,key,body", NAMED, ids=[x[1] for x in NAMED])
async def test_duplicate_names_conflict(ks: Keystone, path, key, body):
    name = uniq(key)
    await ks.post(path, {key: body(name)}, expect=201)
    assert_error(await ks.post(path, {key: body(name)}), 409)
    assert await count_named(ks, path, key, name) == 1


async def test_other_conflicts(ks: Keystone):
    region = uniq("R")
    await ks.post("/regions", {"region": {"id": region}}, expect=201)
    assert_error(await ks.post("/regions", {"region": {"id": region}}), 409)
    user, project, token = await ks.member()
    base = f"/users/{user['id']}/application_credentials"
    await ks.post(base, {"application_credential": {"name": "dup"}}, token=token, expect=201)
    assert_error(await ks.post(base, {"application_credential": {"name": "dup"}}, token=token), 409)
    assert len((await ks.get(base, token=token)).json()["application_credentials"]) == 1


NOPE = "f" * 32
UNKNOWN = [
    ("GET", f"/domains/{NOPE}"), ("PATCH", f"/domains/{NOPE}"), ("DELETE", f"/domains/{NOPE}"),
    ("GET", f"/projects/{NOPE}"), ("PATCH", f"/projects/{NOPE}"), ("DELETE", f"/projects/{NOPE}"),
    ("GET", f"/projects/{NOPE}/tags"), ("PUT", f"/projects/{NOPE}/tags/x"),
    ("GET", f"/users/{NOPE}"), ("PATCH", f"/users/{NOPE}"), ("DELETE", f"/users/{NOPE}"),
    ("GET", f"/users/{NOPE}/groups"), ("GET", f"/users/{NOPE}/projects"),
    ("GET", f"/groups/{NOPE}"), ("PATCH", f"/groups/{NOPE}"), ("DELETE", f"/groups/{NOPE}"),
    ("GET", f"/groups/{NOPE}/users"),
    ("GET", f"/roles/{NOPE}"), ("PATCH", f"/roles/{NOPE}"), ("DELETE", f"/roles/{NOPE}"),
    ("GET", f"/roles/{NOPE}/implies"),
    ("GET", f"/regions/{NOPE}"), ("PATCH", f"/regions/{NOPE}"), ("DELETE", f"/regions/{NOPE}"),
    ("GET", f"/services/{NOPE}"), ("PATCH", f"/services/{NOPE}"), ("DELETE", f"/services/{NOPE}"),
    ("GET", f"/endpoints/{NOPE}"), ("PATCH", f"/endpoints/{NOPE}"), ("DELETE", f"/endpoints/{NOPE}"),
    ("GET", f"/credentials/{NOPE}"), ("PATCH", f"/credentials/{NOPE}"), ("DELETE", f"/credentials/{NOPE}"),
    ("GET", f"/OS-TRUST/trusts/{NOPE}"), ("DELETE", f"/OS-TRUST/trusts/{NOPE}"),
    ("GET", f"/OS-TRUST/trusts/{NOPE}/roles"),
    ("GET", f"/registered_limits/{NOPE}"), ("PATCH", f"/registered_limits/{NOPE}"),
    ("DELETE", f"/registered_limits/{NOPE}"),
    ("GET", f"/limits/{NOPE}"), ("PATCH", f"/limits/{NOPE}"), ("DELETE", f"/limits/{NOPE}"),
    ("GET", f"/system/users/{NOPE}/roles"),
    ("GET", "/no/such/route"),
]
PATCH_BODIES = {"domains": {"domain": {"description": "x"}}, "projects": {"project": {"description": "x"}},
                "users": {"user": {"description": "x"}}, "groups": {"group": {"description": "x"}},
                "roles": {"role": {"description": "x"}}, "regions": {"region": {"description": "x"}},
                "services": {"service": {"description": "x"}}, "endpoints": {"endpoint": {"url": "http://x.test/"}},
                "credentials": {"credential": {"blob": "x"}},
                "registered_limits": {"registered_limit": {"default_limit": 1}},
                "limits": {"limit": {"resource_limit": 1}}}


@pytest.mark.parametrize("method,path", UNKNOWN, ids=[f"{m} {p.replace(NOPE, 'X')}" for m, p in UNKNOWN])
async def test_unknown_ids_are_404(ks: Keystone, method: str, path: str):
    body = PATCH_BODIES[path.split("/")[1]] if method == "PATCH" else None
    r = await ks.request(method, path, body)
    err = assert_error(r, 404)
    assert err["title"] == "Not Found"


async def test_unknown_ids_in_user_app_creds(ks: Keystone, admin_id: str):
    assert_error(await ks.get(f"/users/{admin_id}/application_credentials/{NOPE}"), 404)
    assert_error(await ks.delete(f"/users/{admin_id}/application_credentials/{NOPE}"), 404)
    assert_error(await ks.get(f"/users/{NOPE}/application_credentials"), 404)


async def test_method_not_allowed_in_keystone_form(ks: Keystone):
    r = await ks.request("PUT", "/users")
    assert_error(r, 405)
    r = await ks.request("DELETE", "/auth/projects")
    assert_error(r, 405)


async def test_request_too_large_is_413(ks: Keystone):
    # Keystone refuses bodies beyond its max_request_body_size (112 KiB)
    name = uniq("big")
    r = await ks.post("/projects", {"project": {"name": name, "description": "x" * 200_000}})
    assert_error(r, 413)
    assert await count_named(ks, "/projects", "project", name) == 0


async def test_query_filters_with_odd_values(ks: Keystone):
    for path, params in (("/users", {"enabled": "maybe"}), ("/projects", {"parent_id": NOPE}),
                         ("/users", {"name": "\u2603" * 300}), ("/role_assignments", {"user.id": NOPE}),
                         ("/projects", {"tags": ",,,"}), ("/endpoints", {"interface": "nope"})):
        r = await ks.get(path, params=params)
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert_error(r, 400)


async def test_null_for_a_required_attribute_is_400(ks: Keystone):
    """Leaving a field out of a PATCH keeps it; sending it as null is a bad request, not a 500."""
    service = (await ks.post("/services", {"service": {"type": uniq("t")}}, expect=201)).json()["service"]
    endpoint = (await ks.post("/endpoints", {"endpoint": {"service_id": service["id"], "interface": "public",
                                                          "url": "http://n.test/"}}, expect=201)).json()["endpoint"]
    rname = uniq("r")
    reg = (await ks.post("/registered_limits", {"registered_limits": [
        {"service_id": service["id"], "resource_name": rname, "default_limit": 1}]}, expect=201)
    ).json()["registered_limits"][0]
    p = await ks.make_project()
    lim = (await ks.post("/limits", {"limits": [{"service_id": service["id"], "project_id": p["id"],
                                                 "resource_name": rname, "resource_limit": 1}]}, expect=201)
           ).json()["limits"][0]
    d = await ks.make_domain()
    u = await ks.make_user()
    g = await ks.make_group()
    role = await ks.make_role()
    cred = (await ks.post("/credentials", {"credential": {"user_id": u["id"], "type": "cert", "blob": "b"}},
                          expect=201)).json()["credential"]
    cases = [
        (f"/domains/{d['id']}", "domain", ["name", "enabled", "options", "tags"]),
        (f"/projects/{p['id']}", "project", ["name", "enabled", "tags", "options", "domain_id"]),
        (f"/users/{u['id']}", "user", ["name", "enabled", "options", "domain_id"]),
        (f"/groups/{g['id']}", "group", ["name", "domain_id"]),
        (f"/roles/{role['id']}", "role", ["name", "options"]),
        (f"/services/{service['id']}", "service", ["type", "enabled"]),
        (f"/endpoints/{endpoint['id']}", "endpoint", ["service_id", "interface", "url", "enabled"]),
        (f"/credentials/{cred['id']}", "credential", ["blob", "type", "user_id"]),
        (f"/registered_limits/{reg['id']}", "registered_limit", ["service_id", "resource_name", "default_limit"]),
        (f"/limits/{lim['id']}", "limit", ["resource_limit"]),
    ]
    for path, key, fields_ in cases:
        before = (await ks.get(path, expect=200)).json()[key]
        for field in fields_:
            assert_error(await ks.patch(path, {key: {field: None}}), 400)
        assert (await ks.get(path, expect=200)).json()[key] == before
    # where Keystone allows null, it clears the attribute
    r = await ks.patch(f"/users/{u['id']}", {"user": {"description": None, "default_project_id": None}}, expect=200)
    assert r.json()["user"].get("description") is None


async def test_nul_characters_are_400_on_every_database(ks: Keystone):
    """PostgreSQL cannot store NUL; SQLite could. Either way the answer is the same 400."""
    for path, params in (("/users", {"name": "a\x00b"}), ("/projects", {"name": "\x00"}),
                         ("/users/a%00b", None), ("/projects/x%00y/tags/z", None)):
        r = await ks.get(path, params=params)
        assert "NUL" in assert_error(r, 400)["message"]
    name = uniq("nul")
    r = await ks.post("/projects", {"project": {"name": name, "description": "x\x00y"}})
    assert "NUL" in assert_error(r, 400)["message"]
    assert await count_named(ks, "/projects", "project", name) == 0
    r = await ks.post("/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": "admin\x00", "domain": {"id": "default"}, "password": "x"}}}}}, token=None)
    assert_error(r, 400)
    # an escaped backslash before "u0000" is an ordinary string
    r = await ks.post("/projects", {"project": {"name": name, "description": "\\u0000"}}, expect=201)
    assert r.json()["project"]["description"] == "\\u0000"
