"""Property-based fuzzing of the image API: whatever a client sends to whatever route, the
answer is never a 5xx, and every error is Glance's fault body.

The routes come from the image routers themselves, so a new route is fuzzed without touching
this file. Callers are a project member (gets past policy into the service code) and the admin;
the ids the fuzzer may name include images made here, in projects of their own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest_asyncio
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcloud.image import api, api_metadefs
from tests.api.test_image_common import PATCH, Glance, make_world

SETTINGS = settings(max_examples=int(os.environ.get("MCLOUD_FUZZ_EXAMPLES", "200")), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

ROUTES: list[tuple[str, str]] = sorted({
    (method, route.path)
    for router in (api.router, api_metadefs.router)
    for route in router.routes if isinstance(route, APIRoute)
    for method in route.methods
})
PARAM = re.compile(r"\{([^}]+)\}")


def test_the_router_has_the_image_api():
    paths = {p for _, p in ROUTES}
    assert {"/v2/images", "/v2/images/{image_id}", "/v2/images/{image_id}/file", "/v2/images/{image_id}/import",
            "/v2/images/{image_id}/members/{member_id}", "/v2/metadefs/namespaces"} <= paths
    assert len(ROUTES) > 35


@dataclasses.dataclass
class Fuzz:
    callers: list[Glance]
    ids: list[str]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz(cloud) -> AsyncIterator[Fuzz]:
    async with make_world(cloud) as w:
        g = w["member"]
        # protected, so that a fuzzed DELETE rarely takes the fuzzer's targets away
        active = await g.active(b"fuzz data", protected=True)
        queued = await g.create(protected=True)
        shared = await g.create(protected=True)
        await g.post(f"/v2/images/{shared['id']}/members", {"member": w.projects["b"]}, expect=200)
        await w.admin.post("/v2/metadefs/namespaces", {"namespace": f"fuzz-{active['id'][:8]}"}, expect=201)
        ids = [active["id"], queued["id"], shared["id"], w.projects["b"], f"fuzz-{active['id'][:8]}", "file",
               "deactivate", "reactivate", "objects", "tags", "properties", "resource_types"]
        yield Fuzz([g, w.admin, w["reader"]], ids)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
keys = st.sampled_from(["name", "visibility", "disk_format", "container_format", "min_ram", "protected", "tags",
                        "os_hidden", "id", "owner", "member", "status", "method", "uri", "stores", "all_stores",
                        "namespace", "op", "path", "value", "type", "input", "hw_disk_bus"]) | st.text(max_size=12)
bodies = st.dictionaries(keys, json_values, max_size=5) | json_values | st.lists(
    st.fixed_dictionaries({"op": st.sampled_from(["add", "replace", "remove", "move", "x"]),
                           "path": st.sampled_from(["/name", "/tags", "/min_ram", "/status", "/a/b", "x", "/x~"]),
                           "value": json_values}), max_size=3)
params = st.dictionaries(st.sampled_from(["limit", "marker", "sort", "sort_key", "sort_dir", "name", "status",
                                          "visibility", "member_status", "tag", "size_min", "size_max", "os_hidden",
                                          "created_at", "updated_at", "protected", "owner", "changes-since"]),
                         st.text(max_size=20), max_size=4)
segment = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=20)


@st.composite
def requests(draw: st.DrawFn, ids: list[str]) -> tuple[str, str, Any, dict[str, str], dict[str, str]]:
    method, template = draw(st.sampled_from(ROUTES))
    path = PARAM.sub(lambda _m: quote(draw(st.sampled_from(ids) | segment), safe=""), template)
    body = draw(bodies) if method in ("POST", "PUT", "PATCH") else None
    headers = {}
    if method == "PATCH":
        headers["Content-Type"] = draw(st.sampled_from([PATCH, "application/json", "text/plain"]))
    if path.endswith("/file") or path.endswith("/stage"):
        headers["Content-Type"] = draw(st.sampled_from(["application/octet-stream", "application/json"]))
        body = draw(st.binary(max_size=2000))
    if method == "GET" and path.endswith("/file"):
        headers["Range"] = draw(st.sampled_from(["bytes=0-3", "bytes=-2", "bytes=9-1", "x", "bytes=99999-"]))
    return method, path, body, headers, draw(params)


def check(r) -> None:
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"message", "code", "title"}, body
        assert body["code"].startswith(str(r.status_code)), body


@SETTINGS
@given(data=st.data())
async def test_fuzz_never_5xx(fuzz: Fuzz, data: st.DataObject):
    method, path, body, headers, query = data.draw(requests(fuzz.ids))
    caller = data.draw(st.sampled_from(fuzz.callers))
    content = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    r = await caller.request(method, path, content=content, headers=headers, params=query)
    check(r)

