"""The runtime a service is built with: configuration, database, token validator, policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from mcloud.core.config import Config
from mcloud.core.db import Database
from mcloud.core.policy import Enforcer

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from mcloud.core.auth import TokenValidator


@dataclasses.dataclass
class ServiceSpec:
    """How a service is mounted and listed in the catalog."""

    name: str  # the OpenStack service name, e.g. "keystone"
    type: str  # the catalog type, e.g. "identity"
    path: str  # the mount path, e.g. "/identity"
    build: Callable[[Runtime], ASGIApp]
    # What the catalog endpoint URL appends to the mount URL, e.g. "/v2.1".
    endpoint_suffix: str = ""
    # Other catalog types that point at the same endpoints (e.g. "volumev3").
    aliases: tuple[str, ...] = ()
    description: str = ""


@dataclasses.dataclass
class Runtime:
    config: Config
    db: Database
    policy: Enforcer
    token_validator: TokenValidator | None = None
    services: list[ServiceSpec] = dataclasses.field(default_factory=list)

    def for_service(self, name: str) -> Runtime:
        """This runtime as service ``name`` sees it: its own namespace of policy rules."""
        return dataclasses.replace(self, policy=self.policy.scoped(name))
