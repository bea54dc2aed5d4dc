"""A configuration problem as the integrator sees it: where it is, which key, what is wrong.

The loader collects every problem instead of stopping at the first, so one run of
`edgefab config check` shows everything there is to fix.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    line: int  # 1-based
    col: int  # 1-based
    key_path: str  # e.g. devices.press01.tags.temp.address; empty for file-level problems (YAML syntax)
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.key_path}: {self.message}" if self.key_path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason, in file order."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_key_path(parts: tuple[object, ...] | list[object]) -> str:
    """`('devices', 'press01', 'tags', 'temp')` -> `devices.press01.tags.temp`; list indices as `[3]`."""
    text = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
