"""The allow-list check every write to a machine passes first, whatever the protocol.

Only tags marked `writable: true` in the site YAML may be written, and a number must lie
within the tag's `min`/`max`. The check refuses before anything is sent to the machine.
"""

from __future__ import annotations

from typing import TypeVar

from edge_config.schema import Device, TagBase

T = TypeVar("T", bound=TagBase)


def writable_tag(device: Device, tag_name: str, value: object, kind: type[T], protocol: str) -> T:
    """The tag `tag_name` of `device` if `value` may be written to it; ValueError with the reason otherwise."""
    tag = device.tags.get(tag_name)
    if not isinstance(tag, kind):
        raise ValueError(f"{device.name} has no {protocol} tag {tag_name!r}")
    if not tag.writable:
        raise ValueError(f"{device.name}/{tag_name} is not writable (set writable: true in the config)")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if tag.min is not None and value < tag.min:
            raise ValueError(f"{value} is below the minimum {tag.min:g} of {tag_name}")
        if tag.max is not None and value > tag.max:
            raise ValueError(f"{value} is above the maximum {tag.max:g} of {tag_name}")
    return tag
