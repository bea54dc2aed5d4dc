"""MES settings: one pydantic-settings class, read from the environment (prefix EDGEFAB_MES_).

Everything the MES service, its ingest and its CLI need to know about the deployment lives
here so that a Pi, a container and a test can each configure it the same way.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGEFAB_MES_", env_file=None, extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/edgefab/mes.db",
        description="SQLAlchemy URL: sqlite:///path/to/mes.db or postgresql+psycopg://user@host/db",
    )
    secret_key: str = Field(default="change-me", description="signs nothing secret yet; reserved for sessions")
    token_ttl_s: float = Field(default=12 * 3600, gt=0, description="lifetime of a login token")
    timezone: str = Field(default="UTC", description="plant time zone for shift calendars and 'today'")
    micro_stop_threshold_s: float = Field(
        default=120.0, ge=0, description="stops shorter than this count as minor stops (performance loss)"
    )
    allow_parallel_orders: bool = Field(
        default=False, description="allow more than one running work order per work center"
    )
    edge_config: str | None = Field(default=None, description="edge YAML whose OEE-role tags the ingest subscribes to")
    mqtt_url: str | None = Field(
        default=None, description="broker to ingest from; default: the edge config's mqtt sink"
    )
    reorder_window_s: float = Field(
        default=5.0, ge=0, description="ingest holds events this long to put out-of-order messages back in order"
    )
    counter_max_delta: int = Field(
        default=100_000, ge=1, description="a counter step larger than this is a reset/glitch, not production"
    )
