"""Compatibility with real guests: a smaller set of Tempest's `tempest.api.compute` against a live
`mcloud up` with the qemu hypervisor driver (the network's fake driver: the guests' NICs are then
qemu's own restricted user network), booting mCloud's tiny image. Every power action, resize
(confirm and revert), rebuild, console output and snapshot that Tempest asks for happens to a
real qemu guest under this machine's accelerator (TCG here)."""

from __future__ import annotations

import pytest

from tests.compat.test_tempest_image import tempest
from tests.harness import missing
from tests.qemu import qemu_missing, tiny

pytestmark = pytest.mark.tempest

SUBSET = (
    r"tempest\.api\.compute\.servers\.test_server_actions\.ServerActionsTestJSON\.test_(stop_start_server|"
    r"reboot_server_hard|pause_unpause_server|suspend_resume_server|resize_server_confirm|resize_server_revert|"
    r"rebuild_server|get_console_output|lock_unlock_server)\b",
    r"tempest\.api\.compute\.servers\.test_create_server\.ServersTestJSON\.test_verify_server_details\b",
    r"tempest\.api\.compute\.images\.test_images_oneserver\.ImagesOneServerTestJSON\.test_create_delete_image\b",
)
WANTED = 11


def test_tempest_compute_on_qemu(tmp_path):
    if (why := qemu_missing()) is not None:
        missing(why)
    summary, statuses = tempest(tmp_path, "--services", "nova,neutron,glance", "--compute-driver", "qemu",
                                "--network-driver", "fake", "--image-file", str(tiny().path),
                                "--concurrency", "1", *SUBSET)
    assert len(statuses) == WANTED, statuses
    assert sorted(t for t, s in statuses.items() if s != "success") == [], summary
    print(f"{summary} (qemu guests of the tiny image)")
