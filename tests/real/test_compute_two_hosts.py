"""Two compute hosts (the issue's "Must show"): the in-process host of a real `mcloud up` on
OVN and a real `mcloud agent` process with an OVN chassis of its own (`--beside`: a namespace of
its own joined to the controller's data plane by a veth, registered in the controller's
Southbound database under the agent's host name). With the fake hypervisor (no guest costs
CPU): anti-affinity puts a server group's two servers on the two hosts; an agent whose
heartbeats stop (SIGSTOP) is down in os-services within service_down_time, up again once it
runs; stopping the agent deregisters its chassis and removes its namespace."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import unique
from tests.real.compute_two_hosts import AGENT, CONTROLLER, SERVICE_DOWN_TIME, TwoHosts

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Iterator[TwoHosts]:
    with TwoHosts(tmp_path_factory.mktemp("two-hosts"), driver="fake") as two:
        yield two
    assert two.cloud_exit == 0, "mcloud up did not stop cleanly"


def test_the_agent_runs_its_own_chassis(hosts):
    assert {CONTROLLER, AGENT} <= hosts.sb_chassis()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert hosts.chassis_namespace in namespaces
    hypervisors = {h["Hypervisor Hostname"]: h for h in hosts.cli("hypervisor", "list")}
    assert hypervisors[AGENT]["State"] == "up" and hypervisors[CONTROLLER]["State"] == "up"


def test_anti_affinity_places_a_group_on_both_hosts(hosts):
    group = hosts.cli("server", "group", "create", "--policy", "anti-affinity", unique("spread"))
    image_file = hosts.cloud.data_dir / "two-hosts.raw"
    image_file.write_bytes(b"\0" * 4096)
    image = unique("img")
    hosts.cloud.openstack("image", "create", image, "--disk-format", "raw", "--container-format", "bare",
                          "--file", str(image_file))
    servers = [hosts.cli("server", "create", unique("vm"), "--image", image, "--flavor", "m1.nano", "--nic", "none",
                         "--hint", f"group={group['id']}", "--wait") for _ in range(2)]
    placed = {s["OS-EXT-SRV-ATTR:host"] for s in servers}
    assert placed == {CONTROLLER, AGENT}, placed
    assert all(s["status"] == "ACTIVE" for s in servers)
    # a third member has nowhere to go
    third = hosts.cloud.openstack("server", "create", unique("vm"), "--image", image, "--flavor", "m1.nano",
                                  "--nic", "none", "--hint", f"group={group['id']}", "--wait", check=False)
    assert third.returncode != 0
    errored = [s for s in hosts.cli("server", "list", "--status", "ERROR")]
    assert errored, "the third member of the group should be in ERROR"
    fault = hosts.cli("server", "show", errored[0]["ID"])["fault"]
    assert "No valid host" in str(fault)
    for s in [*servers, *errored]:
        hosts.cloud.openstack("server", "delete", "--wait", s["id"] if "id" in s else s["ID"])


def test_an_agent_whose_heartbeats_stop_is_down(hosts):
    assert hosts.agent is not None
    hosts.agent.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        hosts.wait(lambda: hosts.service(AGENT)["State"] == "down", 30, "the stopped agent to be down")
        took = time.monotonic() - stopped
        assert took < SERVICE_DOWN_TIME + 10, took
        assert hosts.service(CONTROLLER)["State"] == "up"
    finally:
        hosts.agent.send_signal(signal.SIGCONT)
    hosts.wait(lambda: hosts.service(AGENT)["State"] == "up", 30, "the agent to be up again")


def test_stopping_the_agent_removes_its_chassis(hosts):
    assert hosts.stop_agent() == 0
    assert AGENT not in hosts.sb_chassis() and CONTROLLER in hosts.sb_chassis()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert hosts.chassis_namespace not in namespaces
