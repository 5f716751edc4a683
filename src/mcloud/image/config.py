"""Image's configuration section, ``[image]`` in mcloud.toml."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class ImageConfig:
    # (scaffold: the image service fills this in)
    pass
