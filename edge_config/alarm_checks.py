"""Alarm rules that need the devices: which machines a definition applies to, and that its tags exist.

`alarm_targets` is also what the gateway uses to instantiate alarms, so the check and the
runtime cannot disagree about where an alarm applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from edge_config.alarms_schema import AlarmDefinition, AlarmKind, Alarms
from edge_config.messages import did_you_mean
from edge_config.schema import Device, Role

ReportAt = Callable[..., None]


def state_tag_of(device: Device) -> str | None:
    """The tag carrying role `state` on a device, if any."""
    return next((name for name, tag in device.tags.items() if tag.role == Role.STATE), None)


def watched_tag(definition: AlarmDefinition, device: Device) -> str | None:
    """The tag a definition watches on `device` (a state alarm without `tag` watches the role-state tag)."""
    if definition.tag is not None:
        return definition.tag
    return state_tag_of(device) if definition.kind is AlarmKind.STATE else None


def alarm_targets(definition: AlarmDefinition, devices: Iterable[Device]) -> list[Device]:
    """The devices a definition applies to: named machines, a profile's devices, or every device with the tag."""
    devices = list(devices)
    if definition.machines is not None:
        return [d for d in devices if d.name in definition.machines]
    if definition.profile is not None:
        return [d for d in devices if d.profile == definition.profile]
    return [d for d in devices if (tag := watched_tag(definition, d)) is not None and tag in d.tags]


def check_alarms(alarms: Alarms, node: Any, devices: list[Device], report_at: ReportAt) -> None:
    """Every machine, profile, tag and state an alarm definition names must exist."""
    by_name = {d.name: d for d in devices}
    profiles = {d.profile for d in devices if d.profile}
    definitions_node = node.get("definitions") if hasattr(node, "get") else None
    for name, definition in alarms.definitions.items():
        dnode = definitions_node.get(name) if definitions_node is not None else None
        path = ("alarms", "definitions", name)

        def report(key: str, message: str, dnode: Any = dnode, path: tuple[str, ...] = path) -> None:
            report_at(dnode if dnode is not None else node, key, (*path, key), message)

        for machine in definition.machines or ():
            if machine not in by_name:
                hint = did_you_mean(machine, by_name)
                report("machines", f"unknown machine {machine!r}" + (f"; did you mean {hint!r}?" if hint else ""))
        if definition.profile is not None and definition.profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            report("profile", f"no device uses profile {definition.profile!r} (profiles in use: {known})")
        targets = alarm_targets(definition, devices)
        if not targets and not (definition.machines or definition.profile):
            what = definition.tag or "a tag with role state"
            report("tag" if definition.tag else "kind", f"no device has {what}, so this alarm would never run")
        for device in targets:
            tag = watched_tag(definition, device)
            if tag is None or tag not in device.tags:
                hint = did_you_mean(tag or "", device.tags) if tag else None
                what = f"tag {tag!r}" if tag else "a tag with role state (give tag:)"
                report(
                    "tag",
                    f"device {device.name} has no {what}" + (f"; did you mean {hint!r}?" if hint else ""),
                )
                continue
            if definition.setpoint_tag is not None and definition.setpoint_tag not in device.tags:
                report("setpoint_tag", f"device {device.name} has no tag {definition.setpoint_tag!r}")
            if definition.kind is AlarmKind.STATE:
                mapping = device.tags[tag].map
                if mapping:
                    unknown = [s for s in definition.states or () if s not in mapping.values()]
                    if unknown:
                        allowed = ", ".join(dict.fromkeys(mapping.values()))
                        report(
                            "states", f"{', '.join(map(repr, unknown))} not a state of {device.name}.{tag} ({allowed})"
                        )
