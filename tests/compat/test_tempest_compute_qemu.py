"""Compatibility with real guests: a smaller set of Tempest's `tempest.api.compute` against a live
`mcloud up` with the qemu hypervisor driver and the ovn network driver (its OVN/OVS data plane in
a namespace of its own), booting mCloud's tiny image, with Tempest's validation on: 13 tests
(measured here: 13 passed, Tempest about 4 minutes, the whole test 4.6 minutes on 2 cores).

Every power action, resize (confirm and revert), rebuild, console output and snapshot that Tempest
asks for happens to a real qemu guest under this machine's accelerator (TCG here), and Tempest
logs in to its servers over SSH as root with its key pair (the tiny image's dropbear), through a
floating IP of the provider network `public`, allowed by the security group it makes (ssh and
icmp): before and after a reboot (boot time), after a rebuild, and for the two interop tests that
need a login (the guest's hostname is the server's name; /proc/cpuinfo has the flavor's vCPUs).

The floating IPs live on br-ex inside the data plane's namespace, which the machine's default
namespace never sees. So Tempest runs in an "outside" namespace on br-ex (tests/ovn.py
``outside``: the provider network's gateway, 172.24.4.1), where a ``LoopbackForward`` makes
127.0.0.1:PORT lead to the cloud's API in the default namespace: the catalog's URLs work there
unchanged (tools/tempest.sh ``--run-prefix``). Nothing is added to the default namespace.
"""

from __future__ import annotations

import os
import shlex

import pytest

from mcloud.network.dataplane import DataPlane, OvnOptions, in_netns
from tests.compat.test_tempest_image import tempest
from tests.harness import LiveCloud, free_port, missing
from tests.netns import LoopbackForward, Namespaces
from tests.ovn import outside, ovn_missing
from tests.qemu import qemu_missing, tiny

pytestmark = pytest.mark.tempest

SUBSET = (
    r"tempest\.api\.compute\.servers\.test_server_actions\.ServerActionsTestJSON\.test_(stop_start_server|"
    r"reboot_server_hard|pause_unpause_server|suspend_resume_server|resize_server_confirm|resize_server_revert|"
    r"rebuild_server|get_console_output|lock_unlock_server)\b",
    r"tempest\.api\.compute\.servers\.test_create_server\.ServersTestJSON\.test_(verify_server_details|"
    r"host_name_is_same_as_server_name|verify_created_server_vcpus)\b",
    r"tempest\.api\.compute\.images\.test_images_oneserver\.ImagesOneServerTestJSON\.test_create_delete_image\b",
)
WANTED = 13
#: the provider network Tempest's routers and floating IPs use (tools/tempest/network_conf.py's
#: "public", made here first as a flat network on br-ex's physical network, so that it is reused)
PUBLIC_CIDR, GATEWAY = "172.24.4.0/24", "172.24.4.1"
HOST = "tempest-qemu"


def test_tempest_compute_on_qemu(tmp_path):
    for why in (qemu_missing(), ovn_missing()):
        if why is not None:
            missing(why)
    image = tiny()
    root = tmp_path / "cloud"
    root.mkdir()
    namespace = f"mco-tq-{os.getpid()}"
    (root / "mcloud.toml").write_text(
        f'[network]\ndriver = "ovn"\n\n[network.ovn]\nnamespace = "{namespace}"\nchassis = "{HOST}"\n\n'
        f'[compute]\ndriver = "qemu"\nhost = "{HOST}"\n')
    cloud = LiveCloud(root, free_port(), env={"MCLOUD_NETWORK_DRIVER": "ovn", "MCLOUD_COMPUTE_DRIVER": "qemu"})
    ns = Namespaces(prefix="mctq")
    forward = None
    try:
        cloud.start(timeout=120)
        cli = cloud.openstack
        cli("network", "create", "--external", "--provider-network-type", "flat", "--provider-physical-network",
            "public", "public")
        cli("subnet", "create", "--network", "public", "--subnet-range", PUBLIC_CIDR, "--no-dhcp", "--gateway",
            GATEWAY, "public-subnet")
        world, _ = outside(DataPlane(OvnOptions.parse({"namespace": namespace, "chassis": HOST}, root)), ns,
                           f"{GATEWAY}/24")
        forward = LoopbackForward(world, cloud.port)
        summary, statuses = tempest(tmp_path, "--services", "nova,neutron,glance", "--image-file", str(image.path),
                                    "--concurrency", "1", "--validation",
                                    "--run-prefix", shlex.join(in_netns(world, [])), *SUBSET, cloud_dir=root)
    finally:
        if forward is not None:
            forward.close()
        ns.cleanup()
        assert cloud.stop() == 0
    assert len(statuses) == WANTED, statuses
    assert sorted(t for t, s in statuses.items() if s != "success") == [], summary
    print(f"{summary} (qemu guests of the tiny image on OVN, Tempest logging in over SSH)")
