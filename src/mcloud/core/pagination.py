"""Listing helpers: sort keys and directions, ``limit``/``marker`` pages and their links.

Rows are ordered by the requested sort keys and then by the table's id, so a marker (the id
of the last row seen) always names one position in a stable order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

from mcloud.core.errors import BadRequest, NotFound


@dataclasses.dataclass(frozen=True)
class SortKey:
    column: sa.ColumnElement[Any]
    descending: bool = False


def parse_sort(
    keys: Sequence[str],
    dirs: Sequence[str],
    columns: dict[str, sa.ColumnElement[Any]],
    default: Sequence[str] = (),
) -> list[SortKey]:
    """``sort_key``/``sort_dir`` query values as sort keys over known ``columns``."""
    keys = list(keys) or list(default)
    result = []
    for i, key in enumerate(keys):
        name, _, inline_dir = key.partition(":")
        if name not in columns:
            raise BadRequest(f"Invalid sort key {name!r}.")
        direction = inline_dir or (dirs[i] if i < len(dirs) else (dirs[-1] if dirs else "asc"))
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction {direction!r}: use asc or desc.")
        result.append(SortKey(columns[name], direction == "desc"))
    return result


def parse_limit(value: str | int | None, maximum: int) -> int:
    if value is None or value == "":
        return maximum
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid limit {value!r}: it must be a non-negative integer.") from None
    if limit < 0:
        raise BadRequest(f"Invalid limit {value!r}: it must be a non-negative integer.")
    return min(limit, maximum)


async def page(
    session: Any,
    query: sa.Select[Any],
    id_column: sa.ColumnElement[Any],
    sort: Sequence[SortKey],
    limit: int,
    marker: str | None = None,
) -> list[Any]:
    """One page of ``query``: rows after ``marker`` in sort order, at most ``limit``."""
    keys = [*sort, SortKey(id_column, sort[-1].descending if sort else False)]
    if marker is not None:
        marker_values = (
            await session.execute(query.with_only_columns(*(k.column for k in keys)).where(id_column == marker))
        ).first()
        if marker_values is None:
            raise NotFound(f"Marker {marker} could not be found.")
        # Rows strictly after the marker in (k1, k2, ..., id) order.
        clauses = []
        for i, key in enumerate(keys):
            equal = [keys[j].column == marker_values[j] for j in range(i)]
            after = key.column < marker_values[i] if key.descending else key.column > marker_values[i]
            clauses.append(sa.and_(*equal, after))
        query = query.where(sa.or_(*clauses))
    query = query.order_by(*(k.column.desc() if k.descending else k.column.asc() for k in keys))
    return list((await session.execute(query.limit(limit))).scalars())


def next_link(base_url: str, params: dict[str, Any], marker: str, limit: int) -> dict[str, str]:
    query = {k: v for k, v in params.items() if k not in ("marker",)}
    query.update(marker=marker, limit=limit)
    return {"rel": "next", "href": f"{base_url}?{urlencode(query, doseq=True)}"}
