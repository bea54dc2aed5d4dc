"""Pages of the self-assessment: the list, the questionnaire (answer, save, resume) and the printable report.

Supervisors and admins answer; operators read the list and the reports. Texts come from the locale
catalogues (`locales/<locale>/assessment.json`) and the index file's own zh / en labels; this module
turns results into display rows so the templates stay simple.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from mes_lite.assessment import service
from mes_lite.assessment.index import AssessmentIndex, Item, ItemKind
from mes_lite.assessment.models import Assessment, AssessmentStatus
from mes_lite.assessment.proposals import Proposal
from mes_lite.assessment.roadmap import EDGEFAB, Step
from mes_lite.assessment.scoring import AnswerError, validate_answers
from mes_lite.db import get_session
from mes_lite.models import User
from mes_lite.services.errors import ServiceError
from mes_lite.web.i18n import Translator, translator
from mes_lite.web.session import require_page_role, verify_csrf
from mes_lite.web.templating import NAV_ITEMS, NavItem, finish_response, render, request_locale

router = APIRouter(include_in_schema=False)
if not any(item.href == "/assessment" for item in NAV_ITEMS):
    NAV_ITEMS.append(NavItem("nav.assessment", "/assessment", min_role="operator"))

NS_PER_S = 1_000_000_000


def _moment(ns: int | None):  # type: ignore[no-untyped-def]
    import datetime as dt

    return dt.datetime.fromtimestamp(ns / NS_PER_S, dt.UTC) if ns else None


def _can_edit(user: User | None) -> bool:
    return user is not None and user.role in ("supervisor", "admin")


def _value_text(t: Translator, index: AssessmentIndex, item: Item, value: object, locale: str) -> str:
    """An answer as a person reads it: 40 %, an option's label, or the list of labels."""
    if value is None:
        return t("assessment.unanswered")
    if item.kind is ItemKind.BAND:
        return t.percent(float(value) / 100) if item.unit == "percent" else t.number(float(value), 1)  # type: ignore[arg-type]
    if item.kind is ItemKind.CHOICE:
        option = item.option(str(value))
        return option.label.text(locale) if option else str(value)
    labels = [o.label.text(locale) for o in item.option_list if o.id in (value or [])]  # type: ignore[operator]
    return t("assessment.list_separator").join(labels) if labels else t("assessment.none_selected")


def _level_text(index: AssessmentIndex, level: int | None, locale: str, t: Translator) -> str:
    if level is None:
        return t("assessment.unrated")
    return index.scenario_levels[level - 1].label.text(locale) if level >= 1 else t("assessment.level_zero")


def _evidence_texts(t: Translator, proposal: Proposal) -> list[str]:
    return [t(f"assessment.evidence.{line.key}", **line.params) for line in proposal.evidence]


def _proposal_view(
    t: Translator, index: AssessmentIndex, proposal: Proposal | None, locale: str, current: object
) -> dict[str, Any] | None:
    if proposal is None:
        return None
    if proposal.target == "item":
        item = index.item(proposal.target_id)
        value_text = (
            _value_text(t, index, item, proposal.value, locale) if item and proposal.value is not None else None
        )
    else:
        value_text = _level_text(index, proposal.value, locale, t) if proposal.value is not None else None  # type: ignore[arg-type]
    return {
        "value": proposal.value,
        "value_text": value_text,
        "evidence": _evidence_texts(t, proposal),
        "overridden": proposal.value is not None and current != proposal.value,
    }


def _step_view(t: Translator, index: AssessmentIndex, step: Step, locale: str) -> dict[str, Any]:
    if step.target == "item":
        item = index.item(step.target_id)
        target = item.label.text(locale) if item else step.target_id
        options = {o.id: o.label.text(locale) for o in item.option_list} if item and item.options else {}
    else:
        scenario = index.scenario(step.target_id)
        target = scenario.label.text(locale) if scenario else step.target_id
        options = {}
    params = dict(step.action.params)
    text = t(f"assessment.action.{step.action.key}", **params)
    links = [
        options.get(link) or (index.scenario(link).label.text(locale) if index.scenario(link) else link)
        for link in step.links
    ]
    detail = None
    if step.gain_points is not None:
        detail = t("assessment.step_points", points=t.number(step.gain_points, 2))
    elif step.from_level is not None and step.to_level is not None:
        detail = t(
            "assessment.step_levels",
            before=_level_text(index, step.from_level, locale, t),
            after=_level_text(index, step.to_level, locale, t),
        )
    return {
        "rank": step.rank,
        "target": target,
        "text": text,
        "links": t("assessment.list_separator").join(links) if links else "",
        "detail": detail,
        "edgefab": step.kind == EDGEFAB,
        "needed": step.needed,
    }


def _proposals_by_target(assessment: Assessment) -> dict[tuple[str, str], Proposal]:
    return {(p.target, p.target_id): p for p in service.proposals_of(assessment)}


def _questionnaire_context(
    request: Request, assessment: Assessment, answers_json: dict[str, Any], error: str | None = None
) -> dict[str, Any]:
    locale = request_locale(request)
    t = translator(locale)
    index = service.index_of(assessment)
    proposals = _proposals_by_target(assessment)
    items = answers_json.get("items", {})
    scenarios = answers_json.get("scenarios", {})
    dimensions = []
    for dimension in index.dimensions:
        groups = []
        for group in dimension.groups:
            rows = []
            for item in group.items:
                current = items.get(item.id)
                rows.append(
                    {
                        "item": item,
                        "label": item.label.text(locale),
                        "help": item.help.text(locale) if item.help else "",
                        "value": current,
                        "options": [
                            {"id": o.id, "label": o.label.text(locale), "checked": _checked(item, current, o.id)}
                            for o in (item.option_list if item.kind is not ItemKind.BAND else [])
                        ],
                        "proposal": _proposal_view(t, index, proposals.get(("item", item.id)), locale, current),
                    }
                )
            groups.append({"label": group.label.text(locale), "rows": rows})
        dimensions.append({"label": dimension.label.text(locale), "points": dimension.points, "groups": groups})
    scenario_groups = []
    for group in index.scenario_groups:
        rows = []
        for scenario in (s for s in index.scenarios if s.group == group.id):
            current = scenarios.get(scenario.id)
            rows.append(
                {
                    "id": scenario.id,
                    "label": scenario.label.text(locale),
                    "binding": scenario.binding,
                    "value": current,
                    "meanings": {lvl: m.text(locale) for lvl, m in scenario.level_meanings.items()},
                    "proposal": _proposal_view(t, index, proposals.get(("scenario", scenario.id)), locale, current),
                }
            )
        scenario_groups.append({"label": group.label.text(locale), "scenarios": rows})
    return {
        "assessment": assessment,
        "index": index,
        "index_title": index.title.text(locale),
        "dimensions": dimensions,
        "scenario_groups": scenario_groups,
        "levels": [
            {"level": lv.level, "label": lv.label.text(locale), "meaning": lv.meaning.text(locale)}
            for lv in index.scenario_levels
        ],
        "error": error,
        "evidence_at": _moment(assessment.evidence_at_ns),
        "title_value": answers_json.get("title", assessment.title),
    }


def _checked(item: Item, current: object, option_id: str) -> bool:
    if item.kind is ItemKind.MULTI:
        return isinstance(current, list) and option_id in current
    return current == option_id


@router.get("/assessment")
def assessment_list(
    request: Request, user: User = Depends(require_page_role("operator")), session: Session = Depends(get_session)
) -> Response:
    locale = request_locale(request)
    t = translator(locale)
    rows = []
    for assessment in service.list_assessments(session):
        try:
            index = service.index_of(assessment)
            level = _level_text(index, assessment.level, locale, t) if assessment.level is not None else ""
            if assessment.level == 0:
                level = index.level_rule.not_reached.text(locale)
        except ServiceError:
            level = ""
        rows.append(
            {
                "assessment": assessment,
                "draft": assessment.status == AssessmentStatus.DRAFT.value,
                "created": _moment(assessment.created_at_ns),
                "completed": _moment(assessment.completed_at_ns),
                "level": level,
            }
        )
    return render(request, "assessment/list.html", {"rows": rows, "can_edit": _can_edit(user)})


@router.post("/assessment/new", dependencies=[Depends(verify_csrf)])
async def assessment_new(
    request: Request, user: User = Depends(require_page_role("supervisor")), session: Session = Depends(get_session)
) -> Response:
    form = await request.form()
    title = str(form.get("title") or "")
    assessment = service.start_assessment(
        session, title[: service.MAX_TITLE_LENGTH], user=user, edge_config_path=request.app.state.settings.edge_config
    )
    session.commit()
    response = RedirectResponse(f"/assessment/{assessment.id}/edit", status_code=303)
    finish_response(request, response)
    return response


@router.get("/assessment/{assessment_id}/edit")
def assessment_edit(
    assessment_id: int,
    request: Request,
    _user: User = Depends(require_page_role("supervisor")),
    session: Session = Depends(get_session),
) -> Response:
    assessment = service.get_assessment(session, assessment_id)
    if assessment.status != AssessmentStatus.DRAFT.value:
        return RedirectResponse(f"/assessment/{assessment_id}", status_code=303)
    return render(
        request, "assessment/edit.html", _questionnaire_context(request, assessment, assessment.answers or {})
    )


def _form_answers(index: AssessmentIndex, form: Any) -> tuple[dict[str, object], dict[str, object]]:
    items: dict[str, object] = {}
    for item in index.items:
        name = f"item.{item.id}"
        if item.kind is ItemKind.MULTI:
            if form.get(f"{name}.present") is not None:
                items[item.id] = [str(v) for v in form.getlist(name)]
        else:
            value = form.get(name)
            if value is not None:
                items[item.id] = str(value).strip()
    scenarios = {s.id: str(form.get(f"scenario.{s.id}") or "") for s in index.scenarios}
    return items, scenarios


def _answer_error_text(request: Request, index: AssessmentIndex, error: AnswerError) -> str:
    """The refused answer in the page's language: which question, and what is allowed."""
    locale = request_locale(request)
    t = translator(locale)
    target_id = (error.field or "").split(".", 1)[-1]
    target = index.item(target_id) or index.scenario(target_id)
    label = target.label.text(locale) if target else target_id
    params = {k: t.number(v, 0) if isinstance(v, float | int) else v for k, v in error.params.items()}
    return t(f"assessment.error.{error.code}", label=label, **params)


@router.post("/assessment/{assessment_id}/edit", dependencies=[Depends(verify_csrf)])
async def assessment_save(
    assessment_id: int,
    request: Request,
    _user: User = Depends(require_page_role("supervisor")),
    session: Session = Depends(get_session),
) -> Response:
    assessment = service.get_assessment(session, assessment_id)
    if assessment.status != AssessmentStatus.DRAFT.value:
        return RedirectResponse(f"/assessment/{assessment_id}", status_code=303)
    index = service.index_of(assessment)
    form = await request.form()
    items, scenarios = _form_answers(index, form)
    action = str(form.get("action") or "save")
    title = str(form.get("title") or "")
    try:
        validate_answers(index, items, scenarios)
    except AnswerError as exc:
        shown = {"items": items, "scenarios": scenarios, "title": title}
        context = _questionnaire_context(request, assessment, shown, error=_answer_error_text(request, index, exc))
        return render(request, "assessment/edit.html", context, status_code=422)
    try:
        service.save_answers(session, assessment_id, items, scenarios, title=title)
        if action == "refresh":
            service.refresh_evidence(session, assessment_id, edge_config_path=request.app.state.settings.edge_config)
        if action == "finish":
            service.finish_assessment(session, assessment_id)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        assessment = service.get_assessment(session, assessment_id)
        shown = {"items": items, "scenarios": scenarios, "title": title}
        context = _questionnaire_context(request, assessment, shown, error=exc.message)
        return render(request, "assessment/edit.html", context, status_code=422)
    target = f"/assessment/{assessment_id}" if action == "finish" else f"/assessment/{assessment_id}/edit?saved=1"
    response = RedirectResponse(target, status_code=303)
    finish_response(request, response)
    return response


@router.get("/assessment/{assessment_id}")
def assessment_report(
    assessment_id: int,
    request: Request,
    user: User = Depends(require_page_role("operator")),
    session: Session = Depends(get_session),
) -> Response:
    locale = request_locale(request)
    t = translator(locale)
    report = service.build_report(session, assessment_id)
    index, result = report.index, report.result
    dimensions = [
        {
            "label": dimension.label.text(locale),
            "points": score.points,
            "max_points": dimension.points,
            "ratio": score.points / dimension.points if dimension.points else 0,
            "change": report.progress.dimension_changes.get(dimension.id) if report.progress else None,
        }
        for dimension, score in zip(index.dimensions, result.dimensions, strict=True)
    ]
    scenario_rows = []
    for group in index.scenario_groups:
        for scenario in (s for s in index.scenarios if s.group == group.id):
            level = result.scenario_levels.get(scenario.id, 0)
            change = report.progress.scenario_changes.get(scenario.id) if report.progress else None
            scenario_rows.append(
                {
                    "group": group.label.text(locale),
                    "label": scenario.label.text(locale),
                    "binding": scenario.binding,
                    "level": level,
                    "level_text": _level_text(index, level, locale, t),
                    "change": change,
                }
            )
    checks = [
        {
            "label": index.threshold(c.level).label.text(locale),
            "check": c,
        }
        for c in result.checks
    ]
    gap = result.gap
    context = {
        "report": report,
        "assessment": report.assessment,
        "index_title": index.title.text(locale),
        "document": index.document,
        "level_label": index.level_label(result.level).text(locale),
        "level_meaning": index.threshold(result.level).meaning.text(locale) if result.level else "",
        "result": result,
        "dimensions": dimensions,
        "scenarios": scenario_rows,
        "checks": checks,
        "gap": gap,
        "gap_label": index.level_label(gap.target_level).text(locale) if gap else "",
        "roadmap": [_step_view(t, index, step, locale) for step in report.roadmap],
        "previous": report.previous,
        "previous_level": index.level_label(report.previous_result.level).text(locale)
        if report.previous_result
        else "",
        "previous_score": report.previous_result.score if report.previous_result else None,
        "progress": report.progress,
        "created": _moment(report.assessment.created_at_ns),
        "completed": _moment(report.assessment.completed_at_ns),
        "previous_completed": _moment(report.previous.completed_at_ns) if report.previous else None,
        "draft": report.assessment.status == AssessmentStatus.DRAFT.value,
        "can_edit": _can_edit(user),
        "verified_rule": index.level_rule.verified,
    }
    return render(request, "assessment/report.html", context)
