"""Localised labels for plant data: machine states, downtime and scrap reasons.

State names come from the PLC's enum map and reason codes from master data; both are codes, so
their labels live in the catalogues (`state.<name>`, `downtime_reason.<code>`, `scrap_reason.<code>`).
A code the catalogue does not know falls back to the master-data name, then to the code itself.
"""

from __future__ import annotations

from mes_lite.web.i18n import Translator

STATE_ICONS: dict[str, str] = {
    "running": "▶",
    "idle": "‖",
    "starved": "◌",
    "blocked": "⊘",
    "planned_stop": "◷",
    "setup": "⚙",
    "fault": "⚠",
    "stopped": "■",
    "unknown": "?",
}
"""A symbol per state next to the colour and the text, so no one needs colour to read a tile."""

KNOWN_STATES = tuple(STATE_ICONS)


def state_key(state: str | None) -> str:
    """The CSS/catalogue key of a machine state: a known name, else `unknown`."""
    if not state:
        return "unknown"
    name = state.strip().lower()
    return name if name in STATE_ICONS else "unknown"


def state_label(t: Translator, state: str | None) -> str:
    key = state_key(state)
    if key == "unknown" and state:
        return t("state.other", name=state)
    return t(f"state.{key}")


def reason_label(t: Translator, code: str | None, name: str | None = None, kind: str = "downtime_reason") -> str:
    if not code:
        return ""
    key = f"{kind}.{code}"
    if t.has(key):
        return t(key)
    return name or code
