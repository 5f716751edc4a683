"""Isolation between projects, and sharing as Neutron's RBAC says: a project cannot see or attach
to another project's private network, port or security group; a network shared with one project
(access_as_shared) is usable by that project only; a wildcard share or an external network
(access_as_external) is seen by all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.network_helpers import World, assert_fault, make_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[World]:
    async with make_world(cloud) as world:
        yield world


async def test_private_resources_are_invisible_to_other_projects(w: World) -> None:
    a, b = w["member"], w["other"]
    net, sub = await a.net_with_subnet()
    port = await a.port(net["id"])
    for path, kind in ((f"/networks/{net['id']}", "NetworkNotFound"), (f"/subnets/{sub['id']}", "SubnetNotFound"),
                       (f"/ports/{port['id']}", "PortNotFound")):
        assert_fault(await b.get(path), 404, kind)
        assert_fault(await b.put(path, {path.split("/")[1][:-1]: {"name": "stolen"}}), 404, kind)
        assert_fault(await b.delete(path), 404, kind)
    assert net["id"] not in await b.ids("networks")
    assert sub["id"] not in await b.ids("subnets")
    assert port["id"] not in await b.ids("ports")
    assert_fault(await b.post("/ports", {"port": {"network_id": net["id"]}}), 404, "NetworkNotFound")
    assert_fault(await b.post("/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.77.0.0/24",
                                                      "ip_version": 4}}), 404, "NetworkNotFound")
    # a project cannot make things in another project's name
    assert_fault(await b.post("/networks", {"network": {"project_id": w.projects["a"]}}), 400)
    # the admin sees everything
    assert (await w.admin.get(f"/ports/{port['id']}", expect=200)).json()["port"]["project_id"] == a.project_id


async def test_security_groups_of_another_project_cannot_be_attached(w: World) -> None:
    a, b = w["member"], w["other"]
    group = (await a.post("/security-groups", {"security_group": {"name": "a-only"}}, expect=201)).json()[
        "security_group"]
    net = await b.network()
    r = await b.post("/ports", {"port": {"network_id": net["id"], "security_groups": [group["id"]]}})
    assert r.status_code in (400, 404), r.text
    assert_fault(r, r.status_code)
    assert await b.ids("ports", network_id=net["id"]) == []


async def test_sharing_with_one_project_through_rbac(w: World) -> None:
    a, b, c = w["member"], w["other"], w["third"]
    net, sub = await a.net_with_subnet()
    rbac = (await a.post("/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": b.project_id}}, expect=201)).json()["rbac_policy"]
    assert rbac["target_tenant"] == b.project_id and rbac["project_id"] == a.project_id
    seen = (await b.get(f"/networks/{net['id']}", expect=200)).json()["network"]
    assert seen["shared"] is True
    assert (await a.get(f"/networks/{net['id']}", expect=200)).json()["network"]["shared"] is False
    assert sub["id"] in await b.ids("subnets")
    assert_fault(await c.get(f"/networks/{net['id']}"), 404)
    # b plugs into it; a (the network's owner) sees b's port, c does not
    port = await b.port(net["id"])
    assert port["fixed_ips"][0]["subnet_id"] == sub["id"]
    assert port["id"] in await a.ids("ports", network_id=net["id"])
    assert_fault(await c.post("/ports", {"port": {"network_id": net["id"]}}), 404)
    # but b does not own the network
    assert_fault(await b.put(f"/networks/{net['id']}", {"network": {"name": "mine"}}), 403)
    assert_fault(await b.post("/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.78.0.0/24",
                                                      "ip_version": 4}}), 403)
    # the share cannot go while b uses it
    assert_fault(await a.delete(f"/rbac-policies/{rbac['id']}"), 409, "RbacPolicyInUse")
    assert_fault(await a.post("/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": b.project_id}}), 409)
    await b.delete(f"/ports/{port['id']}", expect=204)
    await a.delete(f"/rbac-policies/{rbac['id']}", expect=204)
    assert_fault(await b.get(f"/networks/{net['id']}"), 404)
    # members share with one project, never with everyone; nor someone else's network
    r = await a.post("/rbac-policies", {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                                         "action": "access_as_shared", "target_tenant": "*"}})
    assert_fault(r, 403)
    r = await c.post("/rbac-policies", {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                                         "action": "access_as_shared", "target_tenant": "*"}})
    assert r.status_code in (403, 404)
    assert rbac["id"] not in await b.ids("rbac-policies")


async def test_shared_and_external_networks(w: World) -> None:
    a, b = w["member"], w["other"]
    shared = await w.admin.network(shared=True)
    sub = await w.admin.subnet(shared["id"])
    assert (await b.get(f"/networks/{shared['id']}", expect=200)).json()["network"]["shared"] is True
    assert shared["id"] in await b.ids("networks", shared="true")
    assert sub["id"] in await b.ids("subnets")
    port = await b.port(shared["id"])
    # un-sharing while another project uses it is refused
    r = await w.admin.put(f"/networks/{shared['id']}", {"network": {"shared": False}})
    assert_fault(r, 409, "InvalidSharedSetting")
    await b.delete(f"/ports/{port['id']}", expect=204)
    await w.admin.put(f"/networks/{shared['id']}", {"network": {"shared": False}}, expect=200)
    assert_fault(await b.get(f"/networks/{shared['id']}"), 404)

    external = await w.admin.network(**{"router:external": True})
    ext_sub = await w.admin.subnet(external["id"])
    listed = (await a.get("/networks", params={"router:external": "True"}, expect=200)).json()["networks"]
    assert external["id"] in {n["id"] for n in listed} and all(n["router:external"] for n in listed)
    assert ext_sub["id"] not in await a.ids("subnets", network_id=external["id"])
    assert_fault(await a.post("/ports", {"port": {"network_id": external["id"]}}), 403)
    assert_fault(await a.put(f"/networks/{external['id']}", {"network": {"name": "x"}}), 403)
