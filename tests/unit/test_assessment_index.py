"""The index file: the shipped 2024 edition loads and says what is verified; a broken file gets one clear line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mes_lite.assessment.index import INDEXES_DIR, IndexFileError, available_indexes, load_index, parse_index

RAW = yaml.safe_load((INDEXES_DIR / "miit-2024.yaml").read_text(encoding="utf-8"))


def test_the_2024_edition_holds_every_dimension_item_and_scenario_of_the_issue() -> None:
    index = load_index("miit-2024")
    assert index.document == "工信厅企业〔2024〕56号"
    assert [(d.label.zh, d.points) for d in index.dimensions] == [
        ("数字化基础", 50),
        ("数字化管理", 30),
        ("数字化成效", 20),
    ]
    assert {i.label.zh: i.points for i in index.dimensions[0].items} == {
        "网络建设": 8,
        "生产设备数字化率": 6,
        "生产设备联网率": 6,
        "实现数据自动采集的业务环节": 10,
        "信息系统应用": 10,
        "网络安全": 5,
        "数据安全": 5,
    }
    assert [i.label.zh for i in index.dimensions[1].items] == ["认识与执行", "管理制度", "人才建设", "资金保障"]
    assert {i.label.zh: i.points for i in index.dimensions[2].items} == {
        "每百元营业收入综合能耗变化": 7,
        "月均产品合格率变化": 7,
        "人均营业收入变化": 3,
        "每百元营业收入成本变化": 3,
    }
    assert len(index.item("data_collection_links").option_list) == 14  # type: ignore[union-attr]
    assert [s.label.zh for s in index.scenarios] == [
        "产品设计", "工艺设计", "营销管理", "售后服务", "计划排程", "生产管控", "质量管理", "设备管理",
        "安全生产", "能耗管理", "采购管理", "仓储物流", "财务管理", "人力资源", "协同办公", "决策支持",
    ]  # fmt: skip
    rule = [(t.min_score, t.min_scenarios, t.min_binding) for t in index.level_rule.levels]
    assert rule == [(20, 6, 3), (40, 6, 3), (60, 8, 5), (80, 10, 6)]


def test_every_entry_says_whether_it_was_checked_against_the_official_text_and_where_it_comes_from() -> None:
    index = load_index("miit-2024")
    sources = {s.id for s in index.sources}
    entries = [*index.dimensions, *index.items, *index.scenarios, index.level_rule, index.scenario_dimension]
    assert all(isinstance(e.verified, bool) and e.source in sources for e in entries)
    # what was checked: the four-dimension architecture of the 2024 notice; the item table was not
    assert index.scenario_dimension.verified is True
    assert not any(item.verified for item in index.items)


def test_every_label_exists_in_both_languages() -> None:
    index = load_index("miit-2024")
    labels = [index.title, *(d.label for d in index.dimensions), *(i.label for i in index.items)]
    labels += [o.label for i in index.items if i.options for o in i.option_list] + [s.label for s in index.scenarios]
    assert all(label.zh and label.en and label.zh != label.en for label in labels)


def test_a_future_edition_is_a_file_not_code() -> None:
    assert "miit-2024" in available_indexes()
    with pytest.raises(IndexFileError, match="unknown assessment index 'miit-2031'"):
        load_index("miit-2031")


def _broken(change) -> dict:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(RAW)
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["dimensions"][0]["groups"][0]["items"][0].update(points=9), "foundation: items add up to 51"),
        (lambda d: d["band_sets"]["rate_percent"][1].update({"from": 11}), "bands must be contiguous"),
        (lambda d: d["dimensions"][1]["groups"][0]["items"][0].update(options="likert"), "unknown option set 'likert'"),
        (lambda d: d["scenarios"][0].update(group="moon"), "unknown group 'moon'"),
        (lambda d: d["level_rule"]["levels"][2].update(min_score=30), "level 3: thresholds must not be lower"),
        (lambda d: d["scenarios"][0].pop("binding"), r"scenarios\.0\.binding: Field required"),
        (lambda d: d["dimensions"][0]["groups"][0]["items"][1].update(verified="maybe"), "verified"),
    ],
)
def test_a_broken_index_file_is_refused_with_one_line_naming_the_problem(change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IndexFileError, match=message) as refused:
        parse_index(_broken(change), "miit-test.yaml")
    assert "\n" not in str(refused.value) and str(refused.value).startswith("miit-test.yaml: ")


def test_a_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    from mes_lite.assessment.index import load_index_file

    path = tmp_path / "bad.yaml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(IndexFileError, match="not valid YAML"):
        load_index_file(path)


def test_a_stored_answer_a_corrected_index_no_longer_accepts_is_dropped_alone() -> None:
    from mes_lite.assessment.models import Assessment
    from mes_lite.assessment.service import answers_of

    stored = Assessment(
        index_id="miit-2024",
        answers={
            "items": {"network": "carrier_pigeon", "equipment_networked_rate": 40, "retired_item": 3},
            "scenarios": {"equipment": 3, "retired_scenario": 2, "quality": 9},
        },
    )
    answers = answers_of(stored)
    assert answers.items == {"equipment_networked_rate": 40.0}
    assert answers.scenarios == {"equipment": 3}
