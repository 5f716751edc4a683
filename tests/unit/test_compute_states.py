"""Nova's API status from (vm_state, task_state), and back (the status filter of server lists),
as nova/api/openstack/common.py maps them; and the actions' state rules."""

from __future__ import annotations

import pytest

from mcloud.compute import models as m
from mcloud.compute import states as st
from mcloud.compute.service_servers_actions import check_state
from mcloud.compute.views import states_of_status, status_of
from mcloud.core.errors import Conflict


@pytest.mark.parametrize(("vm", "task", "status"), [
    (st.BUILDING, st.SCHEDULING, "BUILD"), (st.ACTIVE, None, "ACTIVE"), (st.ACTIVE, st.REBOOTING, "REBOOT"),
    (st.ACTIVE, st.REBOOTING_HARD, "HARD_REBOOT"), (st.ACTIVE, st.REBUILDING, "REBUILD"),
    (st.ACTIVE, st.MIGRATING, "MIGRATING"), (st.ACTIVE, st.RESIZE_PREP, "RESIZE"), (st.STOPPED, None, "SHUTOFF"),
    (st.STOPPED, st.RESIZE_MIGRATING, "RESIZE"), (st.RESIZED, None, "VERIFY_RESIZE"),
    (st.RESIZED, st.RESIZE_REVERTING, "REVERT_RESIZE"), (st.PAUSED, None, "PAUSED"),
    (st.SUSPENDED, None, "SUSPENDED"), (st.RESCUED, None, "RESCUE"), (st.ERROR, None, "ERROR"),
    (st.ERROR, st.REBUILDING, "REBUILD"), (st.DELETED, None, "DELETED"), (st.SHELVED, None, "SHELVED"),
    (st.SHELVED_OFFLOADED, st.UNSHELVING, "SHELVED_OFFLOADED"), (st.ACTIVE, st.POWERING_OFF, "ACTIVE"),
    ("nonsense", None, "UNKNOWN"),
])
def test_status_of(vm: str, task: str | None, status: str) -> None:
    assert status_of(vm, task) == status


def test_states_of_status() -> None:
    vm, task = states_of_status("shutoff")
    assert vm == [st.STOPPED] and "default" in task
    vm, task = states_of_status("RESIZE")
    assert set(vm) == {st.ACTIVE, st.STOPPED} and "default" not in task and st.RESIZE_PREP in task
    assert states_of_status("NOPE") == ([], [])


def test_action_rules_are_novas() -> None:
    inst = m.Instance(uuid="u-1", vm_state=st.STOPPED, task_state=None)
    with pytest.raises(Conflict, match="Cannot 'stop' instance u-1 while it is in vm_state stopped"):
        check_state(inst, "stop")
    assert check_state(inst, "start").sets_task == st.POWERING_ON
    inst.vm_state, inst.task_state = st.ACTIVE, st.POWERING_OFF
    with pytest.raises(Conflict, match="while it is in task_state powering-off"):
        check_state(inst, "pause")
    # a hard reboot may replace a soft one under way; a soft one may not
    inst.task_state = st.REBOOTING
    assert check_state(inst, "reboot_hard").sets_task == st.REBOOTING_HARD
    with pytest.raises(Conflict):
        check_state(inst, "reboot_soft")
