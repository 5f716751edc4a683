"""Who may do what in placement, under Placement's secure-RBAC defaults: admin or service for
everything (the reshaper: service only), a project's reader its own /usages, nobody else
anything; a system-scoped token fails every rule (they are project-scoped)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.conftest import Keystone
from tests.api.placement_helpers import Placement, assert_fault, uniq


@pytest.fixture
def pl(client: httpx.AsyncClient, admin_token: str) -> Placement:
    return Placement(client, admin_token)


async def test_members_and_readers_get_403_on_admin_apis(pl: Placement, client: httpx.AsyncClient) -> None:
    ks = Keystone(client, pl.token)
    _, project, member = await ks.member("member")
    _, _, reader = await ks.member("reader", project=project)
    rp = (await pl.provider(VCPU=4))["uuid"]
    consumer = str(uuid.uuid4())
    await pl.allocate(consumer, {rp: {"VCPU": 1}}, project=project["id"])
    requests = [
        ("GET", "/resource_providers", None), ("POST", "/resource_providers", {"name": uniq()}),
        ("GET", f"/resource_providers/{rp}", None), ("PUT", f"/resource_providers/{rp}", {"name": uniq()}),
        ("DELETE", f"/resource_providers/{rp}", None),
        ("GET", f"/resource_providers/{rp}/inventories", None),
        ("PUT", f"/resource_providers/{rp}/inventories", {"resource_provider_generation": 0, "inventories": {}}),
        ("GET", f"/resource_providers/{rp}/usages", None), ("GET", f"/resource_providers/{rp}/allocations", None),
        ("GET", f"/resource_providers/{rp}/traits", None), ("GET", f"/resource_providers/{rp}/aggregates", None),
        ("GET", "/resource_classes", None), ("GET", "/traits", None), ("PUT", "/traits/CUSTOM_EVIL", None),
        ("GET", f"/allocations/{consumer}", None), ("DELETE", f"/allocations/{consumer}", None),
        ("POST", "/allocations", {}), ("GET", "/allocation_candidates?resources=VCPU:1", None),
        ("POST", "/reshaper", {}),
    ]
    for token in (member, reader):
        who = pl.as_(token)
        for method, path, body in requests:
            assert_fault(await who.request(method, path, body), 403)
    # nothing changed
    assert (await pl.get(f"/allocations/{consumer}", expect=200)).json()["allocations"][rp]["resources"] == {"VCPU": 1}
    await pl.get("/traits/CUSTOM_EVIL", expect=404)


async def test_project_reader_sees_its_own_usages_only(pl: Placement, client: httpx.AsyncClient) -> None:
    ks = Keystone(client, pl.token)
    _, project, member = await ks.member("member")
    _, other, _ = await ks.member("member")
    rp = (await pl.provider(VCPU=4))["uuid"]
    await pl.allocate(str(uuid.uuid4()), {rp: {"VCPU": 2}}, project=project["id"])
    mine = (await pl.as_(member).get("/usages", params={"project_id": project["id"]}, expect=200)).json()
    assert mine["usages"] == {"INSTANCE": {"VCPU": 2, "consumer_count": 1}}
    assert_fault(await pl.as_(member).get("/usages", params={"project_id": other["id"]}), 403)
    assert_fault(await pl.as_(member).get("/usages"), 403)


async def test_system_scope_fails_project_scoped_rules(pl: Placement, client: httpx.AsyncClient) -> None:
    ks = Keystone(client, pl.token)
    user = await ks.make_user()
    await ks.grant(user["id"], "admin", system=True)
    system_admin = await ks.token_for(user["id"], user["password"], system=True)
    assert_fault(await pl.as_(system_admin).get("/resource_providers"), 403)


async def test_service_role_may_do_what_services_do(pl: Placement, client: httpx.AsyncClient) -> None:
    from tests.api.test_placement import service_token

    service = await service_token(client, pl)
    rp = (await service.provider(VCPU=2))["uuid"]
    await service.allocate(str(uuid.uuid4()), {rp: {"VCPU": 1}})
    assert len((await service.candidates(resources="VCPU:1", in_tree=rp))["allocation_requests"]) == 1
