"""Volume's configuration section, ``[volume]`` in mcloud.toml, with one ``[volume.backends.NAME]``
table per backend (Cinder's ``enabled_backends``) and ``[volume.backup]`` for backups.

::

    [volume]
    default_volume_type = "__DEFAULT__"
    host = "storage1"             # pools are named host@backend#pool (default: the machine's name)

    [volume.backends.file]        # the embedded default: qcow2 files under DATA_DIR/volumes/file
    driver = "file"

    [volume.backends.ceph]        # a Ceph pool
    driver = "rbd"
    pool = "volumes"
    ceph_conf = "/etc/ceph/ceph.conf"

    [volume.backup]
    driver = "file"               # or "rbd" (pool = "backups")
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class VolumeConfig:
    # name -> options of each backend: {"driver": "file"|"rbd"|"fake", ...driver options}. Each
    # backend's volume_backend_name is its name unless the table sets "volume_backend_name".
    # Empty: one backend named "file" with driver ``driver`` below.
    backends: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # The driver of that default backend ("file", or "fake" in fast tests: MCLOUD_VOLUME_DRIVER=fake).
    driver: str = "file"
    # Where backups go: {"driver": "file"|"rbd"|"fake", ...}; empty: files under DATA_DIR/backups.
    backup: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The type a volume created without one gets (Cinder's default_volume_type).
    default_volume_type: str = "__DEFAULT__"
    # The host part of every pool's name, ``host@backend#pool`` (a volume's os-vol-host-attr:host,
    # the cinder-volume services' host; Cinder's ``host``). Unset: the machine's short name.
    host: str | None = None
    # The zone of every backend (Cinder's storage_availability_zone) and the default of creates.
    storage_availability_zone: str = "nova"
    default_availability_zone: str | None = None
    # Thin provisioning: the scheduler lets provisioned GB reach total x this (Cinder's default 20).
    max_over_subscription_ratio: float = 20.0
    # Cinder's osapi_max_limit: the largest page a list returns.
    max_limit: int = 1000
    # Whether a volume from a qcow2/raw image may be a copy-on-write overlay of the cached image
    # (file backend) rather than a full copy.
    image_overlay: bool = True
    # Seconds an attach waits for its volume to leave "creating" etc., and copy timeouts.
    operation_timeout: float = 600.0
