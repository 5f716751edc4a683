"""Glance v2 routes (scaffold: the image service fills this in)."""

from __future__ import annotations

from fastapi import FastAPI

from mcloud.core.http import service_app
from mcloud.core.runtime import Runtime
from mcloud.image.service import ImageService


def build(runtime: Runtime, image: ImageService) -> FastAPI:
    return service_app("mCloud Image v2", runtime=runtime, image=image)
