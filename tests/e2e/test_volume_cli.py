"""Volumes and snapshots through the real `openstack` CLI against a live `mcloud up` (file
backend): volume create/list/show/set/delete, volume snapshot create/list/show/set/delete, a
volume from a snapshot, and the CLI's error for what Cinder refuses."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import Client, unique

pytestmark = pytest.mark.e2e


def wait(cli: Client, kind: tuple[str, ...], name: str, status: str, timeout: float = 60) -> dict[str, Any]:
    """``openstack <kind> show`` until its status is ``status`` (``"gone"``: until show fails)."""
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if status == "gone":
            if cli.run(*kind, "show", name, check=False).returncode != 0:
                return {}
        else:
            shown = cli.json(*kind, "show", name)
            if shown["status"] == status:
                return shown
            assert not shown["status"].startswith("error"), shown
        time.sleep(0.3)
    raise AssertionError(f"{kind} {name} is {shown.get('status')}, not {status}")


def test_volume_and_snapshot_cli(cli: Client) -> None:
    name = unique("vol")
    made = cli.json("volume", "create", "--size", "1", "--property", "tier=e2e", "--description", "made by e2e",
                    name)
    assert made["name"] == name and made["size"] == 1
    shown = wait(cli, ("volume",), name, "available")
    assert shown["properties"] == {"tier": "e2e"} and shown["description"] == "made by e2e"
    assert shown["type"] == "__DEFAULT__" and str(shown["bootable"]).lower() == "false"
    assert name in [v["Name"] for v in cli.json("volume", "list")]
    cli.run("volume", "set", "--name", name + "-x", "--property", "k=v", "--bootable", name)
    name += "-x"
    shown = cli.json("volume", "show", name)
    assert shown["properties"] == {"tier": "e2e", "k": "v"} and str(shown["bootable"]).lower() == "true"
    cli.run("volume", "set", "--size", "2", name)
    assert wait(cli, ("volume",), name, "available")["size"] == 2
    # snapshots
    snap = unique("snap")
    cli.json("volume", "snapshot", "create", "--volume", name, "--property", "s=1", snap)
    shown = wait(cli, ("volume", "snapshot"), snap, "available")
    assert shown["size"] == 2 and shown["properties"] == {"s": "1"}
    assert snap in [s["Name"] for s in cli.json("volume", "snapshot", "list")]
    cli.run("volume", "snapshot", "set", "--description", "snapped", snap)
    assert cli.json("volume", "snapshot", "show", snap)["description"] == "snapped"
    clone = unique("clone")
    cli.json("volume", "create", "--snapshot", snap, clone)
    assert wait(cli, ("volume",), clone, "available")["size"] == 2
    # Cinder refuses to delete a volume that has snapshots: the CLI shows the 400 and fails
    refused = cli.run("volume", "delete", name, check=False)
    assert refused.returncode != 0 and "snapshots" in refused.stderr
    cli.run("volume", "snapshot", "delete", snap)
    wait(cli, ("volume", "snapshot"), snap, "gone")
    cli.run("volume", "delete", name, clone)
    wait(cli, ("volume",), name, "gone")
    wait(cli, ("volume",), clone, "gone")
    assert name not in [v["Name"] for v in cli.json("volume", "list")]
