"""Helpers for the identity API tests: a thin Keystone client over the in-process app and
factories that make uniquely named users, projects and grants (the cloud is shared by the
whole session, so every test makes its own objects)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD

V3 = "/identity/v3"


def uniq(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_error(r: httpx.Response, code: int) -> dict[str, Any]:
    """The response is Keystone's fault body ``{"error": {"code", "title", "message"}}`` with ``code``."""
    assert r.status_code == code, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
              405: "Method Not Allowed", 413: "Request Entity Too Large"}
    assert err["code"] == code, body
    if code in titles:
        assert err["title"] == titles[code], body
    assert isinstance(err["message"], str) and err["message"], body
    return err


class Keystone:
    """Requests against /identity/v3 with a default token, plus factories for test objects."""

    def __init__(self, client: httpx.AsyncClient, token: str | None):
        self.client = client
        self.token = token

    def as_(self, token: str | None) -> Keystone:
        return Keystone(self.client, token)

    async def request(self, method: str, path: str, json: Any = None, *, token: Any = ...,
                      headers: dict[str, str] | None = None, params: Any = None, content: Any = None,
                      expect: int | None = None) -> httpx.Response:
        h = dict(headers or {})
        tok = self.token if token is ... else token
        if tok is not None:
            h["X-Auth-Token"] = tok
        url = path if path.startswith("/identity") else V3 + path
        r = await self.client.request(method, url, json=json, headers=h, params=params, content=content)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} -> {r.status_code}: {r.text}"
        return r

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def head(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("HEAD", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, json, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", path, json, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    # ---------------------------------------------------------------- tokens

    async def auth(self, *, user_id: str | None = None, name: str | None = None, password: str,
                   domain_id: str = "default", scope: Any = None, nocatalog: bool = False) -> httpx.Response:
        user: dict[str, Any] = {"id": user_id} if user_id else {"name": name, "domain": {"id": domain_id}}
        user["password"] = password
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
        if scope is not None:
            auth["scope"] = scope
        return await self.client.post(V3 + "/auth/tokens" + ("?nocatalog" if nocatalog else ""),
                                      json={"auth": auth})

    async def token_for(self, user_id: str, password: str, *, project_id: str | None = None,
                        domain_id: str | None = None, system: bool = False) -> str:
        scope: Any = None
        if project_id:
            scope = {"project": {"id": project_id}}
        elif domain_id:
            scope = {"domain": {"id": domain_id}}
        elif system:
            scope = {"system": {"all": True}}
        r = await self.auth(user_id=user_id, password=password, scope=scope)
        assert r.status_code == 201, r.text
        return r.headers["x-subject-token"]

    async def validate(self, subject: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return await self.get("/auth/tokens", token=token or self.token, headers={"X-Subject-Token": subject}, **kw)

    # ---------------------------------------------------------------- factories

    async def role_id(self, name: str) -> str:
        r = await self.get("/roles", params={"name": name}, expect=200)
        roles = r.json()["roles"]
        assert len(roles) == 1, roles
        return roles[0]["id"]

    async def make_domain(self, **fields: Any) -> dict[str, Any]:
        r = await self.post("/domains", {"domain": {"name": uniq("dom"), **fields}}, expect=201)
        return r.json()["domain"]

    async def make_project(self, domain_id: str = "default", **fields: Any) -> dict[str, Any]:
        body = {"name": uniq("proj"), "domain_id": domain_id, **fields}
        r = await self.post("/projects", {"project": body}, expect=201)
        return r.json()["project"]

    async def make_user(self, domain_id: str = "default", password: str | None = None,
                        **fields: Any) -> dict[str, Any]:
        password = password or uniq("pw")
        body = {"name": uniq("user"), "domain_id": domain_id, "password": password, **fields}
        r = await self.post("/users", {"user": body}, expect=201)
        user = r.json()["user"]
        user["password"] = password
        return user

    async def make_group(self, domain_id: str = "default", **fields: Any) -> dict[str, Any]:
        r = await self.post("/groups", {"group": {"name": uniq("grp"), "domain_id": domain_id, **fields}},
                            expect=201)
        return r.json()["group"]

    async def make_role(self, **fields: Any) -> dict[str, Any]:
        r = await self.post("/roles", {"role": {"name": uniq("role"), **fields}}, expect=201)
        return r.json()["role"]

    async def grant(self, user_id: str, role: str, *, project_id: str | None = None,
                    domain_id: str | None = None, system: bool = False, group: bool = False,
                    inherited: bool = False) -> None:
        role_id = role if len(role) == 32 else await self.role_id(role)
        actor = f"groups/{user_id}" if group else f"users/{user_id}"
        if system:
            path = f"/system/{actor}/roles/{role_id}"
        elif project_id:
            path = f"/projects/{project_id}/{actor}/roles/{role_id}"
        else:
            path = f"/domains/{domain_id}/{actor}/roles/{role_id}"
        if inherited:
            path = "/OS-INHERIT" + path + "/inherited_to_projects"
        await self.put(path, expect=204)

    async def member(self, role: str = "member", project: dict[str, Any] | None = None,
                     domain_id: str = "default") -> tuple[dict[str, Any], dict[str, Any], str]:
        """A new user with ``role`` on a (new) project: (user, project, project-scoped token)."""
        project = project or await self.make_project(domain_id)
        user = await self.make_user(project["domain_id"])
        await self.grant(user["id"], role, project_id=project["id"])
        token = await self.token_for(user["id"], user["password"], project_id=project["id"])
        return user, project, token


@contextlib.asynccontextmanager
async def admin_keystone(cloud: Any) -> AsyncIterator[tuple[Keystone, str]]:
    """For module-scoped fixtures: a client of ``cloud`` as the admin, and the admin's user id."""
    transport = httpx.ASGITransport(app=cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mcloud.test") as client:
        boot = Keystone(client, None)
        r = await boot.auth(name="admin", password=ADMIN_PASSWORD,
                            scope={"project": {"name": "admin", "domain": {"id": "default"}}})
        assert r.status_code == 201, r.text
        yield boot.as_(r.headers["x-subject-token"]), r.json()["token"]["user"]["id"]


@pytest.fixture
async def ks(client: httpx.AsyncClient, admin_token: str) -> Keystone:
    """A Keystone client carrying the admin's project-scoped token."""
    return Keystone(client, admin_token)


@pytest.fixture
async def admin_id(ks: Keystone) -> str:
    r = await ks.validate(ks.token)
    return r.json()["token"]["user"]["id"]


__all__ = ["ADMIN_PASSWORD", "Keystone", "V3", "admin_keystone", "assert_error", "uniq"]
