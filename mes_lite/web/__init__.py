"""Server-rendered web pages of the MES: andon board, machine pages, operator station, warehouse.

Jinja2 templates rendered in zh-CN or en (`i18n.py`), live updates over Server-Sent Events, all
assets served from `static/`. `routes.py` gathers the page routers for the app.
"""
