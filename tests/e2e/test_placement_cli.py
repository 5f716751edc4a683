"""Placement through the real `openstack` CLI with the osc-placement plugin against a live
`mcloud up`; and racing claims against `mcloud up --workers 2` on SQLite and PostgreSQL, where
the claims really run in two processes at once."""

from __future__ import annotations

import concurrent.futures
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import FAST_ENV, Client, unique
from tests.harness import LiveCloud, _pg_bin, free_port

pytestmark = pytest.mark.e2e


def pjson(cli: Client, version: str, *args: str):
    return cli.json("--os-placement-api-version", version, *args)


def test_resource_provider_inventory_candidates_traits_usage(cli: Client) -> None:
    name = unique("cn")
    rp = pjson(cli, "1.20", "resource", "provider", "create", name)
    assert rp["name"] == name and rp["generation"] == 0
    listed = pjson(cli, "1.20", "resource", "provider", "list", "--name", name)
    assert [p["uuid"] for p in listed] == [rp["uuid"]]

    inv = pjson(cli, "1.20", "resource", "provider", "inventory", "set", rp["uuid"],
                "--resource", "VCPU=8", "--resource", "MEMORY_MB=4096", "--resource", "VCPU:allocation_ratio=2.0")
    by_class = {row["resource_class"]: row for row in inv}
    assert by_class["VCPU"]["total"] == 8 and by_class["VCPU"]["allocation_ratio"] == 2.0
    assert by_class["MEMORY_MB"]["total"] == 4096

    candidates = pjson(cli, "1.29", "allocation", "candidate", "list", "--resource", "VCPU=1")
    mine = [c for c in candidates if c["resource provider"] == rp["uuid"]]
    assert mine and "VCPU=1" in mine[0]["allocation"]
    assert "VCPU=0/16" in mine[0]["inventory used/capacity"]

    trait = f"CUSTOM_E2E_{uuid.uuid4().hex[:8].upper()}"
    cli.run("--os-placement-api-version", "1.6", "trait", "create", trait)
    traits = pjson(cli, "1.6", "resource", "provider", "trait", "set", "--trait", trait,
                   "--trait", "HW_CPU_X86_AVX2", rp["uuid"])
    assert {t["name"] for t in traits} == {trait, "HW_CPU_X86_AVX2"}
    required = pjson(cli, "1.17", "allocation", "candidate", "list", "--resource", "VCPU=1", "--required", trait)
    assert {c["resource provider"] for c in required} == {rp["uuid"]}

    consumer, project, user = str(uuid.uuid4()), uuid.uuid4().hex, uuid.uuid4().hex
    pjson(cli, "1.12", "resource", "provider", "allocation", "set", consumer, "--allocation",
          f"rp={rp['uuid']},VCPU=2,MEMORY_MB=512", "--project-id", project, "--user-id", user)
    usage = pjson(cli, "1.9", "resource", "usage", "show", project)
    assert {row["resource_class"]: row["usage"] for row in usage} == {"VCPU": 2, "MEMORY_MB": 512}
    rp_usage = pjson(cli, "1.9", "resource", "provider", "usage", "show", rp["uuid"])
    assert {row["resource_class"]: row["usage"] for row in rp_usage} == {"VCPU": 2, "MEMORY_MB": 512}

    # inventory in use cannot be taken away, and the CLI says so
    in_use = cli.run("--os-placement-api-version", "1.20", "resource", "provider", "inventory", "set",
                     rp["uuid"], "--resource", "VCPU=8", check=False)
    assert in_use.returncode != 0 and "409" in in_use.stderr

    cli.run("--os-placement-api-version", "1.12", "resource", "provider", "allocation", "delete", consumer)
    cli.run("resource", "provider", "delete", rp["uuid"])
    gone = cli.run("resource", "provider", "show", rp["uuid"], check=False)
    assert gone.returncode != 0 and "404" in gone.stderr


def test_demo_user_is_refused(cli: Client) -> None:
    refused = cli.run("resource", "provider", "list", cloud="mcloud-demo", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr


# --------------------------------------------------------------------- two worker processes


def _token(url: str, password: str) -> str:
    r = httpx.post(f"{url}/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


def _race(cloud: LiveCloud, units: int = 3, claims: int = 24) -> None:
    base = f"{cloud.url}/placement"
    h = {"X-Auth-Token": _token(cloud.url, cloud.admin_password), "OpenStack-API-Version": "placement 1.39"}
    rp = httpx.post(f"{base}/resource_providers", json={"name": unique("race")}, headers=h).json()["uuid"]
    r = httpx.put(f"{base}/resource_providers/{rp}/inventories", headers=h, json={
        "resource_provider_generation": 0, "inventories": {"VCPU": {"total": units}}})
    assert r.status_code == 200, r.text

    def claim(_: int) -> int:
        # a new connection per claim: the kernel spreads them over both workers
        with httpx.Client(timeout=60) as c:
            return c.put(f"{base}/allocations/{uuid.uuid4()}", headers=h, json={
                "allocations": {rp: {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u",
                "consumer_generation": None, "consumer_type": "INSTANCE"}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(claim, range(claims)))
    assert results.count(204) == units and results.count(409) == claims - units, results
    usages = httpx.get(f"{base}/resource_providers/{rp}/usages", headers=h).json()["usages"]
    assert usages == {"VCPU": units}
    # every worker's candidate index sees the provider full
    for _ in range(6):
        body = httpx.get(f"{base}/allocation_candidates", params={"resources": "VCPU:1", "in_tree": rp},
                         headers=h).json()
        assert body["allocation_requests"] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_racing_claims_across_two_workers(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    if url:
        name = f"placement_{free_port()}"
        host, port = url.split("@")[1].split("/")[0].split(":")
        subprocess.run([str(Path(str(_pg_bin())) / "createdb"), "-h", host, "-p", port, "-U", "mcloud", name],
                       check=True)
        url = url.rsplit("/", 1)[0] + "/" + name
    cloud = LiveCloud(tmp_path / "data", free_port(), database=url, env=FAST_ENV)
    cloud.extra_args = ["--workers", "2"]
    cloud.start()
    try:
        _race(cloud)
    finally:
        assert cloud.stop() in (0, None)
