"""`[network] driver = "auto"` on a machine that cannot run OVN: `mcloud up` says so in one log
line and serves the network API on the fake driver."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import FAST_ENV, unique
from tests.harness import LiveCloud, free_port

pytestmark = pytest.mark.e2e


def test_auto_without_the_ovn_programs_falls_back_to_fake_in_one_log_line(tmp_path: Path) -> None:
    # a PATH holding only the virtualenv: none of ovn-northd, ovn-controller, ovsdb-server, ovs-vswitchd
    cloud = LiveCloud(tmp_path / "cloud", free_port(),
                      env={**FAST_ENV, "MCLOUD_NETWORK_DRIVER": "auto", "PATH": str(Path(sys.executable).parent)})
    cloud.start()
    try:
        said = [line for line in cloud.log.read_text().splitlines() if "no OVN data plane" in line]
        assert len(said) == 1, said
        assert "missing" in said[0] and "ovn-northd" in said[0] and "fake driver" in said[0]
        assert not (cloud.data_dir / "ovn").exists()  # no data plane was started
        name = unique("fallback")
        net = cloud.openstack("network", "create", name, json_out=True)
        assert '"status": "ACTIVE"' in net.stdout
        port = cloud.openstack("port", "create", "--network", name, unique("p"), json_out=True)
        assert '"status": "DOWN"' in port.stdout
    finally:
        assert cloud.stop() == 0
