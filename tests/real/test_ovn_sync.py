"""The ovn driver's reconciler on a data plane of its own (sync deletes every mCloud row the
state lacks, so it must not share the session's Northbound database): after drift behind the
driver's back, ``sync`` converges the database exactly and leaves other owners' rows alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcloud.network.drivers import ovn as ovn_driver
from mcloud.network.drivers.base import DesiredState, FloatingIPView, RouterView
from tests.harness import missing
from tests.ovn import OvnHarness, ovn_missing
from tests.real import ovn_views as v

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
async def own() -> AsyncIterator[tuple[OvnHarness, ovn_driver.OvnDriver]]:
    if (what := ovn_missing()) is not None:
        missing(what)
    with OvnHarness() as harness:
        driver = ovn_driver.create(harness.driver_options(), harness.root)

        async def status(port_id: str, up: bool) -> None:
            pass

        await driver.start(status)
        try:
            yield harness, driver
        finally:
            await driver.close()


def pg(group_id: str) -> str:
    return "pg_" + group_id.replace("-", "_")


async def test_sync_converges_the_northbound_database(own: tuple[OvnHarness, ovn_driver.OvnDriver]) -> None:
    ovn, driver = own
    sg = v.open_group()
    ext = v.network("public", network_type="flat", physical_network="public", external=True, mtu=1500)
    ext_sub = v.subnet(ext, "172.24.8.0/24", "172.24.8.1", enable_dhcp=False)
    net = v.network()
    sub = v.subnet(net, "10.60.0.0/24", "10.60.0.1")
    p = v.port(net, sub, "10.60.0.5", (sg.id,), qos=v.QosRules(ingress_max_kbps=2000))
    router_id = v.new_id()
    gw = v.router_port(ext, ext_sub, "172.24.8.10", router_id, "network:router_gateway")
    iface = v.router_port(net, sub, "10.60.0.1", router_id)
    router = RouterView(id=router_id, project_id=v.PROJECT, name="r", admin_state_up=True, gateway_port=gw,
                        enable_snat=True, interfaces=(iface,))
    fip = FloatingIPView(id=v.new_id(), project_id=v.PROJECT, floating_ip_address="172.24.8.50",
                         floating_network_id=ext.id, router_id=router_id, port_id=p.id, fixed_ip_address="10.60.0.5")
    state = DesiredState(networks=(ext, net), subnets=(ext_sub, sub), ports=(p, gw, iface), security_groups=(sg,),
                         routers=(router,), floating_ips=(fip,))

    # from an empty database, sync makes everything; again, it changes nothing
    first = await driver.sync(state)
    assert first.created > 10 and first.updated == 0 and first.deleted == 0
    owned = await driver.owned_rows()
    assert first.created == len(owned)
    assert {"ls:" + net.id, "lsp:" + p.id, "lr:" + router_id, "lrp:" + gw.id, "gwc:" + router_id,
            f"snat:{router_id}:10.60.0.0/24", "nat:" + fip.id, "pg:" + sg.id, "pg:drop", "dhcp:" + sub.id,
            "localnet:" + ext.id, f"qos:{p.id}:ingress"} <= set(owned)
    assert (await driver.sync(state)).__dict__ == {"created": 0, "updated": 0, "deleted": 0}

    # drift behind the driver's back
    ovn.nb("lsp-del", p.id)                                             # a row deleted
    ovn.nb("set", "Logical_Switch", f"neutron-{net.id}",                # a column changed
           "external_ids:neutron\\:network_name=tampered")
    ovn.nb("lr-nat-del", f"neutron-{router_id}", "dnat_and_snat", "172.24.8.50")  # the floating IP's NAT gone
    ovn.nb("--", "--id=@ls", "create", "Logical_Switch", "name=stray",  # a stray row tagged as mCloud's
           "external_ids:neutron\\:mcloud_key=ls:stray", "external_ids:neutron\\:mcloud_owner=network:stray")
    ovn.nb("ls-add", "someone-elses-switch")                            # someone else's rows
    ovn.nb("acl-add", f"neutron-{net.id}", "to-lport", "900", "ip4", "allow")
    ovn.nb("lb-add", "their-lb", "172.24.8.99:80", "10.60.0.5:80")
    ovn.nb("lr-lb-add", f"neutron-{router_id}", "their-lb")

    report = await driver.sync(state)
    # made: the port's row and the NAT row; fixed: the switch (its name tag) and the group that
    # lost the port; removed: the stray switch
    assert (report.created, report.deleted) == (2, 1), report
    assert report.updated >= 1
    assert ovn.nb_find("Logical_Switch_Port", f"name={p.id}")
    assert ovn.nb_find("NAT", "external_ip=172.24.8.50", "type=dnat_and_snat")
    assert ovn.nb("get", "Logical_Switch", f"neutron-{net.id}", "external_ids:neutron\\:network_name").strip() \
        .strip('"') == net.name
    assert not ovn.nb_find("Logical_Switch", "name=stray")
    assert ovn.nb_find("Logical_Switch", "name=someone-elses-switch")
    assert len(ovn.nb("--bare", "--columns=acls", "find", "Logical_Switch", f"name=neutron-{net.id}").split()) == 1
    assert len(ovn.nb("--bare", "--columns=load_balancer", "find", "Logical_Router",
                      f"name=neutron-{router_id}").split()) == 1
    members = ovn.nb("--bare", "--columns=ports", "find", "Port_Group", f"name={pg(sg.id)}").split()
    assert len(members) == 1  # the port is back in its group
    assert (await driver.sync(state)).__dict__ == {"created": 0, "updated": 0, "deleted": 0}

    # what the state no longer has goes, and only that
    smaller = DesiredState(networks=(ext, net), subnets=(ext_sub, sub), ports=(gw, iface), security_groups=(sg,),
                           routers=(router,))
    report = await driver.sync(smaller)
    assert report.created == 0
    assert report.deleted == 3  # the port, its QoS row, the floating IP's NAT
    assert not ovn.nb_find("Logical_Switch_Port", f"name={p.id}")
    assert not ovn.nb_find("NAT", "type=dnat_and_snat")
    assert ovn.nb_find("Logical_Switch", "name=someone-elses-switch")
    ovn.nb("ls-del", "someone-elses-switch")
    ovn.nb("lb-del", "their-lb")
