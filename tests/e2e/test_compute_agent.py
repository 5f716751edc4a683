"""A second compute host as its own process: `mcloud agent --controller URL` with the fake
driver registers with a real `mcloud up`, shows up in os-services, os-hypervisors and Placement
(through the real openstack CLI), runs a server scheduled onto it, and is marked down once its
heartbeats stop (the agent is killed by PID)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, FAST_ENV, unique
from tests.harness import LiveCloud, free_port, wait_for

HOST = "agent-e2e-1"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[LiveCloud]:
    live = LiveCloud(tmp_path_factory.mktemp("agent-cloud"), free_port(), admin_password=ADMIN_PASSWORD,
                     env={**FAST_ENV, "MCLOUD_COMPUTE_DRIVER": "fake", "MCLOUD_COMPUTE_HOST": "controller-e2e",
                          "MCLOUD_COMPUTE_REPORT_INTERVAL": "1", "MCLOUD_COMPUTE_SERVICE_DOWN_TIME": "4"})
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def agent(cloud, tmp_path_factory) -> Iterator[subprocess.Popen[str]]:
    data_dir = tmp_path_factory.mktemp("agent-host")
    log = open(data_dir / "agent.log", "w")
    env = {**os.environ, "MCLOUD_COMPUTE_DRIVER": "fake", "MCLOUD_COMPUTE_REPORT_INTERVAL": "1",
           "MCLOUD_AGENT_PASSWORD": ADMIN_PASSWORD}
    proc = subprocess.Popen([sys.executable, "-m", "mcloud", "agent", "--data-dir", str(data_dir),
                             "--controller", cloud.url, "--compute-host", HOST],
                            stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()


def cli_json(cloud: LiveCloud, *args: str):
    return json.loads(cloud.openstack(*args, json_out=True).stdout)


def agent_service(cloud: LiveCloud):
    """the agent's nova-compute service"""
    rows = cli_json(cloud, "compute", "service", "list", "--service", "nova-compute")
    return next((r for r in rows if r["Host"] == HOST), None)


def test_agent_registers_runs_a_server_and_goes_down(cloud, agent):
    svc = wait_for(lambda: (s := agent_service(cloud)) and s["State"] == "up" and s)
    assert svc["Status"] == "enabled" and svc["Zone"] == "nova"

    hypervisors = cli_json(cloud, "hypervisor", "list")
    mine = [h for h in hypervisors if h["Hypervisor Hostname"] == HOST]
    assert len(mine) == 1 and mine[0]["State"] == "up" and mine[0]["Hypervisor Type"] == "fake"
    providers = cli_json(cloud, "--os-placement-api-version", "1.39", "resource", "provider", "list",
                         "--name", HOST)
    assert len(providers) == 1 and providers[0]["uuid"] == mine[0]["ID"]
    inventory = {i["resource_class"]: i for i in cli_json(
        cloud, "--os-placement-api-version", "1.39", "resource", "provider", "inventory", "list",
        providers[0]["uuid"])}
    assert inventory["VCPU"]["total"] == 16 and inventory["MEMORY_MB"]["total"] == 32768

    # a server forced onto the agent's host runs there
    image = unique("img")
    image_file = cloud.data_dir / "e2e-image.raw"
    image_file.write_bytes(b"\0" * 4096)
    cloud.openstack("image", "create", image, "--disk-format", "raw", "--container-format", "bare",
                    "--file", str(image_file), "--public")
    flavor = cli_json(cloud, "flavor", "list")[0]["Name"]
    server = cli_json(cloud, "server", "create", unique("vm"), "--image", image, "--flavor", flavor,
                      "--nic", "none", "--availability-zone", f"nova:{HOST}", "--wait")
    assert server["status"] == "ACTIVE" and server["OS-EXT-SRV-ATTR:host"] == HOST
    log = cloud.openstack("console", "log", "show", server["id"]).stdout
    assert f"fake: booted instance {server['id']}" in log
    cloud.openstack("server", "delete", "--wait", server["id"])

    # the agent dies: its service goes down once its heartbeats are older than service_down_time
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait(timeout=10)
    started = time.monotonic()
    wait_for(lambda: agent_service(cloud)["State"] == "down", timeout=30)
    assert time.monotonic() - started < 20
    assert [h for h in cli_json(cloud, "hypervisor", "list") if h["Hypervisor Hostname"] == HOST][0]["State"] == "down"
