"""Stand-in: Cinder v3's frame (VOLUMES replaces this module)."""

from __future__ import annotations

from typing import Any

from mcloud.core.http import json_response, service_app
from mcloud.core.runtime import Runtime


def build(runtime: Runtime, volume: Any) -> Any:
    app = service_app("mCloud volume", runtime=runtime, volume=volume)

    @app.get("/")
    async def versions() -> Any:
        return json_response({"versions": []}, status=300)

    return app
