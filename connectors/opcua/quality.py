"""OPC UA status codes -> the three-level Quality an operator understands, with a plain reason.

A status code's two top bits give its severity (00 good, 01 uncertain, 10/11 bad); the next 14
bits name the condition; the low 16 bits are info flags (overflow, limits) that do not change
what the value means to a person. The reasons below say what to look at on the shop floor;
any code not listed keeps its OPC UA name and the specification's description.
"""

from __future__ import annotations

from asyncua.ua import status_codes

from gateway.sample import Quality

SEVERITY_MASK = 0xC0000000
CODE_MASK = 0xFFFF0000

PLAIN_REASONS: dict[str, str] = {
    "BadCommunicationError": "device not communicating",
    "BadNoCommunication": "no communication with the device yet",
    "BadNotConnected": "the OPC UA server is not connected to the device",
    "BadDeviceFailure": "device failure",
    "BadSensorFailure": "sensor failure",
    "BadOutOfService": "out of service",
    "BadConfigurationError": "configuration error in the OPC UA server",
    "BadWaitingForInitialData": "the server is waiting for its first value from the device",
    "BadNodeIdUnknown": "node does not exist on the server",
    "BadNodeIdInvalid": "node id is not valid",
    "BadAttributeIdInvalid": "node is not a variable (it has no value)",
    "BadNotReadable": "the server does not allow reading this node",
    "BadUserAccessDenied": "the configured user may not read this node",
    "BadTimeout": "the server did not answer in time",
    "BadShutdown": "the OPC UA server is shutting down",
    "BadServerHalted": "the OPC UA server has stopped",
    "BadConnectionClosed": "connection to the OPC UA server lost",
    "BadSecureChannelClosed": "connection to the OPC UA server lost",
    "BadSessionClosed": "session with the OPC UA server closed",
    "BadSessionIdInvalid": "session with the OPC UA server expired",
    "BadOutOfRange": "value out of range",
    "BadTypeMismatch": "value has an unexpected data type",
    "BadFilterNotAllowed": "the server does not support a deadband on this node",
    "BadMonitoredItemFilterUnsupported": "the server does not support a deadband on this node",
    "BadTooManyMonitoredItems": "the server refuses more subscribed tags",
    "UncertainLastUsableValue": "last usable value: the device stopped updating it",
    "UncertainNoCommunicationLastUsableValue": "device not communicating: last usable value",
    "UncertainSensorNotAccurate": "sensor not accurate",
    "UncertainEngineeringUnitsExceeded": "value outside the sensor's engineering range",
    "UncertainSubNormal": "computed from too few good sources",
    "UncertainInitialValue": "initial value, not yet read from the device",
    "UncertainSubstituteValue": "substitute value, not measured",
    "UncertainDataSubNormal": "computed from too few good values",
    "GoodLocalOverride": "value overridden locally at the device",
}


def status_name(code: int) -> str:
    name, _doc = status_codes.get_name_and_doc(code & CODE_MASK)
    return name


def quality_of_status(code: int) -> tuple[Quality, str]:
    """Quality and plain-language reason of an OPC UA StatusCode value (reason empty when simply good)."""
    code &= CODE_MASK
    severity = code & SEVERITY_MASK
    quality = Quality.GOOD if severity == 0 else Quality.UNCERTAIN if severity == 0x40000000 else Quality.BAD
    if code == 0:
        return quality, ""
    name, doc = status_codes.get_name_and_doc(code)
    if doc.startswith("Unknown StatusCode"):
        return quality, f"status code 0x{code:08X}" if quality is not Quality.GOOD else ""
    plain = PLAIN_REASONS.get(name)
    if plain:
        return quality, f"{plain} ({name})"
    description = doc.rstrip(".") if doc else ""
    if quality is Quality.GOOD:
        return quality, ""
    return quality, f"{name}: {description}" if description else name
