"""The compute service's resources called from Python on SQLite: flavors (visibility of private
ones, paging, extra-spec checks), keypairs (import, generation, fingerprints), quotas read from
identity's unified limits and counted from servers, server groups and their members, aggregates
and the zones they make."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from mcloud import migrations
from mcloud.compute import models as cm
from mcloud.compute.config import ComputeConfig
from mcloud.compute.service import Caller
from mcloud.compute.service_resources import DEFAULT_FLAVORS, ResourcesService, fingerprint_of
from mcloud.core.db import Database
from mcloud.core.errors import APIError, BadRequest
from mcloud.core.microversions import Version
from mcloud.identity import models as im
from mcloud.identity.config import IdentityConfig
from mcloud.identity.service import IdentityService

ADMIN = Caller("admin-user", "admin-project", frozenset({"admin"}), is_admin=True, version=Version(2, 104))


def user(project: str, name: str = "u", version: tuple[int, int] = (2, 104)) -> Caller:
    return Caller(f"{name}-{project}", project, frozenset({"member"}), version=Version(*version))


class Hosts:
    """The hosts registry as the resources part asks it (seam 4): known hosts and their state."""

    def __init__(self) -> None:
        self.hosts = {"host-a": SimpleNamespace(up=True, enabled=True),
                      "host-b": SimpleNamespace(up=True, enabled=True),
                      "host-c": SimpleNamespace(up=False, enabled=False)}

    async def candidates_state(self, session: Any) -> dict[str, Any]:
        return self.hosts


@pytest.fixture(scope="module")
async def res(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ResourcesService]:
    data = Path(tmp_path_factory.mktemp("resources"))
    url = f"sqlite:///{data / 'mcloud.db'}"
    migrations.upgrade(url)
    db = Database(url)
    identity = IdentityService(db, IdentityConfig(password_hash_rounds=4), data)
    await identity.bootstrap(admin_password="a", demo_password="d", public_url="http://mcloud.test", region="RegionOne",
                             services=[("compute", "nova", "Compute", "http://mcloud.test/compute/v2.1")])
    async with db.write() as session:
        for project in ("p2", "quota-project", "sg"):
            await identity.create_project(session, name=project, id=project, domain_id="default")
    compute = SimpleNamespace(db=db, config=ComputeConfig(), identity=identity, hosts=Hosts(), placement=None)
    yield ResourcesService(compute)
    await db.dispose()


async def call(res: ResourcesService, method: str, *args: Any, **kw: Any) -> Any:
    async with res.compute.db.write() as session:
        return await getattr(res, method)(session, *args, **kw)


async def fails(status: int, coro: Any) -> APIError:
    with pytest.raises(APIError) as info:
        await coro
    assert info.value.status == status, info.value.message
    return info.value


async def test_default_flavors_once_and_for_boot(res: ResourcesService) -> None:
    assert await call(res, "make_default_flavors") == len(DEFAULT_FLAVORS)
    assert await call(res, "make_default_flavors") == 0
    nano = await call(res, "get_flavor_for_boot", user("p1"), "42")
    assert (nano["name"], nano["memory_mb"], nano["vcpus"], nano["root_gb"]) == ("m1.nano", 192, 1, 1)
    assert nano["extra_specs"] == {"hw_rng:allowed": "True"}
    # a flavor reference may be a URL
    assert (await call(res, "get_flavor_for_boot", user("p1"), "http://x/compute/v2.1/flavors/1"))["name"] == "m1.tiny"
    err = await fails(400, call(res, "get_flavor_for_boot", user("p1"), "nope"))
    assert err.message == "Flavor nope could not be found."


async def test_private_flavors_are_seen_only_by_projects_given_access(res: ResourcesService) -> None:
    view = await call(res, "create_flavor", ADMIN, name="private-1", ram=64, vcpus=1, disk=0, flavorid="priv1",
                      is_public=False)
    assert view.flavor.is_public is False
    names = lambda page: [v.flavor.name for v in page.flavors]  # noqa: E731
    assert "private-1" not in names(await call(res, "list_flavors", user("p2")))
    await fails(404, call(res, "get_flavor", user("p2"), "priv1"))
    await fails(400, call(res, "get_flavor_for_boot", user("p2"), "priv1"))
    assert await call(res, "add_flavor_access", ADMIN, "priv1", "p2") == ["p2"]
    await fails(409, call(res, "add_flavor_access", ADMIN, "priv1", "p2"))
    assert "private-1" in names(await call(res, "list_flavors", user("p2")))
    assert (await call(res, "get_flavor_for_boot", user("p2"), "priv1"))["name"] == "private-1"
    assert "private-1" not in names(await call(res, "list_flavors", user("p3")))
    # the admin's list: public by default, private ones with is_public=False, all with None
    assert "private-1" not in names(await call(res, "list_flavors", ADMIN))
    assert names(await call(res, "list_flavors", ADMIN, is_public=False)) == ["private-1"]
    assert "private-1" in names(await call(res, "list_flavors", ADMIN, is_public=None))
    await fails(409, call(res, "add_flavor_access", ADMIN, "1", "p2"))  # public flavor (2.7+)
    assert await call(res, "remove_flavor_access", ADMIN, "priv1", "p2") == []
    await fails(404, call(res, "remove_flavor_access", ADMIN, "priv1", "p2"))
    await fails(404, call(res, "flavor_access", ADMIN, "1"))
    await call(res, "delete_flavor", ADMIN, "priv1")
    await fails(404, call(res, "delete_flavor", ADMIN, "priv1"))


async def test_flavor_create_rules_and_paging(res: ResourcesService) -> None:
    await fails(409, call(res, "create_flavor", ADMIN, name="m1.tiny", ram=1, vcpus=1, disk=0))
    await fails(409, call(res, "create_flavor", ADMIN, name="other", ram=1, vcpus=1, disk=0, flavorid="1"))
    await fails(400, call(res, "create_flavor", ADMIN, name="zero", ram=0, vcpus=1, disk=0))
    await fails(400, call(res, "create_flavor", ADMIN, name="   ", ram=1, vcpus=1, disk=0))
    auto = await call(res, "create_flavor", ADMIN, name="  auto id  ", ram=1, vcpus=1, disk=0)
    assert auto.flavor.name == "auto id" and uuid.UUID(auto.flavor.flavorid)
    big = await call(res, "list_flavors", user("p1"), min_ram=8192)
    assert [v.flavor.name for v in big.flavors] == ["m1.large", "m1.xlarge"]
    by_ram = await call(res, "list_flavors", user("p1"), sort_key="memory_mb", sort_dir="desc", limit=3)
    assert [v.flavor.memory_mb for v in by_ram.flavors] == [16384, 8192, 4096]
    rest = await call(res, "list_flavors", user("p1"), sort_key="memory_mb", sort_dir="desc",
                      marker=by_ram.flavors[-1].flavor.flavorid)
    seen = [v.flavor.flavorid for v in by_ram.flavors + rest.flavors]
    assert len(seen) == len(set(seen)) == len(DEFAULT_FLAVORS) + 1
    await fails(400, call(res, "list_flavors", user("p1"), marker="no-such"))
    # descriptions (2.55) sort with NULLs first, and paging over them still sees every flavor once
    await call(res, "update_flavor", ADMIN, auto.flavor.flavorid, "described")
    first = await call(res, "list_flavors", ADMIN, sort_key="description", limit=5)
    after = await call(res, "list_flavors", ADMIN, sort_key="description", marker=first.flavors[-1].flavor.flavorid)
    ids = [v.flavor.flavorid for v in first.flavors + after.flavors]
    assert len(ids) == len(set(ids)) == len(DEFAULT_FLAVORS) + 1 and ids[-1] == auto.flavor.flavorid
    await call(res, "delete_flavor", ADMIN, auto.flavor.flavorid)


async def test_extra_specs_are_checked_from_2_86(res: ResourcesService) -> None:
    old = Caller("a", "admin-project", is_admin=True, version=Version(2, 85))
    assert await call(res, "set_extra_specs", old, "1", {"hw:cpu_policy": "sideways", "n": 5}) == \
        {"hw:cpu_policy": "sideways", "n": "5"}
    err = await fails(400, call(res, "set_extra_specs", ADMIN, "1", {"hw:cpu_policy": "sideways"}))
    assert err.message == "Validation failed; 'sideways' is not one of: dedicated, shared, mixed."
    err = await fails(400, call(res, "set_extra_specs", ADMIN, "1", {"hw:no_such_thing": "1"}))
    assert "does not appear to be a valid extra spec" in err.message
    await fails(400, call(res, "set_extra_specs", ADMIN, "1", {"hw:numa_nodes": "0"}))
    await fails(400, call(res, "set_extra_specs", ADMIN, "1", {"resources:VCPU": "x"}))
    await fails(400, call(res, "set_extra_specs", ADMIN, "1", {"trait:HW_CPU_X86_AVX": "maybe"}))
    good = {"hw:cpu_policy": "dedicated", "hw:numa_nodes": "2", "hw:numa_cpus.0": "0-1", "resources1:VCPU": "2",
            "resources:CUSTOM_GPU": "1", "trait:HW_CPU_X86_AVX": "required", "hw_rng:allowed": "false",
            "aggregate_instance_extra_specs:ssd": "true", "mine:anything": "goes", "plain": "too"}
    assert await call(res, "set_extra_specs", ADMIN, "1", good) == good
    specs = await call(res, "extra_specs", user("p1"), "1")
    assert specs["hw:cpu_policy"] == "dedicated" and specs["n"] == "5"
    assert await call(res, "extra_spec", user("p1"), "1", "plain") == "too"
    await call(res, "delete_extra_spec", ADMIN, "1", "plain")
    await fails(404, call(res, "extra_spec", user("p1"), "1", "plain"))
    await fails(404, call(res, "delete_extra_spec", ADMIN, "1", "plain"))
    for key in list(good) + ["n"]:
        if key != "plain":
            await call(res, "delete_extra_spec", ADMIN, "1", key)
    assert await call(res, "extra_specs", user("p1"), "1") == {}
    await call(res, "set_extra_specs", ADMIN, "1", {"hw_rng:allowed": "True"})


async def test_keypairs_import_generate_and_belong_to_their_user(res: ResourcesService) -> None:
    alice, bob = user("kp", "alice"), user("kp", "bob")
    keypair, private = await call(res, "create_keypair", alice, "gen")
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert keypair.public_key.startswith("ssh-rsa ") and keypair.public_key.endswith(" Generated-by-Nova")
    # the private key matches the public key, and the fingerprint is Nova's (MD5 of the key blob)
    key = serialization.load_pem_private_key(private.encode(), None)
    blob = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert keypair.public_key.startswith(blob.decode())
    raw = hashlib.md5(base64.b64decode(blob.split()[1])).hexdigest()  # noqa: S324
    assert keypair.fingerprint == ":".join(raw[i:i + 2] for i in range(0, 32, 2))
    imported, none = await call(res, "create_keypair", bob, "gen", public_key=keypair.public_key)
    assert none is None and imported.fingerprint == keypair.fingerprint  # another user, the same name
    await fails(409, call(res, "create_keypair", alice, " gen "))
    await fails(400, call(res, "create_keypair", alice, "bad", public_key="ssh-rsa not-base64"))
    await fails(404, call(res, "show_keypair", bob, "nope"))
    assert [k.name for k in await call(res, "list_keypairs", alice)] == ["gen"]
    assert await call(res, "get_keypair", alice.user_id, "gen") == ("gen", keypair.public_key, "ssh")
    await fails(400, call(res, "get_keypair", alice.user_id, "nope"))
    x509, cert_key = await call(res, "create_keypair", alice, "cert", key_type="x509")
    assert x509.public_key.startswith("-----BEGIN CERTIFICATE-----") and cert_key
    assert x509.fingerprint == fingerprint_of(x509.public_key, "x509") and len(x509.fingerprint) == 59
    await fails(400, call(res, "create_keypair", alice, "x2", public_key="not a cert", key_type="x509"))
    page = await call(res, "list_keypairs", alice, limit=1)
    assert [k.name for k in page] == ["gen"]
    assert [k.name for k in await call(res, "list_keypairs", alice, marker="gen")] == ["cert"]
    await call(res, "delete_keypair", alice, "gen")
    await fails(404, call(res, "delete_keypair", alice, "gen"))
    assert (await call(res, "show_keypair", bob, "gen")).name == "gen"


async def add_servers(res: ResourcesService, project: str, count: int, vcpus: int, ram: int,
                      deleted: bool = False) -> list[str]:
    uuids = [str(uuid.uuid4()) for _ in range(count)]
    async with res.compute.db.write() as session:
        for u in uuids:
            session.add(cm.Instance(uuid=u, project_id=project, user_id="u", flavor={"vcpus": vcpus, "memory_mb": ram},
                                    deleted=deleted))
    return uuids


async def test_quotas_layers_usage_and_checks(res: ResourcesService) -> None:
    project = "quota-project"
    limits = await call(res, "project_limits", project)
    assert (limits["instances"], limits["cores"], limits["ram"], limits["key_pairs"]) == (10, 20, 51200, 100)
    await add_servers(res, project, 2, 4, 1024)
    await add_servers(res, project, 5, 4, 1024, deleted=True)  # deleted servers count for nothing
    assert await call(res, "instance_usage", project) == {"instances": 2, "cores": 8, "ram": 2048}
    await call(res, "check_quota", project, "u", {"instances": 1, "cores": 12, "ram": 1024})
    err = await fails(403, call(res, "check_quota", project, "u", {"instances": 1, "cores": 13}))
    assert err.message == "Quota exceeded for cores: Requested 13, but already used 8 of 20 cores"
    # min/max count: as many as fit
    assert await call(res, "check_instances_quota", project, "u", {"vcpus": 4, "memory_mb": 1}, 1, 5) == 3
    err = await fails(403, call(res, "check_instances_quota", project, "u", {"vcpus": 4, "memory_mb": 1}, 4, 5))
    assert err.message.startswith("Quota exceeded for cores: Requested 20, but already used 8 of 20 cores")
    # identity's unified limits: a registered default, then the project's own limit
    identity = res.compute.identity
    async with res.compute.db.write() as session:
        service = (await session.execute(sa.select(im.Service).where(im.Service.type == "compute"))).scalar_one()
        await identity.create_registered_limits(session, [{"service_id": service.id, "resource_name": "class:VCPU",
                                                           "default_limit": 40}])
    assert (await call(res, "project_limits", project))["cores"] == 40
    assert (await call(res, "default_limits"))["cores"] == 40
    # os-quota-sets wins over identity for its project
    err = await fails(400, call(res, "update_quotas", ADMIN, project, {"cores": 7}))
    assert err.message == "Quota limit 7 for cores must be greater than or equal to already used and reserved 8."
    limits = await call(res, "update_quotas", ADMIN, project, {"cores": 7, "force": True})
    assert limits["cores"] == 7
    limits = await call(res, "update_quotas", ADMIN, project, {"cores": -1, "instances": "3"})
    assert (limits["cores"], limits["instances"]) == (-1, 3)
    await fails(403, call(res, "check_quota", project, "u", {"instances": 2}))
    detail = await call(res, "show_quotas", ADMIN, project, detail=True)
    assert detail["instances"] == {"limit": 3, "in_use": 2, "reserved": 0}
    await call(res, "delete_quotas", ADMIN, project)
    assert (await call(res, "project_limits", project))["cores"] == 40
    # the default quota class where identity registers nothing
    await call(res, "update_quota_class", ADMIN, "default", {"key_pairs": 1, "metadata_items": 2})
    assert (await call(res, "show_quota_class", ADMIN, "default"))["key_pairs"] == 1
    kp_user = Caller("kp-limited", project, frozenset({"member"}), version=Version(2, 1))
    await call(res, "create_keypair", kp_user, "first")
    err = await fails(403, call(res, "create_keypair", kp_user, "second"))
    assert err.message == "Quota exceeded, too many key pairs."
    err = await fails(403, call(res, "check_quota", project, "u", {"metadata_items": 3}))
    assert "Maximum number of metadata items exceeds 2" in err.message
    await call(res, "update_quota_class", ADMIN, "default", {"key_pairs": 100, "metadata_items": 128})
    absolute = await call(res, "absolute_limits", Caller("u", project, version=Version(2, 1)))
    assert absolute["totalInstancesUsed"] == 2 and absolute["maxTotalCores"] == 40
    assert "maxImageMeta" in absolute and "maxSecurityGroups" in absolute
    absolute = await call(res, "absolute_limits", Caller("u", project, version=Version(2, 57)))
    assert "maxImageMeta" not in absolute and "maxPersonality" not in absolute and "maxSecurityGroups" not in absolute


async def test_server_groups_members_and_quota(res: ResourcesService) -> None:
    me, other = user("sg"), user("sg-other")
    group = await call(res, "create_server_group", me, "g", "anti-affinity", {"max_server_per_host": "2"})
    assert (group.policy, group.rules, group.members) == ("anti-affinity", {"max_server_per_host": 2}, [])
    await fails(400, call(res, "create_server_group", me, "g2", "affinity", {"max_server_per_host": 2}))
    servers = await add_servers(res, "sg", 3, 1, 1)
    await call(res, "add_group_members", group.id, servers[:2])
    shown = await call(res, "show_server_group", me, group.id)
    assert shown.members == sorted(servers[:2])
    assert (await call(res, "group_for_boot", me, group.id)).policy == "anti-affinity"
    await fails(400, call(res, "group_for_boot", other, group.id))
    assert [g.id for g in await call(res, "list_server_groups", other)] == []
    assert group.id in [g.id for g in await call(res, "list_server_groups", ADMIN, all_projects=True)]
    assert (await call(res, "group_of_instance", servers[0])).id == group.id
    # a deleted server is no member any more; a removed one neither
    async with res.compute.db.write() as session:
        (await session.get(cm.Instance, (await _instance_id(session, servers[0])))).deleted = True
    assert (await call(res, "show_server_group", me, group.id)).members == [servers[1]]
    await call(res, "remove_instance_from_groups", servers[1])
    assert (await call(res, "show_server_group", me, group.id)).members == []
    await call(res, "update_quotas", ADMIN, "sg", {"server_group_members": 1, "server_groups": 1})
    await fails(403, call(res, "add_group_members", group.id, servers[1:3]))
    err = await fails(403, call(res, "create_server_group", me, "g3", "affinity"))
    assert err.message == "Quota exceeded, too many server groups."
    await call(res, "delete_server_group", me, group.id)
    await fails(404, call(res, "show_server_group", me, group.id))


async def _instance_id(session: Any, instance_uuid: str) -> int:
    return (await session.execute(sa.select(cm.Instance.id).where(cm.Instance.uuid == instance_uuid))).scalar_one()


async def test_aggregates_make_zones_and_keep_a_host_in_one(res: ResourcesService) -> None:
    assert await call(res, "zone_of_host", "host-a") == "nova"
    assert await call(res, "hosts_in_zone", "nova") == {"host-a", "host-b", "host-c"}
    agg = await call(res, "create_aggregate", ADMIN, "rack1", "az1")
    assert agg.availability_zone == "az1" and agg.hosts == []
    await fails(409, call(res, "create_aggregate", ADMIN, "rack1"))
    await fails(404, call(res, "add_aggregate_host", ADMIN, agg.id, "no-such-host"))
    agg = await call(res, "add_aggregate_host", ADMIN, agg.id, "host-a")
    assert agg.hosts == ["host-a"]
    await fails(409, call(res, "add_aggregate_host", ADMIN, agg.id, "host-a"))
    assert await call(res, "zone_of_host", "host-a") == "az1"
    assert await call(res, "hosts_in_zone", "az1") == {"host-a"}
    assert await call(res, "hosts_in_zone", "nova") == {"host-b", "host-c"}
    # a second aggregate of another zone cannot take host-a; one without a zone can
    other = await call(res, "create_aggregate", ADMIN, "rack2", "az2")
    err = await fails(409, call(res, "add_aggregate_host", ADMIN, other.id, "host-a"))
    assert "One or more hosts already in availability zone(s) ['az1']" in err.message
    plain = await call(res, "create_aggregate", ADMIN, "ssd")
    await call(res, "add_aggregate_host", ADMIN, plain.id, "host-a")
    await fails(400, call(res, "set_aggregate_metadata", ADMIN, plain.id, {"availability_zone": "az2"}))
    view = await call(res, "set_aggregate_metadata", ADMIN, plain.id, {"ssd": "true", "x": "1"})
    assert view.metadata == {"ssd": "true", "x": "1"}
    view = await call(res, "set_aggregate_metadata", ADMIN, plain.id, {"x": None})
    assert view.metadata == {"ssd": "true"}
    by_host = await call(res, "host_aggregates")
    assert sorted(a.name for a in by_host["host-a"]) == ["rack1", "ssd"]
    await fails(400, call(res, "update_aggregate", ADMIN, agg.id, availability_zone=""))
    await fails(409, call(res, "update_aggregate", ADMIN, other.id, name="rack1"))
    # a host with servers does not change zone
    async with res.compute.db.write() as session:
        session.add(cm.Instance(uuid=str(uuid.uuid4()), project_id="x", user_id="u", flavor={}, host="host-a"))
    await fails(400, call(res, "update_aggregate", ADMIN, agg.id, availability_zone="az9"))
    await fails(400, call(res, "delete_aggregate", ADMIN, agg.id))  # not empty
    await fails(404, call(res, "remove_aggregate_host", ADMIN, agg.id, "host-b"))
    await call(res, "remove_aggregate_host", ADMIN, agg.id, "host-a")
    assert await call(res, "zone_of_host", "host-a") == "nova"
    await fails(400, call(res, "show_aggregate", ADMIN, "abc"))
    await fails(404, call(res, "show_aggregate", ADMIN, 999999))
    zones = await call(res, "availability_zones", ADMIN)
    assert {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None} in zones
    detail = await call(res, "availability_zones", ADMIN, detail=True)
    nova = next(z for z in detail if z["zoneName"] == "nova")
    assert set(nova["hosts"]) == {"host-a", "host-b"} and nova["hosts"]["host-a"]["nova-compute"]["active"] is True
    for a in (agg, other):
        await call(res, "delete_aggregate", ADMIN, a.id)
    await call(res, "remove_aggregate_host", ADMIN, plain.id, "host-a")
    await call(res, "delete_aggregate", ADMIN, plain.id)


def test_extra_spec_table_covers_nova_namespaces() -> None:
    from mcloud.compute.extra_specs_resources import validate  # noqa: PLC0415

    validate("hw:mem_page_size", "2MB")
    validate("hw:mem_page_size", "large")
    validate("quota:disk_read_bytes_sec", "10")
    validate("capabilities:cpu_info:features", "x")
    with pytest.raises(BadRequest):
        validate("quota:disk_read_bytes_sec", "-1")
    with pytest.raises(BadRequest):
        validate("os:secure_boot", "maybe")
