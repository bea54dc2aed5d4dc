"""The route modules the app includes, in order; each module exposes `router`.

Other mes_lite parts add their modules by appending one line to this list.
"""

ROUTER_MODULES: list[str] = [
    "mes_lite.api.routes.auth",
]
