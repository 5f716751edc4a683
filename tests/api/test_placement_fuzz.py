"""Random bodies, query strings and microversions against placement's writes and reads: every
answer is a 2xx or a 4xx in Placement's error format, never a 5xx."""

from __future__ import annotations

import json
import uuid

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.placement_helpers import Placement

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**63), st.floats(),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=12)
names = st.sampled_from(["VCPU", "MEMORY_MB", "CUSTOM_X", "vcpu", "", "total", "resources", "allocations",
                         "resource_provider_generation", "inventories", "name", "uuid", "traits", "aggregates",
                         "project_id", "user_id", "consumer_generation", "consumer_type", "parent_provider_uuid"])
fields = st.sampled_from(["total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio"])
numbers = st.one_of(st.integers(min_value=-2**64, max_value=2**64), st.floats(), st.text(max_size=3))
inventories = st.fixed_dictionaries({"resource_provider_generation": st.integers(0, 3),
                                     "inventories": st.dictionaries(names, st.dictionaries(fields, numbers, max_size=6),
                                                                    max_size=3)})
bodies = st.one_of(values, st.dictionaries(names, values, max_size=5), inventories,
                   st.dictionaries(names, st.dictionaries(names, values, max_size=4), max_size=4))
versions = st.sampled_from(["1.0", "1.10", "1.14", "1.19", "1.26", "1.28", "1.36", "1.38", "latest"])
query_values = st.text(alphabet=st.sampled_from(list("VCPU:,!1in_-CUSTOM0")), max_size=20)


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    if r.status_code >= 400:
        assert r.json()["errors"][0]["status"] == r.status_code


async def test_fuzz_writes_never_5xx(client: httpx.AsyncClient, admin_token: str) -> None:
    pl = Placement(client, admin_token)
    rp = (await pl.provider(VCPU=4))["uuid"]
    consumer = str(uuid.uuid4())
    paths = [("POST", "/resource_providers"), ("PUT", f"/resource_providers/{rp}"),
             ("PUT", f"/resource_providers/{rp}/inventories"), ("POST", f"/resource_providers/{rp}/inventories"),
             ("PUT", f"/resource_providers/{rp}/inventories/VCPU"), ("PUT", f"/resource_providers/{rp}/traits"),
             ("PUT", f"/resource_providers/{rp}/aggregates"), ("PUT", f"/allocations/{consumer}"),
             ("POST", "/allocations"), ("POST", "/reshaper"), ("POST", "/resource_classes"),
             ("PUT", "/resource_classes/CUSTOM_FUZZ")]
    seen: list[httpx.Response] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(paths), bodies, versions)
    def run(path, body, version) -> None:
        seen.append((path, json.dumps(body, allow_nan=True), version))  # type: ignore[arg-type]

    run()
    for (method, path), body, version in seen:  # type: ignore[misc]
        check(await pl.at(version).request(method, path, content=body.encode(),
                                           headers={"content-type": "application/json"}))


async def test_fuzz_queries_never_5xx(client: httpx.AsyncClient, admin_token: str) -> None:
    pl = Placement(client, admin_token)
    keys = ["resources", "resources1", "resources_X", "required", "required1", "member_of", "member_of1",
            "in_tree", "in_tree1", "limit", "group_policy", "root_required", "same_subtree", "name", "uuid",
            "project_id", "user_id", "consumer_type", "associated"]
    seen: list = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["/allocation_candidates", "/resource_providers", "/usages", "/traits"]),
           st.lists(st.tuples(st.sampled_from(keys), query_values), max_size=5), versions)
    def run(path, params, version) -> None:
        seen.append((path, params, version))

    run()
    for path, params, version in seen:
        check(await pl.at(version).get(path, params=params))
