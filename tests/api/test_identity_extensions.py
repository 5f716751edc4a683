"""Keystone's smaller v3 APIs: policies (+OS-ENDPOINT-POLICY), OS-EP-FILTER, domain configuration,
OS-EC2 credentials and OAuth1 consumers, through the in-process app."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest

from mcloud.identity import service_extensions as x
from mcloud.identity.models import DomainConfigOption
from tests.conftest import DEMO_PASSWORD, get_token

V3 = "/identity/v3"
EP = V3 + "/OS-EP-FILTER"


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def h(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def error(r: httpx.Response, code: int) -> str:
    """The response is Keystone's fault body with ``code``; its message."""
    assert r.status_code == code, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    err = r.json()["error"]
    assert err["code"] == code
    return err["message"]


@pytest.fixture
async def demo_token(client: httpx.AsyncClient) -> str:
    return await get_token(client, "demo", DEMO_PASSWORD, project="demo")


async def make(client: httpx.AsyncClient, token: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(V3 + path, json={key: body}, headers=h(token))
    assert r.status_code == 201, r.text
    return r.json()[key]


async def make_service(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    return await make(client, token, "/services", "service", {"type": uniq("type"), "name": uniq("svc")})


async def make_endpoint(client: httpx.AsyncClient, token: str, service_id: str, interface: str = "public",
                        region_id: str | None = None) -> dict[str, Any]:
    body = {"service_id": service_id, "interface": interface, "url": f"http://{uniq('host')}:1234/"}
    if region_id:
        body["region_id"] = region_id
    return await make(client, token, "/endpoints", "endpoint", body)


async def make_project(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    return await make(client, token, "/projects", "project", {"name": uniq("proj"), "domain_id": "default"})


async def make_domain(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    return await make(client, token, "/domains", "domain", {"name": uniq("dom")})


# ---------------------------------------------------------------------- policies


async def test_policy_crud(client: httpx.AsyncClient, admin_token: str) -> None:
    blob, type_ = uniq("blob"), uniq("type")
    policy = await make(client, admin_token, "/policies", "policy", {"blob": blob, "type": type_})
    assert set(policy) == {"id", "blob", "type", "links"}
    assert (policy["blob"], policy["type"]) == (blob, type_)
    assert len(policy["id"]) == 32
    assert policy["links"]["self"].endswith(f"/identity/v3/policies/{policy['id']}")

    r = await client.get(V3 + "/policies", headers=h(admin_token))
    assert r.status_code == 200 and policy in r.json()["policies"]
    r = await client.get(V3 + "/policies", params={"type": type_}, headers=h(admin_token))
    assert r.json()["policies"] == [policy]
    r = await client.get(V3 + f"/policies/{policy['id']}", headers=h(admin_token))
    assert r.status_code == 200 and r.json()["policy"] == policy
    r = await client.head(V3 + f"/policies/{policy['id']}", headers=h(admin_token))
    assert r.status_code == 200

    new_type = uniq("type")
    r = await client.patch(V3 + f"/policies/{policy['id']}", json={"policy": {"type": new_type}},
                           headers=h(admin_token))
    assert r.status_code == 200 and r.json()["policy"] == {**policy, "type": new_type}
    r = await client.patch(V3 + f"/policies/{policy['id']}", json={"policy": {"id": policy["id"], "blob": "b2"}},
                           headers=h(admin_token))
    assert r.status_code == 200
    r = await client.get(V3 + f"/policies/{policy['id']}", headers=h(admin_token))
    assert (r.json()["policy"]["type"], r.json()["policy"]["blob"]) == (new_type, "b2")

    r = await client.delete(V3 + f"/policies/{policy['id']}", headers=h(admin_token))
    assert r.status_code == 204
    for method in ("GET", "DELETE"):
        error(await client.request(method, V3 + f"/policies/{policy['id']}", headers=h(admin_token)), 404)
    error(await client.patch(V3 + f"/policies/{policy['id']}", json={"policy": {"type": "x"}},
                             headers=h(admin_token)), 404)


@pytest.mark.parametrize("body", [
    None,
    {"policy": {"blob": "b"}},
    {"policy": {"type": "t"}},
    {"policy": {"blob": 1, "type": "t"}},
    {"policy": {"blob": "b", "type": "t" * 256}},
    {"policy": {"blob": "b", "type": "t", "unknown": 1}},
    {"blob": "b", "type": "t"},
])
async def test_policy_create_bad_body(client: httpx.AsyncClient, admin_token: str, body: Any) -> None:
    error(await client.post(V3 + "/policies", json=body, headers=h(admin_token)), 400)


async def test_policy_update_bad_body(client: httpx.AsyncClient, admin_token: str) -> None:
    policy = await make(client, admin_token, "/policies", "policy", {"blob": "b", "type": "t"})
    for body in ({"policy": {}}, {"policy": {"type": None}}, {"policy": {"id": uuid.uuid4().hex}},
                 {"policy": {"secret": "x"}}):
        error(await client.patch(V3 + f"/policies/{policy['id']}", json=body, headers=h(admin_token)), 400)


async def test_policy_forbidden_to_member(client: httpx.AsyncClient, admin_token: str, demo_token: str) -> None:
    policy = await make(client, admin_token, "/policies", "policy", {"blob": "b", "type": "t"})
    error(await client.get(V3 + "/policies", headers=h(demo_token)), 403)
    error(await client.get(V3 + f"/policies/{policy['id']}", headers=h(demo_token)), 403)
    error(await client.post(V3 + "/policies", json={"policy": {"blob": "b", "type": "t"}},
                            headers=h(demo_token)), 403)
    error(await client.patch(V3 + f"/policies/{policy['id']}", json={"policy": {"type": "x"}},
                             headers=h(demo_token)), 403)
    error(await client.delete(V3 + f"/policies/{policy['id']}", headers=h(demo_token)), 403)
    error(await client.get(V3 + "/policies"), 401)


async def test_endpoint_policy_associations(client: httpx.AsyncClient, admin_token: str, demo_token: str) -> None:
    policy = await make(client, admin_token, "/policies", "policy", {"blob": "b", "type": "t"})
    other = await make(client, admin_token, "/policies", "policy", {"blob": "b", "type": "t"})
    service = await make_service(client, admin_token)
    parent = await make(client, admin_token, "/regions", "region", {"id": uniq("region")})
    child = await make(client, admin_token, "/regions", "region", {"id": uniq("region"),
                                                                   "parent_region_id": parent["id"]})
    in_child = await make_endpoint(client, admin_token, service["id"], region_id=child["id"])
    plain = await make_endpoint(client, admin_token, service["id"], interface="internal")
    base = V3 + f"/policies/{policy['id']}/OS-ENDPOINT-POLICY"

    async def policy_of(endpoint_id: str) -> httpx.Response:
        return await client.get(V3 + f"/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy", headers=h(admin_token))

    error(await policy_of(plain["id"]), 404)
    r = await client.get(base + "/endpoints", headers=h(admin_token))
    assert r.status_code == 200 and r.json()["endpoints"] == []

    # a service in a region reaches the endpoints of the regions below it
    url = base + f"/services/{service['id']}/regions/{parent['id']}"
    assert (await client.put(url, headers=h(admin_token))).status_code == 204
    assert (await client.get(url, headers=h(admin_token))).status_code == 204
    assert (await client.head(url, headers=h(admin_token))).status_code == 204
    r = await client.get(base + "/endpoints", headers=h(admin_token))
    assert [e["id"] for e in r.json()["endpoints"]] == [in_child["id"]]
    r = await policy_of(in_child["id"])
    assert r.status_code == 200 and r.json()["policy"]["id"] == policy["id"]
    error(await policy_of(plain["id"]), 404)

    # the service's own, then the endpoint's own, which wins
    assert (await client.put(base + f"/services/{service['id']}", json={}, headers=h(admin_token))).status_code == 204
    r = await client.get(base + "/endpoints", headers=h(admin_token))
    assert {e["id"] for e in r.json()["endpoints"]} == {in_child["id"], plain["id"]}
    other_url = V3 + f"/policies/{other['id']}/OS-ENDPOINT-POLICY/endpoints/{plain['id']}"
    assert (await client.put(other_url, headers=h(admin_token))).status_code == 204
    assert (await policy_of(plain["id"])).json()["policy"]["id"] == other["id"]
    error(await client.get(base + f"/endpoints/{plain['id']}", headers=h(admin_token)), 404)

    assert (await client.delete(other_url, headers=h(admin_token))).status_code == 204
    error(await client.get(other_url, headers=h(admin_token)), 404)
    assert (await policy_of(plain["id"])).json()["policy"]["id"] == policy["id"]

    # unknown policy, endpoint, service or region: 404
    error(await client.put(V3 + f"/policies/{uuid.uuid4().hex}/OS-ENDPOINT-POLICY/services/{service['id']}",
                           headers=h(admin_token)), 404)
    error(await client.put(base + f"/endpoints/{uuid.uuid4().hex}", headers=h(admin_token)), 404)
    error(await client.put(base + f"/services/{uuid.uuid4().hex}", headers=h(admin_token)), 404)
    error(await client.put(base + f"/services/{service['id']}/regions/{uniq('nowhere')}",
                           headers=h(admin_token)), 404)
    error(await client.get(V3 + f"/policies/{uuid.uuid4().hex}/OS-ENDPOINT-POLICY/endpoints",
                           headers=h(admin_token)), 404)
    error(await policy_of(uuid.uuid4().hex), 404)

    error(await client.put(base + f"/services/{service['id']}", headers=h(demo_token)), 403)
    error(await client.get(base + "/endpoints", headers=h(demo_token)), 403)
    error(await client.get(V3 + f"/endpoints/{plain['id']}/OS-ENDPOINT-POLICY/policy", headers=h(demo_token)), 403)

    # deleting the policy deletes its associations
    assert (await client.delete(V3 + f"/policies/{policy['id']}", headers=h(admin_token))).status_code == 204
    error(await policy_of(in_child["id"]), 404)


# ---------------------------------------------------------------------- OS-EP-FILTER


async def test_endpoint_group_crud(client: httpx.AsyncClient, admin_token: str) -> None:
    service = await make_service(client, admin_token)
    name = uniq("group")
    group = await make(client, admin_token, "/OS-EP-FILTER/endpoint_groups", "endpoint_group",
                       {"name": name, "description": "d", "filters": {"service_id": service["id"]}})
    assert set(group) == {"id", "name", "description", "filters", "links"}
    assert group["filters"] == {"service_id": service["id"]}
    assert group["links"]["self"].endswith(f"/identity/v3/OS-EP-FILTER/endpoint_groups/{group['id']}")
    url = EP + f"/endpoint_groups/{group['id']}"

    r = await client.get(EP + "/endpoint_groups", headers=h(admin_token))
    assert r.status_code == 200 and group in r.json()["endpoint_groups"]
    r = await client.get(EP + "/endpoint_groups", params={"name": name}, headers=h(admin_token))
    assert r.json()["endpoint_groups"] == [group]
    r = await client.get(url, headers=h(admin_token))
    assert r.status_code == 200 and r.json()["endpoint_group"] == group
    r = await client.head(url, headers=h(admin_token))
    assert r.status_code == 200

    other = await make_service(client, admin_token)
    r = await client.patch(url, json={"endpoint_group": {"name": "n2", "description": "d2", "filters": {
        "service_id": other["id"], "interface": "admin"}}}, headers=h(admin_token))
    assert r.status_code == 200
    assert r.json()["endpoint_group"] == {**group, "name": "n2", "description": "d2",
                                          "filters": {"service_id": other["id"], "interface": "admin"}}
    r = await client.patch(url, json={"endpoint_group": {"description": None}}, headers=h(admin_token))
    assert r.json()["endpoint_group"]["description"] is None and r.json()["endpoint_group"]["name"] == "n2"

    assert (await client.delete(url, headers=h(admin_token))).status_code == 204
    for method in ("GET", "DELETE"):
        error(await client.request(method, url, headers=h(admin_token)), 404)
    assert (await client.head(url, headers=h(admin_token))).status_code == 404
    error(await client.patch(url, json={"endpoint_group": {"name": "x"}}, headers=h(admin_token)), 404)
    error(await client.get(url + "/endpoints", headers=h(admin_token)), 404)


@pytest.mark.parametrize("group", [
    {"filters": {"interface": "public"}},
    {"name": "g"},
    {"name": "g", "filters": {}},
    {"name": "g", "filters": {"enabled": True}},
    {"name": "g", "filters": {"url": "x"}},
    {"name": "g", "filters": {"interface": "sideways"}},
    {"name": "g", "filters": {"service_id": 3}},
    {"name": "", "filters": {"interface": "public"}},
    {"name": "g", "filters": {"interface": "public"}, "id": "x"},
    {"name": "g", "filters": "interface=public"},
])
async def test_endpoint_group_bad_body(client: httpx.AsyncClient, admin_token: str, group: dict) -> None:
    error(await client.post(EP + "/endpoint_groups", json={"endpoint_group": group}, headers=h(admin_token)), 400)


async def test_endpoint_group_update_bad_body(client: httpx.AsyncClient, admin_token: str) -> None:
    group = await make(client, admin_token, "/OS-EP-FILTER/endpoint_groups", "endpoint_group",
                       {"name": "g", "filters": {"interface": "public"}})
    for body in ({"endpoint_group": {}}, {"endpoint_group": {"filters": {"enabled": False}}},
                 {"endpoint_group": {"name": None}}, {}):
        error(await client.patch(EP + f"/endpoint_groups/{group['id']}", json=body, headers=h(admin_token)), 400)


async def test_endpoint_groups_and_projects(client: httpx.AsyncClient, admin_token: str) -> None:
    service = await make_service(client, admin_token)
    public = await make_endpoint(client, admin_token, service["id"], "public")
    internal = await make_endpoint(client, admin_token, service["id"], "internal")
    group = await make(client, admin_token, "/OS-EP-FILTER/endpoint_groups", "endpoint_group",
                       {"name": uniq("g"), "filters": {"service_id": service["id"], "interface": "public"}})
    by_service = await make(client, admin_token, "/OS-EP-FILTER/endpoint_groups", "endpoint_group",
                            {"name": uniq("g"), "filters": {"service_id": service["id"]}})
    gurl = EP + f"/endpoint_groups/{group['id']}"

    r = await client.get(gurl + "/endpoints", headers=h(admin_token))
    assert r.status_code == 200 and r.json()["endpoints"] == [public]
    r = await client.get(EP + f"/endpoint_groups/{by_service['id']}/endpoints", headers=h(admin_token))
    assert sorted(e["id"] for e in r.json()["endpoints"]) == sorted([public["id"], internal["id"]])

    project = await make_project(client, admin_token)
    purl = gurl + f"/projects/{project['id']}"
    error(await client.get(purl, headers=h(admin_token)), 404)
    assert (await client.put(purl, headers=h(admin_token))).status_code == 204
    error(await client.put(purl, headers=h(admin_token)), 409)
    r = await client.get(purl, headers=h(admin_token))
    assert r.status_code == 200
    assert r.json()["project_endpoint_group"] == {
        "endpoint_group_id": group["id"], "project_id": project["id"],
        "links": {"self": f"http://mcloud.test/identity/v3/OS-EP-FILTER/endpoint_groups/{group['id']}"
                          f"/projects/{project['id']}"}}
    assert (await client.head(purl, headers=h(admin_token))).status_code == 200

    r = await client.get(gurl + "/projects", headers=h(admin_token))
    assert r.status_code == 200 and [p["id"] for p in r.json()["projects"]] == [project["id"]]
    assert r.json()["projects"][0] == (await client.get(V3 + f"/projects/{project['id']}",
                                                        headers=h(admin_token))).json()["project"]
    r = await client.get(EP + f"/projects/{project['id']}/endpoint_groups", headers=h(admin_token))
    assert r.status_code == 200 and r.json()["endpoint_groups"] == [group]
    r = await client.get(EP + f"/projects/{project['id']}/endpoints", headers=h(admin_token))
    assert r.status_code == 200 and r.json()["endpoints"] == [public]

    # unknown project or group
    error(await client.put(gurl + f"/projects/{uuid.uuid4().hex}", headers=h(admin_token)), 404)
    error(await client.put(EP + f"/endpoint_groups/{uuid.uuid4().hex}/projects/{project['id']}",
                           headers=h(admin_token)), 404)
    error(await client.get(EP + f"/projects/{uuid.uuid4().hex}/endpoint_groups", headers=h(admin_token)), 404)
    r = await client.get(EP + f"/endpoint_groups/{uuid.uuid4().hex}/projects", headers=h(admin_token))
    assert r.status_code == 200 and r.json()["projects"] == []

    assert (await client.delete(purl, headers=h(admin_token))).status_code == 204
    error(await client.get(purl, headers=h(admin_token)), 404)
    error(await client.delete(purl, headers=h(admin_token)), 404)
    r = await client.get(EP + f"/projects/{project['id']}/endpoints", headers=h(admin_token))
    assert r.json()["endpoints"] == []

    # deleting a group or a project drops its associations
    assert (await client.put(purl, headers=h(admin_token))).status_code == 204
    assert (await client.delete(gurl, headers=h(admin_token))).status_code == 204
    r = await client.get(EP + f"/projects/{project['id']}/endpoint_groups", headers=h(admin_token))
    assert r.json()["endpoint_groups"] == []
    burl = EP + f"/endpoint_groups/{by_service['id']}/projects/{project['id']}"
    assert (await client.put(burl, headers=h(admin_token))).status_code == 204
    assert (await client.delete(V3 + f"/projects/{project['id']}", headers=h(admin_token))).status_code == 204
    r = await client.get(EP + f"/endpoint_groups/{by_service['id']}/projects", headers=h(admin_token))
    assert r.json()["projects"] == []


async def test_project_endpoints(client: httpx.AsyncClient, admin_token: str) -> None:
    service = await make_service(client, admin_token)
    endpoint = await make_endpoint(client, admin_token, service["id"])
    project = await make_project(client, admin_token)
    url = EP + f"/projects/{project['id']}/endpoints/{endpoint['id']}"

    error(await client.get(url, headers=h(admin_token)), 404)
    assert (await client.put(url, headers=h(admin_token))).status_code == 204
    error(await client.put(url, headers=h(admin_token)), 409)
    assert (await client.head(url, headers=h(admin_token))).status_code == 204
    assert (await client.get(url, headers=h(admin_token))).status_code == 204
    r = await client.get(EP + f"/projects/{project['id']}/endpoints", headers=h(admin_token))
    assert r.status_code == 200 and r.json()["endpoints"] == [endpoint]
    r = await client.get(EP + f"/endpoints/{endpoint['id']}/projects", headers=h(admin_token))
    assert r.status_code == 200 and [p["id"] for p in r.json()["projects"]] == [project["id"]]

    error(await client.put(EP + f"/projects/{project['id']}/endpoints/{uuid.uuid4().hex}",
                           headers=h(admin_token)), 404)
    error(await client.put(EP + f"/projects/{uuid.uuid4().hex}/endpoints/{endpoint['id']}",
                           headers=h(admin_token)), 404)
    error(await client.get(EP + f"/endpoints/{uuid.uuid4().hex}/projects", headers=h(admin_token)), 404)
    error(await client.get(EP + f"/projects/{uuid.uuid4().hex}/endpoints", headers=h(admin_token)), 404)

    assert (await client.delete(url, headers=h(admin_token))).status_code == 204
    error(await client.delete(url, headers=h(admin_token)), 404)
    assert (await client.head(url, headers=h(admin_token))).status_code == 404
    r = await client.get(EP + f"/endpoints/{endpoint['id']}/projects", headers=h(admin_token))
    assert r.json()["projects"] == []

    # deleting the endpoint drops the association
    assert (await client.put(url, headers=h(admin_token))).status_code == 204
    assert (await client.delete(V3 + f"/endpoints/{endpoint['id']}", headers=h(admin_token))).status_code == 204
    r = await client.get(EP + f"/projects/{project['id']}/endpoints", headers=h(admin_token))
    assert r.json()["endpoints"] == []


async def test_endpoint_filter_forbidden_to_member(client: httpx.AsyncClient, admin_token: str,
                                                   demo_token: str) -> None:
    service = await make_service(client, admin_token)
    endpoint = await make_endpoint(client, admin_token, service["id"])
    group = await make(client, admin_token, "/OS-EP-FILTER/endpoint_groups", "endpoint_group",
                       {"name": uniq("g"), "filters": {"service_id": service["id"]}})
    project = await make_project(client, admin_token)
    gurl = EP + f"/endpoint_groups/{group['id']}"
    for method, path, body in [
        ("POST", EP + "/endpoint_groups", {"endpoint_group": {"name": "g", "filters": {"interface": "public"}}}),
        ("GET", EP + "/endpoint_groups", None),
        ("GET", gurl, None),
        ("PATCH", gurl, {"endpoint_group": {"name": "x"}}),
        ("DELETE", gurl, None),
        ("GET", gurl + "/endpoints", None),
        ("GET", gurl + "/projects", None),
        ("PUT", gurl + f"/projects/{project['id']}", None),
        ("GET", gurl + f"/projects/{project['id']}", None),
        ("DELETE", gurl + f"/projects/{project['id']}", None),
        ("GET", EP + f"/projects/{project['id']}/endpoint_groups", None),
        ("PUT", EP + f"/projects/{project['id']}/endpoints/{endpoint['id']}", None),
        ("GET", EP + f"/projects/{project['id']}/endpoints/{endpoint['id']}", None),
        ("DELETE", EP + f"/projects/{project['id']}/endpoints/{endpoint['id']}", None),
        ("GET", EP + f"/projects/{project['id']}/endpoints", None),
        ("GET", EP + f"/endpoints/{endpoint['id']}/projects", None),
    ]:
        error(await client.request(method, path, json=body, headers=h(demo_token)), 403)


# ---------------------------------------------------------------------- domain configuration

CUSTOM = {"identity": {"driver": "ldap"},
          "ldap": {"url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=my_new_root,dc=org"}}


async def test_domain_config_defaults(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.get(V3 + "/domains/config/default", headers=h(admin_token))
    assert r.status_code == 200
    config = r.json()["config"]
    assert set(config) == {"identity", "ldap"}
    assert config["identity"] == {"driver": "sql", "list_limit": None}
    assert config["ldap"]["url"] == "ldap://localhost" and "password" not in config["ldap"]
    r = await client.get(V3 + "/domains/config/ldap/default", headers=h(admin_token))
    assert r.json() == {"config": {"ldap": config["ldap"]}}
    for option, value in config["ldap"].items():
        r = await client.get(V3 + f"/domains/config/ldap/{option}/default", headers=h(admin_token))
        assert r.status_code == 200 and r.json() == {"config": {option: value}}
    r = await client.get(V3 + "/domains/config/identity/list_limit/default", headers=h(admin_token))
    assert r.json() == {"config": {"list_limit": None}}
    assert (await client.head(V3 + "/domains/config/default", headers=h(admin_token))).status_code == 200

    error(await client.get(V3 + "/domains/config/assignment/default", headers=h(admin_token)), 403)
    error(await client.get(V3 + "/domains/config/identity/nothing/default", headers=h(admin_token)), 403)
    # a sensitive option has no readable default
    error(await client.get(V3 + "/domains/config/ldap/password/default", headers=h(admin_token)), 403)


async def test_domain_config_crud(client: httpx.AsyncClient, admin_token: str) -> None:
    domain = await make_domain(client, admin_token)
    url = V3 + f"/domains/{domain['id']}/config"
    error(await client.get(url, headers=h(admin_token)), 404)

    r = await client.put(url, json={"config": CUSTOM}, headers=h(admin_token))
    assert r.status_code == 201 and r.json() == {"config": CUSTOM}
    r = await client.put(url, json={"config": CUSTOM}, headers=h(admin_token))
    assert r.status_code == 200 and r.json() == {"config": CUSTOM}
    assert (await client.get(url, headers=h(admin_token))).json() == {"config": CUSTOM}
    assert (await client.head(url, headers=h(admin_token))).status_code == 200
    for group, options in CUSTOM.items():
        r = await client.get(url + f"/{group}", headers=h(admin_token))
        assert r.status_code == 200 and r.json() == {"config": {group: options}}
        for option, value in options.items():
            r = await client.get(url + f"/{group}/{option}", headers=h(admin_token))
            assert r.status_code == 200 and r.json() == {"config": {option: value}}

    # full update merges
    r = await client.patch(url, json={"config": {"ldap": {"url": "ldap://other/"}}}, headers=h(admin_token))
    assert r.status_code == 200
    expected = {"identity": {"driver": "ldap"}, "ldap": {**CUSTOM["ldap"], "url": "ldap://other/"}}
    assert r.json() == {"config": expected}
    # a group, then one option
    r = await client.patch(url + "/identity", json={"config": {"identity": {"driver": "d2", "list_limit": 7}}},
                           headers=h(admin_token))
    assert r.status_code == 200 and r.json()["config"]["identity"] == {"driver": "d2", "list_limit": 7}
    r = await client.patch(url + "/identity/driver", json={"config": {"driver": "d3"}}, headers=h(admin_token))
    assert r.status_code == 200 and r.json()["config"]["identity"] == {"driver": "d3", "list_limit": 7}

    # a group or option path must name what it updates, which must be set already
    error(await client.patch(url + "/identity", json={"config": {"ldap": {"url": "x"}}}, headers=h(admin_token)),
          403)
    error(await client.patch(url + "/identity", json={"config": {"identity": {"driver": "x"}, "ldap": {"url": "x"}}},
                             headers=h(admin_token)), 403)
    error(await client.patch(url + "/identity/driver", json={"config": {"list_limit": 3}}, headers=h(admin_token)),
          403)
    error(await client.patch(url + "/ldap/page_size", json={"config": {"page_size": 3}}, headers=h(admin_token)),
          404)

    assert (await client.delete(url + "/identity/driver", headers=h(admin_token))).status_code == 204
    error(await client.get(url + "/identity/driver", headers=h(admin_token)), 404)
    error(await client.delete(url + "/identity/driver", headers=h(admin_token)), 404)
    assert (await client.delete(url + "/identity", headers=h(admin_token))).status_code == 204
    error(await client.get(url + "/identity", headers=h(admin_token)), 404)
    assert (await client.get(url, headers=h(admin_token))).json() == {"config": {"ldap": expected["ldap"]}}
    assert (await client.delete(url, headers=h(admin_token))).status_code == 204
    error(await client.get(url, headers=h(admin_token)), 404)
    error(await client.get(url + "/ldap/url", headers=h(admin_token)), 404)


async def test_domain_config_sensitive_option_is_never_shown(client: httpx.AsyncClient, admin_token: str) -> None:
    domain = await make_domain(client, admin_token)
    url = V3 + f"/domains/{domain['id']}/config"
    r = await client.put(url, json={"config": {"ldap": {"url": "ldap://x/", "password": "s3cret"}}},
                         headers=h(admin_token))
    assert r.status_code == 201 and r.json() == {"config": {"ldap": {"url": "ldap://x/"}}}
    assert "s3cret" not in (await client.get(url, headers=h(admin_token))).text
    error(await client.get(url + "/ldap/password", headers=h(admin_token)), 404)
    # it can be updated and deleted
    r = await client.patch(url + "/ldap/password", json={"config": {"password": "new"}}, headers=h(admin_token))
    assert r.status_code == 200 and r.json() == {"config": {"ldap": {"url": "ldap://x/"}}}
    assert (await client.delete(url + "/ldap/password", headers=h(admin_token))).status_code == 204
    error(await client.delete(url + "/ldap/password", headers=h(admin_token)), 404)


async def test_domain_config_goes_with_its_domain(client: httpx.AsyncClient, admin_token: str, cloud: Any) -> None:
    domain = await make_domain(client, admin_token)
    url = V3 + f"/domains/{domain['id']}"
    r = await client.put(url + "/config", json={"config": {**CUSTOM, "ldap": {"password": "p"}}},
                         headers=h(admin_token))
    assert r.status_code == 201
    async with cloud.db.read() as session:
        assert len(await x.get_domain_config(session, domain["id"])) == 1
        secret = await session.get(DomainConfigOption, (domain["id"], "ldap", "password"))
        assert secret.sensitive and json.loads(cloud.identity.decrypt_blob(secret.value)) == "p"
    assert (await client.patch(url, json={"domain": {"enabled": False}}, headers=h(admin_token))).status_code == 200
    assert (await client.delete(url, headers=h(admin_token))).status_code == 204
    async with cloud.db.read() as session:
        assert await session.get(DomainConfigOption, (domain["id"], "identity", "driver")) is None
        assert await session.get(DomainConfigOption, (domain["id"], "ldap", "password")) is None


async def test_domain_config_errors(client: httpx.AsyncClient, admin_token: str, demo_token: str) -> None:
    domain = await make_domain(client, admin_token)
    url = V3 + f"/domains/{domain['id']}/config"
    # what Keystone does not allow: 403
    for config in ({}, {"assignment": {"driver": "sql"}}, {"identity": {"nothing": 1}}, {"identity": {}},
                   {"identity": "sql"}):
        error(await client.put(url, json={"config": config}, headers=h(admin_token)), 403)
    error(await client.put(url, json={}, headers=h(admin_token)), 403)
    error(await client.get(url + "/assignment", headers=h(admin_token)), 403)
    error(await client.get(url + "/identity/nothing", headers=h(admin_token)), 403)
    # malformed bodies: 400
    for body in (None, {"config": "identity"}, {"config": CUSTOM, "extra": 1}, [CUSTOM]):
        error(await client.put(url, json=body, headers=h(admin_token)), 400)
    error(await client.patch(url, json={"config": []}, headers=h(admin_token)), 400)
    # unknown domain: 404
    missing = V3 + f"/domains/{uuid.uuid4().hex}/config"
    error(await client.put(missing, json={"config": CUSTOM}, headers=h(admin_token)), 404)
    error(await client.get(missing, headers=h(admin_token)), 404)
    error(await client.patch(missing, json={"config": CUSTOM}, headers=h(admin_token)), 404)
    error(await client.delete(missing, headers=h(admin_token)), 404)
    # members may not read or change it
    assert (await client.put(url, json={"config": CUSTOM}, headers=h(admin_token))).status_code == 201
    error(await client.put(url, json={"config": CUSTOM}, headers=h(demo_token)), 403)
    error(await client.get(url, headers=h(demo_token)), 403)
    error(await client.get(url + "/ldap/url", headers=h(demo_token)), 403)
    error(await client.patch(url, json={"config": CUSTOM}, headers=h(demo_token)), 403)
    error(await client.delete(url, headers=h(demo_token)), 403)
    error(await client.get(V3 + "/domains/config/default", headers=h(demo_token)), 403)


async def test_security_compliance_config(client: httpx.AsyncClient, admin_token: str, demo_token: str) -> None:
    r = await client.get(V3 + "/domains/default/config/security_compliance", headers=h(demo_token))
    assert r.status_code == 200
    assert r.json() == {"config": {"security_compliance": {"password_regex": None,
                                                           "password_regex_description": None}}}
    r = await client.get(V3 + "/domains/default/config/security_compliance/password_regex", headers=h(demo_token))
    assert r.json() == {"config": {"password_regex": None}}
    error(await client.get(V3 + "/domains/default/config/security_compliance/lockout_duration",
                           headers=h(demo_token)), 403)
    domain = await make_domain(client, admin_token)
    error(await client.get(V3 + f"/domains/{domain['id']}/config/security_compliance", headers=h(admin_token)), 403)


# ---------------------------------------------------------------------- OS-EC2 credentials


async def user_and_project(client: httpx.AsyncClient, token: str) -> tuple[str, str]:
    r = await client.get(V3 + "/auth/tokens", headers={**h(token), "X-Subject-Token": token})
    body = r.json()["token"]
    return body["user"]["id"], body["project"]["id"]


async def test_ec2_credentials(client: httpx.AsyncClient, admin_token: str, demo_token: str) -> None:
    user_id, project_id = await user_and_project(client, demo_token)
    base = V3 + f"/users/{user_id}/credentials/OS-EC2"

    r = await client.post(base, json={"tenant_id": project_id}, headers=h(demo_token))
    assert r.status_code == 201, r.text
    cred = r.json()["credential"]
    assert set(cred) == {"user_id", "tenant_id", "access", "secret", "trust_id", "links"}
    assert (cred["user_id"], cred["tenant_id"], cred["trust_id"]) == (user_id, project_id, None)
    assert cred["access"] and cred["secret"]
    assert cred["links"]["self"].endswith(f"/identity/v3/users/{user_id}/credentials/OS-EC2/{cred['access']}")

    r = await client.get(base, headers=h(demo_token))
    assert r.status_code == 200 and cred in r.json()["credentials"]
    r = await client.get(base + f"/{cred['access']}", headers=h(demo_token))
    assert r.status_code == 200 and r.json()["credential"] == cred
    r = await client.get(base + f"/{cred['access']}", headers=h(admin_token))
    assert r.status_code == 200 and r.json()["credential"] == cred

    # it is an "ec2" credential whose id is the SHA-256 of the access key
    cred_id = hashlib.sha256(cred["access"].encode()).hexdigest()
    r = await client.get(V3 + f"/credentials/{cred_id}", headers=h(admin_token))
    assert r.status_code == 200
    stored = r.json()["credential"]
    assert (stored["type"], stored["user_id"], stored["project_id"]) == ("ec2", user_id, project_id)
    assert json.loads(stored["blob"]) == {"access": cred["access"], "secret": cred["secret"], "trust_id": None,
                                          "app_cred_id": None}

    assert (await client.delete(base + f"/{cred['access']}", headers=h(demo_token))).status_code == 204
    error(await client.get(base + f"/{cred['access']}", headers=h(demo_token)), 404)
    error(await client.delete(base + f"/{cred['access']}", headers=h(demo_token)), 404)
    r = await client.get(base, headers=h(demo_token))
    assert cred not in r.json()["credentials"]


async def test_ec2_credential_errors(client: httpx.AsyncClient, admin_token: str, demo_token: str) -> None:
    user_id, project_id = await user_and_project(client, demo_token)
    admin_id, admin_project = await user_and_project(client, admin_token)
    base = V3 + f"/users/{user_id}/credentials/OS-EC2"
    for body in (None, {}, {"tenant_id": 1}, {"tenant_id": project_id, "extra": 1}, {"credential": {}}):
        error(await client.post(base, json=body, headers=h(demo_token)), 400)
    error(await client.post(base, json={"tenant_id": uuid.uuid4().hex}, headers=h(demo_token)), 404)
    error(await client.post(V3 + f"/users/{uuid.uuid4().hex}/credentials/OS-EC2", json={"tenant_id": project_id},
                            headers=h(admin_token)), 404)
    error(await client.get(V3 + f"/users/{uuid.uuid4().hex}/credentials/OS-EC2", headers=h(admin_token)), 404)
    error(await client.get(base + "/" + uuid.uuid4().hex, headers=h(demo_token)), 404)

    # a member manages only their own
    admin_base = V3 + f"/users/{admin_id}/credentials/OS-EC2"
    error(await client.post(admin_base, json={"tenant_id": admin_project}, headers=h(demo_token)), 403)
    error(await client.get(admin_base, headers=h(demo_token)), 403)
    r = await client.post(admin_base, json={"tenant_id": admin_project}, headers=h(admin_token))
    assert r.status_code == 201
    access = r.json()["credential"]["access"]
    error(await client.get(admin_base + f"/{access}", headers=h(demo_token)), 403)
    error(await client.delete(admin_base + f"/{access}", headers=h(demo_token)), 403)
    # ... and under the user it belongs to only
    error(await client.get(base + f"/{access}", headers=h(admin_token)), 404)
    assert (await client.delete(admin_base + f"/{access}", headers=h(admin_token))).status_code == 204


async def test_ec2_credentials_refuse_application_credential_tokens(client: httpx.AsyncClient,
                                                                   demo_token: str) -> None:
    user_id, project_id = await user_and_project(client, demo_token)
    r = await client.post(V3 + f"/users/{user_id}/application_credentials",
                          json={"application_credential": {"name": uniq("ac")}}, headers=h(demo_token))
    assert r.status_code == 201, r.text
    ac = r.json()["application_credential"]
    r = await client.post(V3 + "/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": ac["id"], "secret": ac["secret"]}}}})
    assert r.status_code == 201, r.text
    ac_token = r.headers["x-subject-token"]
    base = V3 + f"/users/{user_id}/credentials/OS-EC2"
    error(await client.post(base, json={"tenant_id": project_id}, headers=h(ac_token)), 403)
    error(await client.get(base, headers=h(ac_token)), 403)


# ---------------------------------------------------------------------- OAuth1 consumers


async def test_consumer_crud(client: httpx.AsyncClient, admin_token: str) -> None:
    consumer = await make(client, admin_token, "/OS-OAUTH1/consumers", "consumer", {"description": "d"})
    assert set(consumer) == {"id", "description", "secret", "links"}
    assert consumer["description"] == "d" and consumer["secret"]
    assert consumer["links"]["self"].endswith(f"/identity/v3/OS-OAUTH1/consumers/{consumer['id']}")
    shown = {k: v for k, v in consumer.items() if k != "secret"}
    url = V3 + f"/OS-OAUTH1/consumers/{consumer['id']}"

    r = await client.get(url, headers=h(admin_token))
    assert r.status_code == 200 and r.json()["consumer"] == shown
    r = await client.get(V3 + "/OS-OAUTH1/consumers", headers=h(admin_token))
    assert r.status_code == 200 and shown in r.json()["consumers"]
    assert all("secret" not in c for c in r.json()["consumers"])

    r = await client.patch(url, json={"consumer": {"description": "d2"}}, headers=h(admin_token))
    assert r.status_code == 200 and r.json()["consumer"] == {**shown, "description": "d2"}
    assert (await client.get(url, headers=h(admin_token))).json()["consumer"]["description"] == "d2"

    assert (await client.delete(url, headers=h(admin_token))).status_code == 204
    for method in ("GET", "DELETE"):
        error(await client.request(method, url, headers=h(admin_token)), 404)
    error(await client.patch(url, json={"consumer": {"description": "x"}}, headers=h(admin_token)), 404)

    # a consumer may be made without a body or a description
    r = await client.post(V3 + "/OS-OAUTH1/consumers", headers=h(admin_token))
    assert r.status_code == 201 and r.json()["consumer"]["description"] is None
    r = await client.post(V3 + "/OS-OAUTH1/consumers", json={"consumer": {}}, headers=h(admin_token))
    assert r.status_code == 201


async def test_consumer_bad_bodies_and_policy(client: httpx.AsyncClient, admin_token: str, demo_token: str) -> None:
    consumer = await make(client, admin_token, "/OS-OAUTH1/consumers", "consumer", {"description": "d"})
    url = V3 + f"/OS-OAUTH1/consumers/{consumer['id']}"
    for body in ({"consumer": {"description": 1}}, {"consumer": {"secret": "s"}}, {"description": "d"}):
        error(await client.post(V3 + "/OS-OAUTH1/consumers", json=body, headers=h(admin_token)), 400)
    for body in (None, {"consumer": {}}, {"consumer": {"secret": "s"}}, {"consumer": {"id": uuid.uuid4().hex}},
                 {"consumer": {"description": 1}}):
        error(await client.patch(url, json=body, headers=h(admin_token)), 400)

    error(await client.post(V3 + "/OS-OAUTH1/consumers", json={"consumer": {}}, headers=h(demo_token)), 403)
    error(await client.get(V3 + "/OS-OAUTH1/consumers", headers=h(demo_token)), 403)
    error(await client.get(url, headers=h(demo_token)), 403)
    error(await client.patch(url, json={"consumer": {"description": "x"}}, headers=h(demo_token)), 403)
    error(await client.delete(url, headers=h(demo_token)), 403)
