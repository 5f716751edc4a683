"""Every service's tables, imported in one place for the migrations and the schema check."""

from __future__ import annotations


def load_all() -> None:
    import mcloud.compute.models  # noqa: F401
    import mcloud.compute.models_hosts  # noqa: F401
    import mcloud.compute.models_resources  # noqa: F401
    import mcloud.compute.models_volumes  # noqa: F401
    import mcloud.core.generations  # noqa: F401
    import mcloud.identity.models  # noqa: F401
    import mcloud.image.models  # noqa: F401
    import mcloud.network.models  # noqa: F401
    import mcloud.network.models_l3  # noqa: F401
    import mcloud.placement.models  # noqa: F401
    import mcloud.volume.models  # noqa: F401
    import mcloud.volume.models_backends  # noqa: F401
    import mcloud.volume.models_backups  # noqa: F401
    import mcloud.volume.models_groups  # noqa: F401
    import mcloud.volume.models_types  # noqa: F401
