"""A port's body is the same whichever way it is read: the answer to its create (made from what
the create kept, not read back), GET /ports/{id}, and a list, whether its page is small (related
facts read by bound ids) or big (read through the page's own query); the data plane is handed
the same facts. And the cost of the common requests stays what it is: statements per port
create, per page of a list."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event

from mcloud.network import service as network_service
from tests.api.network_l3_helpers import L3World, l3_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud: Any) -> AsyncIterator[L3World]:
    async for made in l3_world(cloud):
        yield made


@contextlib.contextmanager
def statements(cloud: Any) -> Iterator[list[str]]:
    """The SQL statements the cloud's engine runs inside the block."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = cloud.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ports(w: L3World) -> list[dict[str, Any]]:
    """Alice's ports of every kind on a network with an IPv4 and a SLAAC subnet and a QoS policy:
    plain, tagged, with given addresses, groups, its own QoS policy, no port security, made in
    bulk, and a trunk's parent and subport."""
    a, admin = w.alice.neutron, w.admin
    net = await a.network()
    v4 = await a.subnet(net["id"])
    await a.subnet(net["id"], cidr="fd00:%x::/64" % (hash(net["id"]) & 0xFFFF), ip_version=6,
                   ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    gold = (await admin.post("/qos/policies", {"policy": {"name": "gold", "project_id": w.alice.id}},
                             expect=201)).json()["policy"]
    await admin.post(f"/qos/policies/{gold['id']}/bandwidth_limit_rules",
                     {"bandwidth_limit_rule": {"max_kbps": 1000}}, expect=201)
    silver = (await admin.post("/qos/policies", {"policy": {"name": "silver", "project_id": w.alice.id}},
                               expect=201)).json()["policy"]
    await admin.post(f"/qos/policies/{silver['id']}/dscp_marking_rules",
                     {"dscp_marking_rule": {"dscp_mark": 26}}, expect=201)
    await a.put(f"/networks/{net['id']}", {"network": {"qos_policy_id": gold["id"]}}, expect=200)
    group = (await a.post("/security-groups", {"security_group": {"name": "web"}}, expect=201)).json()["security_group"]
    default = (await a.get("/security-groups", params={"name": "default"})).json()["security_groups"][0]
    made = [
        await a.port(net["id"]),
        await a.port(net["id"], name="tagged", tags=["b", "a"], description="d"),
        await a.port(net["id"], fixed_ips=[{"subnet_id": v4["id"], "ip_address": v4["cidr"][:-4] + "77"}]),
        await a.port(net["id"], security_groups=[group["id"], default["id"]]),
        await a.port(net["id"], qos_policy_id=silver["id"], extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"}]),
        await a.port(net["id"], port_security_enabled=False, security_groups=[]),
        await a.port(net["id"], allowed_address_pairs=[{"ip_address": "10.250.0.0/24"}], dns_name="web-1"),
    ]
    made += (await a.post("/ports", {"ports": [{"network_id": net["id"], "name": f"bulk{i}"} for i in range(3)]},
                          expect=201)).json()["ports"]
    parent, sub = await a.port(net["id"], name="parent"), await a.port(net["id"], name="sub")
    await a.post("/trunks", {"trunk": {"port_id": parent["id"], "sub_ports": [
        {"port_id": sub["id"], "segmentation_type": "vlan", "segmentation_id": 42}]}}, expect=201)
    return made + [parent, sub]


def without_volatile(port: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in port.items() if k not in ("updated_at", "revision_number", "status")}


async def test_create_answers_what_show_says(w: L3World, ports: list[dict[str, Any]], cloud: Any) -> None:
    a = w.alice.neutron
    for made in ports[:-2]:  # the trunk's ports changed since (device owner, trunk_details)
        shown = (await a.get(f"/ports/{made['id']}", expect=200)).json()["port"]
        assert made == shown
    plain, tagged, given, grouped, own_qos, unsecured, paired = ports[:7]
    assert len(plain["fixed_ips"]) == 2 and ":" in plain["fixed_ips"][1]["ip_address"]  # IPv4 first, then SLAAC
    assert plain["qos_policy_id"] is None and plain["qos_network_policy_id"] is not None
    assert tagged["tags"] == ["a", "b"]
    assert given["fixed_ips"][0]["ip_address"].endswith(".77")
    assert len(grouped["security_groups"]) == 2 and grouped["security_groups"] == sorted(grouped["security_groups"])
    assert own_qos["qos_policy_id"] not in (None, own_qos["qos_network_policy_id"])
    assert unsecured["security_groups"] == [] and not unsecured["port_security_enabled"]
    assert paired["dns_assignment"][0]["hostname"] == "web-1"
    # the data plane was handed the same facts (the fake driver keeps the views)
    views = cloud.network.driver.ports
    assert views[plain["id"]].security_group_ids == tuple(plain["security_groups"])
    assert views[plain["id"]].qos is not None and views[plain["id"]].qos.egress_max_kbps == 1000
    assert views[own_qos["id"]].qos is not None and views[own_qos["id"]].qos.dscp_mark == 26
    assert views[grouped["id"]].security_group_ids == tuple(grouped["security_groups"])
    assert [f.ip_address for f in views[given["id"]].fixed_ips] == [f["ip_address"] for f in given["fixed_ips"]]


@pytest.mark.parametrize("inline", [500, 1])
async def test_lists_show_ports_as_show_does(w: L3World, ports: list[dict[str, Any]], inline: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Small pages read related facts by bound ids; with ``INLINE_IDS`` at 1 every page is big
    and reads them through its own query (as a list of thousands of ports does)."""
    monkeypatch.setattr(network_service, "INLINE_IDS", inline)
    a = w.alice.neutron
    net = ports[0]["network_id"]
    shown = {p["id"]: (await a.get(f"/ports/{p['id']}", expect=200)).json()["port"] for p in ports}
    assert "trunk_details" in shown[ports[-2]["id"]] and shown[ports[-2]["id"]]["trunk_details"]["sub_ports"]
    listed = (await a.get("/ports", params={"network_id": net}, expect=200)).json()["ports"]
    assert {p["id"]: p for p in listed} == shown
    # pages of 4 after markers, forwards, by id and by name; each page as show has it
    for sort in ({}, {"sort_key": "name", "sort_dir": "desc"}):
        seen: list[str] = []
        marker = None
        while True:
            params = {"network_id": net, "limit": 4, **sort, **({"marker": marker} if marker else {})}
            page = (await a.get("/ports", params=params, expect=200)).json()
            assert all(p == shown[p["id"]] for p in page["ports"])
            seen += [p["id"] for p in page["ports"]]
            nxt = [x for x in page.get("ports_links", []) if x["rel"] == "next"]
            if not nxt:
                break
            marker = page["ports"][-1]["id"]
        assert sorted(seen) == sorted(shown) and len(seen) == len(shown)
    # networks and subnets take the same paths (their subnets, tags, QoS policy)
    for collection, resource in (("networks", "network"), ("subnets", "subnet")):
        listed = (await a.get(f"/{collection}", params={"project_id": w.alice.id}, expect=200)).json()[collection]
        assert len(listed) >= 2
        for item in listed:
            assert item == (await a.get(f"/{collection}/{item['id']}", expect=200)).json()[resource]
    # a filter on an L3 attribute and the admin's view agree too
    own = ports[4]
    assert [p["id"] for p in (await a.get("/ports", params={"qos_policy_id": own["qos_policy_id"]})).json()["ports"]] \
        == [own["id"]]
    admin_view = (await w.admin.get("/ports", params={"network_id": net, "fields": ["id", "security_groups"]},
                                    expect=200)).json()["ports"]
    assert {p["id"]: p["security_groups"] for p in admin_view} == {i: p["security_groups"] for i, p in shown.items()}


async def test_a_port_create_and_a_page_cost_few_statements(w: L3World, cloud: Any) -> None:
    """The statements (BEGIN included on SQLite) of the common requests, as a guard against a new
    read per port or per row slipping in: a port create reads the network with its subnets, and
    the quota, writes the port, reads the next free address, writes the address and the subnet's
    cursor, reads the project's default group and the network's QoS policy in one, and writes the
    port's group (PostgreSQL adds savepoints and the subnet's row lock); a page of a list
    reads its rows, their addresses and tags in one, and their L3 extras (groups, QoS, trunks) in one.
    The MAC's check is the port's INSERT itself (it inserts nothing when the MAC is taken)."""
    a = w.alice.neutron
    net = w.alice.network["id"]
    await a.port(net)  # the project's default group exists
    with statements(cloud) as seen:
        await a.port(net)
    # PostgreSQL: the port and its address in savepoints, the subnet's row locked; no BEGIN counted
    assert len(seen) <= (9 if cloud.db.is_sqlite else 13), seen
    for _ in range(3):
        await a.port(net)
    with statements(cloud) as seen:
        page = (await a.get("/ports", params={"network_id": net, "limit": 3}, expect=200)).json()["ports"]
    assert len(page) == 3
    assert len(seen) <= (4 if cloud.db.is_sqlite else 3), seen
