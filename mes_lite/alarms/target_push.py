"""Hand a starting work order's target quantity to its machine (write-back through the gateway).

Called by the work-order service when an order starts (`start`, not `resume`): it queues a
write command for the tag `target_quantity` of the order's work center, in the same
transaction as the start. The outbox publisher (`edgefab mes run`) sends it only when the
edge config marks that tag `writable: true` on the machine, otherwise it records the command
as skipped with the reason; the gateway checks the allow-list again and answers.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mes_lite.alarms.models import MesCommand
from mes_lite.alarms.service import queue_command
from mes_lite.models import WorkCenter, WorkOrder

TARGET_TAG = "target_quantity"


def queue_target_quantity(session: Session, order: WorkOrder, user: object | None = None) -> MesCommand | None:
    work_center = session.get(WorkCenter, order.work_center_id)
    if work_center is None:
        return None
    quantity = order.planned_qty
    value = int(quantity) if float(quantity).is_integer() else round(quantity)
    who = getattr(user, "username", None) or "mes"
    topic = f"{work_center.path}/_cmd/{TARGET_TAG}"
    return queue_command(session, "write", topic, {"value": value, "work_order": order.number}, who, order.id)
