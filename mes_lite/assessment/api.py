"""HTTP API of the self-assessment: indexes, evidence, assessments (start, answer, finish), reports.

Supervisors and admins start, answer and finish assessments; operators may read them and their
reports. The rules live in `service.py`; this module only maps HTTP to it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user, require_role
from mes_lite.assessment import service
from mes_lite.assessment.index import DEFAULT_INDEX_ID, IndexFileError, available_indexes, load_index
from mes_lite.assessment.models import Assessment
from mes_lite.assessment.service import Report
from mes_lite.db import get_session
from mes_lite.models import User
from mes_lite.services.errors import NotFound

router = APIRouter(tags=["assessment"])


class StartIn(BaseModel):
    title: str = Field(default="", max_length=200)
    index_id: str = DEFAULT_INDEX_ID


class AnswersIn(BaseModel):
    items: dict[str, Any] = Field(default_factory=dict, description="item id -> number, option id or option ids")
    scenarios: dict[str, Any] = Field(default_factory=dict, description="scenario id -> level 0..4")
    title: str | None = Field(default=None, max_length=200)


def assessment_json(assessment: Assessment) -> dict[str, Any]:
    return {
        "id": assessment.id,
        "index_id": assessment.index_id,
        "title": assessment.title,
        "status": assessment.status,
        "answers": assessment.answers,
        "proposals": assessment.proposals,
        "evidence_at_ns": assessment.evidence_at_ns,
        "created_at_ns": assessment.created_at_ns,
        "updated_at_ns": assessment.updated_at_ns,
        "completed_at_ns": assessment.completed_at_ns,
        "score": assessment.score,
        "level": assessment.level,
    }


def report_json(report: Report) -> dict[str, Any]:
    result = report.result
    level_label = report.index.level_label(result.level)
    return {
        "assessment": assessment_json(report.assessment),
        "index": {"id": report.index.id, "document": report.index.document, "edition": report.index.edition},
        "score": result.score,
        "max_score": result.max_score,
        "level": result.level,
        "level_label": {"zh": level_label.zh, "en": level_label.en},
        "dimensions": [dataclasses.asdict(d) for d in result.dimensions],
        "scenario_levels": result.scenario_levels,
        "checks": [dataclasses.asdict(c) | {"met": c.met} for c in result.checks],
        "gap": dataclasses.asdict(result.gap) if result.gap else None,
        "roadmap": [
            {
                "rank": s.rank,
                "target": s.target,
                "target_id": s.target_id,
                "kind": s.kind,
                "action": s.action.key,
                "needed": s.needed,
                "gain_points": s.gain_points,
                "from_level": s.from_level,
                "to_level": s.to_level,
                "links": list(s.links),
            }
            for s in report.roadmap
        ],
        "previous": assessment_json(report.previous) if report.previous else None,
        "progress": dataclasses.asdict(report.progress) if report.progress else None,
        "answered_items": result.answered_items,
        "total_items": result.total_items,
    }


@router.get("/api/assessment/indexes")
def list_indexes(_: User = Depends(current_user)) -> list[str]:
    return available_indexes()


@router.get("/api/assessment/indexes/{index_id}")
def get_index(index_id: str, _: User = Depends(current_user)) -> dict[str, Any]:
    try:
        return load_index(index_id).model_dump(mode="json", by_alias=True)
    except IndexFileError as exc:
        raise NotFound(str(exc), "index_id") from None


@router.get("/api/assessment/evidence")
def evidence(
    request: Request, _: User = Depends(require_role("supervisor")), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    """What edgefab would propose now, with the evidence (nothing is stored)."""
    proposals = service.current_proposals(session, service.now_ns(), request.app.state.settings.edge_config)
    return [p.to_json() for p in proposals]


@router.get("/api/assessments")
def list_assessments(_: User = Depends(current_user), session: Session = Depends(get_session)) -> list[dict[str, Any]]:
    return [assessment_json(a) for a in service.list_assessments(session)]


@router.post("/api/assessments", status_code=status.HTTP_201_CREATED)
def start(
    body: StartIn,
    request: Request,
    user: User = Depends(require_role("supervisor")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    assessment = service.start_assessment(
        session, body.title, body.index_id, user, edge_config_path=request.app.state.settings.edge_config
    )
    session.commit()
    return assessment_json(assessment)


@router.get("/api/assessments/{assessment_id}")
def get_one(assessment_id: int, _: User = Depends(current_user), session: Session = Depends(get_session)) -> dict:
    return assessment_json(service.get_assessment(session, assessment_id))


@router.put("/api/assessments/{assessment_id}/answers")
def put_answers(
    assessment_id: int,
    body: AnswersIn,
    _: User = Depends(require_role("supervisor")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    assessment = service.save_answers(session, assessment_id, body.items, body.scenarios, body.title)
    session.commit()
    return assessment_json(assessment)


@router.post("/api/assessments/{assessment_id}/evidence")
def refresh(
    assessment_id: int,
    request: Request,
    _: User = Depends(require_role("supervisor")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    assessment = service.refresh_evidence(
        session, assessment_id, edge_config_path=request.app.state.settings.edge_config
    )
    session.commit()
    return assessment_json(assessment)


@router.post("/api/assessments/{assessment_id}/finish")
def finish(
    assessment_id: int, _: User = Depends(require_role("supervisor")), session: Session = Depends(get_session)
) -> dict[str, Any]:
    assessment = service.finish_assessment(session, assessment_id)
    session.commit()
    return assessment_json(assessment)


@router.get("/api/assessments/{assessment_id}/report")
def report(assessment_id: int, _: User = Depends(current_user), session: Session = Depends(get_session)) -> dict:
    return report_json(service.build_report(session, assessment_id))
