"""The one value type that flows from every connector to every sink.

Everything after a connector speaks only `Sample`s: the protocol details stay in the
connector, the delivery details stay in the sink.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

Value = bool | int | float | str | None


class Quality(StrEnum):
    """OPC UA style quality, reduced to the three classes an operator understands."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class Sample:
    """One observed value of one tag.

    `tag` is the full ISA-95 path `enterprise/site/area/line/machine/tag`;
    `ts_ns` is the source timestamp in UTC nanoseconds; `reason` explains a
    quality other than good in plain language ("timeout after 1.0 s", "Modbus
    exception 2: illegal data address").
    """

    tag: str
    value: Value
    ts_ns: int
    quality: Quality = Quality.GOOD
    reason: str = ""

    @property
    def machine_path(self) -> str:
        """The path of the machine the tag belongs to (everything before the last segment)."""
        return self.tag.rsplit("/", 1)[0]

    @property
    def tag_name(self) -> str:
        """The last path segment: the tag's own name on its machine."""
        return self.tag.rsplit("/", 1)[-1]


def now_ns() -> int:
    """Wall-clock time in UTC nanoseconds, the timestamp unit of every Sample."""
    return time.time_ns()
