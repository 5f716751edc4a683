"""Placement's configuration section, ``[placement]`` in mcloud.toml."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class PlacementConfig:
    # (scaffold: the placement service fills this in)
    pass
