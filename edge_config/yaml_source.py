"""YAML read into plain dicts and lists that remember where every key and item was written.

ruamel.yaml composes the node tree (with line and column of every node); we build the
values ourselves so that duplicate keys are reported instead of silently overwritten and
every later error can point at `file:line:col`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from edge_config.problems import ConfigProblem, format_key_path

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SYNTAX_HINTS = {
    "mapping values are not allowed": " (check the indentation of this line; quote values that contain ': ')",
    "found character '\\t'": " (indent with spaces, not tabs)",
    "while parsing a flow mapping": " (a '{' without its '}', or a missing comma?)",
    "while parsing a flow sequence": " (a '[' without its ']', or a missing comma?)",
    "could not find expected ':'": " (a key without ':', or an unclosed quote?)",
    "found duplicate anchor": " (each &anchor name may be defined once)",
    "found undefined alias": " (define the &anchor before using *anchor)",
}
"""Plain-language hints for the YAML errors integrators meet most."""
_PATH_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Pos:
    """Where something was written: 1-based line and column in a file (as the user named it)."""

    file: str
    line: int
    col: int


class LMap(dict):
    """A mapping that knows where it starts and where each of its keys was written."""

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[Any, Pos] = {}

    def put(self, key: Any, value: Any, pos: Pos) -> None:
        self[key] = value
        self.key_pos[key] = pos


class LSeq(list):
    """A list that knows where it starts and where each item was written."""

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos: list[Pos] = []

    def add(self, value: Any, pos: Pos) -> None:
        self.append(value)
        self.item_pos.append(pos)


def child_pos(container: Any, key: Any, default: Pos) -> Pos:
    """Position of `key` (or list index) inside a located container, else `default`."""
    if isinstance(container, LMap):
        return container.key_pos.get(key, default)
    if isinstance(container, LSeq) and isinstance(key, int) and 0 <= key < len(container.item_pos):
        return container.item_pos[key]
    return default


def plain(value: Any) -> Any:
    """The same data as ordinary dicts and lists (what pydantic gets)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def read_yaml(text: str, file: str, problems: list[ConfigProblem]) -> Any:
    """Parse one YAML document; syntax errors and duplicate keys become problems.

    Returns None when the text cannot be parsed at all.
    """
    yaml = YAML(typ="safe", pure=True)
    try:
        node = yaml.compose(text)
    except ReaderError as error:  # bytes that YAML does not allow (NUL, control characters)
        code = error.character if isinstance(error.character, int) else ord(error.character)
        line = text.count("\n", 0, error.position) + 1
        col = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        problems.append(
            ConfigProblem(file, line, col, "", f"not a text file YAML can read: character #x{code:04x} is not allowed")
        )
        return None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = ": ".join(part for part in (error.context, error.problem) if part)
        hint = next((h for text, h in _SYNTAX_HINTS.items() if text in what), "")
        problems.append(ConfigProblem(file, line, col, "", f"YAML syntax error: {what}{hint}"))
        return None
    if node is None:
        return None
    return _Builder(yaml.constructor, file, problems).build(node)


class _Builder:
    def __init__(self, constructor: Any, file: str, problems: list[ConfigProblem]) -> None:
        self.constructor = constructor
        self.file = file
        self.problems = problems

    def pos(self, node: Node) -> Pos:
        return Pos(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: tuple[Any, ...] = ()) -> Any:
        if len(path) > 50:
            raise RecursionError("YAML nested more than 50 levels (recursive alias?)")
        if isinstance(node, MappingNode):
            return self.build_map(node, path)
        if isinstance(node, SequenceNode):
            seq = LSeq(self.pos(node))
            for index, item in enumerate(node.value):
                seq.add(self.build(item, (*path, _item_label(item, index, path))), self.pos(item))
            return seq
        return self.scalar(node)

    def scalar(self, node: ScalarNode) -> Any:
        value = self.constructor.construct_object(node, deep=True)
        if not isinstance(value, str | int | float | bool | type(None)):
            value = str(node.value)  # dates and other YAML types: keep the text as written
        return value

    def build_map(self, node: MappingNode, path: tuple[Any, ...]) -> LMap:
        mapping = LMap(self.pos(node))
        merged: list[LMap] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                source = self.build(value_node, (*path, "<<"))
                merged.extend(m for m in (source if isinstance(source, list) else [source]) if isinstance(m, LMap))
                continue
            key = self.scalar(key_node) if isinstance(key_node, ScalarNode) else str(key_node.value)
            key_pos = self.pos(key_node)
            if key in mapping:
                first = mapping.key_pos[key]
                self.problems.append(
                    ConfigProblem(
                        self.file,
                        key_pos.line,
                        key_pos.col,
                        format_key_path((*path, key)),
                        f"duplicate key {key!r} (first written at line {first.line}); each key may appear once",
                    )
                )
                continue
            mapping.put(key, self.build(value_node, (*path, key)), key_pos)
        for source in merged:  # YAML merge keys (<<: *anchor): explicit keys win
            for key, value in source.items():
                if key not in mapping:
                    mapping.put(key, value, source.key_pos[key])
        return mapping


def _item_label(item: Node, index: int, path: tuple[Any, ...]) -> Any:
    """Devices appear in key paths by name (devices.press01), other list items by index."""
    if path == ("devices",) and isinstance(item, MappingNode):
        for key_node, value_node in item.value:
            if key_node.value == "name" and isinstance(value_node, ScalarNode) and is_path_name(value_node.value):
                return value_node.value
    return index


def is_path_name(value: Any) -> bool:
    """A device name good enough to stand for the device in key paths (else its list index is used)."""
    return isinstance(value, str) and _PATH_NAME.match(value) is not None
