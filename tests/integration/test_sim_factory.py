"""The simulated factory serves its models' values over real Modbus TCP and OPC UA sockets.

Read with plain clients (pymodbus, asyncua), not with edgefab's connectors: this checks
the simulator against its documented maps, independently of the collector.
"""

from __future__ import annotations

import asyncio
import math
import struct

import pytest
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

from connectors.modbus.address import Table
from connectors.modbus.decode import apply_scaling, decode_registers, encode_value
from simulators.factory import DEMO_MACHINES, MachineSetup, SimulatedFactory
from simulators.machine import CNC, INJECTION_MOULDING, STAMPING_PRESS, U32_RANGE, MachineState
from simulators.modbus_map import STATUS_BITS
from simulators.opcua_map import node_id
from tests.servers import free_port

SPEED = 50.0
MODBUS_ONLY = (
    MachineSetup("press01", STAMPING_PRESS, "modbus", "stamping", "line1", unit=1, counter_start=U32_RANGE - 40),
    MachineSetup("imm01", INJECTION_MOULDING, "modbus", "moulding", "line3", unit=3),
)


async def read_words(client: AsyncModbusTcpClient, table: Table, offset: int, count: int, unit: int) -> list[int]:
    if table is Table.HOLDING_REGISTER:
        response = await client.read_holding_registers(offset, count=count, device_id=unit)
    else:
        response = await client.read_input_registers(offset, count=count, device_id=unit)
    assert not response.isError(), response
    return list(response.registers)


async def test_every_modbus_tag_reads_the_models_value_and_the_counter_rolls_over() -> None:
    async with SimulatedFactory(
        seed=3, speed=SPEED, modbus_port=free_port(), machines=MODBUS_ONLY, update_interval_s=3600
    ) as factory:
        assert factory.opcua is None  # no OPC UA machine, no OPC UA server to start
        await asyncio.sleep(1.5)  # 75 simulated seconds: the press makes more than the 40 parts left before 2**32
        await factory.update()  # the next scheduled update is an hour away: values hold still while we read
        client = AsyncModbusTcpClient("127.0.0.1", port=factory.modbus_port, timeout=2)
        await client.connect()
        try:
            for name, setup in factory.setups.items():
                snapshot = factory.snapshot(name)
                for entry in setup.register_map.tags:
                    address = entry.tag.parsed_address
                    words = await read_words(
                        client, address.table, address.offset, entry.tag.register_count, setup.unit
                    )
                    raw = decode_registers(words, entry.tag.type, entry.byte_order, bit=address.bit)
                    got = apply_scaling(raw, entry.tag)
                    if entry.value is None:
                        if entry.name in STATUS_BITS:
                            assert got == (
                                entry.name == snapshot.state.value
                                or (entry.name == "temperature_high" and bool(snapshot.status_word & 1 << 5))
                            ), (name, entry.name)
                        continue
                    expected = entry.value(snapshot, SPEED)
                    if isinstance(expected, float):
                        assert math.isclose(got, expected, rel_tol=1e-6, abs_tol=entry.tag.scale / 2), (
                            name,
                            entry.name,
                        )
                    else:
                        assert got == expected, (name, entry.name)

            press = factory.snapshot("press01")
            assert press.parts_total > 40 and press.total_count == press.parts_total - 40  # rolled over 2**32
            # Decoded by hand, per docs/simulators.md: counters ABCD on the press, floats CDAB, CDAB on the moulder.
            hi, lo = await read_words(client, Table.HOLDING_REGISTER, 3, 2, unit=1)
            assert (hi << 16) | lo == press.total_count
            low_word, high_word = await read_words(client, Table.INPUT_REGISTER, 0, 2, unit=1)
            (oil_temp,) = struct.unpack(">f", struct.pack(">HH", high_word, low_word))
            assert math.isclose(oil_temp, press.temperature_c, rel_tol=1e-6)
            moulder = factory.snapshot("imm01")
            lo, hi = await read_words(client, Table.HOLDING_REGISTER, 3, 2, unit=3)
            assert (hi << 16) | lo == moulder.total_count
            words = await read_words(client, Table.INPUT_REGISTER, 0, 2, unit=3)  # DCBA: bytes fully reversed
            (barrel_temp,) = struct.unpack("<f", struct.pack(">HH", *words))
            assert math.isclose(barrel_temp, moulder.temperature_c, rel_tol=1e-6)
            (state,) = await read_words(client, Table.HOLDING_REGISTER, 0, 1, unit=3)
            assert state == moulder.state.code
        finally:
            client.close()


async def test_served_counts_and_ground_truth_agree_at_speed_and_setpoints_written_by_a_client_stay() -> None:
    async with SimulatedFactory(
        seed=5, speed=SPEED, modbus_port=free_port(), machines=MODBUS_ONLY[1:], update_interval_s=0.05
    ) as factory:
        client = AsyncModbusTcpClient("127.0.0.1", port=factory.modbus_port, timeout=2)
        await client.connect()
        try:
            target = factory.setups["imm01"].register_map.tag("target_quantity")
            words = encode_value(1500, target.tag.type, target.byte_order)
            assert words == [1500, 0]  # CDAB: low word first
            response = await client.write_registers(19, words, device_id=3)
            assert not response.isError()
            await asyncio.sleep(2.0)  # about 40 updates of the model
            words = await read_words(client, Table.HOLDING_REGISTER, 19, 2, unit=3)
            assert decode_registers(words, target.tag.type, target.byte_order) == 1500

            # A forced fault is on the wire at once and stays while the update loop runs on.
            await factory.force_state("imm01", MachineState.FAULT, 5.0, fault="ejector_stuck")
            await asyncio.sleep(0.3)
            state, status_word, fault_code = await read_words(client, Table.HOLDING_REGISTER, 0, 3, unit=3)
            assert (state, status_word & 0b11, fault_code) == (MachineState.FAULT.code, 0b10, 4)
        finally:
            client.close()
        truth = factory.ground_truth("imm01")
        snapshot = factory.snapshot("imm01")
        # 2 s of wall time at speed 50 is ~100 simulated seconds, recorded on the wall clock
        assert truth.clock == "wall" and truth.start_s == pytest.approx(factory.origin_ts)
        assert 1.9 < truth.end_s - truth.start_s < 3.0
        assert math.isclose(sum(truth.state_durations_s().values()), truth.end_s - truth.start_s, rel_tol=1e-9)
        assert truth.counts().total == snapshot.parts_total >= 3
        assert truth.ideal_cycle_time_s == pytest.approx(INJECTION_MOULDING.ideal_cycle_time_s / SPEED)
        forced = [i for i in truth.intervals if i.reason == "ejector_stuck"]
        assert forced and forced[-1].state is MachineState.FAULT and forced[-1].end_s == truth.end_s


async def test_the_cnc_serves_its_node_map_over_opc_ua() -> None:
    cnc = next(m for m in DEMO_MACHINES if m.kind is CNC)
    async with SimulatedFactory(
        seed=7, speed=SPEED, opcua_port=free_port(), machines=(cnc,), update_interval_s=3600
    ) as factory:
        assert factory.modbus is None
        await asyncio.sleep(1.0)
        await factory.update()
        snapshot = factory.snapshot(cnc.name)
        async with Client(factory.opcua_url, timeout=4) as client:
            for tag in cnc.node_map.tags:
                node = client.get_node(node_id(cnc.name, tag))
                value = await node.read_value()
                variant_type = await node.read_data_type_as_variant_type()
                assert variant_type == ua.VariantType[tag.variant_type], tag.name
                if tag.value is None:
                    continue
                expected = tag.value(snapshot, SPEED)
                assert value == pytest.approx(expected) if isinstance(expected, float) else value == expected, tag.name
            assert await client.get_node("ns=2;s=cnc01/State").read_value() == snapshot.state.code
            assert MachineState(await client.get_node("ns=2;s=cnc01/StateName").read_value()) is snapshot.state
            target = client.get_node("ns=2;s=cnc01/TargetQuantity")
            await target.write_value(ua.DataValue(ua.Variant(250, ua.VariantType.UInt32)))
            await factory.update()
            assert await target.read_value() == 250  # a client's setpoint survives the model's updates
