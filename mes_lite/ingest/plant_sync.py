"""Bindings and work centers from the edge configuration (the same YAML the gateway runs).

The ingest subscribes to exactly the tags that carry an OEE role; machines the MES does not know
yet are registered (site, area, line, work center by their UNS codes) so a demo works without a
separate master-data step. Existing master data is never overwritten.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge_config.schema import SiteConfig
from mes_lite.ingest.events import TagBinding
from mes_lite.models import Area, Line, Site, WorkCenter


def bindings_from_config(config: SiteConfig) -> list[TagBinding]:
    bindings = []
    for device in config.devices:
        for name, tag in device.tags.items():
            if tag.role is not None:
                bindings.append(TagBinding(config.tag_path(device, name), tag.role, tag.map))
    return bindings


def ensure_work_centers(session: Session, config: SiteConfig) -> list[str]:
    """Create what is missing of the site/area/line/work-center tree of devices with OEE tags; return created paths."""
    created = []
    site = session.scalar(select(Site).where(Site.code == config.site.site))
    if site is None:
        site = Site(enterprise=config.site.enterprise, code=config.site.site, name=config.site.site)
        session.add(site)
        session.flush()
    for device in config.devices:
        if not any(tag.role is not None for tag in device.tags.values()):
            continue
        area = session.scalar(select(Area).where(Area.site_id == site.id, Area.code == device.area))
        if area is None:
            area = Area(site_id=site.id, code=device.area, name=device.area)
            session.add(area)
            session.flush()
        line = session.scalar(select(Line).where(Line.area_id == area.id, Line.code == device.line))
        if line is None:
            line = Line(area_id=area.id, code=device.line, name=device.line)
            session.add(line)
            session.flush()
        wc = session.scalar(select(WorkCenter).where(WorkCenter.line_id == line.id, WorkCenter.code == device.name))
        if wc is None:
            session.add(WorkCenter(line_id=line.id, code=device.name, name=device.name))
            session.flush()
            created.append(f"{site.code}/{area.code}/{line.code}/{device.name}")
    return created
