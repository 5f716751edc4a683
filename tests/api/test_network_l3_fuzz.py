"""Random bodies and query strings against every L3 route (routers and their actions, floating
IPs and port forwardings, security groups and rules, QoS policies and rules, trunks): every
answer is a 2xx or a 4xx in Neutron's ``{"NeutronError": ...}`` form, never a 5xx."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from tests.api.network_l3_helpers import L3World, neutron_error, world_fixture

KEYS = ["name", "description", "admin_state_up", "external_gateway_info", "network_id", "enable_snat",
        "external_fixed_ips", "subnet_id", "ip_address", "routes", "destination", "nexthop", "port_id",
        "floating_network_id", "floating_ip_address", "fixed_ip_address", "protocol", "internal_ip_address",
        "internal_port", "external_port", "internal_port_id", "security_group_id", "direction", "ethertype",
        "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id", "stateful", "shared",
        "is_default", "max_kbps", "max_burst_kbps", "dscp_mark", "sub_ports", "segmentation_type",
        "segmentation_id", "project_id", "tenant_id", "tags", "id", "status"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(),
                    st.text(max_size=12), st.sampled_from(["tcp", "icmp", "IPv6", "ingress", "egress", "vlan",
                                                           "10.0.0.1", "10.0.0.0/24", "::/0", "0.0.0.0/0", "any",
                                                           "1", "65535", "256", "\x00", str(uuid.uuid4())]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=10)
objects = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
RESOURCES = ["router", "floatingip", "port_forwarding", "security_group", "security_group_rule", "policy",
             "bandwidth_limit_rule", "dscp_marking_rule", "trunk", "routers", "security_group_rules"]
bodies = st.one_of(values, objects, st.dictionaries(st.sampled_from(RESOURCES), st.one_of(objects, values),
                                                   min_size=1, max_size=2))

w = world_fixture()


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    if r.status_code >= 400:
        neutron_error(r, r.status_code)


@pytest.fixture(scope="module")
async def t(w: L3World) -> dict[str, str]:
    """A router (gateway, interface), port, floating IP, group, QoS policy and trunk to aim at."""
    a = w.alice.neutron
    router = await a.router(name="fuzz", external_gateway_info={"network_id": w.public["id"]})
    await a.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": w.alice.subnet["id"]}, expect=200)
    port = await a.port(w.alice.network["id"])
    fip = (await a.post("/floatingips", {"floatingip": {"floating_network_id": w.public["id"]}},
                        expect=201)).json()["floatingip"]
    group = (await a.post("/security-groups", {"security_group": {"name": "fuzz"}}, expect=201)).json()[
        "security_group"]
    policy = (await w.admin.post("/qos/policies", {"policy": {"name": "fuzz", "project_id": w.alice.id}},
                                 expect=201)).json()["policy"]
    trunk = (await a.post("/trunks", {"trunk": {"port_id": port["id"]}}, expect=201)).json()["trunk"]
    return {"router": router["id"], "fip": fip["id"], "group": group["id"], "policy": policy["id"],
            "trunk": trunk["id"], "port": port["id"]}


async def test_fuzz_writes_never_5xx(w: L3World, t: dict[str, str]) -> None:
    paths = [("POST", "/routers"), ("PUT", f"/routers/{t['router']}"),
             ("PUT", f"/routers/{t['router']}/add_router_interface"),
             ("PUT", f"/routers/{t['router']}/remove_router_interface"),
             ("PUT", f"/routers/{t['router']}/add_extraroutes"), ("PUT", f"/routers/{t['router']}/remove_extraroutes"),
             ("POST", "/floatingips"), ("PUT", f"/floatingips/{t['fip']}"),
             ("POST", f"/floatingips/{t['fip']}/port_forwardings"),
             ("POST", "/security-groups"), ("PUT", f"/security-groups/{t['group']}"), ("POST", "/security-group-rules"),
             ("POST", "/qos/policies"), ("PUT", f"/qos/policies/{t['policy']}"),
             ("POST", f"/qos/policies/{t['policy']}/bandwidth_limit_rules"),
             ("POST", f"/qos/policies/{t['policy']}/dscp_marking_rules"),
             ("POST", "/trunks"), ("PUT", f"/trunks/{t['trunk']}"), ("PUT", f"/trunks/{t['trunk']}/add_subports"),
             ("PUT", f"/trunks/{t['trunk']}/remove_subports")]
    seen: list[tuple[tuple[str, str], str, bool]] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(paths), bodies, st.booleans())
    def run(path: tuple[str, str], body: Any, as_admin: bool) -> None:
        seen.append((path, json.dumps(body, allow_nan=True), as_admin))

    run()
    for (method, path), body, as_admin in seen:
        who = w.admin if as_admin else w.alice.neutron
        check(await who.request(method, path, content=body.encode(), headers={"content-type": "application/json"}))


async def test_fuzz_near_valid_bodies_never_5xx(w: L3World, t: dict[str, str]) -> None:
    """Valid bodies with some attributes swapped for random values: they get past the shape checks
    to the service's own."""
    a = w.alice
    bases = [
        ("POST", "/routers", "router", {"name": "r", "external_gateway_info": {"network_id": w.public["id"]}}),
        ("PUT", f"/routers/{t['router']}", "router", {"routes": [], "external_gateway_info": {
            "network_id": w.public["id"], "external_fixed_ips": [{"subnet_id": w.public_subnet["id"]}]}}),
        ("PUT", f"/routers/{t['router']}/add_router_interface", None, {"subnet_id": a.subnet["id"]}),
        ("PUT", f"/routers/{t['router']}/add_extraroutes", "router", {"routes": [
            {"destination": "10.200.0.0/16", "nexthop": a.subnet["gateway_ip"]}]}),
        ("POST", "/floatingips", "floatingip", {"floating_network_id": w.public["id"], "port_id": t["port"]}),
        ("PUT", f"/floatingips/{t['fip']}", "floatingip", {"port_id": t["port"], "fixed_ip_address": "10.0.0.5"}),
        ("POST", f"/floatingips/{t['fip']}/port_forwardings", "port_forwarding", {
            "protocol": "tcp", "internal_port": 22, "external_port": 2022, "internal_port_id": t["port"],
            "internal_ip_address": "10.0.0.3"}),
        ("POST", "/security-group-rules", "security_group_rule", {
            "security_group_id": t["group"], "direction": "ingress", "protocol": "tcp", "port_range_min": 1,
            "port_range_max": 2, "ethertype": "IPv4", "remote_ip_prefix": "10.0.0.0/8"}),
        ("POST", f"/qos/policies/{t['policy']}/bandwidth_limit_rules", "bandwidth_limit_rule", {
            "max_kbps": 1, "max_burst_kbps": 1, "direction": "ingress"}),
        ("POST", "/trunks", "trunk", {"port_id": t["port"], "sub_ports": [
            {"port_id": t["port"], "segmentation_type": "vlan", "segmentation_id": 7}]}),
        ("PUT", f"/trunks/{t['trunk']}/add_subports", None, {"sub_ports": [
            {"port_id": t["port"], "segmentation_type": "vlan", "segmentation_id": 7}]}),
    ]
    seen: list[tuple[int, str, str]] = []

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(bases) - 1), st.data())
    def run(i: int, data: Any) -> None:
        method, path, resource, base = bases[i]
        body = dict(base)
        for key in data.draw(st.lists(st.sampled_from(sorted(base)), max_size=3, unique=True)):
            body[key] = data.draw(values)
        if data.draw(st.booleans()):
            body[data.draw(st.sampled_from(KEYS))] = data.draw(values)
        wrapped = {resource: body} if resource else body
        seen.append((i, json.dumps(wrapped, allow_nan=True), method))

    run()
    for i, body, method in seen:
        check(await w.alice.neutron.request(method, bases[i][1], content=body.encode(),
                                            headers={"content-type": "application/json"}))


async def test_fuzz_queries_never_5xx(w: L3World) -> None:
    keys = ["fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse", "name", "id", "project_id",
            "status", "protocol", "ethertype", "direction", "port_range_min", "remote_ip_prefix", "shared",
            "admin_state_up", "tags", "not-tags-any", "revision_number", "floating_ip_address", "router_id",
            "belongs_to_default_sg", "stateful", "is_default", "external_port", "enable_snat"]
    seen: list[Any] = []

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["/routers", "/floatingips", "/security-groups", "/security-group-rules",
                            "/qos/policies", "/trunks", "/qos/rule-types"]),
           st.lists(st.tuples(st.sampled_from(keys), st.one_of(st.text(max_size=8), st.sampled_from(
               ["asc", "desc", "name", "id", "1", "-1", "True", "tcp", "10.0.0.0/8", "x:y"]))), max_size=4))
    def run(path: str, params: list[tuple[str, str]]) -> None:
        seen.append((path, params))

    run()
    for path, params in seen:
        check(await w.alice.neutron.get(path, params=params))
