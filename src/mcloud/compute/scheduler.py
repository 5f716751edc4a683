"""The scheduler: where an instance goes, and the claim of its resources in Placement.

As Nova's scheduler does it (nova/scheduler/manager.py, request_filter.py, filters/, weights/):

1. a :class:`RequestSpec` (flavor, image properties, project, zone, server group, hints, forced or
   requested host) becomes a Placement query: ``VCPU``, ``MEMORY_MB``, ``DISK_GB`` from the flavor,
   overridden or extended by its ``resources[N]:<class>`` extra specs, ``trait[N]:<name>=required|
   forbidden`` from the flavor and the image, ``in_tree`` for a forced or requested host,
   ``member_of`` the Placement aggregates of a requested zone (Nova's map_az_to_placement_aggregate);
2. Placement's allocation candidates (in-process) are mapped to hosts and filtered: ComputeFilter
   (service up, enabled, not forced down), AvailabilityZoneFilter, ServerGroupAffinityFilter and
   ServerGroupAntiAffinityFilter (with ``max_server_per_host``), SameHostFilter, DifferentHostFilter,
   ImagePropertiesFilter (``hw_architecture``, ``img_hv_type``, ``hw_vm_mode``),
   AggregateInstanceExtraSpecsFilter; a forced host skips the filters, as in Nova;
3. the hosts left are weighed (RAM, CPU, disk, soft affinity and soft anti-affinity, each
   normalised to 0..1 over the hosts and multiplied as Nova's defaults do), best first;
4. the claim: the allocation of the best host is written with ``placement.write_allocations``
   (consumer = the instance's uuid); Placement refuses anything beyond capacity in the same write
   transaction, so two concurrent claims can never oversubscribe a host: the loser takes the next
   host of its list, and with none left the instance gets Nova's "No valid host was found."

Moves (resize, cold and live migration, evacuation) claim the Nova way: in one write the
instance's current allocation moves to the migration's uuid as consumer and the instance's uuid
gets the destination's (:meth:`Scheduler.move_claim`); confirming drops the migration's,
reverting swaps them back.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from mcloud.compute.models import Instance
from mcloud.core.errors import APIError, Conflict
from mcloud.placement.service import CandidateQuery, ConsumerWrite, RequestGroup

log = logging.getLogger("mcloud.compute.scheduler")

VCPU, MEMORY_MB, DISK_GB = "VCPU", "MEMORY_MB", "DISK_GB"
_RESOURCES = re.compile(r"^resources(\d*):([A-Z0-9_]+)$")
_TRAIT = re.compile(r"^trait(\d*):([A-Za-z0-9_]+)$")


class NoValidHost(Exception):  # noqa: N818 (Nova's name)
    """Nova's NoValidHost: the message is the instance's fault."""

    def __init__(self, reason: str = "There are not enough hosts available."):
        super().__init__(f"No valid host was found. {reason}".strip())


@dataclasses.dataclass
class RequestSpec:
    """What is to be placed (Nova's RequestSpec, as much of it as the filters read)."""

    instance_uuid: str
    project_id: str
    user_id: str
    flavor: dict[str, Any]
    image: dict[str, Any] = dataclasses.field(default_factory=dict)  # id, properties
    availability_zone: str | None = None
    #: the server group: anything with ``id``, ``policy``, ``rules`` (dict), ``members`` (uuids)
    group: Any = None
    hints: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: "zone:host[:node]" (admin): the host is taken as given, the filters are skipped
    force_host: str | None = None
    force_node: str | None = None
    #: a requested destination (2.74 host, a migrate's or live migration's host): the filters run
    requested_host: str | None = None
    requested_node: str | None = None
    #: hosts not to use (the ones a build already failed on, the source of a move)
    ignore_hosts: set[str] = dataclasses.field(default_factory=set)
    #: a move: the instance's own allocation is not counted against the hosts (resize to same host)
    moving: bool = False


@dataclasses.dataclass
class Selection:
    host: str
    node: str | None
    provider_uuid: str
    allocations: dict[str, dict[str, int]]  # provider uuid -> class -> amount
    weight: float = 0.0
    zone: str | None = None  # the host's availability zone


@dataclasses.dataclass
class HostView:
    """One candidate host as the filters and weighers see it."""

    name: str
    state: Any
    provider_uuid: str
    allocations: dict[str, dict[str, int]]
    free: dict[str, float]
    instances: list[str] = dataclasses.field(default_factory=list)  # uuids of live instances


# ---------------------------------------------------------------------- the Placement query


def flavor_disk_gb(flavor: dict[str, Any]) -> int:
    """DISK_GB as Nova asks for it: root + ephemeral + swap (MB, rounded up to GB)."""
    swap = int(flavor.get("swap") or 0)
    return int(flavor.get("root_gb") or 0) + int(flavor.get("ephemeral_gb") or 0) + math.ceil(swap / 1024)


def request_groups(flavor: dict[str, Any], image_props: dict[str, Any] | None = None) -> tuple[
        dict[str, RequestGroup], str | None]:
    """Nova's resources_from_request_spec: the unnumbered group from the flavor's sizes, with the
    flavor's ``resources*:`` and ``trait*:`` extra specs (a ``resources:<class>=0`` drops a class)
    and the image's ``trait:`` properties; numbered groups from numbered keys. Returns the groups
    and the ``group_policy`` extra spec."""
    base = {VCPU: int(flavor.get("vcpus") or 0), MEMORY_MB: int(flavor.get("memory_mb") or 0),
            DISK_GB: flavor_disk_gb(flavor)}
    groups: dict[str, RequestGroup] = {"": RequestGroup("")}
    specs = dict(flavor.get("extra_specs") or {})
    overrides: dict[str, int] = {}
    for key, value in specs.items():
        match = _RESOURCES.match(key)
        if match:
            suffix, rc = match.groups()
            try:
                amount = int(value)
            except (TypeError, ValueError):
                continue
            if suffix == "":
                overrides[rc] = amount
            elif amount > 0:
                groups.setdefault(suffix, RequestGroup(suffix)).resources[rc] = amount
    for rc, amount in {**base, **overrides}.items():
        if amount > 0:
            groups[""].resources[rc] = amount
    for source in (specs, {k: v for k, v in (image_props or {}).items() if k.startswith("trait:")}):
        for key, value in source.items():
            match = _TRAIT.match(key)
            if not match:
                continue
            suffix, trait = match.groups()
            group = groups.setdefault(suffix, RequestGroup(suffix))
            if value == "required":
                group.required.append(frozenset((trait,)))
            elif value == "forbidden":
                group.forbidden.add(trait)
    for suffix in [s for s, g in groups.items() if s and not g.resources]:
        # a numbered group of traits alone: its traits apply to the provider holding the resources
        g = groups.pop(suffix)
        groups[""].required.extend(g.required)
        groups[""].forbidden |= g.forbidden
    return groups, specs.get("group_policy")


# ---------------------------------------------------------------------- filters


def _image_props(spec: RequestSpec) -> dict[str, Any]:
    return dict((spec.image or {}).get("properties") or {})


def compute_filter(host: HostView, spec: RequestSpec) -> bool:
    s = host.state
    return bool(getattr(s, "up", True)) and bool(getattr(s, "enabled", True)) and not getattr(s, "forced_down", False)


def availability_zone_filter(host: HostView, spec: RequestSpec) -> bool:
    return not spec.availability_zone or getattr(host.state, "az", None) == spec.availability_zone


def image_properties_filter(host: HostView, spec: RequestSpec) -> bool:
    props = _image_props(spec)
    arch = props.get("hw_architecture") or props.get("architecture")
    hv_type = props.get("img_hv_type") or props.get("hypervisor_type")
    vm_mode = props.get("hw_vm_mode") or props.get("vm_mode")
    s = host.state
    host_arch = getattr(s, "arch", None) or (getattr(s, "cpu_info", None) or {}).get("arch")
    host_hv = getattr(s, "hypervisor_type", None)
    if arch and host_arch and _canon_arch(arch) != _canon_arch(host_arch):
        return False
    if hv_type and host_hv and _canon_hv(hv_type) != _canon_hv(host_hv):
        return False
    if vm_mode and _canon_mode(vm_mode) not in ("hvm",):
        return False  # mCloud's hypervisors run full virtualisation only
    return True


def _canon_arch(value: str) -> str:
    value = value.lower()
    return {"amd64": "x86_64", "x64": "x86_64", "i386": "i686", "arm64": "aarch64"}.get(value, value)


def _canon_hv(value: str) -> str:
    value = value.lower()
    return "qemu" if value in ("kvm", "qemu") else value


def _canon_mode(value: str) -> str:
    value = value.lower()
    return {"hv": "hvm", "hvm": "hvm", "xen": "xen", "pv": "xen", "exe": "exe", "uml": "uml"}.get(value, value)


def aggregate_extra_specs_filter(host: HostView, spec: RequestSpec, aggregates: dict[str, list[Any]]) -> bool:
    """AggregateInstanceExtraSpecsFilter: flavor extra specs scoped ``aggregate_instance_extra_specs:``
    (or unscoped keys) must match the metadata of the host's aggregates (any of the values, as
    Nova's extra-spec operators for a plain value)."""
    wanted: dict[str, str] = {}
    for key, value in (spec.flavor.get("extra_specs") or {}).items():
        scope, _, name = key.partition(":")
        if name and scope == "aggregate_instance_extra_specs":
            wanted[name] = str(value)
        elif not name:
            wanted[key] = str(value)
    if not wanted:
        return True
    have: dict[str, set[str]] = defaultdict(set)
    for agg in aggregates.get(host.name, []):
        for k, v in (getattr(agg, "metadata", None) or {}).items():
            have[k] |= {x.strip() for x in str(v).split(",")}
    for key, value in wanted.items():
        if key not in have:
            return False
        if not _extra_spec_matches(value, have[key]):
            return False
    return True


def _extra_spec_matches(req: str, values: set[str]) -> bool:
    """Nova's extra_specs_ops for the common operators; a plain value must be one of the values."""
    words = req.split()
    if not words:
        return "" in values
    op = words[0]
    try:
        if op == "<in>":
            return any(words[1] in v for v in values)
        if op == "<or>":
            return bool(values & set(words[1::2]))
        if op in ("s==", "="):
            return bool(values & {words[1]}) if op == "s==" else any(float(v) >= float(words[1]) for v in values)
        if op in (">=", "<="):
            return any((float(v) >= float(words[1])) if op == ">=" else (float(v) <= float(words[1])) for v in values)
    except (IndexError, ValueError):
        return False
    return req in values


# ---------------------------------------------------------------------- weighers


def normalize(values: list[float]) -> list[float]:
    lo, hi = min(values), max(values)
    if hi == lo:
        return [0.0 for _ in values]
    return [(v - lo) / (hi - lo) for v in values]


class Scheduler:
    """Placement candidates, filters, weighers and claims (see the module's docstring)."""

    #: Nova's default weigher multipliers
    ram_weight_multiplier = 1.0
    cpu_weight_multiplier = 1.0
    disk_weight_multiplier = 1.0
    soft_affinity_weight_multiplier = 1.0
    soft_anti_affinity_weight_multiplier = 1.0

    def __init__(self, compute: Any):
        self.compute = compute

    @property
    def placement(self) -> Any:
        return self.compute.placement

    # ---------------------------------------------------------------- selection

    async def select(self, spec: RequestSpec) -> list[Selection]:
        """The hosts that can take the instance, best first (nothing is claimed)."""
        async with self.compute.db.read() as session:
            states: dict[str, Any] = await self.compute.hosts.candidates_state(session)
            by_provider = {s.provider_uuid: name for name, s in states.items() if getattr(s, "provider_uuid", None)}
            forced = spec.force_host or spec.requested_host
            if forced and forced not in states:
                raise NoValidHost(f"Host '{forced}' is not a compute host.")
            groups, group_policy = request_groups(spec.flavor, _image_props(spec))
            if forced:
                groups[""].in_tree = states[forced].provider_uuid
            zone_aggs = await self._zone_aggregates(session, spec)
            if zone_aggs is not None:
                if not zone_aggs:
                    return []
                groups[""].member_of.append(zone_aggs)
            query = CandidateQuery(groups=groups, group_policy=group_policy)
            try:
                idx, cands, _ = await self.placement.allocation_candidates(query)
            except APIError as exc:  # an unknown resource class or trait in the flavor
                raise NoValidHost(str(exc)) from exc
            hosts: dict[str, HostView] = {}
            for cand in cands:
                root_uuid = idx.nodes[cand.anchor].uuid
                name = by_provider.get(root_uuid)
                if name is None or name in hosts:
                    continue  # a provider that is not a compute host, or a second candidate of one
                allocs: dict[str, dict[str, int]] = {}
                for (rp, rc), amount in cand.resources.items():
                    allocs.setdefault(idx.nodes[rp].uuid, {})[rc] = amount
                free: dict[str, float] = {}
                rp = cand.anchor
                for rc in (VCPU, MEMORY_MB, DISK_GB):
                    inv = idx.inv[rp].get(rc)
                    if inv is not None:
                        free[rc] = inv.capacity - idx.used.get((rp, rc), 0)
                hosts[name] = HostView(name, states[name], root_uuid, allocs, free)
            if spec.ignore_hosts:
                hosts = {n: h for n, h in hosts.items() if n not in spec.ignore_hosts}
            if not hosts:
                return []
            if self._needs_instances(spec):
                await self._instances_by_host(session, hosts, spec)
            if not spec.force_host:
                aggregates = await self._aggregates(session, spec)
                group_hosts = await self.group_hosts(session, spec)
                hosts = {n: h for n, h in hosts.items() if self._passes(h, spec, group_hosts, aggregates)}
            if spec.force_host and spec.force_node:
                hosts = {n: h for n, h in hosts.items() if getattr(h.state, "node", None) in (None, spec.force_node)}
        return self._weigh(list(hosts.values()), spec)

    def _needs_instances(self, spec: RequestSpec) -> bool:
        """Whether a filter or weigher looks at the instances on each host (hints, soft policies)."""
        return bool(spec.hints.get("same_host") or spec.hints.get("different_host")
                    or self._group_policy(spec.group) in ("soft-affinity", "soft-anti-affinity"))

    async def _instances_by_host(self, session: Any, hosts: dict[str, HostView], spec: RequestSpec) -> None:
        rows = await session.execute(sa.select(Instance.host, Instance.uuid).where(
            Instance.host.in_(list(hosts)), Instance.deleted.is_(False), Instance.uuid != spec.instance_uuid))
        for host, uuid in rows:
            hosts[host].instances.append(uuid)

    async def group_hosts(self, session: Any, spec: RequestSpec) -> dict[str, int]:
        """How many of the group's other members each host has (Nova's instance_group.hosts)."""
        members = set(getattr(spec.group, "members", None) or []) - {spec.instance_uuid}
        if not members:
            return {}
        rows = await session.execute(sa.select(Instance.host, sa.func.count()).where(
            Instance.uuid.in_(sorted(members)), Instance.deleted.is_(False), Instance.host.is_not(None))
            .group_by(Instance.host))
        return {host: int(n) for host, n in rows}

    async def _zone_aggregates(self, session: Any, spec: RequestSpec) -> set[str] | None:
        """Nova's map_az_to_placement_aggregate: a requested zone other than the default one is
        the Placement aggregates of the host aggregates that make it (hosts join their
        aggregates' Placement aggregates); None: no such restriction."""
        az = spec.availability_zone
        if not az or az == self.compute.config.default_availability_zone or spec.force_host:
            return None
        found: set[str] = set()
        for aggs in (await self.compute.resources.host_aggregates(session)).values():
            found |= {a.uuid for a in aggs if getattr(a, "availability_zone", None) == az and getattr(a, "uuid", None)}
        return found

    async def _aggregates(self, session: Any, spec: RequestSpec) -> dict[str, list[Any]]:
        specs = spec.flavor.get("extra_specs") or {}
        if not any(k.startswith("aggregate_instance_extra_specs:") or ":" not in k for k in specs):
            return {}
        return await self.compute.resources.host_aggregates(session)

    def _passes(self, host: HostView, spec: RequestSpec, group_hosts: dict[str, int],
                aggregates: dict[str, list[Any]]) -> bool:
        if not compute_filter(host, spec) or not availability_zone_filter(host, spec):
            return False
        if not image_properties_filter(host, spec):
            return False
        if aggregates and not aggregate_extra_specs_filter(host, spec, aggregates):
            return False
        if not self.group_allows(spec.group, host.name, group_hosts):
            return False
        same = _uuid_list(spec.hints.get("same_host"))
        if same and not set(same) <= set(host.instances):
            return False
        different = _uuid_list(spec.hints.get("different_host"))
        if different and set(different) & set(host.instances):
            return False
        return True

    @classmethod
    def group_allows(cls, group: Any, host: str, group_hosts: dict[str, int]) -> bool:
        """ServerGroupAffinityFilter / ServerGroupAntiAffinityFilter: ``group_hosts`` counts the
        group's other members per host."""
        policy = cls._group_policy(group)
        if policy == "affinity":
            return not group_hosts or host in group_hosts
        if policy == "anti-affinity":
            rules = getattr(group, "rules", None) or {}
            limit = int(rules.get("max_server_per_host", 1) or 1)
            return group_hosts.get(host, 0) < limit
        return True

    @staticmethod
    def _group_policy(group: Any) -> str | None:
        if group is None:
            return None
        policy = getattr(group, "policy", None)
        if policy is None:
            policies = getattr(group, "policies", None) or []
            policy = policies[0] if policies else None
        return policy

    def _weigh(self, hosts: list[HostView], spec: RequestSpec) -> list[Selection]:
        if not hosts:
            return []
        hosts.sort(key=lambda h: h.name)
        totals = [0.0] * len(hosts)

        def add(values: list[float], multiplier: float) -> None:
            if multiplier:
                for i, v in enumerate(normalize(values)):
                    totals[i] += multiplier * v

        add([h.free.get(MEMORY_MB, 0.0) for h in hosts], self.ram_weight_multiplier)
        add([h.free.get(VCPU, 0.0) for h in hosts], self.cpu_weight_multiplier)
        add([h.free.get(DISK_GB, 0.0) for h in hosts], self.disk_weight_multiplier)
        policy = self._group_policy(spec.group)
        if policy in ("soft-affinity", "soft-anti-affinity"):
            members = set(getattr(spec.group, "members", None) or []) - {spec.instance_uuid}
            counts = [float(len(members & set(h.instances))) for h in hosts]
            if policy == "soft-affinity":
                add(counts, self.soft_affinity_weight_multiplier)
            else:
                add([-c for c in counts], self.soft_anti_affinity_weight_multiplier)
        order = sorted(range(len(hosts)), key=lambda i: (-totals[i], hosts[i].name))
        return [Selection(hosts[i].name, getattr(hosts[i].state, "node", None), hosts[i].provider_uuid,
                          hosts[i].allocations, totals[i], getattr(hosts[i].state, "az", None)) for i in order]

    # ---------------------------------------------------------------- claims

    async def claim(self, spec: RequestSpec, selections: list[Selection]) -> Selection:
        """Write the allocation of the first selection Placement accepts (consumer = the instance)."""
        for sel in selections:
            try:
                await self.placement.write_allocations([ConsumerWrite(
                    spec.instance_uuid, sel.allocations, spec.project_id, spec.user_id,
                    consumer_type="INSTANCE")])
                return sel
            except Conflict as exc:  # another claim took the room first: the next host
                log.info("claim of %s on %s refused: %s", spec.instance_uuid, sel.host, exc)
        raise NoValidHost()

    async def schedule(self, spec: RequestSpec) -> Selection:
        """Select and claim: the host the instance goes to, with its allocation written."""
        found = await self.select(spec)
        if not found:
            raise NoValidHost()
        return await self.claim(spec, found)

    async def move_claim(self, spec: RequestSpec, migration_uuid: str,
                         selections: list[Selection] | None = None) -> Selection:
        """A move's claim: in one write the instance's current allocation becomes the migration's
        and the instance's uuid takes the destination's."""
        current = await self.allocations_of(spec.instance_uuid)
        if selections is None:
            selections = await self.select(spec)
        for sel in selections:
            try:
                await self.placement.write_allocations([
                    ConsumerWrite(migration_uuid, current, spec.project_id, spec.user_id, consumer_type="MIGRATION"),
                    ConsumerWrite(spec.instance_uuid, sel.allocations, spec.project_id, spec.user_id,
                                  consumer_type="INSTANCE")])
                return sel
            except Conflict as exc:
                log.info("move claim of %s on %s refused: %s", spec.instance_uuid, sel.host, exc)
        raise NoValidHost()

    async def allocations_of(self, consumer: str) -> dict[str, dict[str, int]]:
        found = await self.placement.consumer_allocations(consumer)
        if not found:
            return {}
        return {rp: dict(v["resources"]) for rp, v in found["providers"].items()}

    async def set_allocations(self, consumer: str, allocations: dict[str, dict[str, int]], project_id: str,
                              user_id: str, consumer_type: str = "INSTANCE") -> None:
        await self.placement.write_allocations([ConsumerWrite(consumer, allocations, project_id, user_id,
                                                              consumer_type=consumer_type)])

    async def confirm_move(self, migration_uuid: str) -> None:
        """Confirm: the source's allocation (held by the migration) goes."""
        await self.release(migration_uuid)

    async def revert_move(self, instance_uuid: str, migration_uuid: str, project_id: str, user_id: str) -> None:
        """Revert: the instance takes its source allocation back, the destination's goes."""
        source = await self.allocations_of(migration_uuid)
        if not source:
            return
        await self.placement.write_allocations([
            ConsumerWrite(instance_uuid, source, project_id, user_id, consumer_type="INSTANCE"),
            ConsumerWrite(migration_uuid, {}, project_id, user_id)])

    async def release(self, consumer: str) -> None:
        """Drop every allocation of ``consumer`` (nothing to drop is fine)."""
        if await self.placement.consumer_allocations(consumer) is None:
            return
        await self.placement.write_allocations([ConsumerWrite(consumer, {}, None, None)])


def _uuid_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
