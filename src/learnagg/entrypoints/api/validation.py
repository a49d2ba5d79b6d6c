"""Request bodies: Pydantic models whose ordered checks raise the reference error codes (docs/api.md#errors).

Each request model lists its checks in the documented order in ``CHECKS``; they run before field validation, so the
first failed check is the one answered. Field types then catch whatever the checks do not name, and
:func:`to_api_error` maps Pydantic's own errors onto the reference codes.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from learnagg.errors import ERROR_CODES, ApiError, api_error

Check = Callable[[dict[str, Any]], None]

TYPE_NAMES: dict[type, str] = {list: "List", str: "String", bool: "Boolean", dict: "Map", int: "Integer"}


def fail(code: str, **params: object) -> PydanticCustomError:
    """A Pydantic error whose type is the reference code and whose message is the reference message."""
    return PydanticCustomError(code, ERROR_CODES[code][1], dict(params))


def is_blank(value: object) -> bool:
    """docs/reference/data-model.md#c8: absent, null, or an empty or whitespace-only string."""
    return value is None or (isinstance(value, str) and not value.strip())


def type_ok(value: object, kind: type) -> bool:
    """Exact JSON type check: a boolean is not an integer, an integer is not a string."""
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def required(name: str, code: str | None = None, kind: type = str) -> Check:
    """``name`` must be present and not blank (``code``, else MANDATORY_PARAMETER_MISSING), and of ``kind``."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if is_blank(value) or (kind is list and value == []):
            raise fail(code) if code else fail("MANDATORY_PARAMETER_MISSING", name=name)
        if not type_ok(value, kind):
            raise fail("DATA_TYPE_ERROR", name=name, type=TYPE_NAMES[kind])

    return check


def typed(name: str, kind: type) -> Check:
    """``name``, when present and not null, must be of ``kind`` (DATA_TYPE_ERROR at its turn, docs/api.md#errors)."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is not None and not type_ok(value, kind):
            raise fail("DATA_TYPE_ERROR", name=name, type=TYPE_NAMES[kind])

    return check


def list_of(name: str, kind: type) -> Check:
    """``name``, when present, must be a list whose items are all of ``kind``."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is None:
            return
        if not isinstance(value, list):
            raise fail("DATA_TYPE_ERROR", name=name, type="List")
        if any(not type_ok(item, kind) for item in value):
            raise fail("DATA_TYPE_ERROR", name=name, type=f"List of {TYPE_NAMES[kind]}")

    return check


def each(name: str, checks: Sequence[Check]) -> Check:
    """Run ``checks`` on every object of the list ``name`` in order (the list itself must be a list of objects)."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is None:
            return
        if not isinstance(value, list):
            raise fail("DATA_TYPE_ERROR", name=name, type="List")
        for item in value:
            if not isinstance(item, dict):
                raise fail("DATA_TYPE_ERROR", name=name, type="List of Map")
            for c in checks:
                c(item)

    return check


# Longest list accepted anywhere in a request model (setting `api.max_list_items`), set for each HTTP request by
# the app's request limits; None (outside HTTP, e.g. `learnagg load` lines) checks nothing.
LIST_LIMIT: ContextVar[int | None] = ContextVar("learnagg_api_list_limit", default=None)


def too_many(name: str, count: int, maximum: int) -> PydanticCustomError:
    """INVALID_PARAMETER_VALUE for a list of ``count`` items where at most ``maximum`` are accepted."""
    return fail("INVALID_PARAMETER_VALUE", name=name, value=f"{count} items (at most {maximum})")


def bound_lists(model: type[BaseModel], data: dict[str, Any], maximum: int, prefix: str = "") -> None:
    """Refuse any list of ``data`` longer than ``maximum``, at every depth of ``model``'s declared fields.

    Lists are measured before any item is looked at, so a million-entry list costs one ``len``. The inside of
    free-form values (``dict[str, Any]``: progress details, a hierarchy) is bounded by the body size instead.
    """
    for name in model.model_fields:
        value = data.get(name)
        if value is None:
            continue
        path = prefix + name
        if isinstance(value, list) and len(value) > maximum:
            raise too_many(path, len(value), maximum)
        nested = _nested_models(model, name)
        if nested is None:
            continue
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, dict):
                bound_lists(nested, item, maximum, path + ".")


@functools.cache
def _nested_models(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The request model a field holds (alone, in a list, or optional), if any."""
    pending: list[Any] = [model.model_fields[name].annotation]
    while pending:
        kind = pending.pop()
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
        if typing.get_origin(kind) in (list, typing.Union, types.UnionType):
            pending.extend(typing.get_args(kind))
    return None


class RequestModel(BaseModel):
    """Base of every request body: strict JSON types, unknown fields ignored, list lengths bounded, then
    ``CHECKS`` run in order."""

    model_config = ConfigDict(strict=True, extra="ignore")
    CHECKS: ClassVar[tuple[Check, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _ordered_checks(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise fail("INVALID_REQUESTED_DATA")
        maximum = LIST_LIMIT.get()
        if maximum is not None:
            bound_lists(cls, data, maximum)
        for check in cls.CHECKS:
            check(data)
        return data


M = TypeVar("M", bound=RequestModel)


class Body(BaseModel, Generic[M]):
    """The reference request wrapper ``{"request": {...}}``; a missing or null ``request`` counts as ``{}``."""

    model_config = ConfigDict(strict=True, extra="ignore")
    request: M

    @model_validator(mode="before")
    @classmethod
    def _default_request(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("request") is None:
            return {**data, "request": {}}
        return data


_TYPE_ERRORS = {
    "string": "String",
    "list": "List",
    "bool": "Boolean",
    "int": "Integer",
    "float": "Number",
    "dict": "Map",
    "model": "Map",
    "model_attributes": "Map",
    "tuple": "List",
}


def _field_name(loc: Sequence[int | str]) -> str | None:
    names = [p for p in loc if isinstance(p, str) and p not in ("body", "request")]
    return names[-1] if names else None


def to_api_error(errors: Sequence[Any]) -> ApiError:
    """The reference error for the first of Pydantic's (or FastAPI's) validation errors."""
    if not errors:
        return api_error("INVALID_REQUESTED_DATA")
    first = errors[0]
    kind = str(first.get("type", ""))
    if kind in ERROR_CODES:
        return ApiError(kind, str(first.get("msg", ERROR_CODES[kind][1])), ERROR_CODES[kind][0])
    name = _field_name(first.get("loc", ()))
    if kind == "json_invalid" or name is None:
        return api_error("INVALID_REQUESTED_DATA")
    if kind == "missing":
        return api_error("MANDATORY_PARAMETER_MISSING", name=name)
    for prefix, type_name in _TYPE_ERRORS.items():
        if kind.startswith(prefix + "_"):
            return api_error("DATA_TYPE_ERROR", name=name, type=type_name)
    return api_error("INVALID_PARAMETER_VALUE", name=name, value=_short(first.get("input")))


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 64 else text[:61] + "..."
