"""All page routers of the web package, included by the app through ROUTER_MODULES (`mes_lite.web.routes`).

A new page module appends its dotted name to PAGE_MODULES; each exposes `router`.
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter

PAGE_MODULES: list[str] = [
    "mes_lite.web.pages",
    "mes_lite.web.board",
    "mes_lite.web.operator",
    "mes_lite.web.machines",
    "mes_lite.web.warehouse",
    "mes_lite.web.orders",
    "mes_lite.assessment.pages",
]

router = APIRouter(include_in_schema=False)
for _name in PAGE_MODULES:
    router.include_router(importlib.import_module(_name).router)
