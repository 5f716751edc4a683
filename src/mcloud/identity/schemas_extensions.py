"""Request bodies of Keystone's smaller APIs (api_extensions.py), as Keystone's schemas constrain them.

Same rules as ``schemas.py``: unknown fields and wrong types are 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StrictStr, StringConstraints, model_validator

from mcloud.identity.schemas import Body, Description, Id, Interface, Name

PolicyType = Annotated[str, StringConstraints(strict=True, max_length=255)]


class NotEmpty(Body):
    """An update: at least one attribute (Keystone's ``minProperties: 1``)."""

    @model_validator(mode="after")
    def at_least_one(self) -> NotEmpty:
        if not self.model_fields_set:
            raise ValueError("at least one attribute must be given")
        return self


# ---- /v3/policies


class PolicyCreate(Body):
    blob: StrictStr
    type: PolicyType


class PolicyUpdate(NotEmpty):
    # present or absent, never null (Keystone's schema types them as strings)
    blob: StrictStr = None  # type: ignore[assignment]
    type: PolicyType = None  # type: ignore[assignment]
    # allowed when it names the policy being updated
    id: Id | None = None


class PolicyCreateRequest(Body):
    policy: PolicyCreate


class PolicyUpdateRequest(Body):
    policy: PolicyUpdate


# ---- /v3/OS-EP-FILTER/endpoint_groups


class EndpointGroupFilters(Body):
    """The endpoint attributes a group filters on; Keystone refuses any other key."""

    service_id: StrictStr = None  # type: ignore[assignment]
    interface: Interface = None  # type: ignore[assignment]
    region_id: StrictStr | None = None  # null matches endpoints without a region


class EndpointGroupCreate(Body):
    name: Name
    description: Description = None
    filters: EndpointGroupFilters


class EndpointGroupUpdate(NotEmpty):
    name: Name = None  # type: ignore[assignment]
    description: Description = None
    filters: EndpointGroupFilters = None  # type: ignore[assignment]


class EndpointGroupCreateRequest(Body):
    endpoint_group: EndpointGroupCreate


class EndpointGroupUpdateRequest(Body):
    endpoint_group: EndpointGroupUpdate


# ---- /v3/domains/{domain_id}/config: the groups and options are checked by the service, which
# answers 403 for what Keystone does not allow, as Keystone does.


class DomainConfigRequest(Body):
    config: dict[str, Any] = {}


# ---- /v3/users/{user_id}/credentials/OS-EC2 (not wrapped in an envelope)


class EC2CredentialCreate(Body):
    tenant_id: Id


# ---- /v3/OS-OAUTH1/consumers


class ConsumerCreate(Body):
    description: Description = None


class ConsumerUpdate(NotEmpty):
    description: Description = None
    # allowed when it names the consumer being updated
    id: Id | None = None


class ConsumerCreateRequest(Body):
    consumer: ConsumerCreate = ConsumerCreate()


class ConsumerUpdateRequest(Body):
    consumer: ConsumerUpdate
