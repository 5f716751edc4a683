"""Tables owned by the image service (prefix `image_`)."""

from __future__ import annotations
