"""Site YAML -> `SiteConfig`, with every problem reported as `file:line:col: key.path: message`.

Steps, in order: read each file with positions (`yaml_source`), expand `include:` files,
interpolate `${VAR}` placeholders, merge the documents, resolve device profiles, validate
each part with the model that fits its protocol (so errors are about *that* protocol, not a
union of all of them), then run the checks that need the whole configuration
(`semantics`). Problems are collected, never raised one by one; `load_config` raises a
single `ConfigError` holding all of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from edge_config import semantics
from edge_config.alarm_checks import check_alarms
from edge_config.alarms_schema import Alarms
from edge_config.interpolation import interpolate
from edge_config.messages import SECRET_KEYS, did_you_mean, message_for, show, unknown_key_message
from edge_config.problems import ConfigError, ConfigProblem, format_key_path
from edge_config.schema import (
    Buffer,
    Device,
    Gateway,
    ModbusRtuConnection,
    ModbusTag,
    ModbusTcpConnection,
    OpcUaConnection,
    OpcUaTag,
    Profile,
    Protocol,
    Sinks,
    Site,
    SiteConfig,
)
from edge_config.yaml_source import LMap, LSeq, Pos, child_pos, is_path_name, plain, read_yaml

TOP_LEVEL_KEYS = ("include", "site", "gateway", "profiles", "devices", "sinks", "buffer", "alarms")
_DEFINED_ONCE = ("site", "gateway", "buffer", "alarms")
_MERGED_MAPS = ("profiles", "sinks")

CONNECTION_MODEL: dict[Protocol, type[BaseModel]] = {
    Protocol.MODBUS: ModbusTcpConnection,
    Protocol.MODBUS_RTU: ModbusRtuConnection,
    Protocol.OPCUA: OpcUaConnection,
}
_CONNECTION_MARKER = {"url": Protocol.OPCUA, "serial_port": Protocol.MODBUS_RTU, "host": Protocol.MODBUS}
PROTOCOL_TITLE = {Protocol.MODBUS: "Modbus TCP", Protocol.MODBUS_RTU: "Modbus RTU", Protocol.OPCUA: "OPC UA"}
_CONNECTION_EXAMPLE = {
    Protocol.MODBUS: "host: (and port, unit) for Modbus TCP",
    Protocol.MODBUS_RTU: "serial_port: (and baudrate, parity, unit) for Modbus RTU",
    Protocol.OPCUA: "url: opc.tcp://... for OPC UA",
}


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> SiteConfig:
    """The resolved configuration; raises ConfigError listing every problem found."""
    problems, config = _Loader(env if env is not None else os.environ).load(str(path))
    if problems or config is None:
        raise ConfigError(problems)
    return config


def check_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    """Every problem in the configuration (empty when it loads)."""
    problems, _ = _Loader(env if env is not None else os.environ).load(str(path))
    return problems


def config_files(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> list[Path]:
    """Every file the configuration at `path` is made of: itself and its includes, resolved and sorted.

    For `edgefab run --watch`. Includes not found are listed too, so that creating one is noticed;
    the configuration need not be valid (the files it names are listed all the same).
    """
    loader = _Loader(env if env is not None else os.environ)
    loader.load(str(path))
    return sorted(loader.included | loader.missing)


def is_modbus(protocol: Protocol | None) -> bool:
    return protocol in (Protocol.MODBUS, Protocol.MODBUS_RTU)


def _inside_tags(loc: tuple[Any, ...]) -> bool:
    """An error inside a tag's value: validate_tags reports those with the protocol's own tag model."""
    return loc[:1] == ("tags",) and len(loc) >= 2 and loc[2:] != ("[key]",)


@dataclass
class _Document:
    label: str
    root: LMap


@dataclass
class ResolvedDevice:
    """A validated device with the located YAML it came from (profile entries included)."""

    device: Device
    node: LMap
    path: tuple[Any, ...]


class _Loader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[ConfigProblem] = []
        self.reported: set[tuple[str, int, int, str]] = set()
        self.poisoned: set[Pos] = set()  # positions already reported; later consequential errors there are dropped
        self.included: set[Path] = set()
        self.missing: set[Path] = set()  # includes not found (listed by config_files)
        self.file_order: dict[str, int] = {}
        self.devices_malformed = False
        self.validated_tags: dict[tuple[int, type[BaseModel]], Any] = {}

    # -- reporting ---------------------------------------------------------------------------

    def report(self, pos: Pos, path: Iterable[Any], message: str, poison: bool = False) -> None:
        if pos in self.poisoned and not poison:
            return
        key = (pos.file, pos.line, pos.col, message)
        if key in self.reported:
            return
        self.reported.add(key)
        if poison:
            self.poisoned.add(pos)
        self.problems.append(ConfigProblem(pos.file, pos.line, pos.col, format_key_path(tuple(path)), message))

    def report_at(self, container: Any, key: Any, path: tuple[Any, ...], message: str, poison: bool = False) -> None:
        """Report at `key` inside a located container (or at the container when the key is absent)."""
        self.report(child_pos(container, key, getattr(container, "pos", Pos("?", 1, 1))), path, message, poison)

    def sorted_problems(self) -> list[ConfigProblem]:
        return sorted(self.problems, key=lambda p: (self.file_order.get(p.file, 1 << 30), p.line, p.col))

    # -- whole load --------------------------------------------------------------------------

    def load(self, label: str) -> tuple[list[ConfigProblem], SiteConfig | None]:
        self.file_order[label] = 0
        top = Path(label).resolve()
        documents = self.collect(label, top, [(top, label)], None)
        if not documents:
            return self.sorted_problems(), None
        for document in documents:
            self.interpolate_tree(document.root, ())
        root = self.merge(documents)
        config = self.validate_site(root, documents[-1].label)
        problems = self.sorted_problems()
        return problems, (config if not problems else None)

    # -- files and includes -----------------------------------------------------------------

    def read(self, label: str, path: Path, origin: tuple[Pos, tuple[Any, ...]] | None) -> Any:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            if origin:
                self.report(origin[0], origin[1], f"cannot read include {label!r}: {reason}")
            else:
                self.report(Pos(label, 1, 1), (), f"cannot read the configuration: {reason}")
            return None
        before = len(self.problems)
        root = read_yaml(text, label, self.problems)
        for problem in self.problems[before:]:
            self.reported.add((problem.file, problem.line, problem.col, problem.message))
        if root is None and len(self.problems) == before:
            self.report(
                Pos(label, 1, 1), (), "the file is empty: expected site:, devices: and the other top-level keys"
            )
        elif root is not None and not isinstance(root, LMap):
            self.report(
                root.pos if isinstance(root, LSeq) else Pos(label, 1, 1),
                (),
                f"got {show(root)} at the top of the file; expected a mapping of top-level keys: "
                + ", ".join(TOP_LEVEL_KEYS),
            )
            return None
        return root

    def collect(
        self,
        label: str,
        path: Path,
        stack: list[tuple[Path, str]],
        origin: tuple[Pos, tuple[Any, ...]] | None,
    ) -> list[_Document]:
        """This file's documents in merge order: its includes (depth first), then itself."""
        self.included.add(path)
        root = self.read(label, path, origin)
        if root is None:
            return []
        documents: list[_Document] = []
        if "include" in root:
            include_pos = root.key_pos["include"]
            includes = root.pop("include")
            items: list[tuple[Any, Pos, tuple[Any, ...]]]
            if isinstance(includes, str):
                items = [(includes, include_pos, ("include",))]
            elif isinstance(includes, LSeq):
                items = [(v, includes.item_pos[i], ("include", i)) for i, v in enumerate(includes)]
            else:
                items = []
                self.report(include_pos, ("include",), f"got {show(includes)}; expected a file name or a list of them")
            for name, pos, key_path in items:
                documents.extend(self.collect_include(label, path, stack, name, pos, key_path))
        documents.append(_Document(label, root))
        return documents

    def collect_include(
        self,
        label: str,
        path: Path,
        stack: list[tuple[Path, str]],
        name: Any,
        pos: Pos,
        key_path: tuple[Any, ...],
    ) -> list[_Document]:
        if not isinstance(name, str) or not name.strip():
            self.report(pos, key_path, f"got {show(name)}; expected the name of a YAML file to include")
            return []
        target = (path.parent / name).resolve()
        child_label = name if os.path.isabs(name) else os.path.normpath(os.path.join(os.path.dirname(label), name))
        if target == path:
            self.report(pos, key_path, f"{label!r} includes itself: remove this include")
            return []
        if any(target == seen for seen, _ in stack):
            chain = [lbl for _, lbl in stack[[p for p, _ in stack].index(target) :]]
            self.report(pos, key_path, "include cycle: " + " -> ".join([*chain, child_label]) + ": remove one include")
            return []
        if target in self.included:
            return []  # included earlier through another file: include guards, like C headers
        if not target.is_file():
            self.missing.add(target)
            where = f"no file {child_label!r}" if child_label != name else "no such file"
            self.report(
                pos, key_path, f"include {name!r} not found: {where} (paths are relative to the folder of {label!r})"
            )
            return []
        self.file_order.setdefault(child_label, len(self.file_order))
        return self.collect(child_label, target, [*stack, (target, child_label)], (pos, key_path))

    # -- interpolation and merge -------------------------------------------------------------

    def interpolate_tree(self, node: Any, path: tuple[Any, ...]) -> None:
        entries: Iterable[tuple[Any, Any]]
        if isinstance(node, LMap):
            entries = list(node.items())
        elif isinstance(node, LSeq):
            entries = list(enumerate(node))
        else:
            return
        for key, value in entries:
            name = value.get("name") if path == ("devices",) and isinstance(value, LMap) else None
            # devices are named in key paths, as everywhere else
            key_in_path = name if is_path_name(name) else key
            if isinstance(value, str) and "$" in value:
                try:
                    node[key] = interpolate(value, self.env, secret=key in SECRET_KEYS)
                except ValueError as error:
                    self.report_at(node, key, (*path, key_in_path), str(error), poison=True)
            else:
                self.interpolate_tree(value, (*path, key_in_path))

    def merge(self, documents: list[_Document]) -> LMap:
        first = documents[-1].root  # the top file is last in merge order
        root = LMap(Pos(documents[-1].label, 1, 1))
        devices = LSeq(first.pos)
        for document in documents:
            for key, value in document.root.items():
                pos = document.root.key_pos[key]
                if isinstance(key, str) and key.startswith("x-"):
                    continue  # a home for YAML anchors (x-common: &common ...), as in docker compose
                if key not in TOP_LEVEL_KEYS:
                    self.report(pos, (key,), unknown_key_message(key, TOP_LEVEL_KEYS) + " (and x-... for YAML anchors)")
                elif key == "devices":
                    if value is None:
                        pass
                    elif not isinstance(value, LSeq):
                        self.report(
                            pos, (key,), f"got {show(value)}; expected a list of devices, each starting with '- name:'"
                        )
                        self.devices_malformed = True
                        continue
                    else:
                        for index, item in enumerate(value):
                            devices.add(item, value.item_pos[index])
                    root.key_pos.setdefault("devices", pos)
                    root["devices"] = devices
                elif key in _MERGED_MAPS:
                    self.merge_map(root, key, value, pos)
                elif key in root:
                    where = root.key_pos[key]
                    self.report(
                        pos, (key,), f"{key!r} is already defined at {where.file}:{where.line}; define it in one file"
                    )
                else:
                    root.put(key, value, pos)
        return root

    def merge_map(self, root: LMap, key: str, value: Any, pos: Pos) -> None:
        if value is None:
            return
        if not isinstance(value, LMap):
            what = "profile names" if key == "profiles" else "sink names (mqtt, influxdb)"
            self.report(pos, (key,), f"got {show(value)}; expected a mapping of {what}")
            return
        if key not in root:
            root.put(key, LMap(value.pos), pos)
        target: LMap = root[key]
        for name, item in value.items():
            if name in target:
                where = target.key_pos[name]
                self.report(
                    value.key_pos[name],
                    (key, name),
                    f"{key[:-1]} {name!r} is already defined at {where.file}:{where.line}; names must be unique",
                )
            else:
                target.put(name, item, value.key_pos[name])

    # -- validation --------------------------------------------------------------------------

    def validate(
        self,
        model: type[BaseModel],
        node: Any,
        path: tuple[Any, ...],
        at: Pos,
        overrides: dict[str, Any] | None = None,
        skip: Any = None,
    ) -> Any:
        """model.model_validate(node) with each error reported where its key was written."""
        data = plain(node)
        if isinstance(data, dict) and overrides:
            data = {**data, **overrides}
        try:
            return model.model_validate(data)
        except ValidationError as error:
            details = error.errors(include_url=False)
            suggested = {  # 'adress' (unknown) already says 'address' is missing: say it once
                (
                    tuple(d["loc"][:-1]),
                    did_you_mean(str(d["loc"][-1]), [x["loc"][-1] for x in details if x["type"] == "missing"]),
                )
                for d in details
                if d["type"] == "extra_forbidden"
            }
            for detail in details:
                loc = tuple(detail["loc"])
                if skip and skip(loc):
                    continue
                if detail["type"] == "missing" and (loc[:-1], loc[-1]) in suggested:
                    continue
                self.report(
                    self.locate(node, loc, at), (*path, *(p for p in loc if p != "[key]")), message_for(model, detail)
                )
            return None

    @staticmethod
    def locate(node: Any, loc: tuple[Any, ...], at: Pos) -> Pos:
        pos = at
        for part in loc:
            if isinstance(node, LMap) and part in node:
                pos, node = node.key_pos[part], node[part]
            elif isinstance(node, LSeq) and isinstance(part, int) and 0 <= part < len(node):
                pos, node = node.item_pos[part], node[part]
            else:
                break
        return pos

    def validate_site(self, root: LMap, top_label: str) -> SiteConfig | None:
        start = Pos(top_label, 1, 1)
        parts: dict[str, Any] = {}
        for key, model in (("site", Site), ("gateway", Gateway), ("buffer", Buffer)):
            if key in root:
                parts[key] = self.validate(model, root[key], (key,), root.key_pos[key])
            elif key == "site":
                self.report(
                    start, ("site",), "missing required key 'site': expected site: {enterprise: NAME, site: NAME}"
                )
        profiles = self.validate_profiles(root.get("profiles") or LMap(start))
        devices = self.validate_devices(root, profiles, start)
        sinks_node = root.get("sinks")
        parts["sinks"] = self.validate(Sinks, sinks_node or {}, ("sinks",), root.key_pos.get("sinks", start))
        if parts["sinks"] is not None and isinstance(sinks_node, LMap):
            semantics.check_sinks(parts["sinks"], sinks_node, self.report_at)
        if "buffer" in root and parts.get("buffer") is not None:
            semantics.check_buffer(parts["buffer"], root["buffer"], self.report_at)
        semantics.check_devices(devices, self.report_at)
        if "alarms" in root:
            parts["alarms"] = self.validate(Alarms, root["alarms"] or {}, ("alarms",), root.key_pos["alarms"])
            if parts["alarms"] is not None and devices is not None:
                check_alarms(parts["alarms"], root["alarms"], [d.device for d in devices], self.report_at)
        if self.problems or any(v is None for v in parts.values()) or devices is None:
            return None
        try:
            return SiteConfig(
                profiles={name: profile for name, (profile, _) in profiles.items() if profile is not None},
                devices=[d.device for d in devices],
                **{k: v for k, v in parts.items() if v is not None},
            )
        except ValidationError as error:  # a check the loader does not mirror yet: still one line per error
            for detail in error.errors(include_url=False):
                self.report(start, tuple(detail["loc"]), message_for(SiteConfig, detail))
            return None

    def validate_profiles(self, node: LMap) -> dict[str, tuple[Profile | None, LMap]]:
        profiles: dict[str, tuple[Profile | None, LMap]] = {}
        for name, pnode in node.items():
            path = ("profiles", name)
            at = node.key_pos[name]
            profile = self.validate(Profile, pnode, path, at, skip=_inside_tags)
            profiles[name] = (profile, pnode)
            if not isinstance(pnode, LMap):
                continue
            protocol = self.protocol_of(pnode.get("protocol"))
            tags = pnode.get("tags")
            if isinstance(tags, LMap) and protocol is not None:
                valid = self.validate_tags(tags, protocol, (*path, "tags"))
                semantics.check_tags(valid, tags, (*path, "tags"), pnode.get("byte_order"), self.report_at)
        return profiles

    @staticmethod
    def protocol_of(value: Any) -> Protocol | None:
        try:
            return Protocol(value)
        except ValueError:
            return None

    def validate_tags(self, tags: LMap, protocol: Protocol, path: tuple[Any, ...]) -> dict[str, Any]:
        """Each tag validated with the model of its protocol; only the valid ones are returned."""
        valid: dict[str, Any] = {}
        model: type[BaseModel] = ModbusTag if is_modbus(protocol) else OpcUaTag
        for name, tnode in tags.items():
            tpath = (*path, name)
            at = tags.key_pos[name]
            if isinstance(tnode, LMap):
                wrong = "node" if is_modbus(protocol) else "address"
                if wrong in tnode:
                    if wrong == "node":
                        text = f"'node' is an OPC UA key, but this tag is read over {protocol.value}: a Modbus tag needs address: such as hr40001"
                    else:
                        text = "'address' is a Modbus key, but this tag is read over opcua: an OPC UA tag needs node: such as ns=2;s=Machine/State"
                    self.report_at(tnode, wrong, (*tpath, wrong), text)
                    continue
            key = (id(tnode), model)  # a profile's tag node is shared by every device using the profile
            if key not in self.validated_tags:
                self.validated_tags[key] = self.validate(model, tnode, tpath, at)
            tag = self.validated_tags[key]
            if tag is not None:
                valid[name] = tag
        return valid

    def validate_devices(
        self, root: LMap, profiles: dict[str, tuple[Profile | None, LMap]], start: Pos
    ) -> list[ResolvedDevice] | None:
        if self.devices_malformed:
            return None
        if "devices" not in root:
            self.report(
                start, ("devices",), "missing required key 'devices': expected a list of devices ('- name: ...')"
            )
            return None
        devices: LSeq = root["devices"]
        if not devices:
            self.report(root.key_pos["devices"], ("devices",), "no devices: add at least one device under devices:")
            return None
        self.check_unique_device_names(devices)
        resolved: list[ResolvedDevice] = []
        for index, node in enumerate(devices):
            item = self.validate_device(node, index, devices.item_pos[index], profiles)
            if item is not None:
                resolved.append(item)
        return resolved if len(resolved) == len(devices) else None

    def check_unique_device_names(self, devices: LSeq) -> None:
        first_seen: dict[str, Pos] = {}
        for node in devices:
            name = node.get("name") if isinstance(node, LMap) else None
            if not isinstance(name, str):
                continue
            pos = node.key_pos["name"]
            if name in first_seen:
                where = first_seen[name]
                self.report(
                    pos,
                    ("devices", name, "name"),
                    f"device name {name!r} is already used at {where.file}:{where.line}; device names must be unique",
                )
            else:
                first_seen[name] = pos

    def validate_device(
        self, node: Any, index: int, at: Pos, profiles: dict[str, tuple[Profile | None, LMap]]
    ) -> ResolvedDevice | None:
        name = node.get("name") if isinstance(node, LMap) else None
        path: tuple[Any, ...] = ("devices", name if is_path_name(name) else index)
        if not isinstance(node, LMap):
            self.report(
                at,
                path,
                f"got {show(node)}; expected a device: a mapping with name, area, line, protocol, connection, tags",
            )
            return None
        resolved, profile_ok = self.resolve_profile(node, path, profiles)
        protocol = self.protocol_of(resolved.get("protocol"))
        if "protocol" not in resolved and "profile" not in node:
            self.report(
                node.pos,
                (*path, "protocol"),
                "missing required key 'protocol': expected one of 'modbus', 'modbus-rtu', 'opcua' (or a profile: that sets it)",
            )
        if protocol is None:  # still check the tags, as the connection suggests
            connection_node = resolved.get("connection")
            if isinstance(connection_node, LMap):
                protocol = next((p for key, p in _CONNECTION_MARKER.items() if key in connection_node), None)
        connection = self.validate_connection(resolved, protocol, path)
        tags: dict[str, Any] = {}
        tags_node = resolved.get("tags")
        if isinstance(tags_node, LMap):
            if protocol is not None and profile_ok:
                tags = self.validate_tags(tags_node, protocol, (*path, "tags"))
            if not tags_node:
                self.report_at(resolved, "tags", (*path, "tags"), "no tags: add tags: (or a profile: with tags)")
        elif "tags" not in resolved and profile_ok:
            self.report(
                node.pos, (*path, "tags"), "missing required key 'tags': expected tags: (or a profile: with tags)"
            )

        def skip(loc: tuple[Any, ...]) -> bool:
            return loc[:1] == ("connection",) or (len(loc) >= 3 and _inside_tags(loc))

        overrides: dict[str, Any] = {"connection": connection}
        if isinstance(tags_node, LMap):
            overrides["tags"] = {n: tags.get(n, plain(v)) for n, v in tags_node.items()}
        device = self.validate(Device, resolved, path, at, overrides=overrides, skip=skip)
        if device is None or connection is None or (isinstance(tags_node, LMap) and len(tags) != len(tags_node)):
            return None
        if isinstance(tags_node, LMap):
            semantics.check_tags(tags, tags_node, (*path, "tags"), device.byte_order, self.report_at, device)
        return ResolvedDevice(device, resolved, path)

    def resolve_profile(
        self, node: LMap, path: tuple[Any, ...], profiles: dict[str, tuple[Profile | None, LMap]]
    ) -> tuple[LMap, bool]:
        """The device with its profile's protocol, byte order and tags filled in (own settings win).

        The flag is False when the profile could not be applied (its problem is already reported).
        """
        resolved = LMap(node.pos)
        for key, value in node.items():
            resolved.put(key, value, node.key_pos[key])
        if "profile" not in node:
            return resolved, True
        name = node["profile"]
        if not isinstance(name, str):
            return resolved, False  # the type error comes from validating the device
        if name not in profiles:
            guess = did_you_mean(str(name), profiles) if isinstance(name, str) else None
            hint = f"; did you mean {guess!r}?" if guess else ";"
            defined = ", ".join(profiles) if profiles else "none (add them under profiles:)"
            self.report_at(
                node, "profile", (*path, "profile"), f"unknown profile {show(name)}{hint} defined profiles: {defined}"
            )
            return resolved, False
        _, pnode = profiles[name]
        if not isinstance(pnode, LMap):
            return resolved, False
        own_protocol, profile_protocol = self.protocol_of(node.get("protocol")), self.protocol_of(pnode.get("protocol"))
        if own_protocol and profile_protocol and is_modbus(own_protocol) != is_modbus(profile_protocol):
            self.report_at(
                node,
                "protocol",
                (*path, "protocol"),
                f"protocol {own_protocol.value!r} cannot use profile {name!r}, whose tags are for {profile_protocol.value!r}",
            )
            return resolved, False
        for key in ("protocol", "byte_order"):
            if key not in node and key in pnode:
                resolved.put(key, pnode[key], pnode.key_pos[key])
        ptags, dtags = pnode.get("tags"), node.get("tags")
        tags = LMap(dtags.pos if isinstance(dtags, LMap) else getattr(ptags, "pos", node.pos))
        for source in (ptags, dtags):
            if isinstance(source, LMap):
                for tag_name, value in source.items():
                    tags.put(tag_name, value, source.key_pos[tag_name])  # device tags replace profile tags whole
        if dtags is None or isinstance(dtags, LMap):
            resolved.put("tags", tags, node.key_pos.get("tags", pnode.key_pos.get("tags", node.pos)))
        return resolved, True

    def validate_connection(self, resolved: LMap, protocol: Protocol | None, path: tuple[Any, ...]) -> Any:
        cpath = (*path, "connection")
        if "connection" not in resolved:
            wanted = (
                _CONNECTION_EXAMPLE.get(protocol, "host:, serial_port: or url:")
                if protocol
                else "host:, serial_port: or url:"
            )
            self.report(resolved.pos, cpath, f"missing required key 'connection': expected a mapping with {wanted}")
            return None
        node = resolved["connection"]
        at = resolved.key_pos["connection"]
        if not isinstance(node, LMap):
            self.report(at, cpath, f"got {show(node)}; expected a mapping with host:, serial_port: or url:")
            return None
        kind = next((p for key, p in _CONNECTION_MARKER.items() if key in node), None)
        if protocol is None:
            protocol = kind
            if protocol is None:
                return None
        if kind is not None and kind != protocol:
            marker = next(key for key, p in _CONNECTION_MARKER.items() if p == kind)
            self.report_at(
                node,
                marker,
                (*cpath, marker),
                f"{marker}: is for {PROTOCOL_TITLE[kind]} connections, but the device's protocol is {protocol.value!r}: "
                f"use {_CONNECTION_EXAMPLE[protocol]}, or set protocol: {kind.value}",
            )
            return None
        return self.validate(CONNECTION_MODEL[protocol], node, cpath, at)
