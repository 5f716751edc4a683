"""Many chassis on one OVN, the parts that need no daemons: a bound port is pinned to its host's
chassis as Neutron's OVN driver pins it (``requested-chassis``), and the options of an extra
chassis and of the controller's tunnel endpoint are checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcloud.network.chassis import ChassisOptions, veth_name
from mcloud.network.dataplane import OvnOptions
from mcloud.network.drivers.base import FixedIP, PortView, SubnetView
from mcloud.network.drivers.ovn_model import Model


def _lsp_options(**kw: object) -> dict[str, str]:
    model = Model("controller")
    model.subnet_specs(SubnetView(id="s1", network_id="n1", ip_version=4, cidr="10.0.0.0/24", gateway_ip="10.0.0.1",
                                  enable_dhcp=True, mtu=1442))
    fields: dict = dict(id="p1", network_id="n1", project_id="p", name="", mac_address="fa:16:3e:00:00:01",
                        admin_state_up=True, fixed_ips=(FixedIP("s1", "10.0.0.5"),), device_owner="compute:nova",
                        device_id="vm", port_security_enabled=True)
    fields.update(kw)
    [lsp] = [s for s in model.port_specs(PortView(**fields)) if s.key == "lsp:p1"]
    return lsp.columns["options"]


def test_a_port_bound_to_a_host_is_requested_on_that_hosts_chassis() -> None:
    assert "requested-chassis" not in _lsp_options()  # unbound: whichever chassis has it plugged
    assert _lsp_options(host_id="compute-2")["requested-chassis"] == "compute-2"
    assert "activation-strategy" not in _lsp_options(host_id="compute-2")


def test_a_migrating_port_is_requested_on_both_hosts_and_activated_by_rarp() -> None:
    opts = _lsp_options(host_id="compute-1", profile={"migrating_to": "compute-2"})
    assert opts["requested-chassis"] == "compute-1,compute-2"
    assert opts["activation-strategy"] == "rarp"
    # migrating to where it already is: nothing more
    assert _lsp_options(host_id="compute-2", profile={"migrating_to": "compute-2"})["requested-chassis"] == "compute-2"


def test_router_ports_are_never_pinned() -> None:
    opts = _lsp_options(host_id="compute-2", device_owner="network:router_interface", port_security_enabled=False)
    assert "requested-chassis" not in opts


def test_tunnel_cidr_gives_the_encap_address(tmp_path: Path) -> None:
    opts = OvnOptions.parse({"tunnel_cidr": "10.255.0.1/24"}, tmp_path)
    assert opts.encap_ip == "10.255.0.1"
    assert OvnOptions.parse({}, tmp_path).encap_ip == "127.0.0.1"
    for bad in ("10.255.0.1", "nonsense", "fd00::1/64"):
        with pytest.raises(ValueError, match="tunnel_cidr"):
            OvnOptions.parse({"tunnel_cidr": bad}, tmp_path)


def test_chassis_options(tmp_path: Path) -> None:
    base = {"name": "compute-2", "sb_connection": "unix:/x/sb.sock", "tunnel_cidr": "10.255.0.2/24"}
    opts = ChassisOptions.parse(base, tmp_path)
    assert opts.directory == str(tmp_path / "chassis")
    ovn = opts.ovn_options(tmp_path)
    assert (ovn.chassis, ovn.encap_ip, ovn.mappings) == ("compute-2", "10.255.0.2", {})
    assert ovn.namespace.startswith("mcloud-")
    for missing in ("sb_connection", "tunnel_cidr"):
        with pytest.raises(ValueError, match=missing):
            ChassisOptions.parse({k: v for k, v in base.items() if k != missing}, tmp_path)
    with pytest.raises(ValueError, match="unknown"):
        ChassisOptions.parse({**base, "colour": "blue"}, tmp_path)
    with pytest.raises(ValueError, match="go together"):
        ChassisOptions.parse({**base, "peer_namespace": "ns"}, tmp_path)
    assert len(veth_name(str(tmp_path))) <= 15


def test_a_chassis_beside_the_controllers_data_plane(tmp_path: Path) -> None:
    controller = OvnOptions.parse({"tunnel_cidr": "10.255.0.1/24"}, tmp_path / "ctl")
    opts = ChassisOptions.beside(controller, tmp_path / "agent", name="compute-2", tunnel_cidr="10.255.0.2/24")
    assert opts.sb_connection == f"unix:{tmp_path / 'ctl' / 'ovn' / 'sb.sock'}"
    assert opts.peer_namespace == controller.namespace
    assert opts.peer_ovs_connection == f"unix:{tmp_path / 'ctl' / 'ovn' / 'db.sock'}"
    assert opts.directory == str(tmp_path / "agent" / "chassis")
    assert opts.ovn_options(tmp_path / "agent").namespace != controller.namespace
