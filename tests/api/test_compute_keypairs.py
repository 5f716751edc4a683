"""Keypairs through the API: import and generation (until 2.92), type (2.2), another user's keys
for the admin (2.10), paging (2.35), status codes per microversion, isolation between users,
quota, and Nova's faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world, uniq


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


def ssh_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " me@host"


async def test_generate_import_show_delete(w: ComputeWorld) -> None:
    member = w["member"]
    gen = await member.at("2.91").post("/os-keypairs", {"keypair": {"name": "gen"}}, expect=201)
    kp = gen.json()["keypair"]
    assert kp["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----") and kp["type"] == "ssh"
    assert kp["user_id"] == member.user_id and len(kp["fingerprint"]) == 47
    # 2.92: generation is gone, a public key is required
    assert_fault(await member.post("/os-keypairs", {"keypair": {"name": "gen2"}}), 400)
    pub = ssh_key()
    imported = (await member.post("/os-keypairs", {"keypair": {"name": "me@laptop.1", "public_key": pub}},
                                  expect=201)).json()["keypair"]
    assert "private_key" not in imported and imported["public_key"] == pub
    # names with @ and . only from 2.92
    assert_fault(await member.at("2.91").post("/os-keypairs", {"keypair": {"name": "a@b", "public_key": pub}}), 400)
    assert_fault(await member.post("/os-keypairs", {"keypair": {"name": "gen", "public_key": pub}}), 409,
                 contains="Key pair 'gen' already exists.")
    assert_fault(await member.post("/os-keypairs", {"keypair": {"name": "bad", "public_key": "ssh-rsa AAAA"}}), 400,
                 contains="Keypair data is invalid")
    shown = (await member.get("/os-keypairs/gen", expect=200)).json()["keypair"]
    assert shown["deleted"] is False and shown["public_key"] == kp["public_key"] and "created_at" in shown
    old = (await member.at("2.1").get("/os-keypairs")).json()["keypairs"]
    assert sorted(k["keypair"]["name"] for k in old) == ["gen", "me@laptop.1"] and "type" not in old[0]["keypair"]
    # 2.1: 200 on create, 202 on delete; 2.2+: 201 and 204
    v21 = await member.at("2.1").post("/os-keypairs", {"keypair": {"name": "old", "public_key": pub}})
    assert v21.status_code == 200 and "type" not in v21.json()["keypair"]
    assert (await member.at("2.1").delete("/os-keypairs/old")).status_code == 202
    assert (await member.delete("/os-keypairs/gen")).status_code == 204
    assert_fault(await member.get("/os-keypairs/gen"), 404, contains="Keypair gen not found for user")
    x509 = (await member.at("2.91").post("/os-keypairs", {"keypair": {"name": "cert", "type": "x509"}},
                                         expect=201)).json()["keypair"]
    assert x509["type"] == "x509" and x509["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    await member.delete("/os-keypairs/cert", expect=204)
    await member.delete("/os-keypairs/me@laptop.1", expect=204)


async def test_users_see_only_their_keys_admin_names_a_user(w: ComputeWorld) -> None:
    member, other = w["member"], w["other"]
    await member.post("/os-keypairs", {"keypair": {"name": "mine", "public_key": ssh_key()}}, expect=201)
    assert_fault(await other.get("/os-keypairs/mine"), 404)
    assert "mine" not in [k["keypair"]["name"] for k in (await other.get("/os-keypairs")).json()["keypairs"]]
    assert_fault(await other.delete("/os-keypairs/mine"), 404)
    # another user's keys: the admin may (2.10+), a member may not
    assert_fault(await other.get("/os-keypairs", params={"user_id": member.user_id}), 403)
    listed = (await w.admin.get("/os-keypairs", params={"user_id": member.user_id}, expect=200)).json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["mine"]
    made = (await w.admin.post("/os-keypairs", {"keypair": {"name": "for-member", "public_key": ssh_key(),
                                                            "user_id": other.user_id}}, expect=201)).json()
    assert made["keypair"]["user_id"] == other.user_id
    assert (await other.get("/os-keypairs/for-member", expect=200)).json()["keypair"]["name"] == "for-member"
    await w.admin.delete("/os-keypairs/for-member", params={"user_id": other.user_id}, expect=204)
    await member.delete("/os-keypairs/mine", expect=204)


async def test_paging_and_quota(w: ComputeWorld) -> None:
    reader = w["reader"]  # a reader may manage its own keys (the rule is the user's own)
    for i in range(5):
        await reader.post("/os-keypairs", {"keypair": {"name": f"k{i}", "public_key": ssh_key()}}, expect=201)
    page = (await reader.get("/os-keypairs", params={"limit": 2}, expect=200)).json()
    assert [k["keypair"]["name"] for k in page["keypairs"]] == ["k0", "k1"]
    assert "marker=k1" in page["keypairs_links"][0]["href"]
    rest = (await reader.get("/os-keypairs", params={"limit": 10, "marker": "k1"})).json()
    assert [k["keypair"]["name"] for k in rest["keypairs"]] == ["k2", "k3", "k4"] and "keypairs_links" not in rest
    assert_fault(await reader.get("/os-keypairs", params={"marker": "nope"}), 400)
    assert_fault(await reader.get("/os-keypairs", params={"bogus": 1}), 400)
    await w.admin.put(f"/os-quota-sets/{w.projects['a']}", {"quota_set": {"key_pairs": 5}}, expect=200)
    assert_fault(await reader.post("/os-keypairs", {"keypair": {"name": "k5", "public_key": ssh_key()}}), 403,
                 contains="Quota exceeded, too many key pairs.")
    await w.admin.delete(f"/os-quota-sets/{w.projects['a']}", expect=202)
    await reader.post("/os-keypairs", {"keypair": {"name": "k5", "public_key": ssh_key()}}, expect=201)
    for i in range(6):
        await reader.delete(f"/os-keypairs/k{i}", expect=204)
    for body in ({}, {"keypair": {}}, {"keypair": {"name": ""}}, {"keypair": {"name": "x", "public_key": 1}},
                 {"keypair": {"name": "x", "public_key": ssh_key(), "type": "gpg"}},
                 {"keypair": {"name": uniq("x") * 30, "public_key": ssh_key()}}):
        assert_fault(await reader.post("/os-keypairs", body), 400)
