"""Request checks the platform endpoints need beyond `validation.py` (docs/api.md#errors, docs/api.md#platform-data)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from learnagg.domain.dates import parse_date
from learnagg.entrypoints.api.validation import TYPE_NAMES, Check, fail, is_blank, list_of, type_ok

YEARS = range(1900, 9000)  # batch dates outside these years cannot be shown in every time zone


def one_of(name: str, values: Collection[object]) -> Check:
    """``name``, when present and not null, must be one of ``values`` (INVALID_PARAMETER_VALUE)."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is not None and value not in values:
            text = str(value)
            raise fail("INVALID_PARAMETER_VALUE", name=name, value=text if len(text) <= 64 else text[:61] + "...")

    return check


def int_range(name: str, low: int, high: int) -> Check:
    """``name``, when present and not null, must be an integer in ``[low, high]``."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is None:
            return
        if not type_ok(value, int):
            raise fail("DATA_TYPE_ERROR", name=name, type=TYPE_NAMES[int])
        if not low <= value <= high:
            raise fail("INVALID_PARAMETER_VALUE", name=name, value=value)

    return check


def not_blank_if_given(name: str) -> Check:
    """``name`` may be absent or null, but not a blank string (MANDATORY_PARAMETER_MISSING)."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is not None and is_blank(value):
            raise fail("MANDATORY_PARAMETER_MISSING", name=name)

    return check


def day(name: str) -> Check:
    """``name``, when present and not null, must be a ``yyyy-MM-dd`` text (DATE_FORMAT_ERRROR,
    docs/api.md#platform-data)."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is None:
            return
        if not isinstance(value, str):
            raise fail("DATA_TYPE_ERROR", name=name, type=TYPE_NAMES[str])
        parsed = parse_date(value)
        if parsed is None or parsed.year not in YEARS:
            raise fail("DATE_FORMAT_ERRROR")

    return check


def text_or_text_list(name: str) -> Check:
    """``name``, when present, is a text or a list of texts (`board`, docs/reference/data-model.md#users-and-groups)."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is None or isinstance(value, str):
            return
        list_of(name, str)(data)

    return check


def map_of_maps(name: str) -> Check:
    """``name``, when present, is a map whose values are maps (``certTemplates``)."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is None:
            return
        if not isinstance(value, dict) or any(not isinstance(v, dict) for v in value.values()):
            raise fail("DATA_TYPE_ERROR", name=name, type=TYPE_NAMES[dict])

    return check
