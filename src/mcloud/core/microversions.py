"""Microversion negotiation as the OpenStack API working group describes it.

A request names a version with ``OpenStack-API-Version: <service-type> X.Y`` (or a service's
legacy header such as ``X-OpenStack-Nova-API-Version: X.Y``). No header means the minimum;
``latest`` means the maximum; a version outside the range is 406; a malformed one is 400. The
response names the version used and varies on the header.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from starlette.datastructures import Headers

from mcloud.core.errors import APIError, BadRequest, NotAcceptable

_VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@functools.total_ordering
@dataclasses.dataclass(frozen=True)
class Version:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if not match:
            raise BadRequest(f"Invalid microversion {text!r}: use the form X.Y or 'latest'.")
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclasses.dataclass(frozen=True)
class VersionRange:
    service_type: str
    minimum: Version
    maximum: Version
    legacy_header: str | None = None

    def negotiate(self, headers: dict[str, str] | object) -> Version:
        """The version a request asks for, checked against the range."""
        get = headers.get  # type: ignore[attr-defined]
        requested: str | None = None
        for value in (get("openstack-api-version") or "").split(","):
            parts = value.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == self.service_type:
                requested = parts[1]
        if requested is None and self.legacy_header:
            requested = get(self.legacy_header.lower())
        if requested is None:
            return self.minimum
        if requested.strip().lower() == "latest":
            return self.maximum
        version = Version.parse(requested)
        if not self.minimum <= version <= self.maximum:
            raise NotAcceptable(
                f"Version {version} is not supported by the API. "
                f"Minimum is {self.minimum} and maximum is {self.maximum}."
            )
        return version

    def response_headers(self, version: Version) -> dict[str, str]:
        headers = {
            "OpenStack-API-Version": f"{self.service_type} {version}",
            "Vary": "OpenStack-API-Version",
        }
        if self.legacy_header:
            headers[self.legacy_header] = str(version)
            headers["Vary"] += f", {self.legacy_header}"
        return headers


class MicroversionMiddleware:
    """Negotiates every request's microversion before routing (pure ASGI).

    The version goes to the request state (``requested(request)`` reads it) and names itself in
    every response, errors included, as the API guidelines ask. A malformed or unsupported
    version is kept, not answered at once: the handler raises it after authentication, so a
    request without a token still gets its 401 first.
    """

    def __init__(self, app: Any, versions: VersionRange):
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        try:
            version = self.versions.negotiate(Headers(scope=scope))
        except APIError as exc:
            state["microversion_error"] = exc
            await self.app(scope, receive, send)
            return
        state["microversion"] = version
        extra = [(k.lower().encode(), v.encode()) for k, v in self.versions.response_headers(version).items()]

        async def send_with_version(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_version)


def requested(request: Any) -> Version:
    """The version :class:`MicroversionMiddleware` negotiated; raises its 400/406 if it failed."""
    state = request.scope.get("state", {})
    if "microversion_error" in state:
        raise state["microversion_error"]
    return state["microversion"]
