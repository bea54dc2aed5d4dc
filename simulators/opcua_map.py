"""The node map of a simulated OPC UA machine: variable paths, OPC UA types and model values.

Variables live under a folder named after the machine; the simulator's OPC UA server
gives each the string node id `ns=2;s=<machine>/<path>` (namespace 2 is the first one a
fresh server registers). The state is a UInt16 code with the same enum as the Modbus
machines, plus its name as a String for people browsing the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_config.schema import Role
from simulators.machine import STATE_CODES, MachineKind, MachineSnapshot

NodeValue = Callable[[MachineSnapshot, float], Any]
"""(snapshot, speed) -> the value the variable must hold."""

NAMESPACE_INDEX = 2
STATE_MAP = {code: state.value for state, code in STATE_CODES.items()}
TARGET_QUANTITY = "TargetQuantity"


@dataclass(frozen=True)
class NodeTag:
    """One variable of a simulated OPC UA machine."""

    name: str
    """the tag's name in the edge config"""
    path: str
    """below the machine's folder, e.g. `Counters/Total`"""
    variant_type: str
    value: NodeValue | None
    """None: not driven by the model (a writable setpoint)"""
    initial: Any
    meaning: str
    unit: str | None = None
    role: Role | None = None
    enum: dict[int, str] | None = None
    writable: bool = False


@dataclass(frozen=True)
class NodeMap:
    name: str
    tags: tuple[NodeTag, ...]

    def tag(self, name: str) -> NodeTag:
        return next(t for t in self.tags if t.name == name)


def node_path(machine: str, tag: NodeTag) -> str:
    """The path given to the OPC UA server: `<machine>/<tag path>`."""
    return f"{machine}/{tag.path}"


def node_id(machine: str, tag: NodeTag) -> str:
    return f"ns={NAMESPACE_INDEX};s={node_path(machine, tag)}"


def cnc_map(kind: MachineKind) -> NodeMap:
    fault_map = {0: "none", **kind.fault_codes}
    tags = (
        NodeTag("state", "State", "UInt16", lambda s, _: s.state.code, 1, "machine state (enum)",
                role=Role.STATE, enum=STATE_MAP),
        NodeTag("state_name", "StateName", "String", lambda s, _: s.state.value, "running", "machine state as text"),
        NodeTag("running", "Running", "Boolean", lambda s, _: s.state.code == 1, True, "true while running"),
        NodeTag("fault_code", "FaultCode", "UInt16", lambda s, _: s.fault_code, 0, "active fault (enum, 0 none)",
                enum=fault_map),
        NodeTag("total_count", "Counters/Total", "UInt32", lambda s, _: s.total_count, 0,
                "parts made, 32-bit, rolls over", unit="parts"),
        NodeTag("good_count", "Counters/Good", "UInt32", lambda s, _: s.good_count, 0,
                "good parts = total - rejects (mod 2^32)", unit="parts", role=Role.GOOD_COUNT),
        NodeTag("reject_count", "Counters/Reject", "UInt32", lambda s, _: s.reject_count, 0, "parts rejected",
                unit="parts", role=Role.REJECT_COUNT),
        NodeTag("ideal_cycle_time", "IdealCycleTime", "Double", lambda s, speed: s.ideal_cycle_time_s / speed,
                kind.ideal_cycle_time_s, "ideal cycle time (collector clock)", unit="s", role=Role.IDEAL_CYCLE_TIME),
        NodeTag("last_cycle_time", "LastCycleTime", "Double", lambda s, speed: s.last_cycle_time_s / speed,
                kind.ideal_cycle_time_s, "duration of the last cycle (collector clock)", unit="s"),
        NodeTag(kind.temperature_label, "Process/SpindleTemp", "Double", lambda s, _: s.temperature_c,
                kind.temperature_c.setpoint, "temperature", unit="degC"),
        NodeTag(kind.pressure_label, "Process/CoolantPressure", "Double", lambda s, _: s.pressure_bar,
                kind.pressure_bar.setpoint, "pressure", unit="bar"),
        NodeTag("energy", "Energy/Total", "Double", lambda s, _: s.energy_kwh, 0.0, "energy meter", unit="kWh"),
        NodeTag("power", "Energy/Power", "Double", lambda s, _: s.power_kw, 0.0, "electrical power", unit="kW"),
        NodeTag("target_quantity", TARGET_QUANTITY, "UInt32", None, 0,
                "target quantity of the running order (writable setpoint, not driven by the model)",
                unit="parts", writable=True),
    )  # fmt: skip
    return NodeMap("cnc", tags)


def markdown_table(machine: str, node_map: NodeMap) -> str:
    """The documented form of a node map (docs/simulators.md embeds it; a test keeps the two equal)."""
    rows = ["| tag | node id | OPC UA type | unit | role | meaning |", "|---|---|---|---|---|---|"]
    for tag in node_map.tags:
        meaning = tag.meaning
        if tag.enum:
            meaning += ": " + ", ".join(f"{k} {v}" for k, v in tag.enum.items())
        writable = " (writable)" if tag.writable else ""
        rows.append(
            f"| {tag.name}{writable} | `{node_id(machine, tag)}` | {tag.variant_type} | {tag.unit or ''} "
            f"| {tag.role.value if tag.role else ''} | {meaning} |"
        )
    return "\n".join(rows)
