"""The web pages' languages: locale choice, catalogues complete in both locales, every template string translated."""

from __future__ import annotations

import datetime as dt
import re
import string
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mes_lite.web import i18n
from mes_lite.web.i18n import SUPPORTED_LOCALES, Translator, catalogue, choose_locale, parse_accept_language
from mes_lite.web.templating import TEMPLATES_DIR, templates

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
PLACEHOLDER = re.compile(r"\{(\w+)[^}]*\}")


# -- choosing the locale ------------------------------------------------------------------------


def test_an_explicit_query_choice_beats_the_cookie_and_the_browser() -> None:
    assert choose_locale("en", "zh-CN", "zh-CN,zh;q=0.9") == "en"
    assert choose_locale(None, "en", "zh-CN") == "en"


def test_the_browser_preference_is_used_in_quality_order() -> None:
    assert choose_locale(None, None, "fr-FR;q=1, en-US;q=0.8, zh-CN;q=0.9") == "zh-CN"
    assert choose_locale(None, None, "en-GB,en;q=0.9") == "en"
    assert choose_locale(None, None, "zh-TW") == "zh-CN"


def test_unsupported_or_missing_preferences_fall_back_to_chinese() -> None:
    assert choose_locale(None, None, None) == "zh-CN"
    assert choose_locale("de", "fr", "de-DE, ja") == "zh-CN"
    assert choose_locale(None, None, "en;q=0") == "zh-CN"


def test_accept_language_ignores_zero_quality_and_malformed_weights() -> None:
    assert parse_accept_language("de;q=0, en;q=abc, zh") == ["zh"]


@given(st.text(max_size=60), st.text(max_size=20), st.text(max_size=20))
def test_any_header_or_cookie_yields_a_supported_locale(header: str, cookie: str, query: str) -> None:
    assert choose_locale(query, cookie, header) in SUPPORTED_LOCALES


# -- catalogues -----------------------------------------------------------------------------------


def test_every_key_exists_in_both_locales() -> None:
    zh, en = set(catalogue("zh-CN")), set(catalogue("en"))
    assert zh - en == set(), "keys missing in en"
    assert en - zh == set(), "keys missing in zh-CN"


def test_both_locales_use_the_same_placeholders_for_each_key() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    for key in zh:
        assert set(PLACEHOLDER.findall(zh[key])) == set(PLACEHOLDER.findall(en[key])), key


def test_english_messages_hold_no_chinese_and_chinese_messages_are_chinese() -> None:
    """No mixed-language pages: an en message never carries CJK; a zh-CN message with words is Chinese."""
    for key, message in catalogue("en").items():
        assert not CJK.search(message), f"en {key}: {message!r}"
    for key, message in catalogue("zh-CN").items():
        words = re.sub(r"\{\w+\}|\b[A-Z][A-Z0-9_]{2,}\b|edgefab|OEE|ID|ISO|kWh", "", message)  # names, env vars
        if re.search(r"[A-Za-z]{3,}", words):
            pytest.fail(f"zh-CN {key} holds English words: {message!r}")


def test_an_area_file_cannot_redefine_another_areas_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.json").write_text('{"x.title": "A"}')
    (tmp_path / "en" / "b.json").write_text('{"x.title": "B"}')
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path)
    i18n.catalogue.cache_clear()
    try:
        with pytest.raises(i18n.CatalogueError, match=r"x\.title: already defined in a\.json"):
            catalogue("en")
    finally:
        monkeypatch.undo()
        i18n.catalogue.cache_clear()


def test_a_missing_key_shows_the_key_so_tests_see_it() -> None:
    assert Translator("en")("no.such.key") == "no.such.key"


def test_parameters_are_filled_in() -> None:
    assert Translator("en")("error.not_found", what="press01") == "Not found: press01"
    assert Translator("zh-CN")("error.not_found", what="press01") == "未找到：press01"


# -- every template string goes through the translator ----------------------------------------------

ALLOWED_LITERALS = {"edgefab"}
TRANSLATED_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description", "label"}
BODY_CLASS_BLOCK = re.compile(r"\{%\s*block body_class\s*%\}.*?\{%\s*endblock\s*%\}", re.S)
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


class _LiteralText(HTMLParser):
    """Text nodes and human-readable attributes of a template whose Jinja parts were blanked."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in TRANSLATED_ATTRIBUTES and value:
                self.found.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append(data)


def _untranslated(source: str) -> list[str]:
    parser = _LiteralText()
    source = BODY_CLASS_BLOCK.sub(" ", source)  # a CSS class name, not text
    parser.feed(JINJA.sub(" ", source))
    leaks = []
    for text in parser.found:
        words = [w for w in re.split(r"[\s" + re.escape(string.punctuation + "·–—×") + r"]+", text) if w]
        leaks += [w for w in words if w not in ALLOWED_LITERALS and (re.search(r"[A-Za-z]", w) or CJK.search(w))]
    return leaks


def test_the_literal_text_finder_catches_hard_coded_words() -> None:
    assert _untranslated('<p title="Start">{{ t("x") }} 开始</p>') == ["Start", "开始"]
    assert _untranslated('<p aria-label="{{ t(\'a\') }}">{{ t("x") }} · 42 %</p>') == []


@pytest.mark.parametrize(
    "template", sorted(str(p.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.rglob("*.html")), ids=str
)
def test_every_visible_template_string_goes_through_the_translator(template: str) -> None:
    source = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    assert _untranslated(source) == []


def test_every_catalogue_key_a_template_names_exists() -> None:
    """Literal keys `t("a.b")` in templates must exist (computed keys are checked by the browser tests)."""
    keys = set(catalogue("en"))
    missing = []
    for path in TEMPLATES_DIR.rglob("*.html"):
        for key in re.findall(r"""\b(?:t|_)\(\s*["']([\w.\-]+)["']\s*[,)]""", path.read_text(encoding="utf-8")):
            if key not in keys:
                missing.append(f"{path.name}: {key}")
    assert missing == []


def test_templates_compile() -> None:
    for path in TEMPLATES_DIR.rglob("*.html"):
        templates.env.get_template(str(path.relative_to(TEMPLATES_DIR)))


# -- localised numbers, dates, durations ------------------------------------------------------------


def test_numbers_and_percentages_per_locale() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    assert zh.number(19271) == "19,271" and en.number(19271.456, 1) == "19,271.5"
    assert zh.percent(0.7479) == "74.8%" and en.percent(0.7479) == "74.8 %"
    assert en.percent(None) == "–" and en.number(float("nan")) == "–"


def test_durations_read_naturally_in_each_locale() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    assert zh.duration(3909) == "1小时5分" and en.duration(3909) == "1 h 5 min"
    assert zh.duration(42) == "42秒" and en.duration(0) == "0 s"
    assert en.duration(90061) == "1 d 1 h"
    assert en.clock(3909) == "1:05:09" and en.clock(309) == "5:09"


def test_dates_per_locale_in_the_plant_time_zone() -> None:
    moment = dt.datetime(2026, 11, 26, 6, 3, tzinfo=dt.UTC)
    assert Translator("zh-CN").datetime(moment, "Asia/Shanghai") == "2026年11月26日 14:03"
    assert Translator("en").datetime(moment, "Asia/Shanghai") == "26 Nov 2026 14:03"
    assert Translator("en").datetime(moment.replace(tzinfo=None), with_date=False) == "06:03"
