"""Random and near-valid bodies, query strings and microversions against every route of the
resources part (flavors, extra specs, flavor access, keypairs, server groups, aggregates, zones,
quota sets, quota classes, limits): every answer is a 2xx or a 4xx in Nova's fault format, never
a 5xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.compute_helpers import FAULT_NAMES, ComputeWorld, compute_world

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**63), st.floats(),
                    st.text(max_size=12), st.sampled_from(["-1", "0", "1", "true", "none", " x ", "a:b", "2.5"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
keys = st.sampled_from(["name", "ram", "vcpus", "disk", "id", "swap", "OS-FLV-EXT-DATA:ephemeral", "rxtx_factor",
                        "os-flavor-access:is_public", "description", "extra_specs", "hw:cpu_policy",
                        "hw:numa_nodes", "resources:VCPU", "trait:X", "public_key", "type", "user_id", "policy",
                        "policies", "rules", "max_server_per_host", "availability_zone", "host", "metadata",
                        "tenant", "cores", "instances", "force", "key_pairs", "bogus"])
inner = st.dictionaries(keys, values, max_size=5)
wrappers = st.sampled_from(["flavor", "keypair", "server_group", "aggregate", "quota_set", "quota_class_set",
                            "extra_specs", "addTenantAccess", "removeTenantAccess", "add_host", "remove_host",
                            "set_metadata", "hw:numa_nodes"])
bodies = st.one_of(values, inner, st.builds(lambda k, v: {k: v}, wrappers, st.one_of(inner, values)))
versions = st.sampled_from(["2.1", "2.2", "2.10", "2.15", "2.35", "2.55", "2.61", "2.64", "2.75", "2.86", "2.92",
                            "latest"])
query_keys = st.sampled_from(["limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir", "name",
                              "user_id", "all_projects", "offset", "tenant_id", "bogus"])
query_values = st.one_of(st.text(max_size=8), st.sampled_from(["-1", "0", "1", "none", "false", "flavorid", "desc"]))


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    if r.status_code >= 400:
        body = r.json()
        (name, fault), = body.items()
        assert name == FAULT_NAMES.get(r.status_code, "computeFault") and fault["code"] == r.status_code, body


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


async def test_fuzz_writes_never_5xx(w: ComputeWorld) -> None:
    a = w.projects["a"]
    # a flavor and an aggregate of the test's own: the shared cloud's flavors are booted by other modules
    f = (await w.admin.post("/flavors", {"flavor": {"name": "fuzz", "ram": 64, "vcpus": 1, "disk": 0,
                                                    "os-flavor-access:is_public": False}}, expect=200)).json()
    fid = f["flavor"]["id"]
    agg = (await w.admin.post("/os-aggregates", {"aggregate": {"name": "fuzz"}}, expect=200)).json()["aggregate"]["id"]
    paths = [("POST", "/flavors"), ("PUT", f"/flavors/{fid}"), ("POST", f"/flavors/{fid}/action"),
             ("POST", f"/flavors/{fid}/os-extra_specs"), ("PUT", f"/flavors/{fid}/os-extra_specs/hw:numa_nodes"),
             ("POST", "/os-keypairs"), ("POST", "/os-server-groups"), ("POST", "/os-aggregates"),
             ("PUT", f"/os-aggregates/{agg}"), ("POST", f"/os-aggregates/{agg}/action"), ("PUT", f"/os-quota-sets/{a}"),
             ("PUT", "/os-quota-class-sets/default"), ("PUT", "/os-quota-class-sets/fuzz")]
    seen: list[Any] = []

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(paths), bodies, versions, st.booleans())
    def run(path: Any, body: Any, version: str, as_admin: bool) -> None:
        seen.append((path, json.dumps(body, allow_nan=True), version, as_admin))

    run()
    try:
        for (method, path), body, version, as_admin in seen:
            who = w.admin if as_admin else w["member"]
            check(await who.at(version).request(method, path, content=body.encode(),
                                                headers={"content-type": "application/json"}))
    finally:  # leave the session's shared cloud as it was: no quota or class changes behind
        await w.admin.delete(f"/os-quota-sets/{a}")
        await w.admin.delete(f"/flavors/{fid}")
        async with w.cloud.compute.db.write() as session:
            from mcloud.compute import models_resources as m  # noqa: PLC0415
            import sqlalchemy as sa  # noqa: PLC0415

            await session.execute(sa.delete(m.QuotaClass))


async def test_fuzz_reads_and_deletes_never_5xx(w: ComputeWorld) -> None:
    a = w.projects["a"]
    paths = [("GET", "/flavors"), ("GET", "/flavors/detail"), ("GET", "/flavors/1"), ("GET", "/flavors/%20x"),
             ("GET", "/flavors/1/os-flavor-access"), ("GET", "/flavors/1/os-extra_specs"),
             ("GET", "/flavors/1/os-extra_specs/nope"), ("DELETE", "/flavors/no-such/os-extra_specs/x"),
             ("GET", "/os-keypairs"), ("GET", "/os-keypairs/x"), ("DELETE", "/os-keypairs/x"),
             ("GET", "/os-server-groups"), ("GET", "/os-server-groups/x"), ("DELETE", "/os-server-groups/x"),
             ("GET", "/os-availability-zone"), ("GET", "/os-availability-zone/detail"), ("GET", "/os-aggregates"),
             ("GET", "/os-aggregates/99999999999999999999"), ("DELETE", "/os-aggregates/-1"),
             ("GET", f"/os-quota-sets/{a}"), ("GET", f"/os-quota-sets/{a}/detail"),
             ("GET", f"/os-quota-sets/{a}/defaults"), ("GET", "/os-quota-sets/x"),
             ("GET", "/os-quota-class-sets/default"), ("GET", "/limits")]
    seen: list[Any] = []

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(paths), st.lists(st.tuples(query_keys, query_values), max_size=4), versions,
           st.booleans())
    def run(path: Any, params: Any, version: str, as_admin: bool) -> None:
        seen.append((path, params, version, as_admin))

    run()
    for (method, path), params, version, as_admin in seen:
        who = w.admin if as_admin else w["member"]
        check(await who.at(version).request(method, path, params=params))
