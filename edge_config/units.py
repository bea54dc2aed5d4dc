"""Durations and sizes as integrators write them: `500ms`, `2s`, `1m`, `1GiB`, `500MB`."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_DURATION_FACTOR_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_FACTOR = {
    None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}  # fmt: skip


def parse_duration_s(text: str | int | float) -> float:
    """Seconds from `500ms`, `2s`, `1.5m`, `1h`, `1d` or a bare number of seconds."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 500ms, 2s, 1m or 1h")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a duration: use a number with ms, s, m, h or d, e.g. 500ms or 2s")
        seconds = float(match.group(1)) * _DURATION_FACTOR_S[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_size_bytes(text: str | int) -> int:
    """Bytes from `1GiB`, `500MB`, `64KiB` or a bare number of bytes."""
    if isinstance(text, bool):
        raise ValueError("expected a size such as 500MB or 1GiB")
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size: use a number with B, KB, MB, GB, KiB, MiB or GiB, e.g. 1GiB")
    return int(float(match.group(1)) * _SIZE_FACTOR[match.group(2)])
