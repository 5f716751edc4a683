"""QoS policies (shared, is_default) with bandwidth-limit (per direction) and DSCP-marking rules,
bound to ports and networks through ``qos_policy_id``. A port's effective QoS is its own
policy's, else its network's (ports the network service owns, ``network:*``, take no network
policy, as in Neutron); a change to a policy's rules re-ensures every port it reaches."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network import models as m
from mcloud.network import models_l3 as ml
from mcloud.network.drivers.base import QosRules
from mcloud.network.service_l3_base import (Caller, Page, bool_filter, conflict, error, new_id, not_found,
                                            owner_fields, standard, standard_filters, standard_sort, str_filter)

#: the rule types mCloud has, by their collection in the URL
RULE_COLLECTIONS = {"bandwidth_limit_rules": "bandwidth_limit", "dscp_marking_rules": "dscp_marking"}
VALID_DSCP_MARKS = (0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 46, 48, 56)
DIRECTIONS = ("egress", "ingress")


def r_rule(rule: ml.QosRule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id, "qos_policy_id": rule.policy_id, "type": rule.type}
    if rule.type == "bandwidth_limit":
        out.update(max_kbps=rule.max_kbps, max_burst_kbps=rule.max_burst_kbps, direction=rule.direction)
    else:
        out.update(dscp_mark=rule.dscp_mark)
    return out


def rules_of(rules: list[ml.QosRule]) -> QosRules:
    values: dict[str, Any] = {}
    for rule in rules:
        if rule.type == "bandwidth_limit":
            values[f"{rule.direction}_max_kbps"] = rule.max_kbps
            values[f"{rule.direction}_max_burst_kbps"] = rule.max_burst_kbps or None
        elif rule.type == "dscp_marking":
            values["dscp_mark"] = rule.dscp_mark
    return QosRules(**values)


class Qos:
    """Mixed into L3Service."""

    def qos_policy_visible(self, caller: Caller, policy: ml.QosPolicy) -> bool:
        return (caller.is_admin or policy.shared or policy.project_id == caller.project_id) and \
            caller.allowed("get_policy", self.target(policy))

    async def qos_policy_row(self, session: AsyncSession, caller: Caller, policy_id: Any,
                             rule: str | None = None) -> ml.QosPolicy:
        """The policy the caller may see (404 otherwise), authorized for ``rule`` (403)."""
        self.require_extension("qos")
        policy = await session.get(ml.QosPolicy, policy_id) if isinstance(policy_id, str) else None
        if policy is None or not self.qos_policy_visible(caller, policy):
            raise not_found("QosPolicyNotFound", f"QoS policy {policy_id} could not be found.")
        if rule is not None:
            caller.enforce(rule, self.target(policy))
        return policy

    async def qos_parent(self, session: AsyncSession, caller: Caller, policy_id: Any, kind: str,
                         action: str) -> ml.QosPolicy:
        """The policy of a rule, authorized for ``<action>_policy_<kind>_rule`` on it as parent."""
        policy = await self.qos_policy_row(session, caller, policy_id)
        rule = f"{action}_policy_{kind}_rule"
        caller.enforce(rule, self.parent_target(policy))
        return policy

    async def _rules(self, session: AsyncSession, policy_ids: list[str]) -> dict[str, list[ml.QosRule]]:
        out: dict[str, list[ml.QosRule]] = {p: [] for p in policy_ids}
        if policy_ids:
            for rule in (await session.execute(sa.select(ml.QosRule).where(ml.QosRule.policy_id.in_(policy_ids))
                                               .order_by(ml.QosRule.type, ml.QosRule.direction, ml.QosRule.id))).scalars():
                out[rule.policy_id].append(rule)
        return out

    async def render_policies(self, session: AsyncSession, policies: list[ml.QosPolicy]) -> list[dict[str, Any]]:
        ids = [p.id for p in policies]
        rules = await self._rules(session, ids)
        tags = await self.tags_of(session, "policies", ids)
        return [{"id": p.id, "name": p.name, **owner_fields(p.project_id), "shared": p.shared,
                 "is_default": p.is_default, "rules": [r_rule(r) for r in rules[p.id]], "tags": tags.get(p.id, []),
                 **standard(p)} for p in policies]

    QOS_SORT = standard_sort(ml.QosPolicy, "name", "shared", "is_default")

    def qos_filters(self) -> dict[str, Any]:
        q = ml.QosPolicy
        return {**standard_filters(q), "name": str_filter(q.name), "shared": bool_filter(q.shared, "shared"),
                "is_default": bool_filter(q.is_default, "is_default")}

    async def list_qos_policies(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                                marker: str | None = None, page_reverse: bool = False) -> Page:
        self.require_extension("qos")
        return await self.owned_page(
            caller, ml.QosPolicy, "policy", self.qos_filters(), self.QOS_SORT, params, limit, marker, page_reverse,
            "get_policy", self.render_policies,
            visible=sa.or_(ml.QosPolicy.project_id == caller.project_id, ml.QosPolicy.shared.is_(True)))

    async def get_qos_policy(self, session: AsyncSession, caller: Caller, policy_id: str) -> dict[str, Any]:
        return (await self.render_policies(session, [await self.qos_policy_row(session, caller, policy_id)]))[0]

    async def _check_default(self, session: AsyncSession, project_id: str, policy_id: str | None) -> None:
        other = (await session.execute(sa.select(ml.QosPolicy.id).where(
            ml.QosPolicy.project_id == project_id, ml.QosPolicy.is_default.is_(True),
            ml.QosPolicy.id != (policy_id or "")))).first()
        if other is not None:
            raise conflict("QoSPolicyDefaultAlreadyExists", f"A default QoS policy exists for project {project_id}.")

    async def create_qos_policy(self, session: AsyncSession, caller: Caller, body: dict[str, Any]) -> str:
        self.require_extension("qos")
        project_id = body["project_id"]
        caller.enforce("create_policy", {"project_id": project_id, "tenant_id": project_id})
        if body.get("is_default"):
            await self._check_default(session, project_id, None)
        policy = ml.QosPolicy(id=new_id(), project_id=project_id, name=body.get("name") or "",
                              description=body.get("description") or "", shared=bool(body.get("shared", False)),
                              is_default=bool(body.get("is_default", False)))
        session.add(policy)
        await session.flush()
        return policy.id

    async def update_qos_policy(self, session: AsyncSession, caller: Caller, policy_id: str, body: dict[str, Any],
                                if_match: str | None = None) -> None:
        policy = await self.qos_policy_row(session, caller, policy_id, "update_policy")
        self.check_revision(policy, if_match)
        if body.get("is_default"):
            await self._check_default(session, policy.project_id, policy.id)
        if body.get("shared") is False and policy.shared:
            user = await self._policy_user(session, policy.id, other_than=policy.project_id)
            if user is not None:
                raise conflict("QosPolicyInUse", f"QoS Policy {policy.id} is used by {user[0]} {user[1]}.")
        for key in ("name", "description", "shared", "is_default"):
            if key in body:
                setattr(policy, key, body[key] if body[key] is not None else "")
        policy.touch()

    async def _policy_user(self, session: AsyncSession, policy_id: str,
                           other_than: str | None = None) -> tuple[str, str] | None:
        """A port or network bound to the policy (of another project than ``other_than``)."""
        port_query = sa.select(ml.PortQos.port_id).where(ml.PortQos.policy_id == policy_id)
        net_query = sa.select(ml.NetworkQos.network_id).where(ml.NetworkQos.policy_id == policy_id)
        if other_than is not None:
            port_query = port_query.join(m.Port, m.Port.id == ml.PortQos.port_id).where(m.Port.project_id != other_than)
            net_query = net_query.join(m.Network, m.Network.id == ml.NetworkQos.network_id).where(
                m.Network.project_id != other_than)
        port = (await session.execute(port_query.limit(1))).scalar()
        if port is not None:
            return "port", port
        network = (await session.execute(net_query.limit(1))).scalar()
        if network is not None:
            return "network", network
        return None

    async def delete_qos_policy(self, session: AsyncSession, caller: Caller, policy_id: str) -> None:
        policy = await self.qos_policy_row(session, caller, policy_id, "delete_policy")
        user = await self._policy_user(session, policy.id)
        if user is not None:
            raise conflict("QosPolicyInUse", f"QoS Policy {policy.id} is used by {user[0]} {user[1]}.")
        await session.execute(sa.delete(ml.QosRule).where(ml.QosRule.policy_id == policy.id))
        await session.delete(policy)
        await session.flush()
        await self.drop_tags(session, "policies", policy.id)

    # ------------------------------------------------------------ rules

    async def _qos_rule_row(self, session: AsyncSession, policy: ml.QosPolicy, kind: str, rule_id: Any) -> ml.QosRule:
        rule = await session.get(ml.QosRule, rule_id) if isinstance(rule_id, str) else None
        if rule is None or rule.policy_id != policy.id or rule.type != kind:
            raise not_found("QosRuleNotFound", f"QoS rule {rule_id} for policy {policy.id} could not be found.")
        return rule

    async def list_qos_rules(self, session: AsyncSession, caller: Caller, policy_id: str,
                             kind: str) -> list[dict[str, Any]]:
        policy = await self.qos_parent(session, caller, policy_id, kind, "get")
        return [r_rule(r) for r in (await self._rules(session, [policy.id]))[policy.id] if r.type == kind]

    async def get_qos_rule(self, session: AsyncSession, caller: Caller, policy_id: str, kind: str,
                           rule_id: str) -> dict[str, Any]:
        policy = await self.qos_parent(session, caller, policy_id, kind, "get")
        return r_rule(await self._qos_rule_row(session, policy, kind, rule_id))

    def _check_rule(self, kind: str, values: dict[str, Any]) -> None:
        if kind == "bandwidth_limit" and values.get("direction") == "ingress":
            self.require_extension("qos-bw-limit-direction")
        if kind == "dscp_marking" and values.get("dscp_mark") not in VALID_DSCP_MARKS:
            raise error(400, "HTTPBadRequest", f"Invalid input for dscp_mark. Reason: '{values.get('dscp_mark')}' is "
                                               f"not in {list(VALID_DSCP_MARKS)}.")

    async def _check_rule_unique(self, session: AsyncSession, policy: ml.QosPolicy, kind: str, direction: str,
                                 rule_id: str | None) -> None:
        clash = (await session.execute(sa.select(ml.QosRule.id).where(
            ml.QosRule.policy_id == policy.id, ml.QosRule.type == kind, ml.QosRule.direction == direction,
            ml.QosRule.id != (rule_id or "")))).scalar()
        if clash is not None:
            what = f" with direction {direction}" if direction else ""
            raise conflict("QoSRulesConflict", f"Rule {kind}{what} conflicts with rule {clash} which already "
                                               f"exists in QoS Policy {policy.id}.")

    async def create_qos_rule(self, session: AsyncSession, caller: Caller, policy_id: str, kind: str,
                              body: dict[str, Any]) -> str:
        policy = await self.qos_parent(session, caller, policy_id, kind, "create")
        self._check_rule(kind, body)
        direction = body.get("direction", "egress") if kind == "bandwidth_limit" else ""
        await self._check_rule_unique(session, policy, kind, direction, None)
        rule = ml.QosRule(id=new_id(), policy_id=policy.id, type=kind, direction=direction)
        if kind == "bandwidth_limit":
            rule.max_kbps = body["max_kbps"]
            rule.max_burst_kbps = body.get("max_burst_kbps", 0)
        else:
            rule.dscp_mark = body["dscp_mark"]
        session.add(rule)
        policy.touch()
        await session.flush()
        await self.reensure_policy_ports(session, policy.id)
        return rule.id

    async def update_qos_rule(self, session: AsyncSession, caller: Caller, policy_id: str, kind: str, rule_id: str,
                              body: dict[str, Any]) -> None:
        policy = await self.qos_parent(session, caller, policy_id, kind, "update")
        rule = await self._qos_rule_row(session, policy, kind, rule_id)
        values = {"direction": rule.direction, "dscp_mark": rule.dscp_mark, **body}
        self._check_rule(kind, values)
        if kind == "bandwidth_limit" and "direction" in body:
            await self._check_rule_unique(session, policy, kind, body["direction"], rule.id)
        for key in ("max_kbps", "max_burst_kbps", "direction", "dscp_mark"):
            if key in body:
                setattr(rule, key, body[key])
        policy.touch()
        await session.flush()
        await self.reensure_policy_ports(session, policy.id)

    async def delete_qos_rule(self, session: AsyncSession, caller: Caller, policy_id: str, kind: str,
                              rule_id: str) -> None:
        policy = await self.qos_parent(session, caller, policy_id, kind, "delete")
        await session.delete(await self._qos_rule_row(session, policy, kind, rule_id))
        policy.touch()
        await session.flush()
        await self.reensure_policy_ports(session, policy.id)

    # ------------------------------------------------------------ bindings

    async def _bind_check(self, session: AsyncSession, value: Any, project_id: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise error(400, "HTTPBadRequest", f"Invalid input for qos_policy_id. Reason: '{value}' is not a valid "
                                               "UUID.")
        policy = await session.get(ml.QosPolicy, value)
        if policy is None or not (policy.shared or policy.project_id == project_id):
            raise not_found("QosPolicyNotFound", f"QoS policy {value} could not be found.")
        return policy.id

    async def set_port_policy(self, session: AsyncSession, port: Any, value: Any, creating: bool = False) -> str | None:
        """Bind the port to the policy ``value`` (None: to none); returns the policy id."""
        policy_id = await self._bind_check(session, value, port.project_id)
        if not creating:
            await session.execute(sa.delete(ml.PortQos).where(ml.PortQos.port_id == port.id))
        if policy_id is not None:
            session.add(ml.PortQos(port_id=port.id, policy_id=policy_id))
        await session.flush()
        return policy_id

    async def set_network_policy(self, session: AsyncSession, network: Any, value: Any, creating: bool) -> None:
        if creating and value is None:
            if not self.has_extension("qos"):
                return
            value = (await session.execute(sa.select(ml.QosPolicy.id).where(
                ml.QosPolicy.project_id == network.project_id, ml.QosPolicy.is_default.is_(True)))).scalar()
        policy_id = await self._bind_check(session, value, network.project_id)
        await session.execute(sa.delete(ml.NetworkQos).where(ml.NetworkQos.network_id == network.id))
        if policy_id is not None:
            session.add(ml.NetworkQos(network_id=network.id, policy_id=policy_id))
        await session.flush()
        if not creating:
            ports = list((await session.execute(sa.select(m.Port.id).where(m.Port.network_id == network.id))).scalars())
            await self.reensure_ports(session, ports)

    async def network_policies(self, session: AsyncSession, network_ids: list[str]) -> dict[str, str | None]:
        found = dict((await session.execute(sa.select(ml.NetworkQos.network_id, ml.NetworkQos.policy_id)
                                            .where(ml.NetworkQos.network_id.in_(network_ids)))).all()) \
            if network_ids else {}
        return {n: found.get(n) for n in network_ids}

    async def reensure_policy_ports(self, session: AsyncSession, policy_id: str) -> None:
        """Every port the policy reaches gets its QoS again on the data plane."""
        ports = set((await session.execute(sa.select(ml.PortQos.port_id)
                                           .where(ml.PortQos.policy_id == policy_id))).scalars())
        ports |= set((await session.execute(
            sa.select(m.Port.id).join(ml.NetworkQos, ml.NetworkQos.network_id == m.Port.network_id)
            .where(ml.NetworkQos.policy_id == policy_id))).scalars())
        await self.reensure_ports(session, sorted(ports))

    @staticmethod
    def rule_type_parameters(rule_type: str) -> list[dict[str, Any]]:
        """qos-rule-type-details: the parameters a rule type takes, and their ranges."""
        if rule_type == "bandwidth_limit":
            return [{"parameter_name": "max_kbps", "parameter_type": "range",
                     "parameter_values": {"start": 0, "end": 2**31 - 1}},
                    {"parameter_name": "max_burst_kbps", "parameter_type": "range",
                     "parameter_values": {"start": 0, "end": 2**31 - 1}},
                    {"parameter_name": "direction", "parameter_type": "choices",
                     "parameter_values": list(DIRECTIONS)}]
        return [{"parameter_name": "dscp_mark", "parameter_type": "choices",
                 "parameter_values": list(VALID_DSCP_MARKS)}]

    def rule_types(self) -> list[str]:
        return ["bandwidth_limit", "dscp_marking"] if self.has_extension("qos") else []
