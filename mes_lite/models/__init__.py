"""All MES tables; importing this package makes `Base.metadata` complete (Alembic, tests).

Other parts of mes_lite register their models by adding one import line here.
"""

from mes_lite.models.calendar import Break, Holiday, PlannedStop, Shift
from mes_lite.models.counts import ProductionCount
from mes_lite.models.ingest_cursor import IngestCursor
from mes_lite.models.machine_state import MachineStateInterval, StateCategory
from mes_lite.models.oee_cache import OeeHourCache
from mes_lite.models.plant import Area, Line, Site, WorkCenter
from mes_lite.models.product import BomLine, Product, RoutingOperation
from mes_lite.models.reasons import DowntimeCategory, DowntimeReason, ScrapCategory, ScrapReason
from mes_lite.models.user import ApiToken, User, UserRole
from mes_lite.models.work_order import (
    ScrapReport,
    WorkOrder,
    WorkOrderNote,
    WorkOrderStatus,
    WorkOrderStatusChange,
)

__all__ = [
    "ApiToken",
    "Area",
    "BomLine",
    "Break",
    "DowntimeCategory",
    "DowntimeReason",
    "Holiday",
    "IngestCursor",
    "Line",
    "MachineStateInterval",
    "OeeHourCache",
    "PlannedStop",
    "Product",
    "ProductionCount",
    "RoutingOperation",
    "ScrapCategory",
    "ScrapReason",
    "ScrapReport",
    "Shift",
    "Site",
    "StateCategory",
    "User",
    "UserRole",
    "WorkCenter",
    "WorkOrder",
    "WorkOrderNote",
    "WorkOrderStatus",
    "WorkOrderStatusChange",
]

# Registrations by other mes_lite parts, so Base.metadata holds every table:
# alarms (current state, event history, command outbox), assessment (digital-maturity
# self-assessments), warehouse (materials, locations, lots, ledger, orders).
import mes_lite.alarms.models
import mes_lite.assessment.models
import mes_lite.inventory.models  # noqa: F401
