"""The Modbus connector: polls one device by its request plan and emits Samples.

One task per poll interval runs a steady schedule (cycle k starts at t0 + k * interval,
so it does not drift); a cycle that overruns skips the cycles it missed instead of
piling them up. Without `pipelining` every request waits for its answer before the next
is sent, across all intervals of the device (one request in flight per link).

Failures stay as small as they are: a Modbus exception or a timeout marks only the tags
of that read bad, with the reason, and the cycle goes on. A lost connection marks every
tag bad once, then reconnects with exponential backoff and jitter until cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from connectors.backoff import Backoff
from connectors.base import ConnectorHealth, Emit, LinkState
from connectors.modbus.address import Table
from connectors.modbus.decode import (
    FLOAT_TYPES,
    RawValue,
    apply_scaling,
    block_struct,
    decode_registers,
    encode_value,
    remove_scaling,
    set_bit,
    words_to_bytes,
)
from connectors.modbus.plan import ReadRequest, device_unit, plan_device
from connectors.modbus.transport import (
    LinkDown,
    ModbusDeviceError,
    ReadTimeout,
    RegisterTransport,
    open_transport,
)
from connectors.writable import writable_tag
from edge_config.schema import ByteOrder, DataType, Device, ModbusTag, SiteConfig
from gateway.sample import Quality, Sample, SampleBlock, chain_samples

log = logging.getLogger(__name__)

TransportFactory = Callable[[Device], RegisterTransport]
_SlotDecoder = tuple[str, int, int, DataType, ByteOrder, int | None, int | None, ModbusTag, bool]
"""Per tag of a read: path, word range, how to decode, the tag, and whether scaling is a no-op."""


class _BlockDecoder:
    """A read whose tags all decode with one `struct` call (see `decode.block_struct`)."""

    __slots__ = ("floats", "layout", "paths", "scaled")

    def __init__(
        self, layout: struct.Struct, paths: tuple[str, ...], scaled: list[tuple[int, ModbusTag]], floats: bool
    ) -> None:
        self.layout, self.paths, self.scaled, self.floats = layout, paths, scaled, floats


class ModbusConnector:
    """`connectors.base.Connector` for one Modbus TCP or RTU device."""

    def __init__(
        self,
        config: SiteConfig,
        device: Device,
        *,
        transport_factory: TransportFactory = open_transport,
        backoff: Backoff | None = None,
    ) -> None:
        self.config, self.device = config, device
        self.health = ConnectorHealth(device.name)
        self.health.extra.update({"cycles": 0.0, "cycles_skipped": 0.0, "requests": 0.0, "last_cycle_s": 0.0})
        self.reads = plan_device(device)
        self.unit = device_unit(device)
        self.paths = {name: config.tag_path(device, name) for name in device.tags}
        self.backoff = backoff or Backoff()
        self._transport_factory = transport_factory
        self._transport: RegisterTransport | None = None
        self._request_lock: asyncio.Lock | None = None
        self._all_bad_reported = False
        self._decoders: dict[int, list[_SlotDecoder]] = {}
        self._blocks: dict[int, _BlockDecoder | None] = {}

    @property
    def reads_by_interval(self) -> dict[float, list[ReadRequest]]:
        groups: dict[float, list[ReadRequest]] = defaultdict(list)
        for read in self.reads:
            groups[read.poll_interval_s].append(read)
        return dict(sorted(groups.items()))

    async def run(self, emit: Emit) -> None:
        """Connect, poll, and on any link failure report, back off and reconnect. Never returns."""
        self._request_lock = asyncio.Lock()
        was_connected = self.health.reads_ok > 0 or self.health.reconnects > 0
        while True:
            self.health.state = LinkState.CONNECTING
            transport = self._transport_factory(self.device)
            try:
                await transport.connect()
                self._transport = transport
                self.health.state = LinkState.CONNECTED
                if was_connected:
                    self.health.reconnects += 1
                was_connected = True
                self.backoff.reset()
                self._all_bad_reported = False
                log.info("%s: connected to %s", self.device.name, transport.description)
                await self._poll_until_link_down(transport, emit)
            except LinkDown as e:
                await self._link_failed(str(e), emit)
            finally:
                self._transport = None
                transport.close()
            await asyncio.sleep(self.backoff.next_delay_s())

    async def _link_failed(self, reason: str, emit: Emit) -> None:
        if self.health.state != LinkState.DISCONNECTED or self.health.last_error != reason:
            log.warning("%s: %s", self.device.name, reason)
        self.health.state = LinkState.DISCONNECTED
        self.health.last_error = reason
        if not self._all_bad_reported:
            self._all_bad_reported = True
            ts_ns = time.time_ns()
            await emit([Sample(path, None, ts_ns, Quality.BAD, reason) for path in self.paths.values()])

    async def _poll_until_link_down(self, transport: RegisterTransport, emit: Emit) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for interval_s, reads in self.reads_by_interval.items():
                    group.create_task(self._poll_every(interval_s, reads, transport, emit))
        except* LinkDown as failures:
            raise failures.exceptions[0] from None

    async def _poll_every(
        self, interval_s: float, reads: list[ReadRequest], transport: RegisterTransport, emit: Emit
    ) -> None:
        loop = asyncio.get_running_loop()
        # The first cycle runs at once; the next ones on a grid shared by every device with this
        # interval, so their answers arrive together: one buffer commit, one forwarder round and one
        # MQTT burst serve them all (fewer wake-ups: less CPU, steadier delay).
        start = math.ceil((loop.time() + interval_s / 2) / interval_s) * interval_s  # half a cycle or more away
        cycle = -1
        while True:
            began = loop.time()
            samples, link_error = await self._cycle(reads, transport)
            self.health.extra["last_cycle_s"] = loop.time() - began
            self.health.extra["cycles"] += 1
            if samples:
                self.health.samples += len(samples)
                await emit(samples)
            if link_error is not None:
                raise link_error
            cycle += 1
            now = loop.time()
            due = start + cycle * interval_s
            if now > due:  # overran: skip the cycles that are already late
                missed = math.floor((now - start) / interval_s) + 1 - cycle
                self.health.extra["cycles_skipped"] += missed
                cycle += missed
                due = start + cycle * interval_s
            await asyncio.sleep(due - now)

    async def _cycle(
        self, reads: list[ReadRequest], transport: RegisterTransport
    ) -> tuple[Sequence[Sample], LinkDown | None]:
        """Samples of one poll cycle; a LinkDown stops the cycle and is returned with what was read."""
        if self.device.pipelining and transport.max_in_flight > 1:
            results = await asyncio.gather(*(self._read(read, transport) for read in reads), return_exceptions=True)
        else:
            results = []
            for read in reads:
                try:
                    results.append(await self._read(read, transport))
                except (LinkDown, ModbusDeviceError, ReadTimeout) as e:
                    results.append(e)
                    if isinstance(e, LinkDown):
                        break
        parts: list[Sequence[Sample]] = []
        link_error: LinkDown | None = None
        for read, result in zip(reads, results, strict=False):
            if isinstance(result, LinkDown):
                link_error = link_error or result
            elif isinstance(result, ModbusDeviceError | ReadTimeout):
                self.health.reads_failed += 1
                self.health.last_error = f"{result} reading {read.label}"
                parts.append(self._bad(read, self.health.last_error))
            elif isinstance(result, BaseException):
                raise result
            else:
                self.health.reads_ok += 1
                parts.append(self._decode(read, *result))
        return chain_samples(parts), link_error

    async def _read(self, read: ReadRequest, transport: RegisterTransport) -> tuple[list[int], int]:
        self.health.extra["requests"] += 1
        if transport.max_in_flight > 1 and self.device.pipelining:
            words = await transport.read(read.unit, read.table, read.offset, read.count)
        else:
            assert self._request_lock is not None
            async with self._request_lock:
                words = await transport.read(read.unit, read.table, read.offset, read.count)
        return words, time.time_ns()

    def _bad(self, read: ReadRequest, reason: str) -> list[Sample]:
        ts_ns = time.time_ns()
        return [Sample(self.paths[slot.name], None, ts_ns, Quality.BAD, reason) for slot in read.slots]

    def _slot_decoders(self, read: ReadRequest) -> list[_SlotDecoder]:
        decoders = self._decoders.get(id(read))
        if decoders is None:
            decoders = [
                (
                    self.paths[slot.name],
                    slot.index,
                    slot.index + slot.count,
                    slot.data_type,
                    slot.byte_order,
                    slot.bit,
                    slot.count if slot.data_type == DataType.STRING else None,
                    slot.tag,
                    slot.tag.map is None and slot.tag.scale == 1.0 and slot.tag.offset == 0.0,
                )
                for slot in read.slots
            ]
            self._decoders[id(read)] = decoders
        return decoders

    def _block_decoder(self, read: ReadRequest) -> _BlockDecoder | None:
        key = id(read)
        if key not in self._blocks:
            layout = None
            if read.slots and all(slot.bit is None for slot in read.slots) and not read.table.is_bit_table:
                layout = block_struct([(s.index, s.data_type, s.byte_order) for s in read.slots], read.count)
            self._blocks[key] = layout and _BlockDecoder(
                layout,
                tuple(self.paths[slot.name] for slot in read.slots),
                [(i, d[7]) for i, d in enumerate(self._slot_decoders(read)) if not d[8]],
                any(slot.data_type in FLOAT_TYPES for slot in read.slots),
            )
        return self._blocks[key]

    def _decode(self, read: ReadRequest, words: list[int], ts_ns: int) -> Sequence[Sample]:
        block = self._block_decoder(read)
        if block is not None:
            try:
                values = block.layout.unpack(words_to_bytes(words))
            except (ValueError, struct.error):
                pass  # a short answer or a bad word: the per-tag path below names the tags it affects
            else:
                if not block.scaled and not block.floats:  # the common case: no Python code per value
                    return SampleBlock(block.paths, list(values), ts_ns)
                return self._finish_block(block, list(values), ts_ns)
        samples = []
        for path, start, end, data_type, byte_order, bit, length, tag, plain in self._slot_decoders(read):
            try:
                raw = decode_registers(words[start:end], data_type, byte_order, bit=bit, length=length)
            except ValueError as e:
                samples.append(Sample(path, None, ts_ns, Quality.BAD, f"cannot decode {read.label}: {e}"))
                continue
            if raw.__class__ is float and not math.isfinite(raw):
                samples.append(Sample(path, None, ts_ns, Quality.BAD, f"device sent {raw} (not a finite number)"))
                continue
            samples.append(Sample(path, raw if plain else apply_scaling(raw, tag), ts_ns))
        return samples

    def _finish_block(self, block: _BlockDecoder, values: list[RawValue], ts_ns: int) -> Sequence[Sample]:
        """Block-decoded raw values -> samples: the finite-float check on the raw value, then scaling."""
        if block.floats and not all(map(math.isfinite, values)):  # type: ignore[arg-type]
            samples = []
            for path, raw, (_, tag) in zip(block.paths, values, self._scaling_of(block), strict=True):
                if raw.__class__ is float and not math.isfinite(raw):  # type: ignore[arg-type]
                    samples.append(Sample(path, None, ts_ns, Quality.BAD, f"device sent {raw} (not a finite number)"))
                else:
                    samples.append(Sample(path, raw if tag is None else apply_scaling(raw, tag), ts_ns))
            return samples
        for i, tag in block.scaled:
            values[i] = apply_scaling(values[i], tag)
        return SampleBlock(block.paths, values, ts_ns)  # type: ignore[arg-type]

    @staticmethod
    def _scaling_of(block: _BlockDecoder) -> list[tuple[int, ModbusTag | None]]:
        """(index, tag to scale with or None) for every value of the block."""
        scaled = dict(block.scaled)
        return [(i, scaled.get(i)) for i in range(len(block.paths))]

    async def write(self, tag_name: str, value: bool | int | float | str) -> None:
        """Write an engineering value to a tag marked `writable` (scale, enum map and type applied).

        Raises ValueError with a plain reason for an unknown, read-only or out-of-range tag,
        LinkDown when the device is not connected, ModbusDeviceError when it refuses.
        """
        tag = writable_tag(self.device, tag_name, value, ModbusTag, "Modbus")
        address = tag.parsed_address
        if address.table in (Table.DISCRETE_INPUT, Table.INPUT_REGISTER):
            raise ValueError(f"{tag_name} is at {address}: discrete inputs and input registers are read-only")
        transport = self._transport
        if transport is None or self._request_lock is None:
            raise LinkDown(f"{self.device.name} is not connected")
        raw = remove_scaling(value, tag)
        async with self._request_lock:
            if address.table.is_bit_table:
                words = encode_value(bool(raw), DataType.BOOL, tag.byte_order or self.device.byte_order)
            elif address.bit is not None:
                (current,) = await transport.read(self.unit, address.table, address.offset, 1)
                words = [set_bit(current, address.bit, bool(raw))]
            else:
                words = encode_value(raw, tag.type, tag.byte_order or self.device.byte_order, length=tag.register_count)
            await transport.write(self.unit, address.table, address.offset, words)


async def read_once(config: SiteConfig, device: Device, *, timeout_s: float = 10.0) -> list[Sample]:
    """Connect, read every tag once, disconnect: for tests and `edgefab` diagnostics."""
    connector = ModbusConnector(config, device)
    transport = open_transport(device)
    await asyncio.wait_for(transport.connect(), timeout_s)
    connector._request_lock = asyncio.Lock()
    try:
        samples, link_error = await asyncio.wait_for(connector._cycle(connector.reads, transport), timeout_s)
    finally:
        transport.close()
    if link_error is not None:
        raise link_error
    return list(samples)
