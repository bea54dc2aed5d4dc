"""`edgefab modbus probe`: read live registers and show them decoded in all four byte orders.

For commissioning: when a PLC's manual does not say (or says wrongly) how a 32-bit value
is laid out, one probe shows which byte order gives the plausible number.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from connectors.modbus.address import ADDRESS_HELP, Address, parse_address
from edge_config.schema import ByteOrder, DataType

TYPES_BY_COUNT = {
    1: (DataType.INT16, DataType.UINT16),
    2: (DataType.INT32, DataType.UINT32, DataType.FLOAT32),
    4: (DataType.INT64, DataType.UINT64, DataType.FLOAT64),
}
TYPE_CHOICES = [t.value for t in DataType if t != DataType.BOOL]


def register(sub: argparse._SubParsersAction) -> None:
    modbus = sub.add_parser("modbus", help="Modbus tools (probe)")
    modbus_sub = modbus.add_subparsers(dest="modbus_command", metavar="COMMAND")
    probe = modbus_sub.add_parser(
        "probe",
        help="read registers live and print them decoded in all four byte orders",
        description="Read ADDRESS live and print the raw words and the value in ABCD, DCBA, BADC and CDAB.",
    )
    probe.add_argument("address", metavar="ADDRESS", help=f"where to read: {ADDRESS_HELP}")
    probe.add_argument("--host", help="Modbus TCP device (IP address or name)")
    probe.add_argument("--port", type=int, default=502, help="TCP port (default 502)")
    probe.add_argument("--serial", metavar="DEVICE", help="Modbus RTU serial port instead of --host, e.g. /dev/ttyUSB0")
    probe.add_argument("--baudrate", type=int, default=9600, help="RTU baud rate (default 9600)")
    probe.add_argument("--unit", type=int, default=1, help="unit (slave) id (default 1)")
    probe.add_argument(
        "--count", type=int, help="registers to read (default: the --type's size, else 2); 1, 2 and 4 are decoded"
    )
    probe.add_argument("--type", choices=TYPE_CHOICES, help="decode as this type only")
    probe.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default 2)")
    probe.set_defaults(func=_probe)
    modbus.set_defaults(func=lambda _args: (modbus.print_help(), 2)[1])


def _fail(message: str) -> int:
    print(f"edgefab modbus probe: {message}", file=sys.stderr)
    return 1


def _probe(args: argparse.Namespace) -> int:
    try:
        address = parse_address(args.address)
    except ValueError as e:
        return _fail(str(e))
    if not args.host and not args.serial:
        return _fail("say where the device is: --host H (Modbus TCP) or --serial DEVICE (Modbus RTU)")
    data_type = DataType(args.type) if args.type else None
    count = args.count or (_count_for(data_type) if data_type else 2)
    if address.table.is_bit_table or address.bit is not None:
        count = args.count or 1
    limit = 2000 if address.table.is_bit_table else 125
    if not 1 <= count <= limit or address.offset + count > 65536:
        return _fail(f"--count {count} is outside 1..{limit} (or runs past offset 65535)")
    if not 0 <= args.unit <= 255:
        return _fail(f"--unit {args.unit} is outside 0..255")
    try:
        words, where = asyncio.run(_read(args, address, count))
    except ProbeError as e:
        return _fail(str(e))
    print("\n".join(probe_report(address, words, where, args.unit, data_type)))
    return 0


class ProbeError(Exception):
    pass


def _count_for(data_type: DataType) -> int:
    return 8 if data_type == DataType.STRING else data_type.register_count


async def _read(args: argparse.Namespace, address: Address, count: int) -> tuple[list[int], str]:
    from connectors.modbus.transport import LinkDown, ModbusDeviceError, ReadTimeout, transport_for
    from edge_config.schema import ModbusRtuConnection, ModbusTcpConnection

    connection: ModbusTcpConnection | ModbusRtuConnection
    try:
        if args.serial:
            connection = ModbusRtuConnection(
                serial_port=args.serial, baudrate=args.baudrate, unit=args.unit, timeout=args.timeout
            )
        else:
            connection = ModbusTcpConnection(host=args.host, port=args.port, unit=args.unit, timeout=args.timeout)
    except ValueError as e:
        raise ProbeError(f"bad connection settings: {e.errors()[0]['msg'] if hasattr(e, 'errors') else e}") from e
    transport = transport_for(connection)  # the client the gateway itself uses for this connection
    where = transport.description
    span = f"{address.table.value}:{address.offset}..{address.offset + count - 1}"
    try:
        await transport.connect()
        words = await transport.read(args.unit, address.table, address.offset, count)
    except LinkDown as e:
        raise ProbeError(str(e)) from e
    except ReadTimeout as e:
        raise ProbeError(f"{e} from {where} unit {args.unit} reading {span}") from e
    except ModbusDeviceError as e:
        raise ProbeError(f"{e} from {where} unit {args.unit} reading {span}") from e
    finally:
        transport.close()
    return words, where


def _format(value: object, data_type: DataType) -> str:
    if isinstance(value, float):
        return f"{value:.7g}" if data_type == DataType.FLOAT32 else f"{value:.15g}"
    return str(value)


def probe_report(
    address: Address, words: Sequence[int], where: str, unit: int, data_type: DataType | None = None
) -> list[str]:
    """The lines `probe` prints: raw words, then one row per type with a column per byte order."""
    from connectors.modbus.decode import decode_registers

    end = address.offset + len(words) - 1
    head = f"{address.table.value}:{address.offset}..{end} from {where} unit {unit}"
    if address.table.is_bit_table:
        return [f"{head}: " + " ".join(str(w) for w in words)]
    lines = [f"{head}: " + " ".join(f"0x{w:04X}" for w in words)]
    if address.bit is not None:
        lines.append(f"bit {address.bit}: {int(bool((words[0] >> address.bit) & 1))}")
        return lines
    if data_type == DataType.STRING:
        types: Sequence[DataType] = (DataType.STRING,)
    elif data_type is not None:
        types = (data_type,)
    else:
        types = TYPES_BY_COUNT.get(len(words), ())
    if not types:
        lines.append(f"({len(words)} registers: use --count 1, 2 or 4, or --type string, to decode)")
        return lines
    orders = list(ByteOrder)
    rows = [["type", *(o.value for o in orders)]]
    for t in types:
        row = [t.value]
        for order in orders:
            try:
                value = decode_registers(words, t, order, length=len(words) if t == DataType.STRING else None)
                row.append(repr(value) if t == DataType.STRING else _format(value, t))
            except ValueError:
                row.append("-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines
