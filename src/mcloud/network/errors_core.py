"""Neutron's faults: ``{"NeutronError": {"type", "message", "detail"}}``, with Neutron's type names.

Service code (CORE and L3) raises :class:`NeutronError` through the helpers here
(``raise not_found("Network", net_id)``, ``raise conflict("NetworkInUse", "...")``); the API's
fault renderer (``api.render_fault``) writes the body. Errors raised as plain core
``APIError``s (a malformed JSON body, an unknown route) get webob's type names, as Neutron's
do (``HTTPBadRequest``, ``HTTPNotFound``...).
"""

from __future__ import annotations

from typing import Any

from mcloud.core.errors import APIError

#: the type Neutron names a fault it raises from webob directly
HTTP_TYPES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden", 404: "HTTPNotFound",
              405: "HTTPMethodNotAllowed", 406: "HTTPNotAcceptable", 409: "HTTPConflict",
              412: "HTTPPreconditionFailed", 413: "HTTPRequestEntityTooLarge", 415: "HTTPUnsupportedMediaType",
              500: "HTTPInternalServerError", 501: "HTTPNotImplemented", 503: "HTTPServiceUnavailable"}


class NeutronError(APIError):
    """An error with Neutron's type name (``NetworkNotFound``, ``IpAddressAlreadyAllocated``...)."""

    def __init__(self, status: int, type_: str, message: str, **details: Any):
        self.status = status
        self.type = type_
        super().__init__(message, **details)


def fault_type(error: APIError) -> str:
    return getattr(error, "type", None) or HTTP_TYPES.get(error.status, "HTTPError")


def bad_request(message: str, type_: str = "HTTPBadRequest") -> NeutronError:
    return NeutronError(400, type_, message)


def invalid_input(message: str) -> NeutronError:
    """Neutron's InvalidInput: "Invalid input for operation: ..."."""
    return NeutronError(400, "InvalidInput", f"Invalid input for operation: {message}.")


def invalid_attribute(attribute: str, reason: str) -> NeutronError:
    """What Neutron's attribute validators answer: "Invalid input for X. Reason: ..."."""
    return NeutronError(400, "HTTPBadRequest", f"Invalid input for {attribute}. Reason: {reason}.")


def not_found(kind: str, ident: str, type_: str | None = None) -> NeutronError:
    """``<Kind>NotFound``: "<Kind> <id> could not be found." (``kind`` as Neutron words it)."""
    name = type_ or "".join(word[:1].upper() + word[1:] for word in kind.split()) + "NotFound"
    return NeutronError(404, name, f"{kind} {ident} could not be found.")


def conflict(type_: str, message: str) -> NeutronError:
    return NeutronError(409, type_, message)


def forbidden(message: str, type_: str = "HTTPForbidden") -> NeutronError:
    return NeutronError(403, type_, message)


def policy_denied(rule: str) -> NeutronError:
    return NeutronError(403, "HTTPForbidden", f"({'rule:' + rule}) is disallowed by policy")


def over_quota(resource: str) -> NeutronError:
    return NeutronError(409, "OverQuota", f"Quota exceeded for resources: ['{resource}'].")


def revision_mismatch(expected: int, current: int) -> NeutronError:
    return NeutronError(412, "RevisionNumberConstraintFailed",
                        f"Constrained to {expected}, but current revision is {current}")
