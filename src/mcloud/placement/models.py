"""Tables owned by the placement service (prefix `placement_`)."""

from __future__ import annotations
