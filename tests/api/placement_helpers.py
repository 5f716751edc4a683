"""A thin Placement client over the in-process app, and factories for uniquely named objects
(the cloud is shared by the whole session, so every test makes its own providers and classes)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

ROOT = "/placement"


def uniq(prefix: str = "rp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def custom(prefix: str = "CUSTOM_T") -> str:
    """A resource class or trait name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10].upper()}"


def assert_fault(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Placement's error body: ``{"errors": [{status, title, detail, request_id, code (>= 1.23)}]}``."""
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    body = r.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    err = body["errors"][0]
    assert err["status"] == status and err["title"] and isinstance(err["detail"], str) and err["detail"], err
    assert err["request_id"].startswith("req-") and err["request_id"] == r.headers["x-openstack-request-id"]
    if code is not None:
        assert err["code"] == code, err
    return err


class Placement:
    def __init__(self, client: httpx.AsyncClient, token: str | None, version: str = "latest"):
        self.client = client
        self.token = token
        self.version = version

    def at(self, version: str) -> Placement:
        return Placement(self.client, self.token, version)

    def as_(self, token: str | None) -> Placement:
        return Placement(self.client, token, self.version)

    async def request(self, method: str, path: str, json: Any = None, *, expect: int | None = None,
                      headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        h = {"OpenStack-API-Version": f"placement {self.version}"} if self.version else {}
        if self.token:
            h["X-Auth-Token"] = self.token
        h.update(headers or {})
        r = await self.client.request(method, ROOT + path, json=json, headers=h, **kw)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} -> {r.status_code}: {r.text}"
        return r

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, json, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, json, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    # ---------------------------------------------------------------- factories

    async def provider(self, name: str | None = None, parent: str | None = None, **inventory: Any) -> dict[str, Any]:
        """A new provider with ``inventory`` ({class: total or {fields}})."""
        body: dict[str, Any] = {"name": name or uniq()}
        if parent:
            body["parent_provider_uuid"] = parent
        rp = (await self.at("1.20").post("/resource_providers", body, expect=200)).json()
        if inventory:
            await self.set_inventory(rp["uuid"], **inventory)
        return rp

    async def generation(self, rp: str) -> int:
        return (await self.get(f"/resource_providers/{rp}", expect=200)).json()["generation"]

    async def set_inventory(self, rp: str, **inventory: Any) -> dict[str, Any]:
        invs = {rc: v if isinstance(v, dict) else {"total": v} for rc, v in inventory.items()}
        r = await self.put(f"/resource_providers/{rp}/inventories", {
            "resource_provider_generation": await self.generation(rp), "inventories": invs}, expect=200)
        return r.json()

    async def resource_class(self) -> str:
        name = custom("CUSTOM_RC")
        await self.put(f"/resource_classes/{name}", expect=201)
        return name

    async def trait(self) -> str:
        name = custom("CUSTOM_TRAIT")
        await self.put(f"/traits/{name}", expect=201)
        return name

    async def set_traits(self, rp: str, *traits: str) -> None:
        await self.put(f"/resource_providers/{rp}/traits", {
            "traits": list(traits), "resource_provider_generation": await self.generation(rp)}, expect=200)

    async def set_aggregates(self, rp: str, *aggs: str) -> None:
        await self.put(f"/resource_providers/{rp}/aggregates", {
            "aggregates": list(aggs), "resource_provider_generation": await self.generation(rp)}, expect=200)

    async def allocate(self, consumer: str, allocations: dict[str, dict[str, int]], expect: int | None = 204,
                       generation: int | None = None, project: str = "proj", user: str = "user") -> httpx.Response:
        return await self.put(f"/allocations/{consumer}", {
            "allocations": {rp: {"resources": res} for rp, res in allocations.items()},
            "project_id": project, "user_id": user, "consumer_generation": generation,
            "consumer_type": "INSTANCE"}, expect=expect)

    async def candidates(self, **params: Any) -> dict[str, Any]:
        return (await self.get("/allocation_candidates", params=params, expect=200)).json()
