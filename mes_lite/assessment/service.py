"""Assessments over time: start one (with edgefab's proposed answers), save and resume, finish, report.

The API and the pages both call these functions. Answers are validated against the index before
anything is stored, so a bad answer leaves the saved draft as it was. A report compares the
assessment with the previous finished one of the same index (progress, the 'optimise' step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.assessment.evidence import collect_facts
from mes_lite.assessment.index import DEFAULT_INDEX_ID, AssessmentIndex, IndexFileError, load_index
from mes_lite.assessment.models import Assessment, AssessmentStatus
from mes_lite.assessment.proposals import Proposal, propose, proposed_answers
from mes_lite.assessment.roadmap import Step, build_roadmap
from mes_lite.assessment.scoring import (
    AnswerError,
    Answers,
    AssessmentResult,
    Progress,
    progress_between,
    score_assessment,
    validate_answers,
)
from mes_lite.models import User
from mes_lite.services.errors import Conflict, InvalidInput, NotFound

MAX_TITLE_LENGTH = 200


def now_ns() -> int:
    return time.time_ns()


def index_of(assessment: Assessment) -> AssessmentIndex:
    try:
        return load_index(assessment.index_id)
    except IndexFileError as exc:
        raise InvalidInput(str(exc), "index_id") from None


def answers_of(assessment: Assessment) -> Answers:
    """The stored answers, re-validated one by one: an index file corrected since then drops only what no longer fits."""
    index = index_of(assessment)
    stored = assessment.answers or {}
    items: dict[str, object] = {}
    for item_id, value in (stored.get("items") or {}).items():
        try:
            items |= validate_answers(index, {item_id: value}, {}).items
        except AnswerError:
            continue
    scenarios: dict[str, object] = {}
    for scenario_id, level in (stored.get("scenarios") or {}).items():
        try:
            scenarios |= validate_answers(index, {}, {scenario_id: level}).scenarios
        except AnswerError:
            continue
    return validate_answers(index, items, scenarios)


def proposals_of(assessment: Assessment) -> list[Proposal]:
    return [Proposal.from_json(p) for p in assessment.proposals or []]


def get_assessment(session: Session, assessment_id: int) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound(f"assessment {assessment_id} does not exist", "assessment_id")
    return assessment


def list_assessments(session: Session) -> list[Assessment]:
    """Newest first."""
    return list(session.scalars(select(Assessment).order_by(Assessment.created_at_ns.desc(), Assessment.id.desc())))


def current_proposals(session: Session, at_ns: int, edge_config_path: str | None = None) -> list[Proposal]:
    return propose(collect_facts(session, at_ns, edge_config_path))


def start_assessment(
    session: Session,
    title: str = "",
    index_id: str = DEFAULT_INDEX_ID,
    user: User | None = None,
    at_ns: int | None = None,
    edge_config_path: str | None = None,
) -> Assessment:
    """A new draft whose first answers are edgefab's proposals (the user overrides any of them)."""
    try:
        load_index(index_id)
    except IndexFileError as exc:
        raise InvalidInput(str(exc), "index_id") from None
    title = title.strip()
    if len(title) > MAX_TITLE_LENGTH:
        raise InvalidInput(f"title is longer than {MAX_TITLE_LENGTH} characters", "title")
    at_ns = at_ns or now_ns()
    proposals = current_proposals(session, at_ns, edge_config_path)
    items, scenarios = proposed_answers(proposals)
    answers = validate_answers(load_index(index_id), items, scenarios)
    assessment = Assessment(
        index_id=index_id,
        title=title,
        status=AssessmentStatus.DRAFT.value,
        answers=answers.to_json(),
        proposals=[p.to_json() for p in proposals],
        evidence_at_ns=at_ns,
        created_at_ns=at_ns,
        updated_at_ns=at_ns,
        created_by_id=user.id if user else None,
    )
    session.add(assessment)
    session.flush()
    return assessment


def _require_draft(assessment: Assessment, what: str) -> None:
    if assessment.status != AssessmentStatus.DRAFT.value:
        raise Conflict(f"assessment {assessment.id} is finished: {what} needs a draft (start a new assessment)")


def save_answers(
    session: Session,
    assessment_id: int,
    items: dict[str, object],
    scenarios: dict[str, object],
    title: str | None = None,
    at_ns: int | None = None,
) -> Assessment:
    """Replace the draft's answers (all of them: an item left out is unanswered)."""
    assessment = get_assessment(session, assessment_id)
    _require_draft(assessment, "saving answers")
    try:
        answers = validate_answers(index_of(assessment), items, scenarios)
    except AnswerError as exc:
        raise InvalidInput(exc.message, exc.field) from None
    if title is not None:
        if len(title.strip()) > MAX_TITLE_LENGTH:
            raise InvalidInput(f"title is longer than {MAX_TITLE_LENGTH} characters", "title")
        assessment.title = title.strip()
    assessment.answers = answers.to_json()
    assessment.updated_at_ns = at_ns or now_ns()
    session.flush()
    return assessment


def refresh_evidence(
    session: Session, assessment_id: int, at_ns: int | None = None, edge_config_path: str | None = None
) -> Assessment:
    """Recompute the proposals from today's data; the answers stay as the user left them."""
    assessment = get_assessment(session, assessment_id)
    _require_draft(assessment, "refreshing the evidence")
    at_ns = at_ns or now_ns()
    assessment.proposals = [p.to_json() for p in current_proposals(session, at_ns, edge_config_path)]
    assessment.evidence_at_ns = at_ns
    assessment.updated_at_ns = at_ns
    session.flush()
    return assessment


def finish_assessment(session: Session, assessment_id: int, at_ns: int | None = None) -> Assessment:
    """Freeze the assessment: its score and level are kept for the next one's progress."""
    assessment = get_assessment(session, assessment_id)
    _require_draft(assessment, "finishing")
    result = score_assessment(index_of(assessment), answers_of(assessment))
    at_ns = at_ns or now_ns()
    assessment.status = AssessmentStatus.FINAL.value
    assessment.completed_at_ns = at_ns
    assessment.updated_at_ns = at_ns
    assessment.score = result.score
    assessment.level = result.level
    session.flush()
    return assessment


def previous_final(session: Session, assessment: Assessment) -> Assessment | None:
    """The last finished assessment of the same index before this one (finished earlier, or any if a draft)."""
    query = select(Assessment).where(
        Assessment.status == AssessmentStatus.FINAL.value,
        Assessment.index_id == assessment.index_id,
        Assessment.id != assessment.id,
    )
    if assessment.completed_at_ns is not None:
        query = query.where(Assessment.completed_at_ns <= assessment.completed_at_ns)
    return session.scalar(query.order_by(Assessment.completed_at_ns.desc(), Assessment.id.desc()).limit(1))


@dataclass(frozen=True)
class Report:
    assessment: Assessment
    index: AssessmentIndex
    answers: Answers
    result: AssessmentResult
    roadmap: list[Step]
    proposals: list[Proposal]
    previous: Assessment | None
    previous_result: AssessmentResult | None
    progress: Progress | None


def build_report(session: Session, assessment_id: int) -> Report:
    assessment = get_assessment(session, assessment_id)
    index = index_of(assessment)
    answers = answers_of(assessment)
    result = score_assessment(index, answers)
    previous = previous_final(session, assessment)
    previous_result = score_assessment(index, answers_of(previous)) if previous is not None else None
    return Report(
        assessment=assessment,
        index=index,
        answers=answers,
        result=result,
        roadmap=build_roadmap(index, result, answers),
        proposals=proposals_of(assessment),
        previous=previous,
        previous_result=previous_result,
        progress=progress_between(previous_result, result) if previous_result is not None else None,
    )
