"""Compatibility: OpenStack's own Tempest `tempest.api.network` against a live `mcloud up`.

tools/tempest.sh starts the cloud, writes [network] / [network-feature-enabled] from what the
cloud says (api_extensions exactly as /v2.0/extensions lists them; a router:external "public"
network it makes as the admin for public_network_id) and runs Tempest in its own virtualenv.
The run must pass every network test of the interop guideline
(../shared/compat/interop-powered-compute.txt) and at least 85% of the network tests that are
not skipped for a feature the cloud does not advertise.

The data plane is ``[network] driver`` auto (OVN where it can run) unless
MCLOUD_TEMPEST_NETWORK_DRIVER names one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.compat.test_tempest_image import INTEROP, tempest, workspace
from tests.harness import REPO

pytestmark = pytest.mark.tempest


def current_ids(tmp_path, names: list[str]) -> list[str]:
    """The guideline's test names as this Tempest names them (a few moved, e.g. to admin/):
    tools/tempest/map_ids.py over the ids the run listed."""
    listed = tmp_path / "interop-network.txt"
    listed.write_text("".join(n + "\n" for n in names))
    out = tmp_path / "interop-network-resolved.txt"
    subprocess.run([sys.executable, str(REPO / "tools" / "tempest" / "map_ids.py"), "--available",
                    str(workspace(tmp_path) / "all-tests.txt"), "--out", str(out), str(listed)],
                   check=True, capture_output=True, text=True)
    return sorted({line.strip().split("[")[0] for line in out.read_text().splitlines() if line.strip()})


def test_tempest_network(tmp_path):
    if not INTEROP.exists():
        pytest.fail(f"{INTEROP} is missing: the interop test list ships in shared/compat")
    interop = [t for t in map(str.strip, INTEROP.read_text().splitlines()) if t.startswith("tempest.api.network")]
    assert len(interop) == 64
    driver = os.environ.get("MCLOUD_TEMPEST_NETWORK_DRIVER", "auto")
    summary, statuses = tempest(tmp_path, "--services", "neutron", "--network-driver", driver, "tempest.api.network")
    resolved = current_ids(tmp_path, interop)
    assert len(resolved) >= len(interop), resolved
    assert [t for t in resolved if statuses.get(t) != "success"] == [], summary
    counted = [status for status in statuses.values() if status != "skip"]
    good = counted.count("success")
    print(f"{summary} -> {good}/{len(counted)} of the non-skipped network tests pass")
    assert good >= 0.85 * len(counted), summary
