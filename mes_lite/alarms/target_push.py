"""Hand a starting work order's setpoints to its machine (write-back through the gateway).

Called by the work-order service when an order starts (`start`, not `resume`): it queues, in
the same transaction as the start, one write command per setpoint for the order's work center:

- `target_quantity` = the order's planned quantity;
- `recipe` = the order's product code (machines that select their program by product number).

The outbox publisher (`edgefab mes run`) sends a command only when the edge config marks that
tag `writable: true` on the machine, otherwise it records it as skipped with the reason; the
gateway checks the allow-list again and answers.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mes_lite.alarms.models import MesCommand
from mes_lite.alarms.service import queue_command
from mes_lite.models import Product, WorkCenter, WorkOrder

TARGET_TAG = "target_quantity"
RECIPE_TAG = "recipe"


def queue_target_quantity(session: Session, order: WorkOrder, user: object | None = None) -> list[MesCommand]:
    work_center = session.get(WorkCenter, order.work_center_id)
    if work_center is None:
        return []
    quantity = order.planned_qty
    setpoints: dict[str, object] = {TARGET_TAG: int(quantity) if float(quantity).is_integer() else round(quantity)}
    product = session.get(Product, order.product_id)
    if product is not None:
        setpoints[RECIPE_TAG] = product.code
    who = getattr(user, "username", None) or "mes"
    return [
        queue_command(
            session,
            "write",
            f"{work_center.path}/_cmd/{tag}",
            {"value": value, "work_order": order.number},
            who,
            order.id,
        )
        for tag, value in setpoints.items()
    ]
