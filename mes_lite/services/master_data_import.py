"""Import master data from a YAML file (sections) or a CSV file (one section), all or nothing.

Every row is validated; every problem is reported as `file:line: section[row]: field: message`,
and if there is any, nothing is written (the caller's transaction is rolled back). Rows are
applied section by section in dependency order (sites before areas before lines ...).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session

from mes_lite.services.errors import ServiceError
from mes_lite.services.master_data import SECTIONS, ShiftIn

CSV_LIST_SEPARATOR = ";"


class ImportFailed(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


def _field_name(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(row)"


def _csv_rows(text: str, section: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    for row in reader:
        cleaned: dict[str, Any] = {k.strip(): v for k, v in row.items() if k is not None and v not in (None, "")}
        if section == "shifts" and "breaks" in cleaned:
            # breaks in one cell: 10:00-10:30;12:00-12:30
            breaks = []
            for item in str(cleaned["breaks"]).split(CSV_LIST_SEPARATOR):
                start, _, end = item.strip().partition("-")
                breaks.append({"start": start.strip(), "end": end.strip()})
            cleaned["breaks"] = breaks
        rows.append((reader.line_num, cleaned))
    return rows


def parse(text: str, source: str, kind: str | None = None) -> dict[str, list[tuple[int | None, dict[str, Any]]]]:
    """Rows per section from YAML (a mapping of sections) or CSV (`kind` or the file stem names the section)."""
    if source.lower().endswith(".csv"):
        section = kind or Path(source).stem
        if section not in SECTIONS:
            raise ImportFailed([f"{source}: unknown section {section!r}; use --kind with one of {', '.join(SECTIONS)}"])
        return {section: list(_csv_rows(text, section))}
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ImportFailed([f"{where}: not valid YAML: {getattr(e, 'problem', e)}"]) from None
    if not isinstance(document, dict):
        raise ImportFailed([f"{source}: expected a mapping of sections ({', '.join(SECTIONS)})"])
    unknown = [key for key in document if key not in SECTIONS]
    if unknown:
        raise ImportFailed([f"{source}: unknown section {k!r}; allowed: {', '.join(SECTIONS)}" for k in unknown])
    result: dict[str, list[tuple[int | None, dict[str, Any]]]] = {}
    for section, rows in document.items():
        if not isinstance(rows, list):
            raise ImportFailed([f"{source}: section {section!r} must be a list of rows"])
        result[section] = [(None, row if isinstance(row, dict) else {"__not_a_mapping__": row}) for row in rows]
    return result


def import_rows(
    session: Session, sections: dict[str, list[tuple[int | None, dict[str, Any]]]], source: str
) -> dict[str, int]:
    """Validate and apply; raise ImportFailed with every row error (the caller rolls back)."""
    errors: list[str] = []
    summary: dict[str, int] = {}
    for section, (model, upsert) in SECTIONS.items():
        if section not in sections:
            continue
        count = 0
        for index, (line, raw) in enumerate(sections[section]):
            where = f"{source}:{line}: {section}[{index}]" if line else f"{source}: {section}[{index}]"
            try:
                row = model.model_validate(raw)
            except ValidationError as e:
                errors.extend(f"{where}: {_field_name(err['loc'])}: {err['msg']}" for err in e.errors())
                continue
            try:
                with session.begin_nested():
                    apply: Callable[[Session, Any], object] = upsert  # type: ignore[assignment]
                    apply(session, row)
                count += 1
            except ServiceError as e:
                errors.append(f"{where}: {e.field or '(row)'}: {e.message}")
        summary[section] = count
    if errors:
        raise ImportFailed(errors)
    return summary


def import_text(session: Session, text: str, source: str, kind: str | None = None) -> dict[str, int]:
    return import_rows(session, parse(text, source, kind), source)


def import_file(session: Session, path: str, kind: str | None = None) -> dict[str, int]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ImportFailed([f"{path}: cannot read: {e.strerror}"]) from None
    return import_text(session, text, path, kind)


__all__ = ["ImportFailed", "ShiftIn", "import_file", "import_rows", "import_text", "parse"]
