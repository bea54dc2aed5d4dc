"""Warehouse API: materials, locations, lots, the stock ledger (receipts, issues, backflush, finished goods,
transfers, counts, reversals), on-hand, purchase orders, reorder alerts, valuation and CSV exchange.

Operators move stock; supervisors change master data, count (adjust) and reverse. Routes are thin: the rules
live in `mes_lite.inventory`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user, require_role
from mes_lite.db import get_session
from mes_lite.inventory import auto_backflush, csv_exchange, master_data, operations, planning
from mes_lite.inventory.ledger import Actor, commit_with_retry, reconcile_balances, reverse_move
from mes_lite.inventory.models import Location, Lot, Material, StockMove
from mes_lite.models import Product, User

router = APIRouter(prefix="/api/inventory", tags=["inventory"])
Quantity = Decimal
operator = require_role("operator")
supervisor = require_role("supervisor")


def actor_of(user: User) -> Actor:
    return Actor(user.username, user.id)


class MaterialIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    name: str | None = None
    unit: str | None = Field(default=None, min_length=1, max_length=16, description="base unit of measure")
    allow_negative: bool | None = None
    backflush: bool | None = None
    pick_strategy: Literal["fefo", "fifo"] | None = None
    standard_cost: Decimal | None = Field(default=None, ge=0, description="per base unit")
    shelf_life_days: int | None = Field(default=None, ge=0)
    conversions: dict[str, Decimal] = Field(default_factory=dict, description="unit -> base units per one of it")


class MaterialOut(BaseModel):
    code: str
    name: str
    unit: str
    allow_negative: bool
    backflush: bool
    pick_strategy: str
    standard_cost: float
    shelf_life_days: int | None
    conversions: dict[str, float]


def _material_out(session: Session, code: str) -> MaterialOut:
    product = master_data.product_by_code(session, code)
    m = master_data.material_settings(session, product)
    return MaterialOut(
        code=product.code,
        name=product.name,
        unit=product.unit_of_measure,
        allow_negative=m.allow_negative,
        backflush=m.backflush,
        pick_strategy=m.pick_strategy,
        standard_cost=float(m.standard_cost),
        shelf_life_days=m.shelf_life_days,
        conversions={c.unit: float(c.factor) for c in m.conversions},
    )


@router.put("/materials", response_model=MaterialOut)
def put_material(
    body: MaterialIn, session: Session = Depends(get_session), _: User = Depends(supervisor)
) -> MaterialOut:
    commit_with_retry(session, lambda: master_data.upsert_material(session, **body.model_dump()))
    return _material_out(session, body.code)


@router.get("/materials", response_model=list[MaterialOut])
def get_materials(session: Session = Depends(get_session), _: User = Depends(current_user)) -> list[MaterialOut]:
    """Every product with warehouse settings (a product gets them on its first stock move or PUT)."""
    codes = session.scalars(
        select(Product.code).join(Material, Material.product_id == Product.id).order_by(Product.code)
    )
    return [_material_out(session, code) for code in codes]


@router.get("/materials/{code}", response_model=MaterialOut)
def get_material(code: str, session: Session = Depends(get_session), _: User = Depends(current_user)) -> MaterialOut:
    return _material_out(session, code)


class LocationIn(BaseModel):
    code: str = Field(min_length=1, max_length=120)
    kind: Literal["warehouse", "zone", "bin"]
    parent: str | None = None
    name: str = ""
    dispatch: bool = False
    work_center: str | None = Field(default=None, description="code of the machine this line-side location feeds")


class LocationOut(BaseModel):
    code: str
    kind: str
    parent: str | None
    name: str
    dispatch: bool


@router.post("/locations", response_model=LocationOut, status_code=201)
def post_location(
    body: LocationIn, session: Session = Depends(get_session), _: User = Depends(supervisor)
) -> LocationOut:
    commit_with_retry(
        session,
        lambda: master_data.create_location(
            session,
            code=body.code,
            kind=body.kind,
            parent_code=body.parent,
            name=body.name,
            dispatch=body.dispatch,
            work_center_code=body.work_center,
        ),
    )
    return LocationOut(code=body.code, kind=body.kind, parent=body.parent, name=body.name, dispatch=body.dispatch)


@router.get("/locations", response_model=list[LocationOut])
def get_locations(session: Session = Depends(get_session), _: User = Depends(current_user)) -> list[LocationOut]:
    locations = session.scalars(select(Location).order_by(Location.code)).all()
    codes = {loc.id: loc.code for loc in locations}
    return [
        LocationOut(
            code=loc.code,
            kind=loc.kind,
            parent=codes.get(loc.parent_id) if loc.parent_id else None,
            name=loc.name,
            dispatch=loc.dispatch,
        )
        for loc in locations
    ]


class LotOut(BaseModel):
    code: str
    material: str
    production_date: dt.date | None
    expiry_date: dt.date | None
    supplier_lot: str
    work_order: str | None
    on_hand: float


@router.get("/lots/{code}", response_model=LotOut)
def get_lot(code: str, session: Session = Depends(get_session), _: User = Depends(current_user)) -> LotOut:
    from mes_lite.models import WorkOrder

    lot = master_data.lot_by_code(session, code)
    order = session.get(WorkOrder, lot.work_order_id) if lot.work_order_id else None
    return LotOut(
        code=lot.code,
        material=lot.product.code,
        production_date=lot.production_date,
        expiry_date=lot.expiry_date,
        supplier_lot=lot.supplier_lot,
        work_order=order.number if order else None,
        on_hand=float(sum((r.quantity for r in operations.on_hand(session, lot=code)), Decimal(0))),
    )


class MoveOut(BaseModel):
    id: int
    kind: str
    material: str
    lot: str
    from_location: str | None
    to_location: str | None
    quantity: float
    at_ns: int
    actor: str
    reason: str
    reverses: int | None
    work_order: str | None


def _moves_out(session: Session, moves: list[StockMove]) -> list[MoveOut]:
    from mes_lite.models import WorkOrder

    out = []
    for m in moves:
        out.append(
            MoveOut(
                id=m.id,
                kind=m.kind,
                material=session.get(Product, m.product_id).code,  # type: ignore[union-attr]
                lot=session.get(Lot, m.lot_id).code,  # type: ignore[union-attr]
                from_location=session.get(Location, m.from_location_id).code if m.from_location_id else None,  # type: ignore[union-attr]
                to_location=session.get(Location, m.to_location_id).code if m.to_location_id else None,  # type: ignore[union-attr]
                quantity=float(m.quantity),
                at_ns=m.at_ns,
                actor=m.actor,
                reason=m.reason,
                reverses=m.reverses_id,
                work_order=session.get(WorkOrder, m.work_order_id).number if m.work_order_id else None,  # type: ignore[union-attr]
            )
        )
    return out


class ReceiptIn(BaseModel):
    material: str
    quantity: Quantity = Field(gt=0)
    unit: str | None = None
    location: str
    lot: str | None = Field(default=None, description="lot code; a new one is generated when omitted")
    production_date: dt.date | None = None
    expiry_date: dt.date | None = None
    supplier_lot: str = ""
    purchase_order_line: int | None = None
    reason: str = ""


@router.post("/receipts", response_model=list[MoveOut], status_code=201)
def post_receipt(
    body: ReceiptIn, session: Session = Depends(get_session), user: User = Depends(operator)
) -> list[MoveOut]:
    move = commit_with_retry(
        session,
        lambda: operations.receive(
            session,
            material=body.material,
            quantity=body.quantity,
            unit=body.unit,
            location=body.location,
            lot=body.lot,
            production_date=body.production_date,
            expiry_date=body.expiry_date,
            supplier_lot=body.supplier_lot,
            purchase_order_line_id=body.purchase_order_line,
            reason=body.reason,
            actor=actor_of(user),
        ),
    )
    return _moves_out(session, [move])


class IssueIn(BaseModel):
    work_order: str
    material: str
    quantity: Quantity = Field(gt=0)
    unit: str | None = None
    location: str
    lot: str | None = Field(default=None, description="omit to pick lots FEFO/FIFO")
    reason: str = ""


@router.post("/issues", response_model=list[MoveOut], status_code=201)
def post_issue(body: IssueIn, session: Session = Depends(get_session), user: User = Depends(operator)) -> list[MoveOut]:
    moves = commit_with_retry(
        session, lambda: operations.issue_to_work_order(session, **body.model_dump(), actor=actor_of(user))
    )
    return _moves_out(session, moves)


class BackflushIn(BaseModel):
    work_order: str
    produced_quantity: Quantity = Field(ge=0, description="good + scrap parent units")
    location: str | None = None


@router.post("/backflushes", response_model=list[MoveOut], status_code=201)
def post_backflush(
    body: BackflushIn, session: Session = Depends(get_session), user: User = Depends(operator)
) -> list[MoveOut]:
    moves = commit_with_retry(
        session,
        lambda: operations.backflush(
            session,
            work_order=body.work_order,
            produced_quantity=body.produced_quantity,
            location=body.location,
            actor=actor_of(user),
        ),
    )
    return _moves_out(session, moves)


class CountsBackflushIn(BaseModel):
    location: str | None = Field(default=None, description="default: the line-side location of the work center")


@router.post("/work-orders/{number}/backflush-counts", response_model=list[MoveOut])
def post_backflush_counts(
    number: str, body: CountsBackflushIn, session: Session = Depends(get_session), user: User = Depends(operator)
) -> list[MoveOut]:
    """Backflush what the order's production counts added since the last call (idempotent)."""
    moves = commit_with_retry(
        session,
        lambda: operations.backflush_from_counts(
            session, work_order=number, location=body.location, actor=actor_of(user)
        ),
    )
    return _moves_out(session, moves)


class BackflushStatusOut(BaseModel):
    work_order: str
    counted: float = Field(description="parent units counted on the order (good + reject)")
    backflushed: float = Field(description="of those, units whose components were backflushed")
    pending: float
    last_error: str = Field(description="why the last automatic backflush failed; empty once one succeeds")
    last_error_at_ns: int = Field(description="since when that error stands (0 without one)")


@router.get("/backflush-status", response_model=list[BackflushStatusOut])
def get_backflush_status(
    problems_only: bool = Query(False, description="only orders whose automatic backflush is failing"),
    session: Session = Depends(get_session),
    _: User = Depends(current_user),
) -> list[BackflushStatusOut]:
    """Work orders whose product has backflushed components, with counts: what the ingest's automatic
    backflush (every minute) has done and, when it cannot, why (mes_lite/inventory/auto_backflush.py)."""
    orders = auto_backflush.backflush_status(session, problems_only)
    return [BackflushStatusOut.model_validate(order, from_attributes=True) for order in orders]


class FinishedGoodsIn(BaseModel):
    work_order: str
    quantity: Quantity = Field(gt=0)
    location: str
    lot: str | None = None
    production_date: dt.date | None = None
    expiry_date: dt.date | None = None
    reason: str = ""


@router.post("/finished-goods", response_model=list[MoveOut], status_code=201)
def post_finished_goods(
    body: FinishedGoodsIn, session: Session = Depends(get_session), user: User = Depends(operator)
) -> list[MoveOut]:
    move = commit_with_retry(
        session, lambda: operations.receive_finished_goods(session, **body.model_dump(), actor=actor_of(user))
    )
    return _moves_out(session, [move])


class TransferIn(BaseModel):
    material: str
    lot: str
    quantity: Quantity = Field(gt=0)
    unit: str | None = None
    from_location: str
    to_location: str
    reason: str = ""


@router.post("/transfers", response_model=list[MoveOut], status_code=201)
def post_transfer(
    body: TransferIn, session: Session = Depends(get_session), user: User = Depends(operator)
) -> list[MoveOut]:
    move = commit_with_retry(session, lambda: operations.transfer(session, **body.model_dump(), actor=actor_of(user)))
    return _moves_out(session, [move])


class CountIn(BaseModel):
    material: str
    lot: str
    location: str
    counted: Quantity = Field(ge=0)
    unit: str | None = None
    reason: str = Field(min_length=1, description="why the count differs (cycle count, damage, ...)")


@router.post("/counts", response_model=list[MoveOut], status_code=201)
def post_count(
    body: CountIn, session: Session = Depends(get_session), user: User = Depends(supervisor)
) -> list[MoveOut]:
    move = commit_with_retry(session, lambda: operations.count(session, **body.model_dump(), actor=actor_of(user)))
    return _moves_out(session, [move] if move else [])


class ReversalIn(BaseModel):
    reason: str = Field(min_length=1)


@router.post("/moves/{move_id}/reversal", response_model=list[MoveOut], status_code=201)
def post_reversal(
    move_id: int, body: ReversalIn, session: Session = Depends(get_session), user: User = Depends(supervisor)
) -> list[MoveOut]:
    move = commit_with_retry(session, lambda: reverse_move(session, move_id, actor=actor_of(user), reason=body.reason))
    return _moves_out(session, [move])


@router.get("/moves", response_model=list[MoveOut])
def get_moves(
    material: str | None = None,
    lot: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    session: Session = Depends(get_session),
    _: User = Depends(current_user),
) -> list[MoveOut]:
    query = select(StockMove).order_by(StockMove.id.desc()).limit(limit)
    if material:
        query = query.where(StockMove.product_id == master_data.product_by_code(session, material).id)
    if lot:
        query = query.where(StockMove.lot_id == master_data.lot_by_code(session, lot).id)
    return _moves_out(session, list(session.scalars(query)))


class OnHandOut(BaseModel):
    material: str
    location: str
    lot: str
    quantity: float
    unit: str
    expiry_date: dt.date | None


@router.get("/on-hand", response_model=list[OnHandOut])
def get_on_hand(
    material: str | None = None,
    location: str | None = Query(default=None, description="a warehouse or zone includes everything below it"),
    lot: str | None = None,
    session: Session = Depends(get_session),
    _: User = Depends(current_user),
) -> list[OnHandOut]:
    rows = operations.on_hand(session, material=material, location=location, lot=lot)
    return [OnHandOut(**{**r.__dict__, "quantity": float(r.quantity)}) for r in rows]


@router.get("/reconciliation")
def get_reconciliation(session: Session = Depends(get_session), _: User = Depends(supervisor)) -> dict[str, object]:
    """Cached balances that differ from the ledger (none expected)."""
    mismatches = reconcile_balances(session)
    return {
        "consistent": not mismatches,
        "mismatches": [{**m.__dict__, "cached": float(m.cached), "ledger": float(m.ledger)} for m in mismatches],
    }


class PurchaseOrderLineIn(BaseModel):
    material: str
    quantity: Quantity = Field(gt=0)
    unit: str | None = None


class PurchaseOrderIn(BaseModel):
    number: str = Field(min_length=1, max_length=64)
    supplier: str = ""
    lines: list[PurchaseOrderLineIn] = Field(min_length=1)


class PurchaseOrderLineOut(BaseModel):
    id: int
    material: str
    quantity: float
    received: float


class PurchaseOrderOut(BaseModel):
    number: str
    supplier: str
    lines: list[PurchaseOrderLineOut]


def _po_out(session: Session, number: str) -> PurchaseOrderOut:
    from mes_lite.inventory.models import PurchaseOrder
    from mes_lite.services.errors import NotFound

    order = session.scalar(select(PurchaseOrder).where(PurchaseOrder.number == number))
    if order is None:
        raise NotFound(f"purchase order {number!r} does not exist")
    return PurchaseOrderOut(
        number=order.number,
        supplier=order.supplier,
        lines=[
            PurchaseOrderLineOut(
                id=line.id,
                material=line.product.code,
                quantity=float(line.quantity),
                received=float(operations.received_quantity(session, line.id)),
            )
            for line in order.lines
        ],
    )


@router.post("/purchase-orders", response_model=PurchaseOrderOut, status_code=201)
def post_purchase_order(
    body: PurchaseOrderIn, session: Session = Depends(get_session), _: User = Depends(supervisor)
) -> PurchaseOrderOut:
    commit_with_retry(
        session,
        lambda: master_data.create_purchase_order(
            session,
            number=body.number,
            supplier=body.supplier,
            lines=[(x.material, x.quantity, x.unit) for x in body.lines],
        ),
    )
    return _po_out(session, body.number)


@router.get("/purchase-orders/{number}", response_model=PurchaseOrderOut)
def get_purchase_order(
    number: str, session: Session = Depends(get_session), _: User = Depends(current_user)
) -> PurchaseOrderOut:
    return _po_out(session, number)


class ReorderPointIn(BaseModel):
    material: str
    location: str | None = None
    min_quantity: Quantity = Field(ge=0)
    reorder_quantity: Quantity = Field(default=Decimal(0), ge=0)


@router.put("/reorder-points", status_code=204)
def put_reorder_point(
    body: ReorderPointIn, session: Session = Depends(get_session), _: User = Depends(supervisor)
) -> None:
    commit_with_retry(
        session,
        lambda: master_data.set_reorder_point(
            session,
            material_code=body.material,
            location_code=body.location,
            min_quantity=body.min_quantity,
            reorder_quantity=body.reorder_quantity,
        ),
    )


class LowStockOut(BaseModel):
    material: str
    location: str | None
    on_hand: float
    min_quantity: float
    reorder_quantity: float
    unit: str


@router.get("/alerts/low-stock", response_model=list[LowStockOut])
def get_low_stock(session: Session = Depends(get_session), _: User = Depends(current_user)) -> list[LowStockOut]:
    return [
        LowStockOut(**{k: (float(v) if isinstance(v, Decimal) else v) for k, v in a.__dict__.items()})
        for a in planning.low_stock(session)
    ]


@router.get("/valuation")
def get_valuation(session: Session = Depends(get_session), _: User = Depends(supervisor)) -> dict[str, object]:
    rows, total = planning.valuation(session)
    return {
        "currency_note": "standard cost per base unit, in the plant's currency",
        "rows": [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in r.__dict__.items()} for r in rows],
        "total": str(total),
    }


@router.get("/csv/{kind}", response_class=PlainTextResponse)
def get_csv(
    kind: Literal["materials", "locations", "stock"],
    session: Session = Depends(get_session),
    _: User = Depends(current_user),
) -> PlainTextResponse:
    return PlainTextResponse(
        csv_exchange.export(session, kind),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'},
    )


@router.post("/csv/{kind}")
def post_csv(
    kind: Literal["materials", "locations", "stock"],
    text: str = Body(media_type="text/csv"),
    keep_good_rows: bool = Query(default=False, description="apply the good rows even when some rows are bad"),
    session: Session = Depends(get_session),
    user: User = Depends(supervisor),
) -> dict[str, object]:
    """Import CSV; answers with a row-level error report. Nothing is stored if any row is bad, unless asked."""
    report = csv_exchange.import_csv(session, kind, text, actor_of(user))
    stored = not report.errors or (keep_good_rows and report.applied > 0)
    if stored:
        session.commit()
    else:
        session.rollback()
    return {
        "kind": kind,
        "rows": report.rows,
        "applied": report.applied if stored else 0,
        "stored": stored,
        "errors": [{"row": e.row, "field": e.field, "message": e.message, "text": str(e)} for e in report.errors],
    }
