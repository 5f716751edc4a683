"""Property-based fuzzing of the CORE network API: whatever a client sends to whatever route, the
answer is never a 5xx, and every error is Neutron's fault body.

The routes come from the app itself (CORE's collections: networks, subnets, ports, subnet
pools, address scopes, RBAC policies, segments, quotas, tags, extensions), so a new route is
fuzzed without touching this file. Callers are a project member, the admin and a reader; the
ids the fuzzer may name include objects made here.
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

from mcloud.network import api
from tests.api.network_helpers import Neutron, make_world

SETTINGS = settings(max_examples=int(os.environ.get("MCLOUD_FUZZ_EXAMPLES", "200")), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
CORE = ("/v2.0/networks", "/v2.0/subnets", "/v2.0/ports", "/v2.0/subnetpools", "/v2.0/address-scopes",
        "/v2.0/rbac-policies", "/v2.0/segments", "/v2.0/quotas", "/v2.0/{collection}", "/v2.0/extensions",
        "/v2.0/availability_zones", "/v2.0/service-providers", "/v2.0/agents")
PARAM = re.compile(r"\{([^}]+)\}")


def core_routes(cloud: Any) -> list[tuple[str, str]]:
    app = api.build(cloud.runtime, cloud.network)
    return sorted({(method, route.path) for route in app.router.routes if isinstance(route, APIRoute)
                   for method in route.methods if route.path.startswith(CORE) or route.path in ("/", "/v2.0")})


@dataclasses.dataclass
class Fuzz:
    callers: list[Neutron]
    ids: list[str]
    routes: list[tuple[str, str]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz(cloud) -> AsyncIterator[Fuzz]:
    async with make_world(cloud) as w:
        n = w["member"]
        net, sub = await n.net_with_subnet()
        port = await n.port(net["id"])
        pool = (await n.post("/subnetpools", {"subnetpool": {"name": "fuzz", "prefixes": ["10.250.0.0/16"]}},
                             expect=201)).json()["subnetpool"]
        ids = [net["id"], sub["id"], port["id"], pool["id"], w.projects["a"], "networks", "ports", "subnets",
               "routers", "tags", "default", "details", "quotas", "x"]
        routes = core_routes(cloud)
        assert {("GET", "/v2.0/networks"), ("POST", "/v2.0/ports"), ("PUT", "/v2.0/subnets/{id}"),
                ("PUT", "/v2.0/{collection}/{id}/tags/{tag}")} <= set(routes)
        yield Fuzz([n, w.admin, w["reader"]], ids, routes)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["10.0.0.0/24", "10.0.0.5", "fd00::/64", "fa:16:3e:00:00:01", "*", "access_as_shared",
                       "network", "slaac", "vlan", "physnet1"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
keys = st.sampled_from(["name", "network_id", "cidr", "ip_version", "gateway_ip", "allocation_pools", "fixed_ips",
                        "mac_address", "admin_state_up", "shared", "router:external", "provider:network_type",
                        "provider:physical_network", "provider:segmentation_id", "mtu", "subnetpool_id",
                        "prefixes", "object_type", "object_id", "action", "target_tenant", "ip_address",
                        "subnet_id", "allowed_address_pairs", "extra_dhcp_opts", "binding:host_id", "tags",
                        "host_routes", "dns_nameservers", "prefixlen", "ipv6_ra_mode", "ipv6_address_mode",
                        "network", "port", "subnet", "quota", "security_groups", "project_id", "description",
                        "enable_dhcp", "port_security_enabled", "device_owner", "dns_name", "default_prefixlen"])
inner = st.dictionaries(keys, json_values, max_size=6)
bodies = (st.builds(lambda k, v: {k: v}, st.sampled_from(["network", "subnet", "port", "subnetpool", "address_scope",
                                                           "rbac_policy", "segment", "quota", "tags", "prefixes",
                                                           "networks", "ports"]),
                    inner | st.lists(inner, max_size=3)) | json_values)
params = st.dictionaries(st.sampled_from(["limit", "marker", "sort_key", "sort_dir", "page_reverse", "fields",
                                          "name", "shared", "router:external", "fixed_ips", "tags", "not-tags-any",
                                          "admin_state_up", "mtu", "ip_version", "mac_address", "device_id",
                                          "provider:segmentation_id", "bogus"]),
                         st.text(max_size=20) | st.sampled_from(["ip_address=10.0.0.5", "subnet_id=x", "true",
                                                                 "id", "name", "desc"]), max_size=4)
segment = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=20)


@st.composite
def requests(draw: st.DrawFn, fuzz: Fuzz) -> tuple[str, str, Any, dict[str, str]]:
    method, template = draw(st.sampled_from(fuzz.routes))
    path = PARAM.sub(lambda _m: quote(draw(st.sampled_from(fuzz.ids) | segment), safe=""), template)
    body = draw(bodies) if method in ("POST", "PUT") else None
    return method, path, body, draw(params)


def check(r) -> None:
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"NeutronError"} and body["NeutronError"]["message"], body


@SETTINGS
@given(data=st.data())
async def test_fuzz_never_5xx(fuzz: Fuzz, data: st.DataObject):
    method, path, body, query = data.draw(requests(fuzz))
    caller = data.draw(st.sampled_from(fuzz.callers))
    content = None if body is None else json.dumps(body).encode()
    r = await caller.request(method, "/networking" + path, content=content, params=query,
                             headers={"Content-Type": "application/json"})
    check(r)
