"""Shared pieces of the image API tests (a Glance client over the in-process app, a world of
projects and callers), plus the tests of the version documents, schemas and info calls.

The cloud is shared by the whole session, so every test makes its own images in projects of
its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from tests.api.conftest import Keystone, admin_keystone, uniq

PATCH = "application/openstack-images-v2.1-json-patch"
ROLES = {"member": "member", "reader": "reader", "other": "member", "third": "member"}


def assert_fault(r: httpx.Response, code: int) -> dict[str, Any]:
    """The response is Glance's (webob's) JSON fault ``{"message", "code": "404 Not Found", "title"}``."""
    assert r.status_code == code, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    body = r.json()
    assert set(body) == {"message", "code", "title"}, body
    assert body["code"].startswith(f"{code} "), body
    assert body["code"] == f"{code} {body['title']}", body
    assert body["message"].endswith("<br /><br />\n\n\n"), body
    return body


class Glance:
    """Requests against /image with one caller's token (JSON faults: Accept application/json)."""

    def __init__(self, client: httpx.AsyncClient, token: str | None, project_id: str | None = None):
        self.client = client
        self.token = token
        self.project_id = project_id

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["X-Auth-Token"] = self.token
        h.update(extra or {})
        return h

    async def request(self, method: str, path: str, *, json_body: Any = None, content: Any = None,
                      headers: dict[str, str] | None = None, params: Any = None,
                      expect: int | None = None) -> httpx.Response:
        url = path if path.startswith("/image") else "/image" + path
        kwargs: dict[str, Any] = {"headers": self.headers(headers), "params": params}
        if json_body is not None:
            kwargs["json"] = json_body
        if content is not None:
            kwargs["content"] = content
        r = await self.client.request(method, url, **kwargs)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} -> {r.status_code}: {r.text}"
        return r

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, json_body=body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, json_body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    async def patch(self, image_id: str, ops: Any, *, content_type: str = PATCH, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", f"/v2/images/{image_id}", content=json.dumps(ops),
                                  headers={"Content-Type": content_type}, **kw)

    async def create(self, **fields: Any) -> dict[str, Any]:
        body = {"name": uniq("img"), "disk_format": "raw", "container_format": "bare", **fields}
        return (await self.post("/v2/images", body, expect=201)).json()

    async def show(self, image_id: str) -> dict[str, Any]:
        return (await self.get(f"/v2/images/{image_id}", expect=200)).json()

    async def upload(self, image_id: str, data: Any, expect: int | None = 204, **headers: str) -> httpx.Response:
        return await self.request("PUT", f"/v2/images/{image_id}/file", content=data, expect=expect,
                                  headers={"Content-Type": "application/octet-stream", **headers})

    async def stage(self, image_id: str, data: Any, expect: int | None = 204) -> httpx.Response:
        return await self.request("PUT", f"/v2/images/{image_id}/stage", content=data, expect=expect,
                                  headers={"Content-Type": "application/octet-stream"})

    async def active(self, data: bytes = b"x" * 1000, **fields: Any) -> dict[str, Any]:
        image = await self.create(**fields)
        await self.upload(image["id"], data)
        return await self.show(image["id"])

    async def list_ids(self, **params: Any) -> list[str]:
        r = await self.get("/v2/images", params=params, expect=200)
        return [i["id"] for i in r.json()["images"]]


@dataclasses.dataclass
class World:
    ks: Keystone
    client: httpx.AsyncClient
    admin: Glance
    callers: dict[str, Glance]
    projects: dict[str, str]
    image_service_id: str

    def __getitem__(self, who: str) -> Glance:
        return self.admin if who == "admin" else self.callers[who]


@contextlib.asynccontextmanager
async def make_world(cloud: Any) -> AsyncIterator[World]:
    """Projects A (member, reader), B (other) and C (third), each caller with a project token."""
    async with admin_keystone(cloud) as (ks, _admin_id):
        projects = {"a": (await ks.make_project())["id"], "b": (await ks.make_project())["id"],
                    "c": (await ks.make_project())["id"]}
        where = {"member": "a", "reader": "a", "other": "b", "third": "c"}
        callers = {}
        for who, role in ROLES.items():
            user = await ks.make_user()
            await ks.grant(user["id"], role, project_id=projects[where[who]])
            token = await ks.token_for(user["id"], user["password"], project_id=projects[where[who]])
            callers[who] = Glance(ks.client, token, projects[where[who]])
        services = (await ks.get("/services", params={"type": "image"}, expect=200)).json()["services"]
        admin_project = (await ks.validate(ks.token)).json()["token"]["project"]["id"]
        yield World(ks, ks.client, Glance(ks.client, ks.token, admin_project), callers, projects,
                    services[0]["id"])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(cloud) -> AsyncIterator[World]:
    async with make_world(cloud) as w:
        yield w


def image_files(cloud: Any) -> set[str]:
    """Every file in the file store's and the staging area's directories (data left behind shows here)."""
    out = set()
    for d in (Path(cloud.config.data_dir) / "images", Path(cloud.config.data_dir) / "image-staging"):
        if d.exists():
            out |= {str(p) for p in d.rglob("*") if p.is_file()}
    return out


def qcow2_header(size: int = 64 << 20, backing: str | None = None, data_file: bool = False) -> bytes:
    """A small qcow2 v3 image (header, then zero clusters), optionally with a backing file or an
    external data file, as qemu-img writes them (used where qemu-img is not installed)."""
    incompatible = 0x4 if data_file else 0
    header = bytearray(struct.pack(">4sIQIIQIIQQIIQQQQII", b"QFI\xfb", 3, 0, 0, 16, size, 0, 1, 0x30000, 0x10000,
                                   1, 0, 0, incompatible, 0, 0, 4, 104))
    header += b"\0" * (104 - len(header))
    if backing:
        name = backing.encode()
        offset = 512
        header[8:16] = struct.pack(">Q", offset)
        header[16:20] = struct.pack(">I", len(name))
        header = header.ljust(offset, b"\0") + name
    return bytes(header).ljust(0x50000, b"\0")


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


# ---------------------------------------------------------------------- versions, schemas, info


async def test_version_documents(client):
    r = await client.get("/image")
    assert r.status_code == 300
    versions = r.json()["versions"]
    assert versions[0]["status"] == "CURRENT" and versions[0]["id"].startswith("v2.")
    assert {v["id"] for v in versions} >= {"v2.0", "v2.12", "v2.16"}
    assert versions[0]["links"][0]["href"] == "http://mcloud.test/image/v2/"
    r = await client.get("/image/versions")
    assert r.status_code == 200 and r.json() == {"versions": versions}


async def test_schemas_and_info(world):
    g = world["member"]
    image = (await g.get("/v2/schemas/image", expect=200)).json()
    assert image["name"] == "image" and image["additionalProperties"] == {"type": "string"}
    assert {"id", "name", "status", "visibility", "os_hidden", "os_hash_value", "stores"} <= set(image["properties"])
    assert (await g.get("/v2/schemas/images", expect=200)).json()["name"] == "images"
    assert (await g.get("/v2/schemas/member", expect=200)).json()["name"] == "member"
    assert (await g.get("/v2/schemas/members", expect=200)).json()["name"] == "members"
    methods = (await g.get("/v2/info/import", expect=200)).json()["import-methods"]["value"]
    assert methods == ["glance-direct", "web-download"]
    stores = (await g.get("/v2/info/stores", expect=200)).json()["stores"]
    assert stores == [{"id": "file", "description": stores[0]["description"], "default": True}]
    assert_fault(await g.get("/v2/info/stores/detail"), 403)
    detail = (await world.admin.get("/v2/info/stores/detail", expect=200)).json()["stores"]
    assert detail[0]["type"] == "file" and "datadir_path" in detail[0]["properties"]


async def test_faults_follow_accept(world):
    g = world["member"]
    body = assert_fault(await g.get("/v2/images/nope"), 404)
    assert body["message"].startswith("No image found with ID nope")
    r = await world.client.get("/image/v2/images/nope", headers={"X-Auth-Token": g.token, "Accept": "text/html"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "<h1>404 Not Found" in r.text
    r = await world.client.get("/image/v2/images/nope", headers={"X-Auth-Token": g.token, "Accept": "text/plain"})
    assert r.status_code == 404 and r.text.startswith("404 Not Found\n\nNo image found")
    r = await world.client.get("/image/v2/images", headers={"Accept": "application/json"})
    assert_fault(r, 401)
    assert r.headers["www-authenticate"] == 'Keystone uri="http://mcloud.test/identity"'
    assert_fault(await world.client.get("/image/v2/images", headers={"X-Auth-Token": "bogus",
                                                                     "Accept": "application/json"}), 401)
    assert_fault(await g.get("/v2/images/"), 404)  # not the list

