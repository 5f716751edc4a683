from tests.conftest import get_token


async def test_version_documents(client):
    r = await client.get("/identity")
    assert r.status_code == 300
    assert r.json()["versions"]["values"][0]["id"].startswith("v3")
    r = await client.get("/identity/v3")
    assert r.status_code == 200
    assert r.json()["version"]["status"] == "stable"
    assert r.headers["x-openstack-request-id"].startswith("req-")


async def test_admin_token_has_catalog(client, admin_token):
    r = await client.get("/identity/v3/auth/tokens",
                         headers={"X-Auth-Token": admin_token, "X-Subject-Token": admin_token})
    assert r.status_code == 200
    token = r.json()["token"]
    assert {x["type"] for x in token["catalog"]} >= {"identity"}
    assert {r["name"] for r in token["roles"]} >= {"admin", "member", "reader"}
