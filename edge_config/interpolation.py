"""`${VAR}` and `${VAR:-default}` in YAML string values, so secrets stay out of the file.

`$${` writes a literal `${`. Substitution happens in values only (never in keys or include
paths) and always yields text; numeric settings accept numeric text (`port: ${PORT:-502}`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}|\$\{([^}]*)\}?", re.DOTALL)


class MissingVariable(ValueError):
    pass


def interpolate(text: str, env: Mapping[str, str], secret: bool = False) -> str:
    """Replace every placeholder; raise MissingVariable / ValueError naming the culprit.

    For a `secret` value (a password) the messages do not quote the text.
    """
    missing: list[str] = []
    where = "" if secret else f" in {text!r}"

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            raise ValueError(
                f"malformed placeholder {'in this secret value' if secret else repr(match.group(0)) + where}: write ${{NAME}} or ${{NAME:-default}} "
                "(NAME of letters, digits and _), or $${ for a literal ${"
            )
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    result = _PLACEHOLDER.sub(substitute, text)
    if missing:
        names = ", ".join(missing)
        raise MissingVariable(
            f"environment variable {names} is not set{' (' + where.strip() + ')' if where else ''}: "
            f"set it, or give a default as ${{{missing[0]}:-value}}"
        )
    return result
