"""Request bodies of the Placement API, as Placement's JSON schemas constrain them, per
microversion. Unknown fields and wrong types are 400 (``"total": "8"`` is refused)."""

from __future__ import annotations

import functools
import math
import uuid as uuidlib
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints

MAX_INT = 2147483647
FLOAT_MAX = 3.40282e38
RC_PATTERN = r"^[A-Z0-9_]+$"
CUSTOM_PATTERN = r"^CUSTOM_[A-Z0-9_]+$"
UUID_KEY = r"^[0-9a-fA-F-]{36}$"


def _uuid_like(value: str) -> str:
    """Any form Placement accepts (dashes or not, braces, ``urn:uuid:``), kept in the dashed form."""
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a 'uuid'") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


Uuid = Annotated[str, StringConstraints(strict=True), AfterValidator(_uuid_like)]
UuidKey = Annotated[str, StringConstraints(pattern=UUID_KEY)]
ClassName = Annotated[str, StringConstraints(pattern=RC_PATTERN)]
CustomName = Annotated[str, StringConstraints(strict=True, pattern=CUSTOM_PATTERN, max_length=255)]
ProviderName = Annotated[str, StringConstraints(strict=True, max_length=200)]
Id255 = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
ConsumerType = Annotated[str, StringConstraints(strict=True, pattern=RC_PATTERN, min_length=1, max_length=255)]
Amount = Annotated[StrictInt, Field(ge=1)]
Resources = Annotated[dict[ClassName, Amount], Field(min_length=1)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- resource providers


class ProviderCreate(Body):
    name: ProviderName
    uuid: Uuid | None = None


class ProviderCreate114(ProviderCreate):
    parent_provider_uuid: Uuid | None = None


class ProviderUpdate(Body):
    name: ProviderName


class ProviderUpdate114(ProviderUpdate):
    parent_provider_uuid: Uuid | None = None


# ---------------------------------------------------------------- inventories


class InventoryRecord(Body):
    resource_provider_generation: StrictInt | None = None
    total: Annotated[StrictInt, Field(ge=1, le=MAX_INT)]
    reserved: Annotated[StrictInt, Field(ge=0, le=MAX_INT)] = 0
    min_unit: Annotated[StrictInt, Field(ge=1, le=MAX_INT)] = 1
    max_unit: Annotated[StrictInt, Field(ge=1, le=MAX_INT)] = MAX_INT
    step_size: Annotated[StrictInt, Field(ge=1, le=MAX_INT)] = 1
    allocation_ratio: Annotated[StrictFloat | StrictInt, Field(le=FLOAT_MAX), AfterValidator(_finite)] = 1.0

    def inventory_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude={"resource_provider_generation", "resource_class"})


class InventoryCreate(InventoryRecord):
    resource_class: ClassName


class InventoryUpdate(InventoryRecord):
    resource_provider_generation: StrictInt


class Inventories(Body):
    resource_provider_generation: StrictInt
    inventories: dict[ClassName, InventoryRecord]


# ---------------------------------------------------------------- aggregates and traits


UniqueUuids = Annotated[list[Uuid], AfterValidator(lambda v: _unique(v))]


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("has non-unique elements")
    return values


class Aggregates119(Body):
    aggregates: UniqueUuids
    resource_provider_generation: StrictInt


class ProviderTraits(Body):
    traits: list[Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]]
    resource_provider_generation: StrictInt


class ResourceClassBody(Body):
    name: CustomName


# ---------------------------------------------------------------- allocations


class ProviderRef(Body):
    uuid: Uuid


class AllocationItem(Body):
    resource_provider: ProviderRef
    resources: Resources


class AllocationsList(Body):
    """PUT /allocations/{consumer} before 1.8: a list of allocations."""

    allocations: Annotated[list[AllocationItem], Field(min_length=1)]


class AllocationsList18(AllocationsList):
    project_id: Id255
    user_id: Id255


class ProviderAllocation(Body):
    resources: Resources
    generation: StrictInt | None = None


class ConsumerAllocations112(Body):
    allocations: Annotated[dict[UuidKey, ProviderAllocation], Field(min_length=1)]
    project_id: Id255
    user_id: Id255


class ConsumerAllocations113(ConsumerAllocations112):
    """POST /allocations (1.13): empty allocations remove the consumer's."""

    allocations: dict[UuidKey, ProviderAllocation]


class ConsumerAllocations128(ConsumerAllocations113):
    consumer_generation: StrictInt | None


Mappings = Annotated[dict[Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{0,64}$")],
                          Annotated[list[Uuid], Field(min_length=1)]], Field(min_length=1)]


class ConsumerAllocations134(ConsumerAllocations128):
    mappings: Mappings | None = None


class ConsumerAllocations138(ConsumerAllocations134):
    consumer_type: ConsumerType


def consumer_schema(version: tuple[int, int], many: bool) -> Any:
    """The body of PUT /allocations/{consumer} (``many``: of each consumer in POST /allocations)."""
    if version >= (1, 38):
        return ConsumerAllocations138
    if version >= (1, 34):
        return ConsumerAllocations134
    if version >= (1, 28):
        return ConsumerAllocations128
    if version >= (1, 12):
        return ConsumerAllocations113 if many else ConsumerAllocations112
    return AllocationsList18 if version >= (1, 8) else AllocationsList


@functools.lru_cache
def post_schema(version: tuple[int, int]) -> Any:
    return Annotated[dict[UuidKey, consumer_schema(version, many=True)], Field(min_length=1)]  # type: ignore[misc]


@functools.lru_cache
def reshaper_schema(version: tuple[int, int]) -> Any:
    class Reshape(Body):
        inventories: Annotated[dict[UuidKey, Inventories], Field(min_length=1)]
        allocations: dict[UuidKey, consumer_schema(max(version, (1, 28)), many=True)]  # type: ignore[valid-type]

    return Reshape
