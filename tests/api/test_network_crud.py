"""The Neutron API through the in-process app, on every database the session runs: version
documents, extensions, networks, subnets, ports (IPAM, binding, status), subnet pools, address
scopes, segments, quotas, tags, standard attributes and If-Match, fields/filters/sort/pages."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.network_helpers import Neutron, World, assert_fault, make_world, next_cidr, uniq


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[World]:
    async with make_world(cloud) as world:
        yield world


# ---------------------------------------------------------------------- discovery


async def test_version_documents_are_public(client) -> None:
    for path in ("/networking", "/networking/"):
        r = await client.get(path)
        assert r.status_code == 200
        (version,) = r.json()["versions"]
        assert version["id"] == "v2.0" and version["status"] == "CURRENT"
        assert version["links"][0]["href"].endswith("/networking/v2.0/")
    r = await client.get("/networking/v2.0/")
    names = {x["name"] for x in r.json()["resources"]}
    assert {"network", "subnet", "port", "subnetpool"} <= names


async def test_extensions_list_what_works(w: World) -> None:
    r = await w["member"].get("/extensions", expect=200)
    aliases = {x["alias"] for x in r.json()["extensions"]}
    assert {"external-net", "provider", "binding", "quotas", "standard-attr-revisions", "revision-if-match",
            "pagination", "sorting", "subnet_allocation", "address-scope", "rbac-policies", "segment",
            "standard-attr-tag", "port-security", "allowed-address-pairs", "extra_dhcp_opt",
            "net-mtu", "filter-validation"} <= aliases
    # nothing mCloud does not do
    assert not aliases & {"dvr", "l3-ha", "agent", "dhcp_agent_scheduler", "metering", "auto-allocated-topology",
                          "multi-provider", "network-ip-availability", "binding-extended"}
    one = (await w["member"].get("/extensions/quotas", expect=200)).json()["extension"]
    assert one["alias"] == "quotas" and one["name"]
    # every extension has Neutron's name and description, not its alias again (Neutron's own
    # extensions named as their alias are the only exceptions)
    by_alias = {x["alias"]: x for x in r.json()["extensions"]}
    named_as_alias = {"security-group", "standard-attr-description"}
    for alias, x in by_alias.items():
        assert x["description"] and x["description"] != alias, x
        assert (x["name"] != alias) or alias in named_as_alias, x
    assert by_alias["trunk-details"]["name"] == "Trunk port details"
    assert by_alias["qos-bw-limit-direction"]["name"] == "Direction for QoS bandwidth limit rule"
    assert_fault(await w["member"].get("/extensions/dvr"), 404)


async def test_unauthenticated_and_unknown(w: World) -> None:
    r = await w["member"].as_(None).get("/networks")
    assert_fault(r, 401)
    assert r.headers["www-authenticate"].startswith("Keystone uri=")
    assert_fault(await w["member"].get("/nothing"), 404)
    assert_fault(await w["member"].request("PATCH", "/networks"), 405)


# ---------------------------------------------------------------------- networks


async def test_network_lifecycle(w: World) -> None:
    n = w["member"]
    net = await n.network(description="d1")
    assert net["status"] == "ACTIVE" and net["admin_state_up"] is True and net["shared"] is False
    assert net["router:external"] is False and net["mtu"] == 1442 and net["port_security_enabled"] is True
    assert net["project_id"] == net["tenant_id"] == n.project_id and net["revision_number"] == 1
    assert net["created_at"].endswith("Z") and net["subnets"] == [] and net["description"] == "d1"
    # provider attributes are the admin's to read
    assert "provider:network_type" not in net
    seen = (await w.admin.get(f"/networks/{net['id']}", expect=200)).json()["network"]
    assert seen["provider:network_type"] == "geneve" and isinstance(seen["provider:segmentation_id"], int)
    up = (await n.put(f"/networks/{net['id']}", {"network": {"name": "renamed", "mtu": 1400}},
                      expect=200)).json()["network"]
    assert up["name"] == "renamed" and up["mtu"] == 1400 and up["revision_number"] == 2
    assert_fault(await n.put(f"/networks/{net['id']}", {"network": {"mtu": 9000}}), 400, "InvalidInput")
    assert_fault(await n.put(f"/networks/{net['id']}", {"network": {"status": "DOWN"}}), 400)
    assert_fault(await n.put(f"/networks/{net['id']}", {"network": {"shared": True}}), 403)
    await n.delete(f"/networks/{net['id']}", expect=204)
    assert_fault(await n.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")


async def test_provider_networks_are_admins_and_unique(w: World) -> None:
    physnet = uniq("phys")
    vlan = await w.admin.network(**{"provider:network_type": "vlan", "provider:physical_network": physnet,
                                    "provider:segmentation_id": 101})
    assert vlan["provider:segmentation_id"] == 101 and vlan["mtu"] == 1500
    r = await w.admin.post("/networks", {"network": {"provider:network_type": "vlan",
                                                     "provider:physical_network": physnet,
                                                     "provider:segmentation_id": 101}})
    assert_fault(r, 409)
    auto = await w.admin.network(**{"provider:network_type": "vlan", "provider:physical_network": physnet})
    assert auto["provider:segmentation_id"] not in (None, 101)
    flat = await w.admin.network(**{"provider:network_type": "flat", "provider:physical_network": physnet})
    assert flat["provider:segmentation_id"] is None
    assert_fault(await w.admin.post("/networks", {"network": {"provider:network_type": "flat",
                                                              "provider:physical_network": physnet}}), 409)
    assert_fault(await w.admin.post("/networks", {"network": {"provider:network_type": "vxlan"}}), 400)
    r = await w["member"].post("/networks", {"network": {"provider:network_type": "flat",
                                                         "provider:physical_network": physnet}})
    assert_fault(r, 403)
    segments = (await w.admin.get("/segments", params={"network_id": vlan["id"]}, expect=200)).json()["segments"]
    assert [(s["network_type"], s["physical_network"], s["segmentation_id"]) for s in segments] == [
        ("vlan", physnet, 101)]


async def test_bulk_create_is_all_or_nothing(w: World) -> None:
    n = w["member"]
    names = [uniq("bulk"), uniq("bulk")]
    r = await n.post("/networks", {"networks": [{"name": names[0]}, {"name": names[1]}]}, expect=201)
    assert [x["name"] for x in r.json()["networks"]] == names
    bad = uniq("bulk")
    r = await n.post("/networks", {"networks": [{"name": bad}, {"name": 5}]})
    assert_fault(r, 400)
    assert await n.ids("networks", name=bad) == []


async def test_revision_number_and_if_match(w: World) -> None:
    n = w["member"]
    net = await n.network()
    r = await n.put(f"/networks/{net['id']}", {"network": {"name": "x"}},
                    headers={"If-Match": f"revision_number={net['revision_number'] + 5}"})
    assert_fault(r, 412, "RevisionNumberConstraintFailed")
    r = await n.put(f"/networks/{net['id']}", {"network": {"name": "x"}},
                    headers={"If-Match": f"revision_number={net['revision_number']}"}, expect=200)
    assert r.json()["network"]["revision_number"] == net["revision_number"] + 1


# ---------------------------------------------------------------------- subnets


async def test_subnet_defaults_and_attributes(w: World) -> None:
    n = w["member"]
    net = await n.network()
    sub = await n.subnet(net["id"], "10.20.0.0/24", dns_nameservers=["8.8.8.8", "8.8.4.4"],
                         host_routes=[{"destination": "10.30.0.0/24", "nexthop": "10.20.0.254"}])
    assert sub["gateway_ip"] == "10.20.0.1" and sub["enable_dhcp"] is True
    assert sub["allocation_pools"] == [{"start": "10.20.0.2", "end": "10.20.0.254"}]
    assert sub["dns_nameservers"] == ["8.8.8.8", "8.8.4.4"]
    shown = (await n.get(f"/networks/{net['id']}", expect=200)).json()["network"]
    assert shown["subnets"] == [sub["id"]] and shown["revision_number"] == net["revision_number"] + 1
    nogw = await n.subnet(net["id"], "10.21.0.0/24", gateway_ip=None, allocation_pools=[
        {"start": "10.21.0.10", "end": "10.21.0.20"}])
    assert nogw["gateway_ip"] is None and nogw["allocation_pools"] == [{"start": "10.21.0.10", "end": "10.21.0.20"}]
    up = (await n.put(f"/subnets/{sub['id']}", {"subnet": {
        "gateway_ip": "10.20.0.254", "dns_nameservers": [], "host_routes": [], "enable_dhcp": False,
        "allocation_pools": [{"start": "10.20.0.2", "end": "10.20.0.200"}]}}, expect=200)).json()["subnet"]
    assert up["gateway_ip"] == "10.20.0.254" and up["enable_dhcp"] is False and up["dns_nameservers"] == []
    v6 = await n.subnet(net["id"], "fd00:1::/64", ip_version=6, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert v6["gateway_ip"] == "fd00:1::1" and v6["ipv6_address_mode"] == "slaac"


async def test_subnet_delete_rules(w: World) -> None:
    n = w["member"]
    net, sub = await n.net_with_subnet()
    v6 = await n.subnet(net["id"], "fd00:2::/64", ip_version=6, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = await n.port(net["id"])
    assert {f["subnet_id"] for f in port["fixed_ips"]} == {sub["id"], v6["id"]}
    slaac = next(f["ip_address"] for f in port["fixed_ips"] if f["subnet_id"] == v6["id"])
    mac = int(port["mac_address"].replace(":", ""), 16)
    assert int(ipaddress.ip_address(slaac)) & 0xFFFFFF == mac & 0xFFFFFF  # EUI-64 of the MAC
    assert_fault(await n.delete(f"/subnets/{sub['id']}"), 409, "SubnetInUse")
    # a SLAAC subnet goes, taking its addresses from the ports
    await n.delete(f"/subnets/{v6['id']}", expect=204)
    after = (await n.get(f"/ports/{port['id']}", expect=200)).json()["port"]
    assert [f["subnet_id"] for f in after["fixed_ips"]] == [sub["id"]]
    assert_fault(await n.delete(f"/networks/{net['id']}"), 409, "NetworkInUse")
    await n.delete(f"/ports/{port['id']}", expect=204)
    await n.delete(f"/networks/{net['id']}", expect=204)
    assert_fault(await n.get(f"/subnets/{sub['id']}"), 404, "SubnetNotFound")


# ---------------------------------------------------------------------- ports


async def test_port_lifecycle_and_ipam(w: World) -> None:
    n = w["member"]
    net, sub = await n.net_with_subnet(cidr="10.40.0.0/29")
    assert sub["allocation_pools"] == [{"start": "10.40.0.2", "end": "10.40.0.6"}]
    ports = [await n.port(net["id"]) for _ in range(5)]
    got = [p["fixed_ips"][0]["ip_address"] for p in ports]
    assert sorted(got) == [f"10.40.0.{i}" for i in range(2, 7)]
    assert len({p["mac_address"] for p in ports}) == 5
    assert all(p["mac_address"].startswith("fa:16:3e:") and p["status"] == "DOWN" for p in ports)
    assert_fault(await n.post("/ports", {"port": {"network_id": net["id"]}}), 409, "IpAddressGenerationFailure")
    # a freed address is given again once the pool wrapped around
    await n.delete(f"/ports/{ports[2]['id']}", expect=204)
    again = await n.port(net["id"])
    assert again["fixed_ips"][0]["ip_address"] == got[2]
    # asked-for addresses, in and out of the pool
    net2, sub2 = await n.net_with_subnet(cidr="10.41.0.0/24", allocation_pools=[
        {"start": "10.41.0.100", "end": "10.41.0.110"}])
    fixed = await n.port(net2["id"], fixed_ips=[{"subnet_id": sub2["id"], "ip_address": "10.41.0.50"}])
    assert fixed["fixed_ips"] == [{"subnet_id": sub2["id"], "ip_address": "10.41.0.50"}]
    r = await n.post("/ports", {"port": {"network_id": net2["id"], "fixed_ips": [{"ip_address": "10.41.0.50"}]}})
    assert_fault(r, 409, "IpAddressAlreadyAllocated")
    up = (await n.put(f"/ports/{fixed['id']}", {"port": {"fixed_ips": [{"subnet_id": sub2["id"]}],
                                                         "name": "p", "admin_state_up": False}},
                      expect=200)).json()["port"]
    assert up["fixed_ips"][0]["ip_address"] == "10.41.0.100" and up["admin_state_up"] is False
    assert up["revision_number"] == fixed["revision_number"] + 1
    # the released address is free again
    await n.port(net2["id"], fixed_ips=[{"ip_address": "10.41.0.50"}])


async def test_port_attributes(w: World) -> None:
    n = w["member"]
    net, _sub = await n.net_with_subnet()
    port = await n.port(net["id"], allowed_address_pairs=[{"ip_address": "10.99.0.0/24"}],
                        extra_dhcp_opts=[{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}],
                        device_owner="compute:nova", device_id="vm-1", dns_name="web-1")
    assert port["allowed_address_pairs"] == [{"ip_address": "10.99.0.0/24", "mac_address": port["mac_address"]}]
    assert port["extra_dhcp_opts"] == [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}]
    assert port["dns_assignment"][0]["hostname"] == "web-1"
    assert "binding:vif_type" not in port  # binding attributes are the admin's (and service's)
    r = await n.put(f"/ports/{port['id']}", {"port": {"port_security_enabled": False}})
    assert_fault(r, 409, "AddressPairAndPortSecurityRequired")
    up = (await n.put(f"/ports/{port['id']}", {"port": {"allowed_address_pairs": [], "port_security_enabled": False,
                                                         "security_groups": []}}, expect=200)).json()["port"]
    assert up["port_security_enabled"] is False and up["allowed_address_pairs"] == []
    assert_fault(await n.put(f"/ports/{port['id']}", {"port": {"binding:host_id": "h1"}}), 403)
    assert_fault(await n.put(f"/ports/{port['id']}", {"port": {"network_id": net["id"]}}), 400)


async def test_binding_and_status_from_the_driver(w: World, cloud) -> None:
    net, _ = await w["member"].net_with_subnet()
    port = await w["member"].port(net["id"])
    admin = w.admin
    shown = (await admin.get(f"/ports/{port['id']}", expect=200)).json()["port"]
    assert shown["binding:vif_type"] == "unbound" and shown["binding:vif_details"] == {}
    bound = (await admin.put(f"/ports/{port['id']}", {"port": {"binding:host_id": "compute-1"}},
                             expect=200)).json()["port"]
    assert bound["binding:host_id"] == "compute-1" and bound["binding:vif_type"] == "ovs"
    assert bound["binding:vif_details"]["port_filter"] is True
    await cloud.network.driver.settle()
    shown = (await admin.get(f"/ports/{port['id']}", expect=200)).json()["port"]
    assert shown["status"] == "ACTIVE"
    assert cloud.network.driver.ports[port["id"]].host_id == "compute-1"
    await admin.put(f"/ports/{port['id']}", {"port": {"binding:host_id": ""}}, expect=200)
    await cloud.network.driver.settle()
    shown = (await admin.get(f"/ports/{port['id']}", expect=200)).json()["port"]
    assert shown["status"] == "DOWN" and shown["binding:vif_type"] == "unbound"
    await w["member"].delete(f"/ports/{port['id']}", expect=204)
    assert port["id"] not in cloud.network.driver.ports
    # bound when created (as Nova creates a guest's port): a normal vnic, bound
    made = await admin.port(net["id"], **{"binding:host_id": "compute-1"})
    assert made["binding:vnic_type"] == "normal" and made["binding:vif_type"] == "ovs"
    assert (await admin.get(f"/ports/{made['id']}", expect=200)).json()["port"]["binding:vif_type"] == "ovs"


# ---------------------------------------------------------------------- lists


async def test_fields_filters_sorting_and_pages(w: World) -> None:
    n = w["third"]
    names = [f"page-{i}" for i in range(7)]
    nets = [await n.network(name=name, description="odd" if i % 2 else "even") for i, name in enumerate(names)]
    r = await n.get("/networks", params={"fields": ["id", "name"], "name": names[:3]}, expect=200)
    got = r.json()["networks"]
    assert {x["name"] for x in got} == set(names[:3]) and all(set(x) == {"id", "name"} for x in got)
    r = await n.get("/networks", params={"description": "odd", "sort_key": "name", "sort_dir": "desc"}, expect=200)
    assert [x["name"] for x in r.json()["networks"]] == ["page-5", "page-3", "page-1"]
    assert_fault(await n.get("/networks", params={"bogus": "1"}), 400)
    assert_fault(await n.get("/networks", params={"sort_key": "bogus"}), 400)
    assert_fault(await n.get("/networks", params={"limit": "x"}), 400)
    # pages of 3 by name, following the next links
    seen, url = [], "/networks?sort_key=name&sort_dir=asc&limit=3&description=odd&description=even"
    while url:
        body = (await n.get(url, expect=200)).json()
        seen += [x["name"] for x in body["networks"]]
        nxt = [link["href"] for link in body.get("networks_links", []) if link["rel"] == "next"]
        url = nxt[0].split("/v2.0", 1)[1] if nxt else None
    assert seen == names
    # going back from the last page
    last = (await n.get("/networks", params={"sort_key": "name", "limit": 2, "marker": nets[4]["id"],
                                             "page_reverse": "True"}, expect=200)).json()
    assert [x["name"] for x in last["networks"]] == ["page-2", "page-3"]
    # tags, as filters too
    await n.put(f"/networks/{nets[0]['id']}/tags", {"tags": ["red", "blue"]}, expect=200)
    await n.put(f"/networks/{nets[1]['id']}/tags/red", expect=201)
    assert set(await n.ids("networks", tags="red")) == {nets[0]["id"], nets[1]["id"]}
    assert await n.ids("networks", tags="red,blue") == [nets[0]["id"]]
    assert nets[0]["id"] not in await n.ids("networks", **{"not-tags-any": "blue"})
    await n.get(f"/networks/{nets[1]['id']}/tags/red", expect=204)
    assert_fault(await n.get(f"/networks/{nets[1]['id']}/tags/blue"), 404)
    await n.delete(f"/networks/{nets[0]['id']}/tags", expect=204)
    assert (await n.get(f"/networks/{nets[0]['id']}/tags", expect=200)).json()["tags"] == []


async def test_port_filters(w: World) -> None:
    n = w["member"]
    net, sub = await n.net_with_subnet()
    a = await n.port(net["id"], device_id="dev-a", device_owner="compute:nova")
    b = await n.port(net["id"], device_id="dev-b")
    ip = a["fixed_ips"][0]["ip_address"]
    assert await n.ids("ports", fixed_ips=f"ip_address={ip}") == [a["id"]]
    assert set(await n.ids("ports", fixed_ips=f"subnet_id={sub['id']}")) == {a["id"], b["id"]}
    assert await n.ids("ports", device_id="dev-b") == [b["id"]]
    assert await n.ids("ports", network_id=net["id"], device_owner="compute:nova") == [a["id"]]
    assert await n.ids("ports", mac_address=b["mac_address"].upper()) == [b["id"]]
    prefix = ip.rsplit(".", 1)[0] + "."
    assert set(await n.ids("ports", fixed_ips=f"ip_address_substr={prefix}")) >= {a["id"], b["id"]}


# ---------------------------------------------------------------------- pools, scopes, RBAC, quotas


async def test_subnet_pools_and_address_scopes(w: World) -> None:
    n = w["member"]
    scope = (await n.post("/address-scopes", {"address_scope": {"name": uniq("scope"), "ip_version": 4}},
                          expect=201)).json()["address_scope"]
    pool = (await n.post("/subnetpools", {"subnetpool": {"name": uniq("pool"), "prefixes": ["10.200.0.0/16"],
                                                         "default_prefixlen": 26, "address_scope_id": scope["id"]}},
                         expect=201)).json()["subnetpool"]
    assert pool["min_prefixlen"] == 8 and pool["max_prefixlen"] == 32 and pool["ip_version"] == 4
    net = await n.network()
    a = await n.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"]}},
                     expect=201)
    b = await n.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"],
                                             "prefixlen": 24}}, expect=201)
    cidrs = [a.json()["subnet"]["cidr"], b.json()["subnet"]["cidr"]]
    nets = [ipaddress.ip_network(c) for c in cidrs]
    assert cidrs[0] == "10.200.0.0/26" and nets[1].prefixlen == 24 and not nets[0].overlaps(nets[1])
    shown = (await n.get(f"/networks/{net['id']}", expect=200)).json()["network"]
    assert shown["ipv4_address_scope"] == scope["id"]
    r = await n.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"],
                                             "cidr": "10.201.0.0/24"}})
    assert_fault(r, 400)
    assert_fault(await n.delete(f"/subnetpools/{pool['id']}"), 409)
    assert_fault(await n.delete(f"/address-scopes/{scope['id']}"), 409, "AddressScopeInUse")
    grown = (await n.put(f"/subnetpools/{pool['id']}/add_prefixes", {"prefixes": ["10.210.0.0/16"]},
                         expect=200)).json()
    assert grown["prefixes"] == ["10.200.0.0/16", "10.210.0.0/16"]
    renamed = (await n.put(f"/subnetpools/{pool['id']}", {"subnetpool": {"name": "renamed"}},
                           expect=200)).json()["subnetpool"]
    assert renamed["name"] == "renamed" and renamed["revision_number"] == pool["revision_number"] + 2
    assert_fault(await n.post("/subnetpools", {"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"],
                                                              "shared": True}}), 403)


async def test_quotas(w: World) -> None:
    project = w.projects["c"]
    limits = (await w.admin.get(f"/quotas/{project}", expect=200)).json()["quota"]
    assert limits["network"] == 100 and limits["port"] == 500 and limits["subnet"] == 100
    assert limits["router"] == 10 and limits["security_group"] == 10
    assert (await w.admin.get(f"/quotas/{project}/default", expect=200)).json()["quota"]["port"] == 500
    # its own networks (the list also shows other projects' shared and external ones)
    used_before = len(await w["third"].ids("networks", project_id=project))
    await w.admin.put(f"/quotas/{project}", {"quota": {"network": used_before + 1}}, expect=200)
    await w["third"].network()
    assert_fault(await w["third"].post("/networks", {"network": {}}), 409, "OverQuota")
    details = (await w["third"].get(f"/quotas/{project}/details.json", expect=200)).json()["quota"]
    assert details["network"] == {"limit": used_before + 1, "used": used_before + 1, "reserved": 0}
    assert_fault(await w["third"].put(f"/quotas/{project}", {"quota": {"network": 50}}), 403)
    assert_fault(await w.admin.put(f"/quotas/{project}", {"quota": {"bogus": 1}}), 400)
    assert_fault(await w.admin.put(f"/quotas/{project}", {"quota": {"network": -2}}), 400)
    listed = (await w.admin.get("/quotas", expect=200)).json()["quotas"]
    assert any(q["project_id"] == project for q in listed)
    await w.admin.delete(f"/quotas/{project}", expect=204)
    await w["third"].network()


async def test_availability_zones(w: World) -> None:
    zones = (await w["member"].get("/availability_zones", expect=200)).json()["availability_zones"]
    assert {"name": "nova", "resource": "network", "state": "available"} in zones
    net = await w["member"].network(availability_zone_hints=["nova"])
    assert net["availability_zone_hints"] == ["nova"]
    assert_fault(await w["member"].post("/networks", {"network": {"availability_zone_hints": ["mars"]}}), 404)


async def test_data_plane_gets_views(w: World, cloud) -> None:
    driver = cloud.network.driver
    net, sub = await w["member"].net_with_subnet()
    port = await w["member"].port(net["id"])
    assert driver.networks[net["id"]].mtu == 1442 and driver.networks[net["id"]].network_type == "geneve"
    assert driver.subnets[sub["id"]].cidr == sub["cidr"]
    view = driver.ports[port["id"]]
    assert view.mac_address == port["mac_address"] and view.fixed_ips[0].ip_address == port["fixed_ips"][0][
        "ip_address"]
    # a failed driver call leaves the commit standing; sync heals the data plane
    driver.fail = RuntimeError("data plane away")
    try:
        other = await w["member"].port(net["id"])
    finally:
        driver.fail = None
    assert other["id"] not in driver.ports
    await cloud.network.sync()
    assert other["id"] in driver.ports


async def test_reader_reads_but_does_not_write(w: World) -> None:
    net = await w["member"].network()
    reader: Neutron = w["reader"]
    assert (await reader.get(f"/networks/{net['id']}", expect=200)).json()["network"]["id"] == net["id"]
    assert_fault(await reader.post("/networks", {"network": {"name": "nope"}}), 403)
    assert_fault(await reader.put(f"/networks/{net['id']}", {"network": {"name": "nope"}}), 403)
    assert_fault(await reader.delete(f"/networks/{net['id']}"), 403)
    assert next_cidr() != next_cidr()


async def test_service_providers_and_agents(w: World) -> None:
    providers = (await w["reader"].get("/service-providers", expect=200)).json()["service_providers"]
    assert providers == [{"service_type": "L3_ROUTER_NAT", "name": "fake", "default": True}]
    assert (await w["member"].get("/agents", expect=200)).json() == {"agents": []}
