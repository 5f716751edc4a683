"""Server actions: Nova's state checks (409 "Cannot 'stop' instance X while it is in vm_state
stopped"), lock rules, the InstanceAction row, the task_state, then the conductor's
``submit_action`` (seam 2), all in one write transaction."""

from __future__ import annotations

import dataclasses
from typing import Any

from mcloud.compute import models as m
from mcloud.compute import states as st
from mcloud.compute.service import Caller
from mcloud.core.errors import Conflict


def state_conflict(inst: m.Instance, action: str, attr: str = "vm_state", state: Any = None) -> Conflict:
    shown = state if state is not None else (inst.vm_state if attr == "vm_state" else inst.task_state)
    return Conflict(f"Cannot '{action}' instance {inst.uuid} while it is in {attr} {shown}")


@dataclasses.dataclass(frozen=True)
class Rule:
    """Which states an action may start from (None: any), and the task_state it sets."""

    vm_states: tuple[str, ...] | None
    task_states: tuple[str | None, ...] | None = (None,)
    sets_task: str | None = None
    # the name Nova's os-instance-actions shows (and the conductor's action name)
    action: str = ""


_REBOOT_TASKS = (None, st.REBOOTING, st.REBOOT_PENDING, st.REBOOT_STARTED, st.REBOOTING_HARD,
                 st.REBOOT_PENDING_HARD, st.REBOOT_STARTED_HARD)
RULES: dict[str, Rule] = {
    "stop": Rule((st.ACTIVE, st.ERROR), (None,), st.POWERING_OFF, "stop"),
    "start": Rule((st.STOPPED,), (None,), st.POWERING_ON, "start"),
    "reboot_soft": Rule((st.ACTIVE,), (None,), st.REBOOTING, "reboot"),
    "reboot_hard": Rule((st.ACTIVE, st.STOPPED, st.PAUSED, st.SUSPENDED, st.ERROR), _REBOOT_TASKS,
                        st.REBOOTING_HARD, "reboot"),
    "pause": Rule((st.ACTIVE,), (None,), st.PAUSING, "pause"),
    "unpause": Rule((st.PAUSED,), (None,), st.UNPAUSING, "unpause"),
    "suspend": Rule((st.ACTIVE,), (None,), st.SUSPENDING, "suspend"),
    "resume": Rule((st.SUSPENDED,), (None,), st.RESUMING, "resume"),
    "rescue": Rule((st.ACTIVE, st.STOPPED, st.ERROR), (None,), st.RESCUING, "rescue"),
    "unrescue": Rule((st.RESCUED,), (None,), st.UNRESCUING, "unrescue"),
    "resize": Rule((st.ACTIVE, st.STOPPED), (None,), st.RESIZE_PREP, "resize"),
    "confirmResize": Rule((st.RESIZED,), (None,), None, "confirmResize"),
    "revertResize": Rule((st.RESIZED,), (None,), st.RESIZE_REVERTING, "revertResize"),
    "rebuild": Rule((st.ACTIVE, st.STOPPED, st.ERROR), (None,), st.REBUILDING, "rebuild"),
    "createImage": Rule((st.ACTIVE, st.STOPPED, st.PAUSED, st.SUSPENDED), (None,), st.IMAGE_SNAPSHOT,
                        "createImage"),
    "createBackup": Rule((st.ACTIVE, st.STOPPED, st.PAUSED, st.SUSPENDED), (None,), st.IMAGE_BACKUP,
                         "createBackup"),
    "shelve": Rule((st.ACTIVE, st.STOPPED, st.PAUSED, st.SUSPENDED), (None,), st.SHELVING, "shelve"),
    "shelveOffload": Rule((st.SHELVED,), (None,), st.SHELVING_OFFLOADING, "shelveOffload"),
    "unshelve": Rule((st.SHELVED, st.SHELVED_OFFLOADED), (None,), st.UNSHELVING, "unshelve"),
    "migrate": Rule((st.ACTIVE, st.STOPPED), (None,), st.RESIZE_PREP, "migrate"),
    "os-migrateLive": Rule((st.ACTIVE, st.PAUSED), (None,), st.MIGRATING, "live-migration"),
    "evacuate": Rule((st.ACTIVE, st.STOPPED, st.ERROR), None, st.REBUILDING, "evacuate"),
    "trigger_crash_dump": Rule((st.ACTIVE, st.PAUSED, st.RESCUED, st.RESIZED, st.ERROR), (None,), None,
                               "trigger_crash_dump"),
    "attach_interface": Rule((st.ACTIVE, st.PAUSED, st.STOPPED), (None,), None, "attach_interface"),
    "detach_interface": Rule((st.ACTIVE, st.PAUSED, st.STOPPED), (None,), None, "detach_interface"),
    "attach_volume": Rule((st.ACTIVE, st.PAUSED, st.STOPPED, st.RESIZED, st.SOFT_DELETED, st.SHELVED,
                           st.SHELVED_OFFLOADED), (None,), None, "attach_volume"),
    "detach_volume": Rule((st.ACTIVE, st.PAUSED, st.STOPPED, st.RESIZED, st.SOFT_DELETED, st.SHELVED,
                           st.SHELVED_OFFLOADED), (None,), None, "detach_volume"),
    "addSecurityGroup": Rule(None, None, None, ""),
    "removeSecurityGroup": Rule(None, None, None, ""),
}


def check_state(inst: m.Instance, name: str, shown: str | None = None) -> Rule:
    """Nova's check_instance_state for action ``name`` (409 with Nova's text)."""
    rule = RULES[name]
    label = shown or rule.action or name
    if rule.vm_states is not None and inst.vm_state not in rule.vm_states:
        raise state_conflict(inst, label)
    if rule.task_states is not None and inst.task_state not in rule.task_states:
        raise state_conflict(inst, label, "task_state")
    return rule


async def start_action(servers: Any, session: Any, caller: Caller, inst: m.Instance, name: str,
                       params: dict[str, Any] | None = None, *, shown: str | None = None,
                       check_lock: bool = True, submit: bool = True) -> m.InstanceAction:
    """State and lock checks, the InstanceAction, the task_state, and the conductor's action."""
    if check_lock:
        servers.check_lock(caller, inst)
    rule = check_state(inst, name, shown)
    action = await servers.record_action(session, caller, inst, rule.action or name)
    if rule.sets_task is not None:
        inst.task_state = rule.sets_task
    inst.updated_at = m.now()
    await session.flush()
    if submit:
        handoff = getattr(servers.compute.conductor, "submit_action", None)
        if handoff is not None:
            await handoff(session, inst, rule.action or name, params or {}, caller.request_id, caller)
    return action
