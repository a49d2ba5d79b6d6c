"""Number rules shared by every job: doubles, `fmt2`/`round2` (docs/reference/data-model.md#c4,
docs/reference/data-model.md#c5) and numeric-text checks."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal

# ASCII only: without re.ASCII, \d also matches other scripts' digits ("١٢" would read as 12.0).
_NUMERIC_TEXT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$", re.ASCII)
_CENT = Decimal("0.01")


def is_number(value: object) -> bool:
    """True for a JSON number (int or float, never a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: object) -> bool:
    """True for a JSON integer (not a float, string or boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_numeric_text(value: object) -> bool:
    """True for a string holding a decimal number in ASCII digits such as ``"1"``, ``" 2.5 "`` or ``"1e3"``."""
    return isinstance(value, str) and _NUMERIC_TEXT.match(value) is not None


def is_numeric(value: object) -> bool:
    """True for a number or a numeric string."""
    return is_number(value) or is_numeric_text(value)


def to_double(value: object) -> float:
    """Convert a number, numeric string, absent or null value to a double; absent/null is 0.0
    (docs/jobs/assessment.md#a2).

    Raises:
        ValueError: if the value is not numeric.
    """
    if value is None:
        return 0.0
    if is_number(value):
        return float(value)  # type: ignore[arg-type]
    if is_numeric_text(value):
        return float(str(value).strip())
    raise ValueError(f"not numeric: {value!r}")


def _quantize(x: float) -> Decimal:
    # Decimal(x) is the exact binary value, so half-even applies to what the double really holds
    # (docs/reference/data-model.md#c5).
    return Decimal(x).quantize(_CENT, rounding=ROUND_HALF_EVEN)


def fmt2(x: float) -> str:
    """Format like the reference's ``"0.0#"``: two decimals half-even, a trailing zero dropped
    (docs/reference/data-model.md#c5)."""
    if not math.isfinite(x):
        return repr(x)
    text = format(_quantize(x), "f")
    return text[:-1] if text.endswith("0") else text


def round2(x: float) -> float:
    """Round like `fmt2` but return a double (docs/reference/data-model.md#c5)."""
    if not math.isfinite(x):
        return x
    return float(_quantize(x))


def double_text(x: float) -> str:
    """Render a double as the shortest round-trip text that always has a fraction (docs/reference/data-model.md#c4)."""
    return repr(float(x))


_INT64 = 2**63 - 1


def truncated_int(value: object) -> int | None:
    """A number or numeric string with its fraction truncated towards zero (``" 2.8 "`` → 2, ``"1e2"`` → 100).

    Returns None for anything else, for non-finite values and for values outside the signed 64-bit range
    (so text such as ``"1e999999999"`` never builds a huge integer).
    """
    if is_integer(value):
        result: int = value  # type: ignore[assignment]
    elif is_number(value):
        if not math.isfinite(value):  # type: ignore[arg-type]
            return None
        result = math.trunc(value)  # type: ignore[arg-type]
    elif is_numeric_text(value):
        exact = Decimal(str(value).strip())
        if exact.adjusted() > 19:
            return None
        result = int(exact)
    else:
        return None
    return result if -_INT64 - 1 <= result <= _INT64 else None


def finite_double(value: object) -> float | None:
    """A number or numeric string as a finite double; None for anything else (including NaN and infinities)."""
    if not is_numeric(value):
        return None
    try:
        result = to_double(value)
    except (ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None
