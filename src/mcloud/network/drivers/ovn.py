"""The ``ovn`` driver: the network service's resources in the OVN Northbound database.

It writes through ovsdbapp (the library Neutron's own OVN driver uses). ovsdbapp keeps the
database connection and an in-memory replica in a thread of its own; every call here runs
its transaction on one worker thread (``asyncio`` never blocks, and changes reach the database
in the order the service made them). ``ovn_model`` turns views into rows, ``ovn_rows``
converges the database to them: each ``ensure_*`` converges the rows of that one resource,
``sync`` converges every row mCloud owns (creating, fixing and deleting; rows that carry no
mCloud tag are someone else's and stay).

Port status comes from the Northbound ``Logical_Switch_Port.up`` column, which ovn-northd
sets once ovn-controller has bound the port on a chassis (an OVS interface with
``external_ids:iface-id=<port id>``, see ``mcloud.network.host``) and installed its flows.

The daemons themselves (in all-in-one mode) are run by ``mcloud.network.dataplane``, started by
``mcloud up`` before the workers; the driver only connects to the Northbound database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mcloud.network.dataplane import OvnOptions, programs_missing
from mcloud.network.drivers.base import (
    DesiredState,
    DriverError,
    FloatingIPView,
    NetworkView,
    PortStatus,
    PortView,
    RouterView,
    SecurityGroupView,
    SubnetView,
    SyncReport,
)

log = logging.getLogger(__name__)


def missing() -> str | None:
    """What keeps the ovn driver from running here (a sentence), or None."""
    try:
        import ovsdbapp  # noqa: F401
    except ImportError:
        return "the ovsdbapp library is not installed"
    return programs_missing()


def create(options: dict[str, Any], data_dir: Path) -> OvnDriver:
    return OvnDriver(OvnOptions.parse(options, data_dir))


class OvnDriver:
    name = "ovn"
    network_types = ("flat", "vlan", "geneve", "local")
    extensions = frozenset({
        "port-security", "allowed-address-pairs", "extra_dhcp_opt", "qos", "qos-bw-limit-direction", "trunk",
        "floating-ip-port-forwarding", "stateful-security-group",
    })
    #: binding:vif_type of a port bound on a host (CORE copies it and ``vif_details`` into the port)
    vif_type = "ovs"

    def __init__(self, options: OvnOptions):
        from mcloud.network.drivers.ovn_model import Model
        from mcloud.network.drivers.ovn_rows import OwnedIndex

        self.options = options
        #: binding:vif_details as Neutron's OVN driver reports them for a normal port bound to an
        #: OVS chassis (the ML2 plugin adds ``bound_drivers``): security groups filter the port,
        #: plain L2 connectivity, plugged into br-int, on this chassis's datapath type
        self.vif_details = {"port_filter": True, "connectivity": "l2", "bridge_name": "br-int",
                            "datapath_type": options.effective_datapath(), "bound_drivers": {"0": "ovn"}}
        self.model = Model(options.chassis)
        self.index = OwnedIndex()
        #: ports with extra_dhcp_opts (their DHCP rows follow their subnet's options)
        self._dhcp_ports: dict[str, PortView] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ovn-nb")
        self._api: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port_status: PortStatus | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- connection ---------------------------------------------------------------------------

    async def start(self, port_status: PortStatus) -> None:
        self._loop = asyncio.get_running_loop()
        self._port_status = port_status
        await self._call(self._connect)
        log.info("network: ovn driver connected to %s", self.options.nb_connection)

    def _connect(self) -> None:
        from ovsdbapp.backend import ovs_idl
        from ovsdbapp.backend.ovs_idl import connection, idlutils

        from mcloud.network.drivers import ovn_rows

        try:
            helper = idlutils.get_schema_helper(self.options.nb_connection, "OVN_Northbound")
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the same to the caller
            raise DriverError(f"OVN Northbound at {self.options.nb_connection} is not answering: {exc}") from exc
        for table in (*ovn_rows.TABLES, "NB_Global"):
            helper.register_table(table)
        idl = ovn_rows.IndexedIdl(self.options.nb_connection, helper)
        idl.owned = self.index
        idl.on_change = self._on_change
        conn = connection.Connection(idl, timeout=self.options.timeout)
        # ovsdbapp keeps a Backend's connection on its class: a class of our own per driver
        backend = type("McloudNorthbound", (ovs_idl.Backend,), {"_ovsdb_connection": None, "lookup_table": {},
                                                                 "schema": "OVN_Northbound"})
        self._api = backend(conn, start=True, auto_index=False)
        self._initial_status()

    async def close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, api.ovsdb_connection.stop, 5)
        self._executor.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- port status --------------------------------------------------------------------------

    def _on_change(self, event: str, table: str, row: Any, updates: Any) -> None:
        """In ovsdbapp's thread: a port's ``up`` changed."""
        if table != "Logical_Switch_Port" or event == "delete":
            return
        key = row.external_ids.get("neutron:mcloud_key", "")
        if not key.startswith("lsp:"):
            return
        up = bool(row.up and row.up[0])
        if event == "update":
            if not hasattr(updates, "up") or bool(updates.up and updates.up[0]) == up:
                return  # not a change of state (northd writes up=false on a port never up)
        elif not up:
            return
        self._report(row.name, up)

    def _initial_status(self) -> None:
        for row in list(self._api.tables["Logical_Switch_Port"].rows.values()):
            if row.external_ids.get("neutron:mcloud_key", "").startswith("lsp:"):
                self._report(row.name, bool(row.up and row.up[0]))

    def _report(self, port_id: str, up: bool) -> None:
        loop, callback = self._loop, self._port_status
        if loop is None or callback is None or loop.is_closed():
            return

        def schedule() -> None:
            task = loop.create_task(callback(port_id, up))
            self._tasks.add(task)
            task.add_done_callback(self._done)

        loop.call_soon_threadsafe(schedule)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("network: port status callback failed: %s", task.exception())

    # -- converging ---------------------------------------------------------------------------

    def _converge(self, specs: list[Any], owners: Iterable[str] | None, relink: Iterable[tuple[str, str]] = ()) -> Any:
        from mcloud.network.drivers.ovn_rows import Converge

        if self._api is None:
            raise DriverError("the ovn driver is not connected")
        command = Converge(self._api, specs, owners, self.index, relink)
        txn = self._api.create_transaction(check_error=True, log_errors=False)
        txn.add(command)
        try:
            txn.commit()
        except Exception as exc:  # noqa: BLE001 - ovsdbapp raises plain RuntimeErrors and its own
            raise DriverError(f"OVN Northbound refused the change: {exc}") from exc
        return command.result

    async def _apply(self, build: Any, owners: Iterable[str] | None, relink: Iterable[tuple[str, str]] = ()) -> Any:
        from mcloud.network.drivers.ovn_model import UnknownSubnet

        try:
            specs = build()
        except UnknownSubnet as exc:
            raise DriverError(f"subnet {exc} is unknown to the ovn driver (a sync brings it)") from exc
        return await self._call(self._converge, specs, list(owners) if owners is not None else None, list(relink))

    async def sync(self, state: DesiredState) -> SyncReport:
        from mcloud.network.drivers.ovn_model import Model, UnknownSubnet

        model = Model(self.options.chassis)
        specs: dict[str, Any] = {}

        def add(items: list[Any], what: str) -> None:
            for spec in items:
                if spec.create_only and spec.key in specs:
                    continue
                specs[spec.key] = spec

        add(model.global_specs(), "global")
        for network in state.networks:
            add(model.network_specs(network), f"network {network.id}")
        for subnet in state.subnets:
            add(model.subnet_specs(subnet), f"subnet {subnet.id}")
        builders = [(f"security group {g.id}", model.security_group_specs, g) for g in state.security_groups]
        builders += [(f"port {p.id}", model.port_specs, p) for p in state.ports]
        builders += [(f"router {r.id}", model.router_specs, r) for r in state.routers]
        builders += [(f"floating IP {f.id}", model.floating_ip_specs, f) for f in state.floating_ips]
        for what, build, view in builders:
            try:
                add(build(view), what)
            except UnknownSubnet as exc:
                log.warning("network: sync leaves out %s: it names subnet %s, which the state lacks", what, exc)
        # a placeholder (create_only) never stands for a row the state describes in full
        ordered = sorted(specs.values(), key=lambda s: s.create_only)
        counts = await self._call(self._converge, ordered, None, [])
        self.model = model
        self._dhcp_ports = {p.id: p for p in state.ports if p.extra_dhcp_opts}
        return SyncReport(created=counts.created, updated=counts.updated, deleted=counts.deleted)

    # -- resources ----------------------------------------------------------------------------

    async def ensure_network(self, network: NetworkView) -> None:
        await self._apply(lambda: self.model.network_specs(network), [f"network:{network.id}"])

    async def delete_network(self, network_id: str) -> None:
        self.model.networks.pop(network_id, None)
        await self._apply(list, [f"network:{network_id}"])

    async def ensure_subnet(self, subnet: SubnetView) -> None:
        def build() -> list[Any]:
            specs = self.model.subnet_specs(subnet)
            for port in self._ports_of_subnet(subnet.id):
                specs += self.model.port_specs(port)
            return specs

        owners = [f"subnet:{subnet.id}", *(f"port:{p.id}" for p in self._ports_of_subnet(subnet.id))]
        await self._apply(build, owners, relink=[(f"ls:{subnet.network_id}", "ports")])

    def _ports_of_subnet(self, subnet_id: str) -> list[PortView]:
        return [p for p in self._dhcp_ports.values() if any(ip.subnet_id == subnet_id for ip in p.fixed_ips)]

    async def delete_subnet(self, subnet_id: str) -> None:
        subnet = self.model.subnets.pop(subnet_id, None)
        relink = [(f"ls:{subnet.network_id}", "ports")] if subnet else []
        await self._apply(list, [f"subnet:{subnet_id}"], relink)

    async def ensure_port(self, port: PortView) -> None:
        await self._apply(lambda: self.model.port_specs(port), [f"port:{port.id}"])
        if port.extra_dhcp_opts:
            self._dhcp_ports[port.id] = port
        else:
            self._dhcp_ports.pop(port.id, None)

    async def delete_port(self, port_id: str) -> None:
        self._dhcp_ports.pop(port_id, None)
        await self._apply(list, [f"port:{port_id}"])

    async def ensure_security_group(self, group: SecurityGroupView) -> None:
        await self._apply(lambda: self.model.security_group_specs(group), [f"sg:{group.id}"])

    async def delete_security_group(self, group_id: str) -> None:
        await self._apply(list, [f"sg:{group_id}"])

    async def ensure_router(self, router: RouterView) -> None:
        await self._apply(lambda: self.model.router_specs(router), [f"router:{router.id}"])

    async def delete_router(self, router_id: str) -> None:
        await self._apply(list, [f"router:{router_id}"])

    async def ensure_floating_ip(self, floating_ip: FloatingIPView) -> None:
        await self._apply(lambda: self.model.floating_ip_specs(floating_ip), [f"fip:{floating_ip.id}"])

    async def delete_floating_ip(self, floating_ip_id: str) -> None:
        await self._apply(list, [f"fip:{floating_ip_id}"])

    # -- for tests and tools ------------------------------------------------------------------

    async def owned_rows(self) -> dict[str, str]:
        """key -> table of every row mCloud owns in the Northbound database now."""
        def read() -> dict[str, str]:
            with self._api.ovsdb_connection.lock:
                return {key: table for table in self._api.tables for row in self._api.tables[table].rows.values()
                        if (key := getattr(row, "external_ids", {}).get("neutron:mcloud_key")) is not None}
        return await self._call(read)
