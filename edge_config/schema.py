"""The edge configuration schema: what an integrator may write in a site YAML file.

The models are strict (`extra="forbid"`) so a misspelt key is an error, not a silently
ignored setting. The loader (`edge_config.loader`) turns YAML into these models and
reports every problem with file, line and key path.

After loading, profiles are resolved: every `Device` has its `protocol` and its full
`tags` map, whatever mix of profile and own tags the YAML used.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from connectors.modbus.address import Address, parse_address
from edge_config.alarms_schema import Alarms
from edge_config.units import parse_duration_s, parse_size_bytes

DurationS = Annotated[float, BeforeValidator(parse_duration_s)]
"""Seconds, written as `500ms`, `2s`, `1m`, `1h` or a bare number of seconds."""
SizeBytes = Annotated[int, BeforeValidator(parse_size_bytes)]
"""Bytes, written as `1GiB`, `500MB` or a bare number."""

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
"""Names become MQTT topic levels and InfluxDB tags: no '/', '+', '#' or spaces."""
Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Role(StrEnum):
    """What a tag means for OEE; mes_lite ingests exactly the tags that carry a role."""

    STATE = "state"
    GOOD_COUNT = "good_count"
    REJECT_COUNT = "reject_count"
    TOTAL_COUNT = "total_count"
    IDEAL_CYCLE_TIME = "ideal_cycle_time"


class ByteOrder(StrEnum):
    """Order of the bytes of a multi-register value, A the most significant byte.

    ABCD big-endian (Modbus standard), DCBA little-endian, BADC byte-swapped,
    CDAB word-swapped (common on PLCs that store 32-bit values low word first).
    """

    ABCD = "ABCD"
    DCBA = "DCBA"
    BADC = "BADC"
    CDAB = "CDAB"


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"

    @property
    def register_count(self) -> int:
        """Registers one value occupies (strings: see ModbusTag.length)."""
        return {"int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}.get(self.value, 1)


class TagBase(Strict):
    """Settings every tag has, whatever the protocol."""

    role: Role | None = None
    unit: str | None = None
    description: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    map: dict[int, str] | None = Field(default=None, description="enum: raw integer -> state name")
    deadband: float | None = Field(default=None, ge=0, description="report only changes larger than this")
    heartbeat: DurationS | None = Field(default=None, description="report at least this often even unchanged")
    poll: DurationS | None = Field(default=None, gt=0, description="override the device's poll interval")
    writable: bool = False
    min: float | None = None
    max: float | None = None


class ModbusTag(TagBase):
    address: str
    type: DataType = DataType.UINT16
    length: int | None = Field(default=None, ge=1, le=125, description="registers of a string")
    byte_order: ByteOrder | None = Field(default=None, description="override the device's byte order")

    @model_validator(mode="before")
    @classmethod
    def _single_bits_default_to_bool(cls, data: Any) -> Any:
        """A coil, discrete input or register bit (hr40010.3) is a bool unless the YAML says otherwise."""
        if isinstance(data, dict) and "type" not in data and isinstance(data.get("address"), str):
            try:
                address = parse_address(data["address"])
            except ValueError:
                return data
            if address.bit is not None or address.table.is_bit_table:
                return {**data, "type": DataType.BOOL}
        return data

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:
        parse_address(value)
        return value

    @property
    def parsed_address(self) -> Address:
        return parse_address(self.address)

    @property
    def register_count(self) -> int:
        """Registers (or bits, for coils and discrete inputs) this tag reads."""
        address = self.parsed_address
        if address.table.is_bit_table or address.bit is not None:
            return 1
        if self.type == DataType.STRING:
            return self.length or 1
        return self.type.register_count


NODE_ID_PATTERN = re.compile(r"^(ns=\d+;)?(i=\d+|s=.+|g=[0-9a-fA-F-]{36}|b=[A-Za-z0-9+/=]+)$|^nsu=.+;(i|s|g|b)=.+$")


class OpcUaTag(TagBase):
    node: str
    mode: Literal["subscribe", "poll"] = "subscribe"
    sampling_interval: DurationS | None = Field(default=None, ge=0)

    @field_validator("node")
    @classmethod
    def _node_id_well_formed(cls, value: str) -> str:
        if not NODE_ID_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not an OPC UA node id: use ns=<index>;s=<name>, ns=<index>;i=<number>, "
                "ns=<index>;g=<guid> or ns=<index>;b=<base64>"
            )
        return value


Tag = ModbusTag | OpcUaTag


class ModbusTcpConnection(Strict):
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255)
    timeout: DurationS = 1.0


class ModbusRtuConnection(Strict):
    serial_port: str
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit: int = Field(default=1, ge=0, le=247)
    timeout: DurationS = 1.0


class OpcUaSecurity(StrEnum):
    NONE = "None"
    SIGN = "Basic256Sha256-Sign"
    SIGN_AND_ENCRYPT = "Basic256Sha256-SignAndEncrypt"


class OpcUaConnection(Strict):
    url: Annotated[str, Field(pattern=r"^opc\.tcp://")]
    security: OpcUaSecurity = OpcUaSecurity.NONE
    username: str | None = None
    password: str | None = None
    certificate: str | None = Field(default=None, description="client certificate (DER/PEM); see edgefab opcua cert")
    private_key: str | None = None
    server_certificate: str | None = None
    timeout: DurationS = 4.0


class Protocol(StrEnum):
    MODBUS = "modbus"  # Modbus TCP
    MODBUS_RTU = "modbus-rtu"
    OPCUA = "opcua"


class Profile(Strict):
    """A tag map reused by many machines of one model."""

    protocol: Protocol
    byte_order: ByteOrder | None = None
    tags: dict[Name, dict[str, Any]]


class DerivedTag(Strict):
    """A tag computed by the gateway from other tags of the same device.

    `rate_of: parts, per: 1m` is the counter's increase over the last `per`, per `per`
    (counter resets are skipped); `expr: "voltage * current / 1000"` is arithmetic over the
    device's latest values (numbers, tag names, + - * / and parentheses only).
    """

    rate_of: Name | None = None
    per: DurationS = Field(default=60.0, gt=0)
    expr: str | None = None
    role: Role | None = None
    unit: str | None = None
    description: str | None = None
    deadband: float | None = Field(default=None, ge=0)
    heartbeat: DurationS | None = None

    @model_validator(mode="after")
    def _exactly_one_formula(self) -> DerivedTag:
        if (self.rate_of is None) == (self.expr is None):
            raise ValueError("a derived tag needs exactly one of rate_of (a counter's rate) or expr (arithmetic)")
        if self.expr is not None:
            from gateway.expression import parse_expression

            parse_expression(self.expr)
        return self


class Device(Strict):
    name: Name
    area: Name
    line: Name
    profile: Name | None = None
    protocol: Protocol | None = None
    connection: ModbusTcpConnection | ModbusRtuConnection | OpcUaConnection
    poll: DurationS = Field(default=1.0, gt=0)
    byte_order: ByteOrder = ByteOrder.ABCD
    max_gap: int = Field(default=0, ge=0, le=124, description="unused registers a coalesced read may span")
    max_registers: int = Field(default=125, ge=1, le=125, description="registers per read this device accepts")
    max_bits: int = Field(default=2000, ge=1, le=2000, description="coils/inputs per read this device accepts")
    pipelining: bool = Field(default=False, description="send several requests before the answers arrive")
    tags: dict[Name, ModbusTag | OpcUaTag] = Field(default_factory=dict)
    derived: dict[Name, DerivedTag] = Field(default_factory=dict)


class Site(Strict):
    enterprise: Name
    site: Name


class MqttTls(Strict):
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    insecure: bool = False


class MqttSink(Strict):
    url: Annotated[str, Field(pattern=r"^mqtts?://")] = "mqtt://localhost:1883"
    qos: Literal[0, 1] = 1
    format: Literal["uns-json", "uns-batch", "sparkplug-b"] = "uns-json"
    topic_template: str = "{enterprise}/{site}/{area}/{line}/{machine}/{tag}"
    retain: bool = False
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    tls: MqttTls | None = None
    max_messages_per_s: float = Field(default=2000, gt=0, description="replay rate limit after an outage")


class InfluxSink(Strict):
    url: Annotated[str, Field(pattern=r"^https?://")]
    org: str = "-"
    bucket: str
    token: str = ""
    batch_size: int = Field(default=5000, ge=1)
    flush_interval: DurationS = 1.0


class Sinks(Strict):
    mqtt: MqttSink | None = None
    influxdb: InfluxSink | None = None


class Buffer(Strict):
    path: str = "var/edgefab/buffer.db"
    max_bytes: SizeBytes = 1 << 30
    when_full: Literal["drop_oldest", "stop_reading"] = "drop_oldest"
    fsync: Literal["always", "batch", "off"] = "batch"


class Gateway(Strict):
    name: Name = "edge1"
    health_port: int = Field(default=9108, ge=0, le=65535)


class SiteConfig(Strict):
    """One whole edge configuration, after includes, interpolation and profiles are resolved."""

    site: Site
    gateway: Gateway = Gateway()
    profiles: dict[Name, Profile] = Field(default_factory=dict)
    devices: list[Device]
    sinks: Sinks = Sinks()
    buffer: Buffer = Buffer()
    alarms: Alarms | None = None

    def tag_path(self, device: Device, tag_name: str) -> str:
        """The tag's ISA-95 path, which is also its Sample.tag: enterprise/site/area/line/machine/tag."""
        return "/".join((self.site.enterprise, self.site.site, device.area, device.line, device.name, tag_name))

    def device(self, name: str) -> Device:
        return next(d for d in self.devices if d.name == name)
