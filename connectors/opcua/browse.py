"""Walk an OPC UA server's address space and turn the variables found into device YAML to paste.

The walk follows hierarchical references (Organizes, HasComponent, HasProperty...) level by level,
one Browse request per level, so a large PLC costs a few round trips, not one per node. Standard
nodes (namespace 0, e.g. the Server object's diagnostics) are skipped unless the walk starts there.
Naming is pure: a tag is named after its browse name in snake_case, prefixed by its parents' names
only where two variables would otherwise share a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from asyncua import Client, ua

from connectors.opcua.errors import OpcUaError
from connectors.opcua.quality import status_name

OBJECTS_FOLDER = "i=85"
MAX_TAG_NAME = 64
ACCESS_CURRENT_WRITE = 0x02
HAS_PROPERTY = ua.NodeId(ua.ObjectIds.HasProperty)


@dataclass(frozen=True)
class FoundVariable:
    node_id: str
    path: tuple[str, ...]
    """Browse names from the root (excluded) down to the variable."""
    data_type: str
    writable_on_server: bool


async def walk(client: Client, root: str = OBJECTS_FOLDER, max_depth: int = 5) -> list[FoundVariable]:
    """Every variable below `root`, at most `max_depth` references deep, in browse order."""
    try:
        root_id = ua.NodeId.from_string(root)
    except (ValueError, ua.UaError):
        raise OpcUaError(f"{root!r} is not an OPC UA node id: use e.g. ns=2;s=Machine or i=85") from None
    root_class = await client.read_attributes([client.get_node(root_id)], ua.AttributeIds.NodeClass)
    if not root_class[0].StatusCode.is_good():
        raise OpcUaError(f"node {root} does not exist on the server ({status_name(root_class[0].StatusCode.value)})")
    skip_standard = root_id.NamespaceIndex != 0 or root_id == ua.NodeId.from_string(OBJECTS_FOLDER)
    level: list[tuple[ua.NodeId, tuple[str, ...]]] = [(root_id, ())]
    seen = {root_id}
    found: list[tuple[ua.NodeId, tuple[str, ...]]] = []
    for _depth in range(max_depth):
        if not level:
            break
        results = await _browse(client, [node_id for node_id, _path in level])
        next_level = []
        for (_parent, parent_path), references in zip(level, results, strict=True):
            for reference in references:
                child = reference.NodeId
                if reference.ReferenceTypeId == HAS_PROPERTY:
                    continue  # EngineeringUnits, EURange...: metadata of a variable, not a tag of its own
                if child in seen or (skip_standard and child.NamespaceIndex == 0):
                    continue
                seen.add(child)
                path = (*parent_path, reference.BrowseName.Name)
                if reference.NodeClass == ua.NodeClass.Variable:
                    found.append((child, path))
                next_level.append((child, path))
        level = next_level
    return await _describe(client, found)


async def _browse(client: Client, node_ids: list[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    parameters = ua.BrowseParameters()
    parameters.View = ua.ViewDescription()
    parameters.RequestedMaxReferencesPerNode = 0
    for node_id in node_ids:
        description = ua.BrowseDescription()
        description.NodeId = node_id
        description.BrowseDirection = ua.BrowseDirection.Forward
        description.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
        description.IncludeSubtypes = True
        description.NodeClassMask = ua.NodeClass.Object | ua.NodeClass.Variable
        description.ResultMask = ua.BrowseResultMask.All
        parameters.NodesToBrowse.append(description)
    references: list[list[ua.ReferenceDescription]] = []
    for result in await client.uaclient.browse(parameters):
        found = list(result.References)
        continuation = result.ContinuationPoint
        while continuation:  # the server split a long answer
            more = ua.BrowseNextParameters()
            more.ContinuationPoints = [continuation]
            (next_result,) = await client.uaclient.browse_next(more)
            found += next_result.References
            continuation = next_result.ContinuationPoint
        references.append(found)
    return references


async def _describe(client: Client, found: list[tuple[ua.NodeId, tuple[str, ...]]]) -> list[FoundVariable]:
    if not found:
        return []
    nodes = [client.get_node(node_id) for node_id, _path in found]
    data_types = await client.read_attributes(nodes, ua.AttributeIds.DataType)
    access = await client.read_attributes(nodes, ua.AttributeIds.AccessLevel)
    variables = []
    for (node_id, path), data_type, access_level in zip(found, data_types, access, strict=True):
        type_id = data_type.Value.Value if data_type.StatusCode.is_good() else None
        level = access_level.Value.Value if access_level.StatusCode.is_good() else 0
        variables.append(
            FoundVariable(node_id.to_string(), path, _type_name(type_id), bool((level or 0) & ACCESS_CURRENT_WRITE))
        )
    return variables


def _type_name(type_id: ua.NodeId | None) -> str:
    if not isinstance(type_id, ua.NodeId):
        return "unknown"
    if type_id.NamespaceIndex == 0 and isinstance(type_id.Identifier, int):
        return ua.ObjectIdNames.get(type_id.Identifier, type_id.to_string())
    return type_id.to_string()


def snake_case(text: str) -> str:
    """'SpindleTemp' -> 'spindle_temp', 'Oil Pressure (bar)' -> 'oil_pressure_bar'; always a valid tag name."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return text or "tag"


def tag_names(paths: list[tuple[str, ...]]) -> list[str]:
    """A unique, valid tag name per browse path: the last name, plus parents only where needed."""
    depth = dict.fromkeys(range(len(paths)), 1)
    while True:
        names = [_joined(path, depth[i]) for i, path in enumerate(paths)]
        clashing = {i for i, name in enumerate(names) if names.count(name) > 1 and depth[i] < len(paths[i])}
        if not clashing:
            break
        for i in clashing:
            depth[i] += 1
    unique: list[str] = []
    for name in names:
        candidate, counter = name, 2
        while candidate in unique:
            suffix = f"_{counter}"
            candidate, counter = name[: MAX_TAG_NAME - len(suffix)] + suffix, counter + 1
        unique.append(candidate)
    return unique


def _joined(path: tuple[str, ...], depth: int) -> str:
    name = "_".join(snake_case(part) for part in path[-depth:])
    return name[-MAX_TAG_NAME:].lstrip("_.-") or "tag"


def device_yaml(variables: list[FoundVariable], *, url: str, device: str, area: str, line: str, source: str) -> str:
    """Ready-to-paste YAML: a one-item device list with one subscribed tag per variable, in path order."""
    variables = sorted(variables, key=lambda v: v.path)
    tags = {}
    for name, variable in zip(tag_names([v.path for v in variables]), variables, strict=True):
        note = f"{'/'.join(variable.path)} ({variable.data_type}{', writable on the server' if variable.writable_on_server else ''})"
        tags[name] = {"node": variable.node_id, "description": note}
    devices = [
        {"name": device, "area": area, "line": line, "protocol": "opcua", "connection": {"url": url}, "tags": tags}
    ]
    header = (
        f"# {source}\n"
        f"# {len(variables)} variable(s). Paste under `devices:`; set area and line; add scale, unit, role\n"
        "# or `mode: poll` where needed. Write-back stays off until you add `writable: true`.\n"
    )
    return header + yaml.safe_dump(devices, sort_keys=False, allow_unicode=True, width=200)
