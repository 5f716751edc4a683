"""Fixtures for every layer. API tests run the ASGI app in-process on SQLite and, when the
``postgres`` database parameter is selected, on a real PostgreSQL the harness starts."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from mcloud import migrations
from mcloud.app import Cloud
from mcloud.core.config import Config
from tests.ceph import CephCluster, ceph_missing
from tests.harness import missing, postgres
from tests.ovn import OvnHarness, ovn_missing

ADMIN_PASSWORD = "admin-secret"
DEMO_PASSWORD = "demo-secret"
# bcrypt's cost is the point of bcrypt; tests use the minimum so that they measure logic, not hashing.
# API tests use the network service's fake driver (no data plane); tests/real drives OVN itself.
TEST_ENV = {"MCLOUD_IDENTITY_PASSWORD_HASH_ROUNDS": "4", "MCLOUD_NETWORK_DRIVER": "fake",
            "MCLOUD_COMPUTE_DRIVER": "fake", "MCLOUD_VOLUME_DRIVER": "fake"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--databases", default=os.environ.get("MCLOUD_TEST_DATABASES", "sqlite"),
                     help="comma-separated databases for the API tests: sqlite, postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres() as url:
        yield url


@pytest.fixture(scope="session")
def ceph() -> Iterator[CephCluster]:
    """A private single-node Ceph cluster (tests/ceph.py) for the session: ``conf``, ``pools``
    (``images``), ``create_pool(name)``."""
    if (what := ceph_missing()) is not None:
        missing(what)
    with CephCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def ovn() -> Iterator[OvnHarness]:
    """A private OVN/OVS data plane (tests/ovn.py) for the session, its daemons in a network
    namespace of their own: ``driver_options()``, ``host`` (plug ports), ``ns`` (test hosts),
    ``outside(address)`` (a namespace beyond br-ex)."""
    if (what := ovn_missing()) is not None:
        missing(what)
    with OvnHarness() as harness:
        yield harness


#: the order the suite's parts start in (the longest first), so that under pytest-xdist (tools/test.sh
#: runs two workers, ``--dist loadscope``: each test module, or class, one unit of work whose module
#: fixtures are made once) the long Tempest runs and real guests do not start last and leave one
#: worker alone at the end
_RANKS = ("tests/compat/", "tests/real/", "tests/e2e/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tempest's runs first, then the real components, the real clients, the rest."""
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(_RANKS) if item.nodeid.startswith(prefix)), len(_RANKS))

    items.sort(key=rank)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames:
        names = [d.strip() for d in metafunc.config.getoption("--databases").split(",") if d.strip()]
        metafunc.parametrize("database", names, scope="session", indirect=True)


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'mcloud.db'}"


def make_config(data_dir: Path, database: str) -> Config:
    return Config(data_dir=data_dir, overrides={"database": {"url": database}},
                  environ={**TEST_ENV, "MCLOUD_SERVER_PORT": "8080"})


@pytest.fixture(scope="session")
async def cloud(database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cloud]:
    """One migrated, bootstrapped cloud per database for the whole session. pytest may stop it and
    make it again when the tests of the two databases take turns (as the xdist workers hand out
    modules): the data dir, with the keys that encrypted what the database holds (credentials,
    tokens), is then the one it had before."""
    data_dir = tmp_path_factory.getbasetemp() / f"data-{hashlib.sha256(database.encode()).hexdigest()[:12]}"
    data_dir.mkdir(exist_ok=True)
    config = make_config(data_dir, database)
    migrations.upgrade(config.database_url)
    c = Cloud(config)
    await c.bootstrap(ADMIN_PASSWORD, DEMO_PASSWORD)
    yield c
    await c.close()


@pytest.fixture
async def client(cloud: Cloud) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mcloud.test") as c:
        yield c


async def get_token(client: httpx.AsyncClient, user: str, password: str, project: str | None = None,
                    domain: str | None = None, system: bool = False) -> str:
    auth: dict = {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    elif domain:
        auth["scope"] = {"domain": {"id": domain}}
    elif system:
        auth["scope"] = {"system": {"all": True}}
    r = await client.post("/identity/v3/auth/tokens", json={"auth": auth})
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


@pytest.fixture
async def admin_token(client: httpx.AsyncClient) -> str:
    return await get_token(client, "admin", ADMIN_PASSWORD, project="admin")


