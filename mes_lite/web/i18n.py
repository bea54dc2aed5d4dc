"""Languages of the web pages: locale choice, message catalogues, localised numbers, dates and durations.

Two locales are supported, zh-CN (the default: most users) and en. A page is always rendered in
ONE locale, chosen per request from the `lang` query parameter, then the `lang` cookie, then
Accept-Language. Catalogues are flat JSON files, `locales/<locale>/<area>.json`; each area (board,
operator, warehouse, assessment, ...) owns its own file so parallel work never edits the same one.
Keys must be unique across areas. No Babel: the two locales' number and date rules fit in a page.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).parent / "locales"
SUPPORTED_LOCALES: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
LANG_COOKIE = "lang"
# A language's own name is shown in that language on every page (marked with its lang attribute), never translated.
LOCALE_AUTONYMS: dict[str, str] = {"zh-CN": "中文", "en": "English"}


class CatalogueError(ValueError):
    """A catalogue file is not a flat JSON object of strings, or two areas define the same key."""


def normalise_locale(tag: str | None) -> str | None:
    """`zh`, `zh-cn`, `zh_CN`, `zh-Hans-CN` -> `zh-CN`; `en-GB` -> `en`; anything else -> None."""
    if not tag:
        return None
    tag = tag.strip().replace("_", "-").lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags of an Accept-Language header, best first (q=0 dropped, order kept for ties)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        fields = part.strip().split(";")
        tag = fields[0].strip()
        if not tag:
            continue
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def choose_locale(query_lang: str | None, cookie_lang: str | None, accept_language: str | None) -> str:
    """The page locale: explicit choice (query, then cookie) wins over the browser's preference."""
    for explicit in (query_lang, cookie_lang):
        locale = normalise_locale(explicit)
        if locale:
            return locale
    for tag in parse_accept_language(accept_language):
        if tag == "*":
            break
        locale = normalise_locale(tag)
        if locale:
            return locale
    return DEFAULT_LOCALE


@cache
def catalogue(locale: str) -> Mapping[str, str]:
    """All messages of `locale`, merged over its area files (cached: files are read once per process)."""
    if locale not in SUPPORTED_LOCALES:
        raise CatalogueError(f"locale {locale!r} is not one of {', '.join(SUPPORTED_LOCALES)}")
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / locale).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CatalogueError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CatalogueError(f"{path}: must be a JSON object of key -> message")
        for key, message in data.items():
            if not isinstance(message, str):
                raise CatalogueError(f"{path}: {key}: message must be a string, not {type(message).__name__}")
            if key in merged:
                raise CatalogueError(f"{path}: {key}: already defined in {origin[key]}")
            merged[key] = message
            origin[key] = path.name
    return merged


class Translator:
    """`t("board.title")` or `t("board.stopped_for", duration=...)`: the message of one locale.

    A missing key renders as the key itself (visible, so a browser test catches it) and is logged.
    """

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.messages = catalogue(locale)

    def __call__(self, key: str, /, **params: object) -> str:
        message = self.messages.get(key)
        if message is None:
            log.warning("missing %s message for key %r", self.locale, key)
            return key
        return message.format(**params) if params else message

    def has(self, key: str) -> bool:
        return key in self.messages

    # -- numbers ---------------------------------------------------------------------------------

    def number(self, value: float | int | None, digits: int = 0) -> str:
        """Grouped with ',' and '.' decimals in both locales (China uses the same marks as en)."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "–"
        return f"{value:,.{digits}f}"

    def percent(self, ratio: float | None, digits: int = 1) -> str:
        if ratio is None or not math.isfinite(ratio):
            return "–"
        return f"{ratio * 100:,.{digits}f}%" if self.locale == "zh-CN" else f"{ratio * 100:,.{digits}f} %"

    # -- time ------------------------------------------------------------------------------------

    def duration(self, seconds: float | None) -> str:
        """`1小时5分` / `1 h 5 min`; under a minute in seconds; days above 24 h."""
        if seconds is None or not math.isfinite(seconds):
            return "–"
        total = max(0, round(seconds))
        days, rest = divmod(total, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        zh = self.locale == "zh-CN"
        units = (("天", "d"), ("小时", "h"), ("分", "min"), ("秒", "s"))
        parts: list[str] = []
        for amount, (zh_unit, en_unit) in zip((days, hours, minutes, secs), units, strict=True):
            if amount or (not parts and en_unit == "s"):
                parts.append(f"{amount}{zh_unit}" if zh else f"{amount} {en_unit}")
            if len(parts) == 2:
                break
        return "".join(parts) if zh else " ".join(parts)

    def clock(self, seconds: float | None) -> str:
        """`1:05:09` / `5:09`: a running stop timer, the same in both locales."""
        if seconds is None or not math.isfinite(seconds):
            return "–"
        total = max(0, int(seconds))
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

    def datetime(self, moment: dt.datetime | None, tz: str | None = None, with_date: bool = True) -> str:
        """`2026年11月26日 14:03` / `26 Nov 2026 14:03`, in the plant time zone (naive = UTC)."""
        if moment is None:
            return "–"
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        if tz:
            moment = moment.astimezone(ZoneInfo(tz))
        time_text = moment.strftime("%H:%M")
        if not with_date:
            return time_text
        return f"{self.date(moment)} {time_text}"

    def month_day(self, day: dt.date | dt.datetime) -> str:
        """`11月26日` / `26 Nov`: axis labels where the year is plain."""
        return f"{day.month}月{day.day}日" if self.locale == "zh-CN" else f"{day.day} {_EN_MONTHS[day.month - 1]}"

    def date(self, day: dt.date | dt.datetime | None) -> str:
        if day is None:
            return "–"
        if self.locale == "zh-CN":
            return f"{day.year}年{day.month}月{day.day}日"
        return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@cache
def translator(locale: str) -> Translator:
    """The translator of a supported locale (one per process and locale)."""
    return Translator(locale)
