"""Security groups and their rules, as Neutron's securitygroups_db does them: the per-project
``default`` group made on first need (egress anywhere, ingress from members of the same group),
rules validated and normalised as Neutron does (protocol names and numbers, port ranges per
protocol, ICMP type/code, remote prefix in CIDR form, one remote at most), duplicates refused
(409), a group in use by a port kept (409)."""

from __future__ import annotations

import ipaddress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network import models_l3 as ml
from mcloud.network.drivers.base import SecurityGroupRuleView, SecurityGroupView
from mcloud.network.service_l3_base import (Caller, Page, bool_filter, conflict, error, int_filter, list_page,
                                            list_query, new_id, not_found, owner_fields, owns, paged, sort_keys,
                                            standard, standard_filters, standard_sort, str_filter)

DEFAULT_SG_DESCRIPTION = "Default security group"
ETHERTYPES = ("IPv4", "IPv6")
DIRECTIONS = ("ingress", "egress")
PROTOCOL_NUMBERS = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0, "ipip": 4,
    "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
    "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136,
    "vrrp": 112}
PROTOCOL_NAMES = {str(v): k for k, v in PROTOCOL_NUMBERS.items() if k not in ("icmpv6", "hopopt")}
SUPPORTED_PROTOCOLS = ("any", *PROTOCOL_NUMBERS)
PORT_PROTOCOLS = ("dccp", "sctp", "tcp", "udp", "udplite")
IPV6_ONLY = ("ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
             "41", "44", "58", "59", "60", "43")
#: the rules of a new group: egress anywhere; the default group also lets its members in
DEFAULT_RULES = (("egress", "IPv4", False), ("egress", "IPv6", False),
                 ("ingress", "IPv4", True), ("ingress", "IPv6", True))


# ---------------------------------------------------------------------- converters (API attributes)


def convert_protocol(value: Any) -> str | None:
    """Neutron's convert_protocol: None/"any" -> None, 0..255 as text, a known name lower-cased."""
    if value is None or value == "any":
        return None
    supported = ", ".join(SUPPORTED_PROTOCOLS)
    bad = error(400, "SecurityGroupRuleInvalidProtocol",
                f"Security group rule protocol {value} not supported. Only protocol values [None, {supported}] "
                f"and integer representations [0 to 255] are supported.")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        number = int(value)
        if 0 <= number <= 255:
            return str(number)
        raise bad
    if isinstance(value, str) and value.lower() in PROTOCOL_NUMBERS:
        return value.lower()
    raise bad


def convert_ethertype(value: Any) -> str:
    if isinstance(value, str):
        for ethertype in ETHERTYPES:
            if ethertype.lower() == value.lower():
                return ethertype
    raise error(400, "SecurityGroupRuleInvalidEtherType",
                f"Security group rule for ethertype '{value}' not supported. Allowed values are "
                f"['IPv4', 'IPv6'].")


def convert_port(value: Any) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if 0 <= port <= 65535:
        return port
    raise error(400, "SecurityGroupInvalidPortValue", f"Invalid value for port {value}")


def convert_ip_prefix(value: Any) -> str | None:
    """A prefix in CIDR form (``10.0.0.5`` -> ``10.0.0.5/32``), host bits kept as Neutron keeps them."""
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        text = value.strip()
        if "/" in text:
            address, _, length = text.partition("/")
            if not length.isdigit():
                raise ValueError
            iface = ipaddress.ip_interface(f"{address}/{int(length)}")
        else:
            iface = ipaddress.ip_interface(text)
        if "/" not in text and not isinstance(iface, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
            raise ValueError
        return f"{iface.ip}/{iface.network.prefixlen}"
    except ValueError:
        raise error(400, "InvalidCIDR", f"Invalid CIDR {value} given as IP prefix.") from None


def normalized_cidr(prefix: str | None) -> str | None:
    return None if prefix is None else str(ipaddress.ip_network(prefix, strict=False))


def protocol_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    return PROTOCOL_NUMBERS[protocol] if protocol in PROTOCOL_NUMBERS else int(protocol)


def protocol_key(protocol: str | None, ethertype: str) -> str:
    """The protocol as Neutron compares rules: name and number (tcp == 6)."""
    if protocol is None:
        return "+"
    if ethertype == "IPv6" and protocol in ("icmp", "icmpv6"):
        protocol = "ipv6-icmp"
    elif ethertype == "IPv6" and protocol == "1":
        protocol = "58"
    if protocol in PROTOCOL_NUMBERS:
        return f"{protocol}/{PROTOCOL_NUMBERS[protocol]}"
    if protocol in PROTOCOL_NAMES:
        return f"{PROTOCOL_NAMES[protocol]}/{protocol}"
    return f"{protocol}/{protocol}"


def validate_rule(rule: dict[str, Any]) -> None:
    """Neutron's checks on a rule's attributes, normalising them in place."""
    # legacy IPv6 ICMP names and number 1 mean ipv6-icmp for IPv6
    if rule["ethertype"] == "IPv6":
        if rule["protocol"] in ("icmp", "icmpv6"):
            rule["protocol"] = "ipv6-icmp"
        elif rule["protocol"] == "1":
            rule["protocol"] = "58"
    # the whole port range is no range
    if rule["port_range_min"] == 1 and rule["port_range_max"] == 65535:
        rule["port_range_min"] = rule["port_range_max"] = None
    pmin, pmax = rule["port_range_min"], rule["port_range_max"]
    if pmin is not None or pmax is not None:
        if rule["protocol"] is None:
            raise error(400, "SecurityGroupProtocolRequiredWithPorts",
                        "Must also specify protocol if port range is given.")
        number = protocol_number(rule["protocol"])
        if number in (33, 132, 6, 17, 136):
            if pmin == 0 or pmax == 0:
                raise error(400, "SecurityGroupInvalidPortValue", "Invalid value for port 0")
            if pmin is None or pmax is None or pmin > pmax:
                raise error(400, "SecurityGroupInvalidPortRange",
                            "For TCP/UDP protocols, port_range_min must be <= port_range_max")
        elif number in (1, 58):
            for value, field, attr in ((pmin, "type", "port_range_min"), (pmax, "code", "port_range_max")):
                if value is not None and not 0 <= value <= 255:
                    raise error(400, "SecurityGroupInvalidIcmpValue",
                                f"Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255.")
            if pmin is None and pmax is not None:
                raise error(400, "SecurityGroupMissingIcmpType",
                            f"ICMP code (port-range-max) {pmax} is provided but ICMP type (port-range-min) "
                            "is missing.")
        else:
            raise error(400, "SecurityGroupInvalidProtocolForPort",
                        f"Ports cannot be specified for protocol {number}. Ports are only supported for "
                        f"{', '.join(p.upper() for p in PORT_PROTOCOLS)}.")
    prefix = rule["remote_ip_prefix"]
    if prefix is not None and rule["ethertype"] != f"IPv{ipaddress.ip_network(prefix, strict=False).version}":
        raise error(400, "SecurityGroupRuleParameterConflict",
                    f"Conflicting value ethertype {rule['ethertype']} for CIDR {prefix}")
    if rule["protocol"] in IPV6_ONLY and rule["ethertype"] == "IPv4":
        raise error(400, "SecurityGroupEthertypeConflictWithProtocol",
                    f"Invalid ethertype {rule['ethertype']} for protocol {rule['protocol']}.")
    if prefix is not None and rule.get("remote_group_id") is not None:
        raise error(400, "SecurityGroupMultipleRemoteEntites",
                    "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.")


def rule_key(rule: Any) -> tuple[Any, ...]:
    """What makes two rules the same for Neutron's duplicate check."""
    get = (lambda k: rule[k]) if isinstance(rule, dict) else (lambda k: getattr(rule, k))
    prefix = get("remote_ip_prefix")
    if prefix in ("0.0.0.0/0", "::/0"):
        prefix = None
    return (get("direction"), get("ethertype"), get("port_range_max"), get("port_range_min"),
            protocol_key(get("protocol"), get("ethertype")), get("remote_group_id"), prefix)


# ---------------------------------------------------------------------- the service part


class SecurityGroups:
    """Mixed into L3Service."""

    # ------------------------------------------------------------ rendering

    def r_rule(self, rule: ml.SecurityGroupRule, default_ids: set[str]) -> dict[str, Any]:
        return {"id": rule.id, **owner_fields(rule.project_id), "security_group_id": rule.security_group_id,
                "ethertype": rule.ethertype, "direction": rule.direction, "protocol": rule.protocol,
                "port_range_min": rule.port_range_min, "port_range_max": rule.port_range_max,
                "remote_ip_prefix": rule.remote_ip_prefix, "remote_address_group_id": None,
                "normalized_cidr": normalized_cidr(rule.remote_ip_prefix),
                "remote_group_id": rule.remote_group_id,
                "belongs_to_default_sg": rule.security_group_id in default_ids,
                **standard(rule)}

    async def _default_ids(self, session: AsyncSession, group_ids: list[str]) -> set[str]:
        if not group_ids:
            return set()
        return set((await session.execute(
            sa.select(ml.DefaultSecurityGroup.security_group_id)
            .where(ml.DefaultSecurityGroup.security_group_id.in_(group_ids)))).scalars())

    async def render_groups(self, session: AsyncSession, groups: list[ml.SecurityGroup]) -> list[dict[str, Any]]:
        ids = [g.id for g in groups]
        rules: dict[str, list[ml.SecurityGroupRule]] = {i: [] for i in ids}
        if ids:
            for rule in (await session.execute(
                    sa.select(ml.SecurityGroupRule).where(ml.SecurityGroupRule.security_group_id.in_(ids))
                    .order_by(ml.SecurityGroupRule.created_at, ml.SecurityGroupRule.id))).scalars():
                rules[rule.security_group_id].append(rule)
        defaults = await self._default_ids(session, ids)
        tags = await self.tags_of(session, "security_groups", ids)
        return [{"id": g.id, "name": g.name, "stateful": g.stateful, **owner_fields(g.project_id),
                 "security_group_rules": [self.r_rule(r, defaults) for r in rules[g.id]],
                 "tags": tags.get(g.id, []), "shared": False, **standard(g)}
                for g in groups]

    # ------------------------------------------------------------ the default group

    async def default_group_id(self, session: AsyncSession, project_id: str) -> str | None:
        return (await session.execute(sa.select(ml.DefaultSecurityGroup.security_group_id)
                                      .where(ml.DefaultSecurityGroup.project_id == project_id))).scalar()

    async def ensure_default_group(self, session: AsyncSession, project_id: str) -> str:
        """The project's ``default`` group, made now if it has none (in ``session``'s transaction;
        two transactions racing to make it end with one group)."""
        existing = await self.default_group_id(session, project_id)
        if existing is not None:
            return existing
        group = ml.SecurityGroup(id=new_id(), project_id=project_id, name="default",
                                 description=DEFAULT_SG_DESCRIPTION, stateful=True)
        try:
            async with session.begin_nested():
                session.add(group)
                await session.flush()
                session.add(ml.DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
                await session.flush()
                self._add_template_rules(session, group, default=True)
                await session.flush()
        except sa.exc.IntegrityError:
            winner = await self.default_group_id(session, project_id)
            assert winner is not None
            return winner
        view = await self.group_view(session, group.id)
        self.after_commit_call(session, "ensure_security_group", view)
        return group.id

    def _add_template_rules(self, session: AsyncSession, group: ml.SecurityGroup, default: bool) -> None:
        for direction, ethertype, from_group in DEFAULT_RULES:
            if from_group and not default:
                continue
            session.add(ml.SecurityGroupRule(
                id=new_id(), project_id=group.project_id, security_group_id=group.id, direction=direction,
                ethertype=ethertype, remote_group_id=group.id if from_group else None))

    async def ensure_default_group_for(self, caller: Caller, project_id: str | None) -> None:
        """Neutron makes the caller's default group when it lists groups or rules."""
        if not project_id or not owns(caller, project_id):
            return
        async with self.net.db.read() as session:
            if await self.default_group_id(session, project_id) is not None:
                return
        async with self.net.write() as session:
            await self.ensure_default_group(session, project_id)

    # ------------------------------------------------------------ groups

    SG_SORT = standard_sort(ml.SecurityGroup, "name", "stateful")

    def sg_filters(self) -> dict[str, Any]:
        g = ml.SecurityGroup
        return {**standard_filters(g), "name": str_filter(g.name), "stateful": bool_filter(g.stateful, "stateful"),
                "shared": lambda values: sa.true() if "true" not in [v.lower() for v in values] else sa.false()}

    async def list_security_groups(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                                   marker: str | None = None, page_reverse: bool = False) -> Page:
        await self.ensure_default_group_for(caller, (params.get("project_id") or params.get("tenant_id")
                                                     or [caller.project_id])[0])
        return await self.owned_page(caller, ml.SecurityGroup, "security_group", self.sg_filters(), self.SG_SORT,
                                     params, limit, marker, page_reverse, "get_security_group", self.render_groups)

    async def security_group_row(self, session: AsyncSession, caller: Caller, group_id: Any,
                                 for_project: str | None = None, rule: str | None = None) -> ml.SecurityGroup:
        """The group the caller (or, for a rule, the rule's project) may use: 404 otherwise."""
        group = await session.get(ml.SecurityGroup, group_id) if isinstance(group_id, str) else None
        project = for_project if for_project is not None else caller.project_id
        if group is None or not (caller.is_admin or group.project_id == project) \
                or not caller.allowed("get_security_group", self.target(group)):
            raise not_found("SecurityGroupNotFound", f"Security group {group_id} does not exist")
        if rule is not None:
            caller.enforce(rule, self.target(group))
        return group

    async def get_security_group(self, session: AsyncSession, caller: Caller, group_id: str) -> dict[str, Any]:
        group = await self.security_group_row(session, caller, group_id)
        return (await self.render_groups(session, [group]))[0]

    async def create_security_group(self, session: AsyncSession, caller: Caller, body: dict[str, Any]) -> str:
        project_id = body["project_id"]
        caller.enforce("create_security_group", {"project_id": project_id, "tenant_id": project_id})
        if isinstance(body.get("name"), str) and body["name"].lower() == "default":
            raise conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
        if body.get("stateful", True) is False:
            self.require_extension("stateful-security-group")
        if project_id == caller.project_id or caller.is_admin:
            await self.ensure_default_group(session, project_id)
        await self.check_quota(session, project_id, "security_group", 1)
        await self.check_quota(session, project_id, "security_group_rule", 2)
        group = ml.SecurityGroup(id=new_id(), project_id=project_id, name=body.get("name") or "",
                                 description=body.get("description") or "", stateful=body.get("stateful", True))
        session.add(group)
        await session.flush()
        self._add_template_rules(session, group, default=False)
        await session.flush()
        self.after_commit_call(session, "ensure_security_group", await self.group_view(session, group.id))
        return group.id

    async def update_security_group(self, session: AsyncSession, caller: Caller, group_id: str,
                                    body: dict[str, Any], if_match: str | None = None) -> None:
        group = await self.security_group_row(session, caller, group_id, rule="update_security_group")
        self.check_revision(group, if_match)
        if isinstance(body.get("name"), str) and body["name"].lower() == "default":
            raise conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
        if "name" in body and await self.default_group_id(session, group.project_id) == group.id:
            raise conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
        if "stateful" in body and body["stateful"] != group.stateful:
            if body["stateful"] is False:
                self.require_extension("stateful-security-group")
            if await self._group_ports(session, group.id):
                raise conflict("SecurityGroupInUse", f"Security Group {group.id} in use.")
        for key in ("name", "description", "stateful"):
            if key in body:
                setattr(group, key, body[key] if body[key] is not None else "")
        group.touch()
        self.after_commit_call(session, "ensure_security_group", await self.group_view(session, group.id))

    async def _group_ports(self, session: AsyncSession, group_id: str) -> list[str]:
        return list((await session.execute(sa.select(ml.PortSecurityGroup.port_id)
                                           .where(ml.PortSecurityGroup.security_group_id == group_id))).scalars())

    async def delete_security_group(self, session: AsyncSession, caller: Caller, group_id: str) -> None:
        group = await self.security_group_row(session, caller, group_id, rule="delete_security_group")
        if await self._group_ports(session, group.id):
            raise conflict("SecurityGroupInUse", f"Security Group {group.id} in use.")
        if await self.default_group_id(session, group.project_id) == group.id and not caller.is_admin:
            raise conflict("SecurityGroupCannotRemoveDefault",
                           "Insufficient rights for removing default security group.")
        # groups whose rules name this one as their remote lose those rules with it
        others = set((await session.execute(
            sa.select(ml.SecurityGroupRule.security_group_id)
            .where(ml.SecurityGroupRule.remote_group_id == group.id,
                   ml.SecurityGroupRule.security_group_id != group.id))).scalars())
        await session.execute(sa.delete(ml.SecurityGroupRule).where(
            sa.or_(ml.SecurityGroupRule.security_group_id == group.id,
                   ml.SecurityGroupRule.remote_group_id == group.id)))
        await session.execute(sa.delete(ml.DefaultSecurityGroup)
                              .where(ml.DefaultSecurityGroup.security_group_id == group.id))
        await session.delete(group)
        await session.flush()
        await self.drop_tags(session, "security_groups", group.id)
        self.after_commit_call(session, "delete_security_group", group.id)
        for other in sorted(others):
            (await session.get(ml.SecurityGroup, other)).touch()
            self.after_commit_call(session, "ensure_security_group", await self.group_view(session, other))

    # ------------------------------------------------------------ rules

    def _rules_query(self, caller: Caller) -> sa.Select[Any]:
        query = sa.select(ml.SecurityGroupRule)
        if not caller.is_admin:
            owned = sa.select(ml.SecurityGroup.id).where(ml.SecurityGroup.project_id == caller.project_id)
            query = query.where(sa.or_(ml.SecurityGroupRule.security_group_id.in_(owned),
                                       ml.SecurityGroupRule.project_id == caller.project_id))
        return query

    RULE_SORT = {**standard_sort(ml.SecurityGroupRule, "security_group_id", "remote_group_id", "direction",
                                 "protocol", "port_range_min", "port_range_max", "ethertype", "remote_ip_prefix")}

    def rule_filters(self) -> dict[str, Any]:
        r = ml.SecurityGroupRule
        defaults = sa.select(ml.DefaultSecurityGroup.security_group_id)

        def belongs(values: list[str]) -> Any:
            wanted = {v.lower() in ("true", "1") for v in values}
            if wanted == {True}:
                return r.security_group_id.in_(defaults)
            if wanted == {False}:
                return r.security_group_id.not_in(defaults)
            return sa.true()

        def protocol(values: list[str]) -> Any:
            return r.protocol.in_([convert_protocol(v) for v in values if v not in ("any", "")]) \
                if any(v not in ("any", "") for v in values) else r.protocol.is_(None)

        def ethertype(values: list[str]) -> Any:
            return r.ethertype.in_([convert_ethertype(v) for v in values])

        return {**standard_filters(r), "security_group_id": str_filter(r.security_group_id),
                "remote_group_id": str_filter(r.remote_group_id), "direction": str_filter(r.direction),
                "protocol": protocol, "ethertype": ethertype,
                "port_range_min": int_filter(r.port_range_min, "port_range_min"),
                "port_range_max": int_filter(r.port_range_max, "port_range_max"),
                "remote_ip_prefix": lambda values: r.remote_ip_prefix.in_([convert_ip_prefix(v) for v in values]),
                "normalized_cidr": lambda values: sa.true(), "remote_address_group_id": lambda values: sa.false(),
                "belongs_to_default_sg": belongs}

    async def list_security_group_rules(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                                        marker: str | None = None, page_reverse: bool = False) -> Page:
        await self.ensure_default_group_for(caller, (params.get("project_id") or params.get("tenant_id")
                                                     or [caller.project_id])[0])
        query = list_query(self._rules_query(caller), ml.SecurityGroupRule, params, self.rule_filters(),
                           "security_group_rule")
        sort = sort_keys(params, self.RULE_SORT)
        async with self.net.db.read() as session:
            rows, more = await paged(session, query, ml.SecurityGroupRule.id, sort, limit, marker, page_reverse)
            groups = {g.id: g for g in (await session.execute(sa.select(ml.SecurityGroup).where(
                ml.SecurityGroup.id.in_({r.security_group_id for r in rows})))).scalars()} if rows else {}
            defaults = await self._default_ids(session, list(groups))
            visible = [r for r in rows if caller.allowed("get_security_group_rule",
                                                         self.rule_target(r, groups.get(r.security_group_id),
                                                                          defaults))]
            return list_page(rows, more, [self.r_rule(r, defaults) for r in visible])

    def rule_target(self, rule: Any, group: ml.SecurityGroup | None, defaults: set[str]) -> dict[str, Any]:
        return {"project_id": rule.project_id, "tenant_id": rule.project_id,
                "security_group:project_id": group.project_id if group is not None else rule.project_id,
                "security_group_id": rule.security_group_id,
                "belongs_to_default_sg": rule.security_group_id in defaults}

    async def get_security_group_rule(self, session: AsyncSession, caller: Caller, rule_id: Any) -> dict[str, Any]:
        rule = await self._rule_row(session, caller, rule_id)
        return self.r_rule(rule, await self._default_ids(session, [rule.security_group_id]))

    async def _rule_row(self, session: AsyncSession, caller: Caller, rule_id: Any,
                        policy: str | None = None) -> ml.SecurityGroupRule:
        rule = await session.get(ml.SecurityGroupRule, rule_id) if isinstance(rule_id, str) else None
        group = await session.get(ml.SecurityGroup, rule.security_group_id) if rule is not None else None
        if rule is not None and not caller.is_admin:
            if rule.project_id != caller.project_id and (group is None or group.project_id != caller.project_id):
                rule = None
        target = self.rule_target(rule, group, await self._default_ids(session, [group.id] if group else [])) \
            if rule is not None else {}
        if rule is None or not caller.allowed("get_security_group_rule", target):
            raise not_found("SecurityGroupRuleNotFound", f"Security group rule {rule_id} does not exist")
        if policy is not None:
            caller.enforce(policy, target)
        return rule

    async def create_security_group_rules(self, session: AsyncSession, caller: Caller,
                                          rules: list[dict[str, Any]]) -> list[str]:
        """One or more rules (a bulk POST): all of one group, all made or none."""
        if len({r["security_group_id"] for r in rules}) > 1:
            raise error(400, "SecurityGroupNotSingleGroupRules",
                        "Only allowed to update rules for one security profile at a time")
        for rule in rules:
            validate_rule(rule)
        group_id = rules[0]["security_group_id"]
        project_id = rules[0]["project_id"]
        if len({r["project_id"] for r in rules}) > 1:
            raise error(400, "SecurityGroupRulesNotSingleProject",
                        "Multiple project_ids in bulk security group rule create not allowed")
        group = await self.security_group_row(session, caller, group_id, for_project=project_id)
        caller.enforce("create_security_group_rule", {"project_id": project_id, "tenant_id": project_id,
                                                      "security_group:project_id": group.project_id})
        for rule in rules:
            if rule.get("remote_group_id") is not None:
                await self.security_group_row(session, caller, rule["remote_group_id"], for_project=project_id)
        keys: set[tuple[Any, ...]] = set()
        for rule in rules:
            key = rule_key(rule)
            if key in keys:
                raise conflict("DuplicateSecurityGroupRuleInPost", "Duplicate Security Group Rule in POST.")
            keys.add(key)
        for existing in (await session.execute(sa.select(ml.SecurityGroupRule)
                                               .where(ml.SecurityGroupRule.security_group_id == group.id))).scalars():
            if rule_key(existing) in keys:
                raise conflict("SecurityGroupRuleExists",
                               f"Security group rule already exists. Rule id is {existing.id}.")
        await self.check_quota(session, project_id, "security_group_rule", len(rules))
        ids = []
        for rule in rules:
            row = ml.SecurityGroupRule(
                id=new_id(), project_id=project_id, security_group_id=group.id, direction=rule["direction"],
                ethertype=rule["ethertype"], protocol=rule["protocol"], port_range_min=rule["port_range_min"],
                port_range_max=rule["port_range_max"], remote_ip_prefix=rule["remote_ip_prefix"],
                remote_group_id=rule.get("remote_group_id"), description=rule.get("description") or "")
            session.add(row)
            ids.append(row.id)
        group.touch()
        await session.flush()
        self.after_commit_call(session, "ensure_security_group", await self.group_view(session, group.id))
        return ids

    async def delete_security_group_rule(self, session: AsyncSession, caller: Caller, rule_id: str) -> None:
        rule = await self._rule_row(session, caller, rule_id, "delete_security_group_rule")
        group = await session.get(ml.SecurityGroup, rule.security_group_id)
        await session.delete(rule)
        await session.flush()
        if group is not None:
            group.touch()
            self.after_commit_call(session, "ensure_security_group", await self.group_view(session, group.id))

    # ------------------------------------------------------------ ports

    async def port_groups(self, session: AsyncSession, port_ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {p: [] for p in port_ids}
        if port_ids:
            rows = await session.execute(sa.select(ml.PortSecurityGroup.port_id, ml.PortSecurityGroup.security_group_id)
                                         .where(ml.PortSecurityGroup.port_id.in_(port_ids))
                                         .order_by(ml.PortSecurityGroup.security_group_id))
            for port_id, group_id in rows:
                out[port_id].append(group_id)
        return out

    async def set_port_groups(self, session: AsyncSession, port: Any, wanted: Any, creating: bool,
                              default_id: str | None = None) -> list[str]:
        """Store a port's security groups (None on create: the project's default group, whose id
        the caller may have read already: ``default_id``); returns them. A new port has none to
        replace, and joins its groups on the data plane through its own view (``ensure_port``)."""
        trusted = (port.device_owner or "").startswith("network:")
        enabled = bool(getattr(port, "port_security_enabled", True))
        current = [] if creating else (await self.port_groups(session, [port.id]))[port.id]
        given = True
        if wanted is None and creating:  # the project's own default group: nothing to check
            given = False
            wanted = [] if (trusted or not enabled) else [
                default_id or await self.ensure_default_group(session, port.project_id)]
        elif wanted is None:
            wanted = []
        elif not isinstance(wanted, list) or not all(isinstance(g, str) for g in wanted):
            raise error(400, "HTTPBadRequest",
                        f"Invalid input for security_groups. Reason: '{wanted}' is not a list of UUIDs.")
        wanted = list(dict.fromkeys(wanted))
        if wanted and not enabled:
            if creating or wanted != current:
                raise error(400, "PortSecurityAndIPRequiredForSecurityGroups",
                            "Port security must be enabled and port must have an IP address in order to use "
                            "security groups.")
            raise conflict("PortSecurityPortHasSecurityGroup",
                           "Port has security group associated. Cannot disable port security or IP address until "
                           "security group is removed")
        if set(wanted) == set(current):
            return sorted(current)
        if given:
            found_groups = list((await session.execute(sa.select(ml.SecurityGroup)
                                                       .where(ml.SecurityGroup.id.in_(wanted)))).scalars()) if wanted else []
            found = {g.id for g in found_groups if g.project_id == port.project_id}
            missing = [g for g in wanted if g not in found]
            if missing:
                raise not_found("SecurityGroupNotFound", f"Security group {', '.join(missing)} does not exist")
            if len({g.stateful for g in found_groups}) > 1:
                raise conflict("SecurityGroupConflict",
                               "Error Cannot apply both stateful and stateless security groups on the same port at "
                               "the same time while attempting the operation.")
        if not creating:
            await session.execute(sa.delete(ml.PortSecurityGroup).where(ml.PortSecurityGroup.port_id == port.id))
        for group_id in wanted:
            session.add(ml.PortSecurityGroup(port_id=port.id, security_group_id=group_id))
        await session.flush()
        if not creating:
            # members of a group are what its remote-group rules (here and in other groups) match
            for group_id in sorted(set(wanted) ^ set(current)):
                if await session.get(ml.SecurityGroup, group_id) is not None:
                    self.after_commit_call(session, "ensure_security_group", await self.group_view(session, group_id))
        return sorted(wanted)

    # ------------------------------------------------------------ data-plane views

    async def group_view(self, session: AsyncSession, group_id: str) -> SecurityGroupView:
        return (await self.group_views(session, [group_id]))[0]

    async def group_views(self, session: AsyncSession, group_ids: list[str] | None = None) -> list[SecurityGroupView]:
        query = sa.select(ml.SecurityGroup).order_by(ml.SecurityGroup.id)
        if group_ids is not None:
            query = query.where(ml.SecurityGroup.id.in_(group_ids))
        groups = list((await session.execute(query)).scalars())
        rules: dict[str, list[SecurityGroupRuleView]] = {g.id: [] for g in groups}
        rule_query = sa.select(ml.SecurityGroupRule).order_by(ml.SecurityGroupRule.id)
        if group_ids is not None:
            rule_query = rule_query.where(ml.SecurityGroupRule.security_group_id.in_(group_ids))
        for r in (await session.execute(rule_query)).scalars():
            if r.security_group_id in rules:
                rules[r.security_group_id].append(SecurityGroupRuleView(
                    id=r.id, direction=r.direction, ethertype=r.ethertype, protocol=r.protocol,
                    port_range_min=r.port_range_min, port_range_max=r.port_range_max,
                    remote_ip_prefix=r.remote_ip_prefix, remote_group_id=r.remote_group_id))
        return [SecurityGroupView(id=g.id, project_id=g.project_id, name=g.name, stateful=g.stateful,
                                  rules=tuple(rules[g.id])) for g in groups]

    async def security_group_usage(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        groups = (await session.execute(sa.select(sa.func.count()).select_from(ml.SecurityGroup)
                                        .where(ml.SecurityGroup.project_id == project_id))).scalar() or 0
        rules = (await session.execute(sa.select(sa.func.count()).select_from(ml.SecurityGroupRule)
                                       .where(ml.SecurityGroupRule.project_id == project_id))).scalar() or 0
        return {"security_group": groups, "security_group_rule": rules}
