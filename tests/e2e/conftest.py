"""End-to-end fixtures: one real `mcloud up` process for the session, driven by the real
`openstack` CLI (a subprocess, ``-f json`` parsed) and by openstacksdk.

Every client reads the live cloud's own clouds.yaml (OS_CLIENT_CONFIG_FILE), never ~/.config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.harness import LiveCloud, free_port

ADMIN_PASSWORD = "admin-secret"
# bcrypt's cost is the point of bcrypt; e2e tests use the minimum except the one that checks the default.
FAST_ENV = {"MCLOUD_IDENTITY_PASSWORD_HASH_ROUNDS": "4"}
OPENSTACK = str(Path(sys.executable).parent / "openstack")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Client:
    """The `openstack` CLI against one live cloud, as a user sees it."""

    def __init__(self, cloud: LiveCloud, empty_config: Path):
        self.cloud = cloud
        self.empty_config = empty_config

    @property
    def auth_url(self) -> str:
        return self.cloud.url + "/identity"

    @property
    def clouds_yaml(self) -> dict[str, Any]:
        return yaml.safe_load((self.cloud.data_dir / "clouds.yaml").read_text())

    def password(self, cloud: str) -> str:
        return self.clouds_yaml["clouds"][cloud]["auth"]["password"]

    def run(self, *args: str, cloud: str = "mcloud", check: bool = True) -> subprocess.CompletedProcess[str]:
        """`openstack --os-cloud CLOUD ARGS...`; raises with stderr when it fails and ``check``."""
        return self.cloud.openstack(*args, cloud=cloud, check=check)

    def json(self, *args: str, cloud: str = "mcloud") -> Any:
        """`openstack --os-cloud CLOUD ARGS... -f json`, parsed."""
        out = self.cloud.openstack(*args, cloud=cloud, json_out=True).stdout
        return json.loads(out)

    def bare(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """`openstack ARGS...` with no clouds.yaml at all: every auth option is on the command line."""
        env = self.cloud.env
        env["OS_CLIENT_CONFIG_FILE"] = str(self.empty_config)
        result = subprocess.run([OPENSTACK, "--os-auth-url", self.auth_url, "--os-identity-api-version", "3",
                                 *args], capture_output=True, text=True, env=env, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def bare_json(self, *args: str) -> Any:
        return json.loads(self.bare(*args, "-f", "json", check=True).stdout)

    def api_token(self, cloud: str = "mcloud") -> str:
        """A project token for ``cloud``'s user, straight from the API (much faster than the CLI)."""
        auth = self.clouds_yaml["clouds"][cloud]["auth"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "domain": {"id": auth["user_domain_id"]}, "password": auth["password"]}}},
            "scope": {"project": {"name": auth["project_name"], "domain": {"id": auth["project_domain_id"]}}}}}
        r = httpx.post(self.auth_url + "/v3/auth/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    def password_args(self, user: str, password: str, domain: str = "default") -> list[str]:
        return ["--os-auth-type", "password", "--os-username", user, "--os-password", password,
                "--os-user-domain-id", domain]


def connect(clouds_yaml: Path, cloud: str = "mcloud"):
    """openstack.connect(cloud=...) reading exactly ``clouds_yaml`` (OS_CLIENT_CONFIG_FILE), whatever the
    process environment says."""
    import openstack

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("OS_")]:
            mp.delenv(key)
        mp.setenv("OS_CLIENT_CONFIG_FILE", str(clouds_yaml))
        conn = openstack.connect(cloud=cloud)
    # It must be this clouds.yaml that was read, not one in ~/.config or /etc/openstack.
    assert conn.config.config["auth"]["auth_url"] == yaml.safe_load(clouds_yaml.read_text())[
        "clouds"][cloud]["auth"]["auth_url"]
    return conn


@pytest.fixture(scope="session")
def live_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    """One real `mcloud up` for the whole e2e session (the CLI gets OS_CLIENT_CONFIG_FILE from LiveCloud.env)."""
    data_dir = tmp_path_factory.mktemp("e2e-cloud")
    cloud = LiveCloud(data_dir, free_port(), admin_password=ADMIN_PASSWORD, env=FAST_ENV)
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(scope="session")
def empty_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("no-clouds") / "clouds.yaml"
    path.write_text("clouds: {}\n")
    return path


@pytest.fixture(scope="session")
def cli(live_cloud: LiveCloud, empty_config: Path) -> Client:
    return Client(live_cloud, empty_config)


@pytest.fixture(scope="session")
def sdk(live_cloud: LiveCloud):
    """openstacksdk's ``openstack.connect(cloud='mcloud')``, loaded from the live cloud's clouds.yaml."""
    conn = connect(live_cloud.data_dir / "clouds.yaml")
    yield conn
    conn.close()
