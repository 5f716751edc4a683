"""`mcloud up` on a real PostgreSQL, and with several worker processes: caches in every
process must see a change made through any other at once (generation counters)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.harness import LiveCloud, _pg_bin, free_port

pytestmark = pytest.mark.real

FAST = {"MCLOUD_IDENTITY_PASSWORD_HASH_ROUNDS": "4"}


def _token(url: str, user: str, password: str, project: str) -> str:
    r = httpx.post(f"{url}/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


def _coherent_across_workers(cloud: LiveCloud) -> None:
    admin = _token(cloud.url, "admin", cloud.admin_password, "admin")
    victim = _token(cloud.url, "admin", cloud.admin_password, "admin")
    headers = {"X-Auth-Token": admin, "X-Subject-Token": victim}
    # new connections each time, so the kernel spreads them over the workers
    for _ in range(10):
        assert httpx.get(f"{cloud.url}/identity/v3/auth/tokens", headers=headers).status_code == 200
    assert httpx.delete(f"{cloud.url}/identity/v3/auth/tokens", headers=headers).status_code == 204
    for _ in range(20):
        assert httpx.get(f"{cloud.url}/identity/v3/auth/tokens", headers=headers).status_code == 404
    # a project created through one worker is listed by all
    r = httpx.post(f"{cloud.url}/identity/v3/projects", headers={"X-Auth-Token": admin},
                   json={"project": {"name": "seen-everywhere"}})
    assert r.status_code == 201
    for _ in range(10):
        names = [p["name"] for p in httpx.get(f"{cloud.url}/identity/v3/projects",
                                              headers={"X-Auth-Token": admin}).json()["projects"]]
        assert "seen-everywhere" in names


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_workers_share_one_truth(backend, request, tmp_path):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    if url:  # a fresh database per test
        name = f"workers_{free_port()}"
        host_port = url.split("@")[1].split("/")[0]
        host, port = host_port.split(":")
        subprocess.run([str(Path(str(_pg_bin())) / "createdb"), "-h", host, "-p", port, "-U", "mcloud", name], check=True)
        url = url.rsplit("/", 1)[0] + "/" + name
    cloud = LiveCloud(tmp_path / "data", free_port(), database=url, env=FAST)
    cloud.extra_args = ["--workers", "2"]
    cloud.start()
    try:
        _coherent_across_workers(cloud)
        listing = cloud.openstack("project", "list", json_out=True)
        assert "seen-everywhere" in listing.stdout
    finally:
        assert cloud.stop() in (0, None)
