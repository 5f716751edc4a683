"""Property-based fuzzing of the servers routes: whatever a client sends to /servers and what hangs
off a server (actions included), the answer is never a 5xx, and every error is Nova's fault body.

The routes come from the app itself (every route of api_servers*.py), so a new one is fuzzed
without touching this file. Callers are a project member, a reader and the admin; the ids the
fuzzer may name include a real server.
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

from mcloud.compute import api
from tests.api.compute_helpers import ComputeWorld, Nova, compute_world, wait_for

SETTINGS = settings(max_examples=int(os.environ.get("MCLOUD_FUZZ_EXAMPLES", "200")), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
PARAM = re.compile(r"\{([^}]+)\}")


def server_routes(cloud: Any) -> list[tuple[str, str]]:
    app = api.build(cloud.runtime.for_service("compute"), cloud.compute).app
    return sorted({(method, route.path) for route in app.router.routes if isinstance(route, APIRoute)
                   for method in route.methods if route.path.startswith("/v2.1/servers")})


@dataclasses.dataclass
class Fuzz:
    callers: list[Nova]
    ids: list[str]
    routes: list[tuple[str, str]]
    world: ComputeWorld


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz(cloud) -> AsyncIterator[Fuzz]:
    async with compute_world(cloud) as w:
        r = await w["member"].post("/servers", {"server": {"name": "fuzz", "flavorRef": w.flavor_id,
                                                           "imageRef": w.image_id, "networks": "none"}}, expect=202)
        sid = r.json()["server"]["id"]
        await wait_for(w["member"], sid, "ACTIVE")
        routes = server_routes(cloud)
        assert {("GET", "/v2.1/servers"), ("POST", "/v2.1/servers/{server_id}/action"),
                ("PUT", "/v2.1/servers/{server_id}/tags/{tag}")} <= set(routes)
        yield Fuzz([w["member"], w["reader"], w.admin], [sid, w.image_id, w.network_id, "detail", "x", "a"],
                   routes, w)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["1", "42", "auto", "none", "HARD", "SOFT", "active", "error", "novnc", "10.0.0.5",
                       "aGVsbG8=", "6b8a2b0f-1a2b-4c3d-9e8f-000000000000"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
keys = st.sampled_from(["name", "flavorRef", "imageRef", "networks", "uuid", "port", "fixed_ip", "tag", "metadata",
                        "meta", "tags", "user_data", "key_name", "min_count", "max_count", "availability_zone",
                        "security_groups", "description", "hostname", "type", "state", "length", "host",
                        "adminPass", "locked_reason", "block_device_mapping_v2", "config_drive", "accessIPv4"])
inner = st.dictionaries(keys, json_values, max_size=6)
actions = st.sampled_from(["os-stop", "os-start", "reboot", "pause", "unpause", "suspend", "resume", "lock",
                           "unlock", "rescue", "unrescue", "resize", "confirmResize", "revertResize", "rebuild",
                           "createImage", "shelve", "shelveOffload", "unshelve", "migrate", "os-migrateLive",
                           "evacuate", "os-getConsoleOutput", "os-getVNCConsole", "os-resetState",
                           "addSecurityGroup", "removeSecurityGroup", "trigger_crash_dump", "changePassword",
                           "forceDelete", "injectNetworkInfo", "bogus"])
bodies = (st.builds(lambda k, v: {k: v}, st.sampled_from(["server", "metadata", "meta", "tags"]), inner)
          | st.builds(lambda k, v: {k: v}, actions, inner | json_values) | json_values)
params = st.dictionaries(st.sampled_from(["limit", "marker", "sort_key", "sort_dir", "name", "status", "tags",
                                          "not-tags", "all_tenants", "changes-since", "ip", "locked", "deleted",
                                          "image", "flavor", "host", "bogus"]),
                         st.text(max_size=20) | st.sampled_from(["1", "true", "ACTIVE", "created_at", "desc",
                                                                 "2020-01-01T00:00:00Z", "[", "*"]), max_size=4)
segment = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=20)
versions = st.sampled_from(["2.1", "2.26", "2.47", "2.73", "latest"])


@st.composite
def requests(draw: st.DrawFn, fuzz: Fuzz) -> tuple[str, str, Any, dict[str, str]]:
    method, template = draw(st.sampled_from(fuzz.routes))
    path = PARAM.sub(lambda _m: quote(draw(st.sampled_from(fuzz.ids) | segment), safe=""), template)
    # never delete the shared server: the other examples need it
    if method == "DELETE" and template == "/v2.1/servers/{server_id}":
        method = "GET"
    body = draw(bodies) if method in ("POST", "PUT") else None
    if isinstance(body, dict) and "forceDelete" in body:
        body = {"bogus": None}
    return method, path, body, draw(params)


def check(r: Any) -> None:
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    if r.status_code >= 400 and r.status_code != 401:
        body = r.json()
        assert len(body) == 1, body
        (fault,) = body.values()
        assert fault["code"] == r.status_code and fault["message"], body


@SETTINGS
@given(data=st.data())
async def test_fuzz_never_5xx(fuzz: Fuzz, data: st.DataObject) -> None:
    method, path, body, query = data.draw(requests(fuzz))
    caller = data.draw(st.sampled_from(fuzz.callers)).at(data.draw(versions))
    content = None if body is None else json.dumps(body).encode()
    r = await caller.request(method, "/compute" + path, content=content, params=query,
                             headers={"Content-Type": "application/json"})
    check(r)
