"""Compatibility: OpenStack's own Tempest `tempest.api.compute` against a live `mcloud up` with the
fake hypervisor and network drivers (for speed; the qemu driver has tests of its own).

tools/tempest.sh starts the cloud, writes [compute] / [compute-feature-enabled] from what it
implements (tools/tempest/compute_conf.py: two public images, the two smallest flavors, the
maximum microversion) and runs Tempest in its own virtualenv. The run takes every compute test of
the interop guideline (../shared/compat/interop-powered-compute.txt) and a small, fast subset of
the rest of tempest.api.compute that covers the Nova APIs the interop list leaves out (the image,
security group, floating IP and network proxies, instance actions, usage, migrations, the server
password, /extensions, os-hosts, the usage audit log, external events, the noVNC console through
the proxy to tools/tempest.sh's stand-in VNC server, volume attachments through the block storage
service on its file backend); the whole suite stays a few minutes on 2 cores. Every interop test
must pass but the two that Tempest skips here (SSH validation, off with the fake drivers: they pass
with real guests in test_tempest_compute_qemu.py), and nothing of the subset may fail.
"""

from __future__ import annotations

import pytest

from tests.compat.test_tempest_image import INTEROP, tempest
from tests.compat.test_tempest_network import current_ids

pytestmark = pytest.mark.tempest

SUBSET = (
    r"tempest\.api\.compute\.servers\.test_instance_actions\.",
    r"tempest\.api\.compute\.servers\.test_server_password\.",
    r"tempest\.api\.compute\.images\.test_image_metadata\.",
    r"tempest\.api\.compute\.security_groups\.test_security_groups\.",
    r"tempest\.api\.compute\.admin\.test_simple_tenant_usage\.",
    r"tempest\.api\.compute\.admin\.test_migrations\.MigrationsAdminTest\.test_list_migrations$",
    # Nova's network proxies, fixed and admin APIs, consoles through the noVNC proxy
    r"tempest\.api\.compute\.test_extensions\.",
    r"tempest\.api\.compute\.test_tenant_networks\.",
    r"tempest\.api\.compute\.admin\.test_networks\.",
    r"tempest\.api\.compute\.admin\.test_hosts",
    r"tempest\.api\.compute\.admin\.test_instance_usage_audit_log",
    r"tempest\.api\.compute\.admin\.test_server_external_events\.",
    r"tempest\.api\.compute\.floating_ips\.test_list_floating_ips",
    r"tempest\.api\.compute\.floating_ips\.test_floating_ips_actions\.FloatingIPsTestJSON\.",
    r"tempest\.api\.compute\.servers\.test_novnc\.",
    # volumes on servers (the block storage service, file backend)
    r"tempest\.api\.compute\.volumes\.test_attach_volume\.AttachVolumeTestJSON\.",
)
# interop tests Tempest skips with the fake drivers: SSH validation
MAY_SKIP = 2


def test_tempest_compute(tmp_path):
    if not INTEROP.exists():
        pytest.fail(f"{INTEROP} is missing: the interop test list ships in shared/compat")
    interop = [t for t in map(str.strip, INTEROP.read_text().splitlines()) if t.startswith("tempest.api.compute")]
    assert len(interop) == 80
    listed = tmp_path / "interop-compute.txt"
    listed.write_text("".join(t + "\n" for t in interop))
    summary, statuses = tempest(tmp_path, "--services", "nova,neutron,glance,cinder", "--compute-driver", "fake",
                                "--network-driver", "fake", "--load-list", str(listed), *SUBSET)
    resolved = current_ids(tmp_path, interop)
    assert len(resolved) >= len(interop), resolved
    assert [t for t in resolved if statuses.get(t) not in ("success", "skip")] == [], summary
    assert sum(statuses.get(t) == "skip" for t in resolved) <= MAY_SKIP, summary
    failed = sorted(t for t, status in statuses.items() if status not in ("success", "skip"))
    assert failed == [], summary
    print(f"{summary} -> {sum(s == 'success' for s in statuses.values())} passed")
