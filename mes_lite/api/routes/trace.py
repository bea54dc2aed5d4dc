"""Traceability API: backward genealogy of a lot (what made it, where, when, by whom) and the forward
recall list (which lots and shipments contain it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user
from mes_lite.db import get_session
from mes_lite.inventory import trace
from mes_lite.inventory.genealogy import TraceNode, summarize_backward
from mes_lite.models import User

router = APIRouter(prefix="/api/trace", tags=["traceability"])


class WorkOrderOut(BaseModel):
    number: str
    work_center: str | None
    start: str | None
    end: str | None
    shifts: list[str]
    operators: list[str]
    dashboard_url: str | None


class NodeOut(BaseModel):
    lot: str
    material: str
    depth: int
    quantity: float | None
    work_order: WorkOrderOut | None
    inputs: list[NodeOut]


def _node(node: TraceNode) -> NodeOut:
    order = node.work_order
    return NodeOut(
        lot=node.lot,
        material=node.material,
        depth=node.depth,
        quantity=float(node.quantity) if node.quantity is not None else None,
        work_order=WorkOrderOut(
            number=order.work_order,
            work_center=order.work_center,
            start=order.started.isoformat() if order.started else None,
            end=order.ended.isoformat() if order.ended else None,
            shifts=list(order.shifts),
            operators=list(order.operators),
            dashboard_url=trace.dashboard_url(order),
        )
        if order
        else None,
        inputs=[_node(child) for child in node.inputs],
    )


@router.get("/lots/{code}/backward")
def get_backward(
    code: str, session: Session = Depends(get_session), _: User = Depends(current_user)
) -> dict[str, object]:
    root = trace.backward(session, code)
    summary = summarize_backward(root)
    return {
        "lot": code,
        "summary": {
            "material_lots": list(summary.material_lots),
            "purchased_lots": list(summary.purchased_lots),
            "work_orders": list(summary.work_orders),
            "work_centers": list(summary.work_centers),
            "shifts": list(summary.shifts),
            "operators": list(summary.operators),
            "window_start": summary.window_start.isoformat() if summary.window_start else None,
            "window_end": summary.window_end.isoformat() if summary.window_end else None,
            "levels": summary.levels,
        },
        "tree": _node(root).model_dump(),
    }


@router.get("/lots/{code}/forward")
def get_forward(
    code: str, session: Session = Depends(get_session), _: User = Depends(current_user)
) -> dict[str, object]:
    recall = trace.forward(session, code)
    return {
        "lot": code,
        "affected_lots": [{"lot": lot, "depth": recall.depth_by_lot[lot]} for lot in recall.affected_lots],
        "shipments": [
            {
                "shipment": s.shipment,
                "lot": s.lot,
                "quantity": float(s.quantity),
                "customer": s.customer,
                "shipped_at": s.shipped_at.isoformat() if s.shipped_at else None,
            }
            for s in recall.shipments
        ],
        "customers": list(recall.customers),
    }
