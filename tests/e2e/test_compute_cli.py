"""Servers through the real `openstack` CLI against a live `mcloud up` with the fake hypervisor and
the fake network data plane: boot with --wait to ACTIVE, show, list, a backup, the compute
extension list, stop/start, delete (Nova's 400s for bad input are the API tests' part: the CLI resolves names itself first)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, FAST_ENV, Client, unique
from tests.harness import LiveCloud, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, empty_config) -> Iterator[Client]:
    data_dir = tmp_path_factory.mktemp("e2e-compute")
    env = {**FAST_ENV, "MCLOUD_COMPUTE_DRIVER": "fake", "MCLOUD_NETWORK_DRIVER": "fake"}
    cloud = LiveCloud(data_dir, free_port(), admin_password=ADMIN_PASSWORD, env=env)
    cloud.start()
    try:
        yield Client(cloud, empty_config)
    finally:
        cloud.stop()


def test_server_create_wait_reaches_active(cli: Client, tmp_path) -> None:
    image_file = tmp_path / "disk.raw"
    image_file.write_bytes(b"\0" * 4096)
    image = cli.json("image", "create", "--disk-format", "raw", "--container-format", "bare", "--public",
                     "--file", str(image_file), unique("img"))
    net = unique("net")
    cli.json("network", "create", net)
    cli.json("subnet", "create", "--network", net, "--subnet-range", "10.77.0.0/24", unique("sub"))
    name = unique("vm")
    server = cli.json("server", "create", "--flavor", "m1.tiny", "--image", image["id"], "--network", net,
                      "--property", "role=e2e", "--wait", name)
    assert server["status"] == "ACTIVE" and server["name"] == name
    shown = cli.json("server", "show", name)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:vm_state"] == "active"
    assert net in str(shown["addresses"]) and "10.77.0." in str(shown["addresses"])
    assert name in {s["Name"] for s in cli.json("server", "list")}
    # a backup through the CLI (createBackup): an image of type backup, the server ACTIVE again
    backup = unique("backup")
    cli.run("server", "backup", "create", "--name", backup, "--type", "daily", "--rotate", "2", "--wait", name)
    made = cli.json("image", "show", backup)
    assert made["status"] == "active" and made["properties"]["image_type"] == "backup", made
    assert made["properties"]["backup_type"] == "daily" and made["properties"]["instance_uuid"] == server["id"]
    assert cli.json("server", "show", name)["status"] == "ACTIVE"
    # Nova's fixed extension list, as `openstack extension list --compute` reads it
    aliases = {e["Alias"] for e in cli.json("extension", "list", "--compute")}
    assert {"os-floating-ips", "OS-DCF", "os-server-external-events"} <= aliases
    cli.run("server", "stop", name)
    cli.run("server", "start", name)
    cli.run("server", "delete", "--wait", name)
    assert name not in {s["Name"] for s in cli.json("server", "list")}
