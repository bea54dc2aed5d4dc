"""The register maps of the simulated Modbus machines: where each model value lives and how it is encoded.

Each entry is a real `ModbusTag` of the edge config schema, so the simulator encodes with
exactly the settings a collector decodes with (`remove_scaling` + `encode_value` here,
`decode_registers` + `apply_scaling` there). The maps deliberately mix byte orders, a
float32, uint32 counters, a bit field and an enum state, so the demo exercises decoding.

Time-valued tags (cycle times) are served on the collector's clock: divided by the
factory's speed factor (see docs/simulators.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from connectors.modbus.address import Table
from connectors.modbus.decode import encode_value, remove_scaling
from edge_config.schema import ByteOrder, DataType, ModbusTag, Role
from simulators.machine import STATE_CODES, MachineKind, MachineSnapshot, StatusBit

ModelValue = Callable[[MachineSnapshot, float], bool | int | float]
"""(snapshot, speed) -> the engineering value the tag must read."""

STATE_MAP = {code: state.value for state, code in STATE_CODES.items()}
STATUS_BITS = {
    "running": StatusBit.RUNNING,
    "fault": StatusBit.FAULT,
    "starved": StatusBit.STARVED,
    "blocked": StatusBit.BLOCKED,
    "planned_stop": StatusBit.PLANNED_STOP,
    "temperature_high": StatusBit.TEMPERATURE_HIGH,
}
TARGET_QUANTITY = "target_quantity"
"""A writable setpoint the model never overwrites: what a gateway writes back stays there."""


@dataclass(frozen=True)
class RegisterTag:
    """One tag of a simulated Modbus machine: its schema definition and where its value comes from."""

    name: str
    tag: ModbusTag
    byte_order: ByteOrder
    """the effective byte order (the device's, or the tag's override)"""
    value: ModelValue | None
    """None: the model does not drive it (a bit view of another register, or a writable setpoint)"""
    meaning: str

    def words(self, snapshot: MachineSnapshot, speed: float) -> list[int]:
        """The registers that make a collector read this tag's model value."""
        assert self.value is not None
        raw = remove_scaling(self.value(snapshot, speed), self.tag)
        if self.tag.type in (DataType.FLOAT32, DataType.FLOAT64):
            raw = float(raw)
        return encode_value(raw, self.tag.type, self.byte_order, length=self.tag.length)


@dataclass(frozen=True)
class RegisterMap:
    """A machine model's register map (one Modbus unit); `device_byte_order` is what the YAML sets per device."""

    name: str
    device_byte_order: ByteOrder
    tags: tuple[RegisterTag, ...]

    def tag(self, name: str) -> RegisterTag:
        return next(t for t in self.tags if t.name == name)

    def writes(self, snapshot: MachineSnapshot, speed: float) -> list[tuple[Table, int, list[int]]]:
        """(table, offset, words) for every model-driven register, ready for `RegisterBank.set_registers`."""
        out = []
        for entry in self.tags:
            if entry.value is None:
                continue
            address = entry.tag.parsed_address
            out.append((address.table, address.offset, entry.words(snapshot, speed)))
        return out


def _tag(
    name: str,
    address: str,
    data_type: DataType,
    order: ByteOrder,
    device_order: ByteOrder,
    value: ModelValue | None,
    meaning: str,
    **settings: object,
) -> RegisterTag:
    override = order if order != device_order and data_type.register_count > 1 else None
    tag = ModbusTag(address=address, type=data_type, byte_order=override, **settings)  # type: ignore[arg-type]
    return RegisterTag(name, tag, order, value, meaning)


def standard_map(
    name: str,
    kind: MachineKind,
    *,
    device_order: ByteOrder,
    counter_order: ByteOrder,
    float_order: ByteOrder,
    temperature_order: ByteOrder,
) -> RegisterMap:
    """The layout every simulated Modbus machine shares; kinds differ in names, codes and byte orders."""
    d = device_order
    fault_map = {0: "none", **kind.fault_codes}
    tags = [
        _tag("state", "hr40001", DataType.UINT16, d, d, lambda s, _: s.state.value, "machine state (enum)",
             role=Role.STATE, map=STATE_MAP),
        _tag("status_word", "hr40002", DataType.UINT16, d, d, lambda s, _: s.status_word,
             "status bit field: bit 0 running, 1 fault, 2 starved, 3 blocked, 4 planned stop, 5 temperature high"),
        *(
            _tag(bit_name, f"hr40002.{bit}", DataType.BOOL, d, d, None, f"status word bit {bit}: {bit_name}")
            for bit_name, bit in STATUS_BITS.items()
        ),
        _tag("fault_code", "hr40003", DataType.UINT16, d, d, lambda s, _: fault_map[s.fault_code],
             "active fault (enum, 0 none)", map=fault_map),
        _tag("total_count", "hr40004", DataType.UINT32, counter_order, d, lambda s, _: s.total_count,
             "parts made, 32-bit, rolls over", role=Role.TOTAL_COUNT, unit="parts"),
        _tag("reject_count", "hr40006", DataType.UINT32, counter_order, d, lambda s, _: s.reject_count,
             "parts rejected, 32-bit", role=Role.REJECT_COUNT, unit="parts"),
        _tag("good_count", "hr40008", DataType.UINT32, counter_order, d, lambda s, _: s.good_count,
             "good parts = total - rejects (mod 2^32)", unit="parts"),
        _tag("ideal_cycle_time", "hr40010", DataType.FLOAT32, float_order, d,
             lambda s, speed: s.ideal_cycle_time_s / speed, "ideal cycle time (collector clock)",
             role=Role.IDEAL_CYCLE_TIME, unit="s"),
        _tag("last_cycle_time", "hr40012", DataType.UINT16, d, d, lambda s, speed: s.last_cycle_time_s / speed,
             "duration of the last cycle (collector clock)", scale=0.001, unit="s"),
        _tag(TARGET_QUANTITY, "hr40020", DataType.UINT32, counter_order, d, None,
             "target quantity of the running order (writable setpoint, not driven by the model)",
             writable=True, unit="parts"),
        _tag(kind.temperature_label, "ir30001", DataType.FLOAT32, temperature_order, d,
             lambda s, _: s.temperature_c, "temperature", unit="degC"),
        _tag(kind.pressure_label, "ir30003", DataType.FLOAT32, float_order, d, lambda s, _: s.pressure_bar,
             "pressure", unit="bar"),
        _tag("energy", "ir30005", DataType.UINT32, counter_order, d, lambda s, _: s.energy_kwh,
             "energy meter", scale=0.01, unit="kWh"),
        _tag("power", "ir30007", DataType.INT16, d, d, lambda s, _: s.power_kw, "electrical power",
             scale=0.1, unit="kW"),
    ]  # fmt: skip
    return RegisterMap(name, device_order, tuple(tags))


def press_map(kind: MachineKind) -> RegisterMap:
    """Stamping press: registers big-endian (ABCD), floats word-swapped (CDAB), as many PLCs store them."""
    return standard_map(
        "press-v2",
        kind,
        device_order=ByteOrder.ABCD,
        counter_order=ByteOrder.ABCD,
        float_order=ByteOrder.CDAB,
        temperature_order=ByteOrder.CDAB,
    )


def moulding_map(kind: MachineKind) -> RegisterMap:
    """Injection moulding: everything word-swapped (CDAB), the barrel temperature little-endian (DCBA)."""
    return standard_map(
        "imm-v1",
        kind,
        device_order=ByteOrder.CDAB,
        counter_order=ByteOrder.CDAB,
        float_order=ByteOrder.CDAB,
        temperature_order=ByteOrder.DCBA,
    )


def markdown_table(register_map: RegisterMap) -> str:
    """The documented form of a map (docs/simulators.md embeds it; a test keeps the two equal)."""
    rows = [
        "| tag | address | type | byte order | scale | unit | role | meaning |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in register_map.tags:
        tag = entry.tag
        order = "-" if tag.register_count == 1 else entry.byte_order.value
        meaning = entry.meaning
        if tag.map:
            meaning += ": " + ", ".join(f"{k} {v}" for k, v in tag.map.items())
        scale = "" if tag.scale == 1.0 else f"{tag.scale:g}"
        writable = " (writable)" if tag.writable else ""
        rows.append(
            f"| {entry.name}{writable} | {tag.address} | {tag.type.value} | {order} | {scale} | {tag.unit or ''} "
            f"| {tag.role.value if tag.role else ''} | {meaning} |"
        )
    return "\n".join(rows)
