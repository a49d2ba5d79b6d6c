"""Input bounds: the one set of limits every event parser and every API that accepts attempts or content state uses.

A value outside a bound is a validation error whose message names the field and the rule (docs/threat-model.md):

- numbers are finite with an absolute value of at most 1e15, numbers given as text included;
- timestamps are epoch milliseconds in [0, 253402300799999] (up to the end of year 9999 UTC);
- JSON values nest at most 64 levels below the event (or request item) that holds them;
- no text holds a NUL character, object keys included;
- an attempt carries at most ``assessment.max_questions`` answers, counted before de-duplication.

Every check here is iterative or constant-depth, so no input can exhaust the interpreter's stack.
"""

from __future__ import annotations

import math

MAX_ABS_NUMBER = 1e15
_MAX_ABS_INT = 10**15
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31 23:59:59.999 UTC
MAX_DEPTH = 64
DEFAULT_MAX_QUESTIONS = 1000
NUL = "\x00"

NUMBER_RULE = "must be a finite number with absolute value at most 1e15"
NUMBERS_RULE = "must hold only finite numbers with absolute value at most 1e15"
FINITE_RULE = "must hold only finite numbers"
TIMESTAMP_RULE = "must be an epoch-ms timestamp between 0 and 253402300799999"
NESTING_RULE = f"is nested deeper than {MAX_DEPTH} levels"
NUL_RULE = "must not contain a NUL character"


def number_ok(value: float | int) -> bool:
    """True for a finite number with ``|value| <= 1e15`` (NaN and infinities fail; large integers never overflow)."""
    if type(value) is int:
        return -_MAX_ABS_INT <= value <= _MAX_ABS_INT
    return -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER  # NaN fails both comparisons


def timestamp_ok(ms: int) -> bool:
    """True for epoch milliseconds in [0, 253402300799999]."""
    return 0 <= ms <= MAX_TIMESTAMP_MS


def has_nul(text: str) -> bool:
    """True when the text holds a NUL character."""
    return NUL in text


def questions_error(field: str, count: int, limit: int) -> str | None:
    """The message for an attempt with more than ``limit`` answers, or None within the limit."""
    if count <= limit:
        return None
    return f"{field} has {count} answers, more than the {limit} allowed"


def violation(field: str, rule: str) -> str:
    """The validation message of one broken bound: the field, then the rule."""
    return f"{field} {rule}"


def json_violation(value: object, *, level: int = 0, numbers: bool = False) -> str | None:
    """The first bound a decoded JSON value breaks, as a rule text (:data:`NESTING_RULE`…), or None.

    The walk is iterative and stops at the first container deeper than :data:`MAX_DEPTH`, so a value nested
    100,000 levels deep is refused without recursion.

    Args:
        value: a decoded JSON value (dicts, lists, strings, numbers, booleans, None).
        level: how many containers enclose ``value`` below the event (or request item); the event itself is 0.
        numbers: also require every number to be within :data:`MAX_ABS_NUMBER` (values the jobs read); otherwise
            only non-finite numbers are refused (they are not JSON).

    Returns:
        :data:`NESTING_RULE`, :data:`NUL_RULE`, :data:`NUMBERS_RULE` or :data:`FINITE_RULE`; None when every bound
        holds.
    """
    stack: list[tuple[object, int]] = [(value, level)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        kind = type(node)
        if kind is dict:
            if depth > MAX_DEPTH:
                return NESTING_RULE
            items = node.items()  # type: ignore[attr-defined]
            for key, _ in items:
                if type(key) is str and NUL in key:
                    return NUL_RULE
            children = node.values()  # type: ignore[attr-defined]
        elif kind is list or kind is tuple:
            if depth > MAX_DEPTH:
                return NESTING_RULE
            children = node  # type: ignore[assignment]
        else:
            children = (node,)
        for child in children:
            ckind = type(child)
            if ckind is str:
                if NUL in child:  # type: ignore[operator]
                    return NUL_RULE
            elif ckind is dict or ckind is list or ckind is tuple:
                push((child, depth + 1))
            elif ckind is float or ckind is int:
                if numbers:
                    if not number_ok(child):  # type: ignore[arg-type]
                        return NUMBERS_RULE
                elif ckind is float and not math.isfinite(child):  # type: ignore[arg-type]
                    return FINITE_RULE
    return None


def event_violation(event: dict[str, object]) -> str | None:
    """The first broken nesting, NUL or finite-number bound of a decoded event, naming its top-level field
    (``edata must not contain a NUL character``); None when every bound holds."""
    for key, value in event.items():
        rule = NUL_RULE if NUL in key else json_violation(value, level=1)
        if rule is not None:
            return violation(short_text(key), rule)
    return None


def short_text(value: object, limit: int = 64) -> str:
    """A short, safe rendering of an offending value for an error message.

    Containers are shown as ``[...]`` or ``{...}`` (never rendered, however deep), integers too long to print
    by their digit count, and texts cut to ``limit`` characters.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = "true" if value is True else "false" if value is False else "null"
    elif isinstance(value, int):
        digits = value.bit_length() * 30103 // 100000 + 1  # about log10(2) digits per bit
        text = str(value) if digits <= limit else f"an integer of about {digits} digits"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, dict):
        text = "{...}"
    elif isinstance(value, (list, tuple)):
        text = "[...]"
    else:
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid_value_text(value: object, rule: str) -> str:
    """The ``{value}`` of an INVALID_PARAMETER_VALUE answer for a broken bound: the value, then the rule."""
    return f"{short_text(value)} ({rule})"
