"""MES API on SQLite and PostgreSQL: master data, roles, validation messages, import with row errors."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from mes_lite.cli import register  # noqa: F401  (the CLI module imports cleanly)

DEMO_PLANT = Path(__file__).parents[2] / "mes_lite" / "examples" / "demo-plant.yaml"


def import_demo_plant(client: TestClient) -> dict:
    with DEMO_PLANT.open("rb") as f:
        response = client.post("/api/master-data/import", files={"file": ("demo-plant.yaml", f, "application/yaml")})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_demo_plant_imports_and_importing_it_again_changes_nothing(mes_client: TestClient) -> None:
    first = import_demo_plant(mes_client)
    assert first["imported"]["work_centers"] == 4
    before = mes_client.get("/api/master-data/work-centers").json()
    import_demo_plant(mes_client)
    assert mes_client.get("/api/master-data/work-centers").json() == before
    assert {wc["path"] for wc in before} >= {"dongguan/stamping/line1/press01", "dongguan/moulding/line3/imm01"}
    shifts = mes_client.get("/api/master-data/shifts").json()
    assert {s["name"] for s in shifts} == {"day", "night"}


def test_an_import_with_bad_rows_lists_every_row_error_and_stores_nothing(mes_client: TestClient) -> None:
    bad = b"""
sites:
  - {enterprise: acme, code: plant2}
areas:
  - {site: plant2, code: a1}
  - {site: nowhere, code: a2}
work_centers:
  - {site: plant2, area: a1, line: l1, code: m1, ideal_cycle_time_s: -3}
products:
  - {code: P1, colour: red}
"""
    response = mes_client.post("/api/master-data/import", files={"file": ("bad.yaml", bad, "application/yaml")})
    assert response.status_code == 422
    errors = response.json()["detail"]["errors"]
    assert any("areas[1]: site: site 'nowhere' does not exist" in e for e in errors), errors
    assert any("work_centers[0]: ideal_cycle_time_s: Input should be greater than 0" in e for e in errors), errors
    assert any("products[0]: colour: Extra inputs are not permitted" in e for e in errors), errors
    assert "plant2" not in {s["code"] for s in mes_client.get("/api/master-data/sites").json()}


def test_a_csv_import_reports_the_line_of_each_bad_row(mes_client: TestClient) -> None:
    csv = b"code,name,unit_of_measure\nP-1,Part one,pcs\nbad code!,Part two,pcs\n"
    response = mes_client.post("/api/master-data/import", files={"file": ("products.csv", csv, "text/csv")})
    assert response.status_code == 422
    assert response.json()["detail"]["errors"] == [
        "products.csv:3: products[1]: code: String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]*$'"
    ]
    good = b"code,name,unit_of_measure\nP-1,Part one,pcs\nP-2,Part two,kg\n"
    response = mes_client.post("/api/master-data/import", files={"file": ("products.csv", good, "text/csv")})
    assert response.json() == {"imported": {"products": 2}}


def test_an_operator_can_read_but_not_change_master_data(mes_client: TestClient, mes_auth_headers: dict) -> None:
    operator = mes_auth_headers["operator"]
    assert mes_client.get("/api/master-data/products", headers=operator).status_code == 200
    response = mes_client.post("/api/master-data/products", json={"code": "X1"}, headers=operator)
    assert response.status_code == 403
    assert "supervisor role" in response.json()["detail"]
    assert mes_client.get("/api/master-data/products").json() == []


def test_a_validation_error_names_the_field_and_says_why(mes_client: TestClient) -> None:
    response = mes_client.post(
        "/api/master-data/shifts", json={"site": "s", "name": "day", "start": "25:00", "end": "14:00", "weekdays": "89"}
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"start", "weekdays"}
    assert "weekdays:" in response.json()["detail"]


def test_the_openapi_document_lists_the_mes_routes(mes_client: TestClient) -> None:
    paths = mes_client.get("/openapi.json").json()["paths"]
    for path in ("/api/work-orders", "/api/oee", "/api/oee/downtime-pareto", "/api/andon", "/api/master-data/import"):
        assert path in paths
    assert mes_client.get("/docs").status_code == 200
