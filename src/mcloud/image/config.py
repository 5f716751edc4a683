"""Image's configuration section, ``[image]`` in mcloud.toml (with ``[image.<store>]`` tables).

::

    [image]
    stores = ["file", "rbd", "fast"]  # enabled stores, by their config names
    default_store = "file"
    web_download_allowed = ["http://127.0.0.1:8000/images/"]   # URL prefixes

    [image.file]                      # per-store options, given to that store's driver
    directory = "/srv/images"

    [image.rbd]
    pool = "images"
    conf = "/etc/ceph/ceph.conf"

    [image.backends.fast]             # a store of another name: its driver, then its options
    driver = "file"
    directory = "/srv/fast-images"
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: Glance's default disk and container formats
DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]


@dataclasses.dataclass
class ImageConfig:
    # Enabled stores by config name (a driver in mcloud/image/drivers/ of that name, or any name
    # whose [image.<name>] table gives `driver = "..."`), and the one new data goes to.
    stores: list[str] = dataclasses.field(default_factory=lambda: ["file"])
    default_store: str = "file"
    # Per-store options: the [image.file], [image.fake] and [image.rbd] tables.
    file: dict[str, Any] = dataclasses.field(default_factory=dict)
    fake: dict[str, Any] = dataclasses.field(default_factory=dict)
    rbd: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Stores of any other name: [image.backends.<name>] tables, each naming its `driver`.
    backends: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Interoperable image import (Glance's enabled_import_methods).
    import_methods: list[str] = dataclasses.field(
        default_factory=lambda: ["glance-direct", "web-download", "copy-image"])
    # web-download: only URLs starting with one of these prefixes are fetched (empty: none).
    web_download_allowed: list[str] = dataclasses.field(default_factory=list)
    # Seconds a web-download may take to answer and between bytes.
    web_download_timeout: float = 60.0
    disk_formats: list[str] = dataclasses.field(default_factory=lambda: list(DISK_FORMATS))
    container_formats: list[str] = dataclasses.field(default_factory=lambda: list(CONTAINER_FORMATS))
    # Largest image in bytes (Glance's image_size_cap, 1 TiB).
    image_size_cap: int = 1099511627776
    # Glance's limit_param_default and api_limit_max for image lists.
    limit_param_default: int = 25
    api_limit_max: int = 1000
    # Glance's image_member_quota, image_tag_quota, image_property_quota (-1: unlimited)
    image_member_quota: int = 128
    image_tag_quota: int = 128
    image_property_quota: int = 128
    # Check uploaded bytes against disk_format and refuse unsafe qcow2/vmdk (Glance's format checks)
    inspect_formats: bool = True
    # Enforce unified limits from identity (Glance's use_keystone_limits)
    use_keystone_limits: bool = True
    # Seconds a claimed import task holds its lease before another worker may take it over
    task_lease_seconds: float = 30.0
    # Glance's hashing_algorithm: os_hash_algo/os_hash_value of uploads (checksum is always md5)
    hashing_algorithm: str = "sha512"
    # Bytes per chunk read from a store and hashed at a time
    chunk_size: int = 1048576
