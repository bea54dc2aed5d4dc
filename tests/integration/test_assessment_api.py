"""The assessment API end to end on SQLite and PostgreSQL: roles, answers, refusals, finishing, progress."""

from __future__ import annotations

from fastapi.testclient import TestClient

ANSWERS_Q3 = {
    "items": {"network": "full_shop", "equipment_networked_rate": 20, "monthly_yield_change": "same"},
    "scenarios": {"equipment": 2, "production_control": 2, "quality": 1},
}
ANSWERS_Q4 = {
    "items": {
        "network": "full_shop",  # 6
        "equipment_networked_rate": 60,  # 6
        "equipment_digital_rate": 60,  # 6
        "monthly_yield_change": "better",  # 7
        "information_systems": "several",  # 5
    },
    "scenarios": {"equipment": 3, "production_control": 3, "quality": 2, "warehouse": 1, "planning": 1, "finance": 1},
}


def test_supervisors_answer_and_finish_operators_only_read_and_progress_is_reported(
    mes_client: TestClient, mes_auth_headers: dict[str, dict[str, str]]
) -> None:
    operator, supervisor = mes_auth_headers["operator"], mes_auth_headers["supervisor"]
    index = mes_client.get("/api/assessment/indexes/miit-2024", headers=operator).json()
    assert index["document"] == "工信厅企业〔2024〕56号" and len(index["scenarios"]) == 16

    assert mes_client.post("/api/assessments", json={"title": "Q3"}, headers=operator).status_code == 403
    assert mes_client.get("/api/assessment/evidence", headers=operator).status_code == 403
    assert mes_client.get("/api/assessment/evidence", headers=supervisor).status_code == 200

    first = mes_client.post("/api/assessments", json={"title": "Q3"}, headers=supervisor)
    assert first.status_code == 201, first.text
    first_id = first.json()["id"]
    assert first.json()["status"] == "draft" and first.json()["proposals"]  # evidence kept with the draft
    saved = mes_client.put(f"/api/assessments/{first_id}/answers", json=ANSWERS_Q3, headers=supervisor)
    assert saved.status_code == 200 and saved.json()["answers"]["items"]["equipment_networked_rate"] == 20

    refused = mes_client.put(
        f"/api/assessments/{first_id}/answers",
        json={"items": {"equipment_networked_rate": 130}, "scenarios": {}},
        headers=supervisor,
    )
    assert refused.status_code == 422
    assert refused.json() == {
        "detail": "equipment_networked_rate: 130 is outside 0..100 %",
        "field": "items.equipment_networked_rate",
    }
    kept = mes_client.get(f"/api/assessments/{first_id}", headers=operator).json()
    assert kept["answers"] == saved.json()["answers"]  # the refused answer changed nothing

    report = mes_client.get(f"/api/assessments/{first_id}/report", headers=operator).json()
    assert report["score"] == 6 + 3 + 3.5  # network 0.75 x 8, 20 % networked, yield the same
    assert report["level"] == 0 and report["level_label"] == {"zh": "未达级", "en": "Not graded"}
    assert report["gap"]["target_level"] == 1 and report["roadmap"][0]["needed"]
    assert report["previous"] is None and report["progress"] is None

    finished = mes_client.post(f"/api/assessments/{first_id}/finish", headers=supervisor).json()
    assert finished["status"] == "final" and finished["score"] == 12.5 and finished["level"] == 0
    again = mes_client.put(f"/api/assessments/{first_id}/answers", json=ANSWERS_Q4, headers=supervisor)
    assert again.status_code == 409 and "is finished" in again.json()["detail"]

    second_id = mes_client.post("/api/assessments", json={"title": "Q4"}, headers=supervisor).json()["id"]
    mes_client.put(f"/api/assessments/{second_id}/answers", json=ANSWERS_Q4, headers=supervisor).raise_for_status()
    mes_client.post(f"/api/assessments/{second_id}/finish", headers=supervisor).raise_for_status()
    progress_report = mes_client.get(f"/api/assessments/{second_id}/report", headers=operator).json()
    assert progress_report["score"] == 30 and progress_report["level"] == 1  # 6 scenarios at 一级+, 5 binding
    assert progress_report["previous"]["id"] == first_id
    assert progress_report["progress"]["score_change"] == 17.5
    assert progress_report["progress"]["level_change"] == 1
    assert progress_report["progress"]["scenario_changes"] == {
        "planning": 1,
        "production_control": 1,
        "quality": 1,
        "equipment": 1,
        "warehouse": 1,
        "finance": 1,
    }
    listed = mes_client.get("/api/assessments", headers=operator).json()
    assert [a["id"] for a in listed] == [second_id, first_id]  # newest first
    assert mes_client.get("/api/assessments/999", headers=operator).status_code == 404
