"""The stock ledger as pure functions: moves in, on-hand out.

Nothing here touches a database. The persistence layer (``mes_lite.inventory.ledger_service``) asks these
functions whether a move is allowed and what it does to each balance, so the rules are the same for the
API, the CLI, the ingest's backflush and the property tests.

Rules:
- a move is immutable; a correction is a REVERSAL move that swaps the sides of the original;
- every move carries a material, a lot, a positive quantity in the material's base unit, who and why;
- on-hand per (material, location, lot) is the signed sum of the moves;
- a move that would make a balance negative is refused unless the material allows negative stock;
- units are converted explicitly; a unit without a defined factor is an error, never a guess.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import NamedTuple


class StockError(ValueError):
    """A move was refused; the message is one line meant for the user."""


class InvalidMoveError(StockError):
    """The move is malformed (wrong sides for its kind, missing reason, non-positive quantity...)."""


class NegativeStockError(StockError):
    """The move would take a balance below zero on a material that forbids it."""


class UnitConversionError(StockError):
    """No conversion factor is defined between two units of a material."""


class MoveKind(StrEnum):
    RECEIPT = "receipt"  # from a supplier (against a purchase order or free)
    ISSUE = "issue"  # to a work order
    BACKFLUSH = "backflush"  # consumption derived from production counts
    FG_RECEIPT = "fg_receipt"  # finished goods from a work order
    TRANSFER = "transfer"  # between locations
    ADJUSTMENT = "adjustment"  # cycle count, with a reason
    SHIPMENT = "shipment"  # to a customer
    REVERSAL = "reversal"  # undoes one earlier move


# (needs from_location, needs to_location) per kind; ADJUSTMENT uses exactly one side, REVERSAL mirrors its original.
_SIDES: dict[MoveKind, tuple[bool, bool]] = {
    MoveKind.RECEIPT: (False, True),
    MoveKind.ISSUE: (True, False),
    MoveKind.BACKFLUSH: (True, False),
    MoveKind.FG_RECEIPT: (False, True),
    MoveKind.TRANSFER: (True, True),
    MoveKind.SHIPMENT: (True, False),
}

KINDS_NEEDING_REASON = frozenset({MoveKind.ADJUSTMENT, MoveKind.REVERSAL})
KINDS_NEEDING_WORK_ORDER = frozenset({MoveKind.ISSUE, MoveKind.BACKFLUSH, MoveKind.FG_RECEIPT})


class BalanceKey(NamedTuple):
    material: str
    location: str
    lot: str


@dataclass(frozen=True)
class Move:
    """One ledger entry. ``quantity`` is positive and in the material's base unit; direction comes from the sides."""

    kind: MoveKind
    material: str
    lot: str
    quantity: Decimal
    from_location: str | None = None
    to_location: str | None = None
    reason: str = ""
    who: str = ""
    at: datetime | None = None
    move_id: int | None = None
    reverses: int | None = None
    work_order: str | None = None
    purchase_order: str | None = None
    shipment: str | None = None


@dataclass(frozen=True)
class MaterialPolicy:
    """What the ledger needs to know about a material.

    ``unit_factors`` maps a unit to how many base units one of it holds (e.g. base ``pcs``, ``{"box": 50}``).
    """

    code: str
    base_unit: str
    allow_negative: bool = False
    backflush: bool = False
    unit_factors: Mapping[str, Decimal] = field(default_factory=dict)


def as_quantity(value: object) -> Decimal:
    """A quantity as Decimal; floats go through str so 0.1 stays 0.1."""
    try:
        quantity = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as e:
        raise InvalidMoveError(f"quantity {value!r} is not a number") from e
    if not quantity.is_finite():
        raise InvalidMoveError(f"quantity {value!r} is not a finite number")
    return quantity


def to_base_unit(quantity: Decimal, unit: str, policy: MaterialPolicy) -> Decimal:
    """``quantity`` in ``unit`` expressed in the material's base unit; unknown units are an error."""
    if unit == policy.base_unit:
        return quantity
    factor = policy.unit_factors.get(unit)
    if factor is None:
        known = ", ".join(sorted({policy.base_unit, *policy.unit_factors})) or policy.base_unit
        raise UnitConversionError(
            f"material {policy.code}: no conversion from {unit} to {policy.base_unit} is defined (known units: {known})"
        )
    return quantity * as_quantity(factor)


def convert(quantity: Decimal, from_unit: str, to_unit: str, policy: MaterialPolicy) -> Decimal:
    """Convert between any two units of one material through its base unit."""
    base = to_base_unit(quantity, from_unit, policy)
    if to_unit == policy.base_unit:
        return base
    factor = policy.unit_factors.get(to_unit)
    if factor is None:
        raise UnitConversionError(
            f"material {policy.code}: no conversion from {policy.base_unit} to {to_unit} is defined"
        )
    return base / as_quantity(factor)


def validate(move: Move) -> None:
    """Refuse a malformed move with a one-line reason. Reversals are validated by :func:`reversal_of`."""
    if move.quantity <= 0:
        raise InvalidMoveError(f"{move.kind} quantity must be positive, got {move.quantity}")
    if not move.material:
        raise InvalidMoveError(f"{move.kind} needs a material")
    if not move.lot:
        raise InvalidMoveError(f"{move.kind} needs a lot")
    if move.kind in KINDS_NEEDING_REASON and not move.reason.strip():
        raise InvalidMoveError(f"{move.kind} needs a reason")
    if move.kind in KINDS_NEEDING_WORK_ORDER and not move.work_order:
        raise InvalidMoveError(f"{move.kind} needs a work order")
    if move.kind == MoveKind.SHIPMENT and not move.shipment:
        raise InvalidMoveError("shipment move needs a shipment")
    has_from, has_to = move.from_location is not None, move.to_location is not None
    if move.kind == MoveKind.ADJUSTMENT:
        if has_from == has_to:
            raise InvalidMoveError("adjustment needs exactly one location: from (count lower) or to (count higher)")
        return
    if move.kind == MoveKind.REVERSAL:
        if move.reverses is None:
            raise InvalidMoveError("reversal needs the id of the move it reverses")
        if not (has_from or has_to):
            raise InvalidMoveError("reversal needs a location")
        return
    needs_from, needs_to = _SIDES[move.kind]
    if needs_from != has_from or needs_to != has_to:
        wanted = " and ".join(n for n, w in (("from_location", needs_from), ("to_location", needs_to)) if w)
        raise InvalidMoveError(f"{move.kind} needs exactly {wanted}")
    if move.kind == MoveKind.TRANSFER and move.from_location == move.to_location:
        raise InvalidMoveError("transfer needs two different locations")


def deltas(move: Move) -> list[tuple[BalanceKey, Decimal]]:
    """The signed change a move makes to each balance it touches."""
    changes: list[tuple[BalanceKey, Decimal]] = []
    if move.from_location is not None:
        changes.append((BalanceKey(move.material, move.from_location, move.lot), -move.quantity))
    if move.to_location is not None:
        changes.append((BalanceKey(move.material, move.to_location, move.lot), move.quantity))
    return changes


def on_hand(moves: Iterable[Move]) -> dict[BalanceKey, Decimal]:
    """On-hand per (material, location, lot): the signed sum of the ledger. Zero balances are left out."""
    totals: dict[BalanceKey, Decimal] = defaultdict(Decimal)
    for move in moves:
        for key, delta in deltas(move):
            totals[key] += delta
    return {key: qty for key, qty in totals.items() if qty != 0}


def balances_after(
    current: Mapping[BalanceKey, Decimal], move: Move, policy: MaterialPolicy
) -> dict[BalanceKey, Decimal]:
    """New values of the balances ``move`` touches, or NegativeStockError if one would go below zero."""
    if policy.code != move.material:
        raise InvalidMoveError(f"policy for {policy.code} given for a move of {move.material}")
    result: dict[BalanceKey, Decimal] = {}
    for key, delta in deltas(move):
        before = result.get(key, current.get(key, Decimal(0)))
        after = before + delta
        if after < 0 and delta < 0 and not policy.allow_negative:
            raise NegativeStockError(
                f"not enough {key.material} lot {key.lot} at {key.location}: "
                f"on hand {format_quantity(before)} {policy.base_unit}, {move.kind} needs {format_quantity(-delta)}"
            )
        result[key] = after
    return result


def reversal_of(original: Move, *, who: str, reason: str, at: datetime | None = None) -> Move:
    """The move that undoes ``original``: same material, lot and quantity with the sides swapped."""
    if original.move_id is None:
        raise InvalidMoveError("only a recorded move (with an id) can be reversed")
    if original.kind == MoveKind.REVERSAL:
        raise InvalidMoveError(f"move {original.move_id} is itself a reversal; post a new move instead")
    if original.shipment is not None:
        raise InvalidMoveError(
            f"move {original.move_id} belongs to shipment {original.shipment}; book returned goods as a new receipt"
        )
    if not reason.strip():
        raise InvalidMoveError("reversal needs a reason")
    return replace(
        original,
        kind=MoveKind.REVERSAL,
        from_location=original.to_location,
        to_location=original.from_location,
        reason=reason,
        who=who,
        at=at or datetime.now(UTC),
        move_id=None,
        reverses=original.move_id,
    )


@dataclass(frozen=True)
class BomComponent:
    """One BOM line as backflush sees it: ``quantity_per`` of ``unit`` per one unit of the parent."""

    material: str
    quantity_per: Decimal
    unit: str


def backflush_quantities(
    components: Iterable[BomComponent], produced: Decimal, policies: Mapping[str, MaterialPolicy]
) -> dict[str, Decimal]:
    """Base-unit consumption of every backflushed component for ``produced`` parent units (good + scrap).

    Components whose material is not set to backflush are issued by hand and left out.
    """
    if produced < 0:
        raise InvalidMoveError(f"produced quantity must not be negative, got {produced}")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for component in components:
        policy = policies.get(component.material)
        if policy is None:
            raise InvalidMoveError(f"BOM component {component.material} is not a known material")
        if not policy.backflush:
            continue
        totals[component.material] += to_base_unit(component.quantity_per * produced, component.unit, policy)
    return {material: qty for material, qty in totals.items() if qty > 0}


class Ledger:
    """An in-memory ledger applying the rules above; the reference model for property tests and tools."""

    def __init__(self, policies: Mapping[str, MaterialPolicy]) -> None:
        self.policies = dict(policies)
        self.moves: list[Move] = []
        self.balances: dict[BalanceKey, Decimal] = {}
        self._reversed: set[int] = set()

    def post(self, move: Move) -> Move:
        """Validate, check stock, append; returns the move with its id."""
        validate(move)
        if move.kind == MoveKind.REVERSAL:
            raise InvalidMoveError("use reverse() to post a reversal")
        return self._append(move)

    def reverse(self, move_id: int, *, who: str, reason: str) -> Move:
        if not 1 <= move_id <= len(self.moves):
            raise InvalidMoveError(f"move {move_id} does not exist")
        if move_id in self._reversed:
            raise InvalidMoveError(f"move {move_id} is already reversed")
        reversal = reversal_of(self.moves[move_id - 1], who=who, reason=reason)
        validate(reversal)
        recorded = self._append(reversal)
        self._reversed.add(move_id)
        return recorded

    def on_hand(self, material: str, location: str | None = None, lot: str | None = None) -> Decimal:
        return sum(
            (
                qty
                for key, qty in self.balances.items()
                if key.material == material
                and (location is None or key.location == location)
                and (lot is None or key.lot == lot)
            ),
            Decimal(0),
        )

    def _append(self, move: Move) -> Move:
        policy = self.policies.get(move.material)
        if policy is None:
            raise InvalidMoveError(f"unknown material {move.material}")
        updated = balances_after(self.balances, move, policy)
        recorded = replace(move, move_id=len(self.moves) + 1, at=move.at or datetime.now(UTC))
        self.moves.append(recorded)
        for key, qty in updated.items():
            if qty == 0:
                self.balances.pop(key, None)
            else:
                self.balances[key] = qty
        return recorded


def format_quantity(quantity: Decimal) -> str:
    """A quantity without trailing zeros or exponent (5, 0.25)."""
    text = format(quantity.normalize(), "f")
    return text
