"""The simulator's register and node maps, demo-factory.yaml and docs/simulators.md say the same thing."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from connectors.modbus.decode import apply_scaling, decode_registers
from edge_config.loader import load_config
from edge_config.schema import ByteOrder, ModbusTcpConnection, OpcUaConnection, OpcUaTag
from simulators import cli
from simulators.factory import DEFAULT_HOST, DEFAULT_MODBUS_PORT, DEFAULT_OPCUA_PORT, DEMO_MACHINES
from simulators.machine import CNC, INJECTION_MOULDING, STAMPING_PRESS, Machine, MachineState
from simulators.modbus_map import markdown_table as register_table
from simulators.modbus_map import moulding_map, press_map
from simulators.opcua_map import markdown_table as node_table
from simulators.opcua_map import node_id

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "edge_config" / "examples" / "demo-factory.yaml"
DOCS = ROOT / "docs" / "simulators.md"


@pytest.fixture(scope="module")
def demo():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
    return load_config(DEMO_CONFIG, env=env)


def test_the_demo_config_has_exactly_the_simulated_machines_where_the_simulator_serves_them(demo) -> None:
    assert {d.name for d in demo.devices} == {m.name for m in DEMO_MACHINES}
    for setup in DEMO_MACHINES:
        device = demo.device(setup.name)
        assert (device.area, device.line) == (setup.area, setup.line)
        if setup.protocol == "modbus":
            assert isinstance(device.connection, ModbusTcpConnection)
            assert device.connection.host == DEFAULT_HOST
            assert device.connection.port == DEFAULT_MODBUS_PORT
            assert device.connection.unit == setup.unit
        else:
            assert isinstance(device.connection, OpcUaConnection)
            assert device.connection.url == f"opc.tcp://{DEFAULT_HOST}:{DEFAULT_OPCUA_PORT}"


def test_edgefab_simulate_defaults_are_the_factorys_and_the_demo_configs() -> None:
    assert (cli.DEFAULT_HOST, cli.DEFAULT_MODBUS_PORT, cli.DEFAULT_OPCUA_PORT) == (
        DEFAULT_HOST,
        DEFAULT_MODBUS_PORT,
        DEFAULT_OPCUA_PORT,
    )


def test_every_modbus_tag_of_the_demo_config_decodes_exactly_as_the_simulator_encodes(demo) -> None:
    for setup in (m for m in DEMO_MACHINES if m.protocol == "modbus"):
        device = demo.device(setup.name)
        register_map = setup.register_map
        assert device.byte_order == register_map.device_byte_order, setup.name
        assert set(device.tags) == {e.name for e in register_map.tags}, setup.name
        for entry in register_map.tags:
            tag = device.tags[entry.name]
            ours = entry.tag
            assert (tag.address, tag.type, tag.scale, tag.offset, tag.map, tag.role, tag.writable) == (
                ours.address,
                ours.type,
                ours.scale,
                ours.offset,
                ours.map,
                ours.role,
                ours.writable,
            ), (setup.name, entry.name)
            if tag.register_count > 1:
                assert (tag.byte_order or device.byte_order) == entry.byte_order, (setup.name, entry.name)


def test_every_opcua_tag_of_the_demo_config_names_a_simulated_node(demo) -> None:
    for setup in (m for m in DEMO_MACHINES if m.protocol == "opcua"):
        device = demo.device(setup.name)
        assert set(device.tags) == {t.name for t in setup.node_map.tags}
        for node in setup.node_map.tags:
            tag = device.tags[node.name]
            assert isinstance(tag, OpcUaTag)
            assert (tag.node, tag.role, tag.map, tag.writable) == (
                node_id(setup.name, node),
                node.role,
                node.enum,
                node.writable,
            ), node.name


def test_the_oee_roles_are_on_state_counts_and_ideal_cycle_time_of_every_machine(demo) -> None:
    for device in demo.devices:
        roles = {tag.role.value: name for name, tag in device.tags.items() if tag.role is not None}
        assert roles["state"] == "state"
        assert roles["ideal_cycle_time"] == "ideal_cycle_time"
        assert "reject_count" in roles and ({"total_count", "good_count"} & set(roles))


def test_the_maps_use_several_byte_orders_a_float_a_32_bit_counter_a_bit_field_and_an_enum() -> None:
    press, moulder = press_map(STAMPING_PRESS), moulding_map(INJECTION_MOULDING)
    orders = {e.byte_order for m in (press, moulder) for e in m.tags if e.tag.register_count > 1}
    assert {ByteOrder.ABCD, ByteOrder.CDAB, ByteOrder.DCBA} <= orders
    types = {e.tag.type.value for e in press.tags}
    assert {"float32", "uint32", "bool", "uint16", "int16"} <= types
    assert any(e.tag.parsed_address.bit is not None for e in press.tags)
    assert press.tag("state").tag.map == {s.code: s.value for s in MachineState}


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        # worked examples of the press map (ABCD registers, CDAB floats), decodable by hand
        ("total_count", 4_294_967_295, [0xFFFF, 0xFFFF]),
        ("total_count", 70_000, [0x0001, 0x1170]),
        ("ideal_cycle_time", 1.0, [0x0000, 0x3F80]),  # float32 1.0 = 0x3F800000, word-swapped
        ("last_cycle_time", 1.1, [1100]),  # milliseconds
        ("power", 18.0, [180]),  # 0.1 kW
        ("energy", 123.45, [0x0000, 12345]),  # 0.01 kWh
    ],
)
def test_press_registers_worked_examples(name: str, value: float, words: list[int]) -> None:
    entry = press_map(STAMPING_PRESS).tag(name)
    snapshot_field = {
        "total_count": "total_count",
        "ideal_cycle_time": "ideal_cycle_time_s",
        "last_cycle_time": "last_cycle_time_s",
        "power": "power_kw",
        "energy": "energy_kwh",
    }[name]
    snapshot = Machine("p", STAMPING_PRESS).snapshot()
    assert entry.words(dataclasses.replace(snapshot, **{snapshot_field: value}), 1.0) == words
    decoded = apply_scaling(decode_registers(words, entry.tag.type, entry.byte_order), entry.tag)
    assert decoded == pytest.approx(value)


def test_served_cycle_times_are_divided_by_the_speed() -> None:
    entry = press_map(STAMPING_PRESS).tag("ideal_cycle_time")
    snapshot = Machine("p", STAMPING_PRESS).snapshot()
    assert entry.value(snapshot, 10.0) == pytest.approx(0.1)
    node = DEMO_MACHINES[2].node_map.tag("ideal_cycle_time")
    assert node.value(Machine("c", CNC).snapshot(), 10.0) == pytest.approx(4.5)


def test_the_documented_maps_are_the_maps_in_the_code() -> None:
    docs = DOCS.read_text()
    assert register_table(press_map(STAMPING_PRESS)) in docs
    assert register_table(moulding_map(INJECTION_MOULDING)) in docs
    cnc = next(m for m in DEMO_MACHINES if m.kind is CNC)
    assert node_table(cnc.name, cnc.node_map) in docs
