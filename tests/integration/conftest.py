"""Fixtures shared by the integration tests (MES database and API fixtures, see mes_fixtures.py)."""

from tests.integration.mes_fixtures import (  # noqa: F401  (pytest finds fixtures by name)
    _mes_database,
    mes_auth_headers,
    mes_client,
    mes_db_url,
    mes_session,
    mes_settings,
    mes_templates,
)
