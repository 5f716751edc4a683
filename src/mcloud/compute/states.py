"""Nova's instance states: ``vm_state`` (what the instance is), ``task_state`` (what is being
done to it), ``power_state`` (what the hypervisor says), and the API ``status`` made of them.

These are Nova's own values (nova/compute/vm_states.py, task_states.py, power_state.py and the
status mapping of nova/api/openstack/common.py): clients show and test them.
"""

from __future__ import annotations

# vm_state
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

# power_state (integers, as Nova stores and shows them in OS-EXT-STS:power_state)
NOSTATE = 0
RUNNING = 1
POWER_PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
POWER_SUSPENDED = 7

POWER_STATE_NAMES = {NOSTATE: "pending", RUNNING: "running", POWER_PAUSED: "paused", SHUTDOWN: "shutdown",
                     CRASHED: "crashed", POWER_SUSPENDED: "suspended"}

# task_state (None when nothing is under way)
SCHEDULING = "scheduling"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
NETWORKING = "networking"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
IMAGE_BACKUP = "image_backup"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
REBOOTING = "rebooting"
REBOOT_PENDING = "reboot_pending"
REBOOT_STARTED = "reboot_started"
REBOOTING_HARD = "rebooting_hard"
REBOOT_PENDING_HARD = "reboot_pending_hard"
REBOOT_STARTED_HARD = "reboot_started_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
RESCUING = "rescuing"
UNRESCUING = "unrescuing"
REBUILDING = "rebuilding"
REBUILD_SPAWNING = "rebuild_spawning"
MIGRATING = "migrating"
DELETING = "deleting"
SHELVING = "shelving"
SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"
