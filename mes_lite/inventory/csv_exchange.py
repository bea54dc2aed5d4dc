"""CSV export and import of stock and warehouse master data, with a row-level error report.

Import applies each row in its own savepoint and records `row N: field: message` for every bad row; the
caller commits only when the report is clean (or when the user asked to keep the good rows). Stock imports
are cycle counts: each row sets the on-hand of a material/location/lot, posting an adjustment.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from mes_lite.inventory import master_data, operations
from mes_lite.inventory.ledger import Actor, begin_write
from mes_lite.inventory.models import Location, Material
from mes_lite.services.errors import ServiceError

KINDS = ("materials", "locations", "stock")
COLUMNS = {
    "materials": [
        "code",
        "name",
        "unit",
        "allow_negative",
        "backflush",
        "pick_strategy",
        "standard_cost",
        "shelf_life_days",
    ],
    "locations": ["code", "kind", "parent", "name", "dispatch"],
    "stock": ["material", "location", "lot", "quantity", "unit", "expiry_date"],
}
REQUIRED = {
    "materials": ["code", "unit"],
    "locations": ["code", "kind"],
    "stock": ["material", "location", "lot", "quantity"],
}


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row; the header is row 0
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.message}"


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    applied: int = 0
    errors: list[RowError] = field(default_factory=list)


class _RowProblem(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def export(session: Session, kind: str) -> str:
    """CSV text of one kind; stock is every non-zero balance (the same columns the import reads)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS[kind])
    if kind == "materials":
        from sqlalchemy import select

        for material in session.scalars(select(Material).join(Material.product)):
            p = material.product
            writer.writerow(
                [
                    p.code,
                    p.name,
                    p.unit_of_measure,
                    _b(material.allow_negative),
                    _b(material.backflush),
                    material.pick_strategy,
                    _q(material.standard_cost),
                    material.shelf_life_days or "",
                ]
            )
    elif kind == "locations":
        from sqlalchemy import select

        locations = session.scalars(select(Location).order_by(Location.id)).all()
        codes = {loc.id: loc.code for loc in locations}
        for loc in locations:
            writer.writerow(
                [loc.code, loc.kind, codes.get(loc.parent_id, "") if loc.parent_id else "", loc.name, _b(loc.dispatch)]
            )
    elif kind == "stock":
        for row in operations.on_hand(session):
            writer.writerow([row.material, row.location, row.lot, _q(row.quantity), row.unit, row.expiry_date or ""])
    else:
        raise ServiceError(f"unknown CSV kind {kind!r}: one of {', '.join(KINDS)}", field="kind")
    return out.getvalue()


def import_csv(session: Session, kind: str, text: str, actor: Actor) -> ImportReport:
    """Apply every row it can; report every row it cannot. Rows are independent savepoints."""
    if kind not in KINDS:
        raise ServiceError(f"unknown CSV kind {kind!r}: one of {', '.join(KINDS)}", field="kind")
    report = ImportReport(kind)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED[kind] if c not in header]
    unknown = [c for c in header if c not in COLUMNS[kind]]
    if missing or unknown:
        problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(unknown)} (allowed: {', '.join(COLUMNS[kind])})"] if unknown else []
        )
        report.errors.append(RowError(0, "header", "; ".join(problems)))
        return report
    begin_write(session)  # also makes SQLite savepoints nest inside one transaction we can roll back
    apply: Callable[[Session, dict[str, str], Actor], None] = {
        "materials": _material,
        "locations": _location,
        "stock": _stock,
    }[kind]
    for number, raw in enumerate(reader, start=1):
        report.rows += 1
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        for column in REQUIRED[kind]:
            if not row.get(column):
                report.errors.append(RowError(number, column, "is required"))
                break
        else:
            savepoint = session.begin_nested()
            try:
                apply(session, row, actor)
                savepoint.commit()
                report.applied += 1
            except _RowProblem as e:
                savepoint.rollback()
                report.errors.append(RowError(number, e.field, str(e)))
            except ServiceError as e:
                savepoint.rollback()
                report.errors.append(RowError(number, e.field or "row", e.message))
    return report


def _decimal(row: dict[str, str], name: str) -> Decimal | None:
    text = row.get(name, "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as e:
        raise _RowProblem(name, f"{text!r} is not a number") from e
    if not value.is_finite():
        raise _RowProblem(name, f"{text!r} is not a finite number")
    return value


def _bool(row: dict[str, str], name: str) -> bool | None:
    text = row.get(name, "").lower()
    if not text:
        return None
    if text in {"1", "true", "yes", "y"}:
        return True
    if text in {"0", "false", "no", "n"}:
        return False
    raise _RowProblem(name, f"{text!r} is not true/false")


def _material(session: Session, row: dict[str, str], _actor: Actor) -> None:
    shelf = _decimal(row, "shelf_life_days")
    master_data.upsert_material(
        session,
        code=row["code"],
        name=row.get("name") or None,
        unit=row["unit"],
        allow_negative=_bool(row, "allow_negative"),
        backflush=_bool(row, "backflush"),
        pick_strategy=row.get("pick_strategy") or None,
        standard_cost=_decimal(row, "standard_cost"),
        shelf_life_days=int(shelf) if shelf is not None else None,
    )


def _location(session: Session, row: dict[str, str], _actor: Actor) -> None:
    master_data.create_location(
        session,
        code=row["code"],
        kind=row["kind"],
        parent_code=row.get("parent") or None,
        name=row.get("name", ""),
        dispatch=bool(_bool(row, "dispatch")),
    )


def _stock(session: Session, row: dict[str, str], actor: Actor) -> None:
    quantity = _decimal(row, "quantity")
    assert quantity is not None
    expiry = None
    if row.get("expiry_date"):
        try:
            expiry = dt.date.fromisoformat(row["expiry_date"])
        except ValueError as e:
            raise _RowProblem("expiry_date", f"{row['expiry_date']!r} is not a date (YYYY-MM-DD)") from e
    operations.count(
        session,
        material=row["material"],
        lot=row["lot"],
        location=row["location"],
        counted=quantity,
        unit=row.get("unit") or None,
        actor=actor,
        reason="stock import (CSV)",
        expiry_date=expiry,
    )


def _b(value: bool) -> str:
    return "true" if value else "false"


def _q(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")
