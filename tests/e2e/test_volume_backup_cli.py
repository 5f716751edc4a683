"""Volume backups and transfers through the real `openstack` CLI against a live `mcloud up` (its
default file backend, qcow2 through qemu-img, and the file backup driver): backup create (full,
then incremental), list, show, restore to a new volume and to an existing one with --force,
delete; transfer request create, list, accept by the demo project, and delete."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import Client, unique

pytestmark = pytest.mark.e2e


def wait(cli: Client, kind: list[str], ident: str, status: str, timeout: float = 120,
         cloud: str = "mcloud") -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = cli.json(*kind, "show", ident, cloud=cloud)
        if shown["status"] == status:
            return shown
        assert not shown["status"].startswith("error"), shown
        time.sleep(0.5)
    raise AssertionError(f"{' '.join(kind)} {ident} is {shown.get('status')}, not {status}")


def wait_gone(cli: Client, kind: list[str], ident: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cli.run(*kind, "show", ident, check=False).returncode != 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"{' '.join(kind)} {ident} is still there")


def test_volume_backup_create_restore_list_delete(cli: Client) -> None:
    vol = cli.json("volume", "create", "--size", "1", unique("bak-src"))
    wait(cli, ["volume"], vol["id"], "available")
    full = cli.json("volume", "backup", "create", "--name", unique("full"), vol["id"])
    full = wait(cli, ["volume", "backup"], full["id"], "available")
    assert full["volume_id"] == vol["id"] and full["size"] == 1 and full["is_incremental"] is False
    incr = cli.json("volume", "backup", "create", "--incremental", "--name", unique("incr"), vol["id"])
    incr = wait(cli, ["volume", "backup"], incr["id"], "available")
    assert incr["is_incremental"] is True
    assert wait(cli, ["volume"], vol["id"], "available")["status"] == "available"
    listed = {b["ID"]: b for b in cli.json("volume", "backup", "list", "--long")}
    assert {full["id"], incr["id"]} <= set(listed)
    assert listed[full["id"]]["Volume"] in (vol["id"], vol["name"])

    # to a new volume, named
    new_name = unique("restored")
    restore = cli.json("volume", "backup", "restore", incr["id"], new_name)
    restored = wait(cli, ["volume"], restore["volume_id"], "available")
    assert restored["name"] == new_name and restored["size"] == 1
    # to an existing volume
    target = cli.json("volume", "create", "--size", "1", unique("bak-target"))
    wait(cli, ["volume"], target["id"], "available")
    cli.json("volume", "backup", "restore", "--force", full["id"], target["id"])
    wait(cli, ["volume", "backup"], full["id"], "available")
    wait(cli, ["volume"], target["id"], "available")

    # the full one has a dependent: the API refuses to delete it first
    refused = cli.run("volume", "backup", "delete", full["id"], check=False)
    assert refused.returncode != 0 and "Incremental backups exist" in refused.stderr + refused.stdout
    cli.run("volume", "backup", "delete", incr["id"])
    wait_gone(cli, ["volume", "backup"], incr["id"])
    cli.run("volume", "backup", "delete", full["id"])
    wait_gone(cli, ["volume", "backup"], full["id"])
    for v in (vol["id"], restore["volume_id"], target["id"]):
        cli.run("volume", "delete", v)


def test_volume_transfer_request_create_accept_list_delete(cli: Client) -> None:
    vol = cli.json("volume", "create", "--size", "1", unique("xfer"))
    wait(cli, ["volume"], vol["id"], "available")
    request = cli.json("volume", "transfer", "request", "create", "--name", unique("req"), vol["id"])
    assert request["volume_id"] == vol["id"] and len(request["auth_key"]) == 16
    assert request["id"] in {r["ID"] for r in cli.json("volume", "transfer", "request", "list")}
    assert cli.json("volume", "show", vol["id"])["status"] == "awaiting-transfer"
    accepted = cli.json("volume", "transfer", "request", "accept", "--auth-key", request["auth_key"],
                        request["id"], cloud="mcloud-demo")
    assert accepted["volume_id"] == vol["id"]
    assert cli.json("volume", "show", vol["id"], cloud="mcloud-demo")["status"] == "available"
    demo = cli.json("project", "show", "demo")["id"]
    assert cli.json("volume", "show", vol["id"])["os-vol-tenant-attr:tenant_id"] == demo
    assert request["id"] not in {r["ID"] for r in cli.json("volume", "transfer", "request", "list")}

    # a request deleted gives the volume back
    other = cli.json("volume", "create", "--size", "1", unique("xfer2"))
    wait(cli, ["volume"], other["id"], "available")
    request = cli.json("volume", "transfer", "request", "create", other["id"])
    cli.run("volume", "transfer", "request", "delete", request["id"])
    assert cli.json("volume", "show", other["id"])["status"] == "available"
    cli.run("volume", "delete", other["id"])
    cli.run("volume", "delete", vol["id"], cloud="mcloud-demo")
