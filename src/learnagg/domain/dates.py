"""Date texts of the reference platform: `yyyy-MM-dd HH:mm:ss:SSSZ` in APIs, `yyyy-MM-dd` for batch dates."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

_API_TS = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}):(\d{3})([+-])(\d{2})(\d{2})")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """The time zone named by a setting (``UTC``, ``Asia/Kolkata``…)."""
    return ZoneInfo(name)


def format_api_ts(ms: int, zone_name: str = "UTC") -> str:
    """``yyyy-MM-dd HH:mm:ss:SSSZ`` in the zone, e.g. ``2021-04-14 12:19:30:782+0000`` (docs/api.md#errors)."""
    moment = datetime.fromtimestamp(ms // 1000, zone(zone_name))
    return f"{moment:%Y-%m-%d %H:%M:%S}:{ms % 1000:03d}{moment:%z}"


def parse_api_ts(text: object) -> int | None:
    """Epoch ms of a ``yyyy-MM-dd HH:mm:ss:SSSZ`` text, or None when it is not in that format
    (docs/api.md#content-state-and-assessments)."""
    if not isinstance(text, str):
        return None
    m = _API_TS.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, millis, sign, off_h, off_m = m.groups()
    try:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError:
        return None
    moment = moment - offset if sign == "+" else moment + offset
    return int(moment.timestamp()) * 1000 + int(millis)


def parse_date(text: object) -> date | None:
    """A ``yyyy-MM-dd`` date, or None when the text is not one."""
    if not isinstance(text, str):
        return None
    m = _DATE.fullmatch(text.strip())
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def start_of_day_ms(day: date, zone_name: str = "UTC") -> int:
    """Epoch ms of midnight at the start of ``day`` in the zone."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone(zone_name)).timestamp() * 1000)


def end_of_day_ms(day: date, zone_name: str = "UTC") -> int:
    """Epoch ms of the last millisecond of ``day`` in the zone."""
    return start_of_day_ms(day + timedelta(days=1), zone_name) - 1


def today(now_ms: int, zone_name: str = "UTC") -> date:
    """The calendar day of ``now_ms`` in the zone."""
    return datetime.fromtimestamp(now_ms / 1000, zone(zone_name)).date()


def format_date(ms: int, zone_name: str = "UTC") -> str:
    """``yyyy-MM-dd`` of an epoch-ms instant in the zone."""
    return datetime.fromtimestamp(ms / 1000, zone(zone_name)).strftime("%Y-%m-%d")
