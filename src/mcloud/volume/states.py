"""The statuses Cinder shows (cinder/objects/fields.py), in one place for every part."""

from __future__ import annotations

# volume.status
CREATING = "creating"
AVAILABLE = "available"
RESERVED = "reserved"
ATTACHING = "attaching"
DETACHING = "detaching"
IN_USE = "in-use"
MAINTENANCE = "maintenance"
DELETING = "deleting"
AWAITING_TRANSFER = "awaiting-transfer"
ERROR = "error"
ERROR_DELETING = "error_deleting"
BACKING_UP = "backing-up"
RESTORING_BACKUP = "restoring-backup"
ERROR_BACKING_UP = "error_backing-up"
ERROR_RESTORING = "error_restoring"
ERROR_EXTENDING = "error_extending"
DOWNLOADING = "downloading"
UPLOADING = "uploading"
RETYPING = "retyping"
EXTENDING = "extending"

VOLUME_STATUSES = frozenset({
    CREATING, AVAILABLE, RESERVED, ATTACHING, DETACHING, IN_USE, MAINTENANCE, DELETING, AWAITING_TRANSFER,
    ERROR, ERROR_DELETING, BACKING_UP, RESTORING_BACKUP, ERROR_BACKING_UP, ERROR_RESTORING, ERROR_EXTENDING,
    DOWNLOADING, UPLOADING, RETYPING, EXTENDING})

# volume.attach_status and attachment.attach_status
ATTACHED = "attached"
DETACHED = "detached"
ATTACH_RESERVED = "reserved"
ATTACH_ATTACHING = "attaching"
ATTACH_DETACHING = "detaching"
ATTACH_ERROR_ATTACHING = "error_attaching"
ATTACH_ERROR_DETACHING = "error_detaching"

# snapshot.status
SNAPSHOT_STATUSES = frozenset({CREATING, AVAILABLE, DELETING, ERROR, ERROR_DELETING, "restoring", BACKING_UP,
                               "unmanaging"})

# backup.status
BACKUP_STATUSES = frozenset({CREATING, AVAILABLE, DELETING, ERROR, ERROR_DELETING, "restoring"})
