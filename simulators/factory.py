"""A small simulated factory: machine models served over Modbus TCP and OPC UA in real time x speed.

The models run on simulated time; the factory maps it to the wall clock
(`sim_s = (monotonic - t0) * speed`) and, every `update_interval_s`, advances each model
to now and writes its values into the protocol servers. Tests use it in-process:

    async with SimulatedFactory(seed=1, speed=20, modbus_port=free_port(), opcua_port=free_port()) as factory:
        ...
        truth = factory.ground_truth("press01")   # on the wall clock, comparable with collected data

The default layout matches `edge_config/examples/demo-factory.yaml` (see docs/simulators.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from simulators.machine import (
    CNC,
    INJECTION_MOULDING,
    STAMPING_PRESS,
    U32_RANGE,
    GroundTruth,
    Machine,
    MachineKind,
    MachineSnapshot,
    MachineState,
)
from simulators.modbus_map import RegisterMap, moulding_map, press_map
from simulators.modbus_server import ModbusSimServer, RegisterBank
from simulators.opcua_map import NodeMap, cnc_map, node_path

if TYPE_CHECKING:
    from simulators.opcua_server import OpcUaSimServer  # asyncua is heavy: imported only when a CNC is served

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MODBUS_PORT = 5020
DEFAULT_OPCUA_PORT = 4840


@dataclass(frozen=True)
class MachineSetup:
    """One machine of the factory: its model, where it sits in the plant and how it is served."""

    name: str
    kind: MachineKind
    protocol: Literal["modbus", "opcua"]
    area: str
    line: str
    unit: int = 1
    """Modbus unit id (all Modbus machines share one server and port)"""
    counter_start: int = 0

    @property
    def register_map(self) -> RegisterMap:
        if self.kind is INJECTION_MOULDING:
            return moulding_map(self.kind)
        return press_map(self.kind)

    @property
    def node_map(self) -> NodeMap:
        return cnc_map(self.kind)


DEMO_MACHINES: tuple[MachineSetup, ...] = (
    # press01's counter starts 600 parts before 2**32: it rolls over within the first quarter hour at speed 1.
    MachineSetup("press01", STAMPING_PRESS, "modbus", "stamping", "line1", unit=1, counter_start=U32_RANGE - 600),
    MachineSetup("press02", STAMPING_PRESS, "modbus", "stamping", "line1", unit=2),
    MachineSetup("cnc01", CNC, "opcua", "machining", "line2"),
    MachineSetup("imm01", INJECTION_MOULDING, "modbus", "moulding", "line3", unit=3),
)


class SimulatedFactory:
    """Machines served by one Modbus TCP server (a unit per machine) and one OPC UA server.

    Ports may be 0 for the Modbus server (read `modbus_port` after start). OPC UA runs
    without security by default, which keeps its start cheap; pass `opcua_security` and
    `opcua_users` to exercise Sign / SignAndEncrypt and user names.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        speed: float = 1.0,
        host: str = DEFAULT_HOST,
        modbus_port: int = DEFAULT_MODBUS_PORT,
        opcua_port: int = DEFAULT_OPCUA_PORT,
        update_interval_s: float = 0.1,
        machines: Sequence[MachineSetup] = DEMO_MACHINES,
        opcua_security: Sequence[str] = ("None",),
        opcua_users: dict[str, str] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if update_interval_s <= 0:
            raise ValueError("update_interval_s must be positive")
        names = [m.name for m in machines]
        if len(set(names)) != len(names):
            raise ValueError(f"machine names must be unique: {names}")
        units = [m.unit for m in machines if m.protocol == "modbus"]
        if len(set(units)) != len(units):
            raise ValueError(f"Modbus unit ids must be unique: {units}")
        self.seed, self.speed, self.host = seed, speed, host
        self.update_interval_s = update_interval_s
        self.setups = {m.name: m for m in machines}
        self.machines = {m.name: Machine(m.name, m.kind, seed=seed, counter_start=m.counter_start) for m in machines}
        self._modbus_port, self._opcua_port = modbus_port, opcua_port
        self._opcua_security, self._opcua_users = tuple(opcua_security), opcua_users
        self.modbus: ModbusSimServer | None = None
        self.opcua: OpcUaSimServer | None = None
        self._banks: dict[str, RegisterBank] = {}
        self._published: dict[str, Any] = {}
        self._snapshots: dict[str, MachineSnapshot] = {}
        self._t0_monotonic = 0.0
        self.origin_ts = 0.0
        """UTC epoch seconds of simulated time 0"""
        self._task: asyncio.Task[None] | None = None
        self.updates = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        modbus_setups = [s for s in self.setups.values() if s.protocol == "modbus"]
        opcua_setups = [s for s in self.setups.values() if s.protocol == "opcua"]
        if modbus_setups:
            self._banks = {s.name: RegisterBank() for s in modbus_setups}
            for setup in modbus_setups:  # serve the machine's values from the first request on, never zeros
                snapshot = self.machines[setup.name].snapshot()
                for table, offset, words in setup.register_map.writes(snapshot, self.speed):
                    self._banks[setup.name].set_registers(table, offset, words)
            self.modbus = ModbusSimServer(
                self.host, self._modbus_port, {s.unit: self._banks[s.name] for s in modbus_setups}
            )
        if opcua_setups:
            from simulators.opcua_server import OpcUaSimServer

            self.opcua = OpcUaSimServer(
                self.host, self._opcua_port, users=self._opcua_users, security=self._opcua_security
            )
            for setup in opcua_setups:
                for tag in setup.node_map.tags:
                    await self.opcua.add_variable(
                        node_path(setup.name, tag), tag.initial, variant_type=tag.variant_type, writable=tag.writable
                    )
        try:
            if self.modbus is not None:  # the cheap one first: a taken port fails before asyncua's slow init
                await self.modbus.start()
                self._modbus_port = self.modbus.port
            if self.opcua is not None:
                await self.opcua.start()
        except BaseException:
            await self._stop_servers()
            raise
        self._t0_monotonic = time.monotonic()
        self.origin_ts = time.time()
        await self.update()
        self._task = asyncio.create_task(self._run(), name="simulated-factory")
        log.debug("simulated factory: %s", "; ".join(self.describe()))

    async def stop(self) -> None:
        """Stop updating and serving; the ground truth then runs up to this moment."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            sim_s = self.sim_s
            for machine in self.machines.values():
                machine.step_to(max(sim_s, machine.now_s))
        await self._stop_servers()

    async def _stop_servers(self) -> None:
        if self.modbus is not None:
            await self.modbus.stop()
        if self.opcua is not None:
            await self.opcua.stop()

    async def __aenter__(self) -> SimulatedFactory:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- running ------------------------------------------------------------------------------

    @property
    def sim_s(self) -> float:
        """Simulated seconds since start."""
        return (time.monotonic() - self._t0_monotonic) * self.speed

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.update_interval_s)
            try:
                await self.update()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed write must not stop the factory; the next tick retries
                log.exception("simulated factory update failed")

    async def update(self) -> None:
        """Advance every model to now and write its values into the servers."""
        sim_s = self.sim_s
        for name, machine in self.machines.items():
            snapshot = machine.step_to(max(sim_s, machine.now_s))
            self._snapshots[name] = snapshot
            setup = self.setups[name]
            if setup.protocol == "modbus":
                bank = self._banks[name]
                for table, offset, words in setup.register_map.writes(snapshot, self.speed):
                    bank.set_registers(table, offset, words)
            else:
                await self._publish_opcua(setup, snapshot)
        self.updates += 1

    async def _publish_opcua(self, setup: MachineSetup, snapshot: MachineSnapshot) -> None:
        assert self.opcua is not None
        for tag in setup.node_map.tags:
            if tag.value is None:
                continue
            path = node_path(setup.name, tag)
            value = tag.value(snapshot, self.speed)
            if self._published.get(path) == value:
                continue  # unchanged: no write, so subscribers see changes only
            await self.opcua.write(path, value)
            self._published[path] = value

    async def force_state(
        self, machine: str, state: MachineState, wall_duration_s: float, fault: str | None = None
    ) -> None:
        """Put a machine in `state` now for `wall_duration_s` seconds of wall clock, served at once.

        For tests and demos that need a known event (a fault on the board, a long stop for an
        alarm). The ground truth records it like any other interval.
        """
        await self.update()
        self.machines[machine].force_state(state, wall_duration_s * self.speed, fault)
        await self.update()

    # -- observation --------------------------------------------------------------------------

    @property
    def modbus_port(self) -> int:
        return self._modbus_port

    @property
    def opcua_port(self) -> int:
        return self._opcua_port

    @property
    def opcua_url(self) -> str:
        return f"opc.tcp://{self.host}:{self._opcua_port}"

    def unit_of(self, machine: str) -> int:
        return self.setups[machine].unit

    def snapshot(self, machine: str) -> MachineSnapshot:
        """What the servers show for the machine since the last update."""
        return self._snapshots[machine]

    def ground_truth(self, machine: str) -> GroundTruth:
        """The machine's history up to the last update, on the wall clock (UTC epoch seconds)."""
        return self.machines[machine].ground_truth().in_wall_clock(self.origin_ts, self.speed)

    def ground_truths(self) -> dict[str, GroundTruth]:
        return {name: self.ground_truth(name) for name in self.machines}

    def ground_truth_json(self) -> dict[str, Any]:
        """Every machine's ground truth, keyed by machine name (the `--ground-truth` file)."""
        return {
            "seed": self.seed,
            "speed": self.speed,
            "origin_ts": self.origin_ts,
            "machines": {name: truth.to_json() for name, truth in self.ground_truths().items()},
        }

    def describe(self) -> list[str]:
        """One line per machine: what it is and where it is served."""
        lines = []
        for setup in self.setups.values():
            if setup.protocol == "modbus":
                where = f"modbus tcp://{self.host}:{self._modbus_port} unit {setup.unit} ({setup.register_map.name})"
            else:
                where = f"{self.opcua_url} ns=2;s={setup.name}/..."
            lines.append(f"{setup.name} {setup.kind.name} {setup.area}/{setup.line} -> {where}")
        return lines
