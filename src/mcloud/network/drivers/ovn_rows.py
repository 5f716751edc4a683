"""Convergence of OVN Northbound rows: the engine under the ovn driver.

The driver describes what the Northbound database should hold as ``Spec`` rows (table, a
unique key, the columns mCloud manages, the parent rows that hold it, references to other
rows) and ``Converge`` makes the database match in one OVSDB transaction, run in ovsdbapp's
connection thread (where the IDL replica is consistent): it creates what is missing, fixes
drifted columns and memberships, and deletes the rows of the given owners that the specs lack.

Every row mCloud writes carries ``external_ids``:

- ``neutron:mcloud_key``: the row's unique key (``lsp:<port id>``, ``acl:<rule id>`` ...);
- ``neutron:mcloud_owner``: the resource it belongs to (``port:<id>``, ``router:<id>`` ...);
- ``neutron:mcloud_parents``: the rows that hold it (``<key>|<column>``, space-separated);
- ``neutron:mcloud_refs``: its wanted references (``<column>=<key>``), even before they exist,

beside the ``neutron:*`` keys Neutron's OVN driver writes. Rows without ``neutron:mcloud_key``
are someone else's (an operator's, the load-balancer service's) and are never changed, and
never removed from a membership column of one of mCloud's rows.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import Any

from ovs.db import idl as ovs_idl
from ovsdbapp.backend.ovs_idl import command as ovs_command
from ovsdbapp.backend.ovs_idl import connection as ovs_connection

KEY = "neutron:mcloud_key"
OWNER = "neutron:mcloud_owner"
PARENTS = "neutron:mcloud_parents"
REFS = "neutron:mcloud_refs"

#: the Northbound tables mCloud writes (and indexes)
TABLES = ("Logical_Switch", "Logical_Switch_Port", "Logical_Router", "Logical_Router_Port", "Port_Group", "ACL",
          "QoS", "NAT", "Logical_Router_Static_Route", "Gateway_Chassis", "DHCP_Options", "Load_Balancer")
#: child table -> the (parent table, column) sets that can hold its rows
RELATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "Logical_Switch_Port": (("Logical_Switch", "ports"), ("Port_Group", "ports")),
    "Logical_Router_Port": (("Logical_Router", "ports"),),
    "ACL": (("Port_Group", "acls"), ("Logical_Switch", "acls")),
    "QoS": (("Logical_Switch", "qos_rules"),),
    "NAT": (("Logical_Router", "nat"),),
    "Logical_Router_Static_Route": (("Logical_Router", "static_routes"),),
    "Gateway_Chassis": (("Logical_Router_Port", "gateway_chassis"),),
    "Load_Balancer": (("Logical_Router", "load_balancer"), ("Logical_Switch", "load_balancer")),
}
#: parent table -> its membership columns
MEMBERSHIP: dict[str, set[str]] = {}
for _child, _pairs in RELATIONS.items():
    for _table, _column in _pairs:
        MEMBERSHIP.setdefault(_table, set()).add(_column)


@dataclasses.dataclass
class Spec:
    """One row as mCloud wants it."""

    table: str
    key: str
    owner: str
    #: managed columns in the IDL's Python shape: a map is a dict, a set a list, an optional
    #: column a list of zero or one value; ``external_ids`` gets the mCloud tags added
    columns: dict[str, Any]
    #: (key of the parent row, its column) for each row that must hold this one
    parents: tuple[tuple[str, str], ...] = ()
    #: reference columns: column -> key of the referenced row (set when that row exists, else empty)
    refs: dict[str, str | None] = dataclasses.field(default_factory=dict)
    #: only make it when missing; never change it (a placeholder another resource fills)
    create_only: bool = False

    def tagged_external_ids(self) -> dict[str, str]:
        ids = {str(k): str(v) for k, v in self.columns.get("external_ids", {}).items()}
        ids[KEY] = self.key
        ids[OWNER] = self.owner
        if self.parents:
            ids[PARENTS] = " ".join(f"{key}|{column}" for key, column in self.parents)
        if self.refs:
            ids[REFS] = " ".join(f"{column}={key or ''}" for column, key in sorted(self.refs.items()))
        return ids


@dataclasses.dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0


class MissingParent(RuntimeError):
    """A row's parent is not in the database (the resource it belongs to was never ensured)."""


class OwnedIndex:
    """key -> (table, uuid) and owner -> keys of mCloud's rows, kept by the IDL's notify (in the
    connection thread). Lookups check the row still exists and still carries the key."""

    def __init__(self) -> None:
        self.by_key: dict[str, tuple[str, Any]] = {}
        self.by_owner: dict[str, set[str]] = {}
        self.lock = threading.Lock()

    def add(self, table: str, row: Any) -> None:
        ids = getattr(row, "external_ids", None) or {}
        key = ids.get(KEY)
        if key is None:
            return
        with self.lock:
            self.by_key[key] = (table, row.uuid)
            self.by_owner.setdefault(ids.get(OWNER, ""), set()).add(key)

    def remove(self, table: str, row: Any) -> None:
        ids = getattr(row, "external_ids", None) or {}
        key = ids.get(KEY)
        if key is None:
            return
        with self.lock:
            if self.by_key.get(key, (None, None))[1] == row.uuid:
                del self.by_key[key]
                keys = self.by_owner.get(ids.get(OWNER, ""))
                if keys is not None:
                    keys.discard(key)


class IndexedIdl(ovs_connection.OvsdbIdl):
    """The Northbound IDL, keeping an ``OwnedIndex`` and calling ``on_change(event, table,
    row, old)`` for every change (in the connection thread: it must not block)."""

    owned: OwnedIndex
    on_change: Any = None

    def notify(self, event: str, row: Any, updates: Any = None) -> None:
        table = row._table.name  # noqa: SLF001 - the IDL's own attribute for a row's table
        if table in TABLES:
            if event == ovs_idl.ROW_DELETE:
                self.owned.remove(table, row)
            else:
                if event == ovs_idl.ROW_UPDATE and updates is not None and hasattr(updates, "external_ids"):
                    self.owned.remove(table, updates_with_uuid(updates, row))
                self.owned.add(table, row)
        if self.on_change is not None:
            self.on_change(event, table, row, updates)


def updates_with_uuid(updates: Any, row: Any) -> Any:
    """The old values of an update, readable as a row with the row's uuid."""
    class Old:
        uuid = row.uuid
        external_ids = updates.external_ids
    return Old


def _plain(value: Any) -> Any:
    """A comparable form of an IDL value (rows become their uuid)."""
    if isinstance(value, ovs_idl.Row):
        return value.uuid
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    return value


class Converge(ovs_command.BaseCommand):
    """Make the rows of ``owners`` exactly ``specs`` (``owners=None``: every mCloud row, and
    every membership column of mCloud's rows exact). ``relink`` names parents whose children's
    wanted references are re-resolved (a DHCP_Options row that appeared for their subnet)."""

    def __init__(self, api: Any, specs: Iterable[Spec], owners: Iterable[str] | None, index: OwnedIndex,
                 relink: Iterable[tuple[str, str]] = ()):
        super().__init__(api)
        self.specs = list(specs)
        self.owners = None if owners is None else set(owners)
        self.index = index
        self.relink = list(relink)
        self.result = Counts()

    # -- lookups ------------------------------------------------------------------------------

    def _row(self, key: str) -> Any:
        found = self.index.by_key.get(key)
        if found is None:
            return None
        table, uuid = found
        row = self.api.tables[table].rows.get(uuid)
        if row is None or row.external_ids.get(KEY) != key:
            return None
        return row

    def _existing(self) -> dict[str, Any]:
        """key -> row of every mCloud row in scope."""
        found: dict[str, Any] = {}
        if self.owners is None:
            for table in TABLES:
                for row in self.api.tables[table].rows.values():
                    key = row.external_ids.get(KEY)
                    if key is None:
                        continue
                    if key in found:  # a duplicate (made behind mCloud's back): not kept
                        self._delete(row, full=True)
                        self.result.deleted += 1
                        continue
                    found[key] = row
            return found
        for owner in self.owners:
            for key in list(self.index.by_owner.get(owner, ())):
                row = self._row(key)
                if row is not None and row.external_ids.get(OWNER) == owner:
                    found[key] = row
        return found

    # -- the transaction ----------------------------------------------------------------------

    def run_idl(self, txn: Any) -> None:
        counts = self.result = Counts()  # run again on TRY_AGAIN: start over
        existing = self._existing()
        rows: dict[str, Any] = {}
        new: set[str] = set()
        changed: set[str] = set()
        desired = {spec.key for spec in self.specs}
        for spec in self.specs:
            row = existing.get(spec.key)
            if row is None:
                row = self._row(spec.key)  # in another owner's scope (a placeholder's user)
            if row is not None and spec.create_only:
                rows[spec.key] = row
                continue
            if row is None:
                row = txn.insert(self.api.tables[spec.table])
                new.add(spec.key)
                counts.created += 1
                for column, value in spec.columns.items():
                    if column != "external_ids":
                        setattr(row, column, value)
                row.external_ids = spec.tagged_external_ids()
            else:
                if self._update(row, spec):
                    changed.add(spec.key)
            rows[spec.key] = row
        # memberships: each row in each of its parents (new parents get whole columns)
        pending: dict[tuple[str, str], list[Any]] = {}
        for spec in self.specs:
            row = rows[spec.key]
            for parent_key, column in spec.parents:
                parent = rows.get(parent_key) or self._row(parent_key)
                if parent is None:
                    raise MissingParent(f"{spec.key} needs {parent_key}, which the Northbound database lacks")
                if parent_key in new:
                    pending.setdefault((parent_key, column), []).append(row)
                elif spec.key in new:
                    parent.addvalue(column, row)
                elif row.uuid not in {r.uuid for r in getattr(parent, column)}:
                    parent.addvalue(column, row)
                    self._count_update(parent_key, changed)
            old = existing.get(spec.key)
            if old is not None and spec.key not in new:
                wanted = set(spec.parents)
                for parent_key, column in _parents_of(old):
                    if (parent_key, column) not in wanted and (parent := self._row(parent_key)) is not None:
                        parent.delvalue(column, row)
                        self._count_update(parent_key, changed)
        for (parent_key, column), children in pending.items():
            setattr(rows[parent_key], column, children)
        # references
        for spec in self.specs:
            row = rows[spec.key]
            for column, ref_key in spec.refs.items():
                target = None if ref_key is None else (rows.get(ref_key) or self._row(ref_key))
                want = [] if target is None else [target]
                if spec.key in new:
                    setattr(row, column, want)
                elif _plain(getattr(row, column)) != _plain(want):
                    setattr(row, column, want)
                    self._count_update(spec.key, changed)
        # what the specs lack
        for key, row in existing.items():
            if key not in desired:
                self._delete(row, full=self.owners is None)
                counts.deleted += 1
        if self.owners is None:
            self._exact_memberships(rows, changed)
        for parent_key, column in self.relink:
            self._relink(parent_key, column, rows, changed)
        counts.updated = len(changed - new)

    def _count_update(self, key: str, changed: set[str]) -> None:
        changed.add(key)

    def _update(self, row: Any, spec: Spec) -> bool:
        differs = False
        for column, value in spec.columns.items():
            if column == "external_ids":
                continue
            if _plain(getattr(row, column)) != _plain(value):
                setattr(row, column, value)
                differs = True
        ids = spec.tagged_external_ids()
        if dict(row.external_ids) != ids:
            row.external_ids = ids
            differs = True
        return differs

    def _delete(self, row: Any, full: bool) -> None:
        table = row._table.name  # noqa: SLF001
        pairs = RELATIONS.get(table, ())
        if pairs:
            detached = False
            for parent_key, column in _parents_of(row):
                parent = self._row(parent_key)
                if parent is not None:
                    parent.delvalue(column, row)
                    detached = True
            if full or not detached:  # held by a row that is not in its tag: look everywhere
                for parent_table, column in pairs:
                    for parent in self.api.tables[parent_table].rows.values():
                        if any(r.uuid == row.uuid for r in getattr(parent, column)):
                            parent.delvalue(column, row)
        row.delete()

    def _exact_memberships(self, rows: dict[str, Any], changed: set[str]) -> None:
        """Every membership column of every mCloud row holds exactly the mCloud rows whose
        specs name it (rows of others in it are kept)."""
        wanted: dict[tuple[str, str], set[Any]] = {}
        for spec in self.specs:
            for parent_key, column in spec.parents:
                wanted.setdefault((parent_key, column), set()).add(rows[spec.key].uuid)
        for key, parent in rows.items():
            for column in MEMBERSHIP.get(parent._table.name, ()):  # noqa: SLF001
                want = wanted.get((key, column), set())
                try:
                    current = getattr(parent, column)
                except AttributeError:
                    continue
                for child in current:
                    if child.external_ids.get(KEY) is not None and child.uuid not in want:
                        parent.delvalue(column, child)
                        changed.add(key)

    def _relink(self, parent_key: str, column: str, rows: dict[str, Any], changed: set[str]) -> None:
        parent = rows.get(parent_key) or self._row(parent_key)
        if parent is None:
            return
        for child in getattr(parent, column):
            refs = child.external_ids.get(REFS)
            if not refs:
                continue
            for item in refs.split():
                ref_column, _, ref_key = item.partition("=")
                target = (rows.get(ref_key) or self._row(ref_key)) if ref_key else None
                want = [] if target is None else [target]
                if _plain(getattr(child, ref_column)) != _plain(want):
                    setattr(child, ref_column, want)
                    changed.add(child.external_ids.get(KEY, ""))


def _parents_of(row: Any) -> list[tuple[str, str]]:
    text = row.external_ids.get(PARENTS, "")
    return [tuple(item.split("|", 1)) for item in text.split() if "|" in item]  # type: ignore[misc]
