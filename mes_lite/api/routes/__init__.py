"""The route modules the app includes, in order; each module exposes `router`.

Other mes_lite parts add their modules by appending one line to this list.
"""

ROUTER_MODULES: list[str] = [
    "mes_lite.api.routes.auth",
    "mes_lite.api.routes.master_data",
    "mes_lite.api.routes.work_orders",
    "mes_lite.api.routes.production",
    "mes_lite.api.routes.oee",
    "mes_lite.api.routes.andon",
    "mes_lite.api.routes.inventory",
    "mes_lite.api.routes.shipping",
    "mes_lite.api.routes.trace",
    "mes_lite.web.routes",
    "mes_lite.assessment.api",
    "mes_lite.api.routes.alarms",
]
