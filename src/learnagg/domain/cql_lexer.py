"""cqlsh literal lexer: the tokenizer, the timestamp and escaped-text scalars, and parse failures with offsets."""

from __future__ import annotations

import re
from datetime import date

# --- timestamps ----------------------------------------------------------------------------------------------------

_EPOCH_DAY = date(1970, 1, 1).toordinal()
# re.ASCII: \d of a str pattern would also match other scripts' digits ("٢٠٢١" would read as 2021).
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"  # date
    r"(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"  # [ HH:MM[:SS[.fraction]]]
    r"(?:Z|([+-])(\d{2}):?(\d{2})?)?",  # zone: Z, +HH, +HHMM or +HH:MM; none means UTC
    re.ASCII,
)


def parse_timestamp(text: str) -> int:
    """Epoch ms of a cqlsh/CQL timestamp text, e.g. ``2021-11-24 10:15:30.123000+0000`` or ``2021-11-24T10:15Z``.

    A text without a zone is UTC (docs/reference/data-model.md#c1). Digits below the millisecond are dropped: CQL
    timestamps hold ms.

    Raises:
        ValueError: if the text is not such a timestamp or names an impossible date.
    """
    m = _TIMESTAMP.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = m.groups()
    h, mi, sec = int(hour or 0), int(minute or 0), int(second or 0)
    if h > 23 or mi > 59 or sec > 59:
        raise ValueError(f"not a time of day: {text!r}")
    # Plain integer arithmetic (date() checks the calendar): this runs for every timestamp of an import.
    days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY
    seconds = ((days * 24 + h) * 60 + mi) * 60 + sec
    if sign:
        offset = (int(off_h) * 60 + int(off_m or 0)) * 60
        seconds = seconds - offset if sign == "+" else seconds + offset
    return seconds * 1000 + (int(fraction[:3].ljust(3, "0")) if fraction else 0)


# --- text escapes ----------------------------------------------------------------------------------------------------

# cqlsh writes \\, \n, \r, \t and \xHH (and \uHHHH for what it cannot encode). Any other backslash is kept as
# written: csv writers of older cqlsh versions do not double a backslash, so a lone one can reach us.
_ESCAPE = re.compile(r"\\(?:([\\nrt])|x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U(000[0-9A-Fa-f]{5}|0010[0-9A-Fa-f]{4}))")
_SIMPLE_ESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def _unescape_one(m: re.Match[str]) -> str:
    simple = m.group(1)
    return _SIMPLE_ESCAPES[simple] if simple else chr(int(m.group(m.lastindex or 0), 16))


def unescape_text(text: str) -> str:
    """Undo cqlsh's display escapes of a text value (doubled backslashes, ``\\n``, ``\\xHH``…)."""
    return _ESCAPE.sub(_unescape_one, text) if "\\" in text else text


# --- tokenizer -------------------------------------------------------------------------------------------------------

# Tokens come from one `findall` (C speed): a tuple of the seven groups below, exactly one of them non-empty. Their
# offsets are only computed (with `finditer`) to report an error. The END token has every group empty.
Token = tuple[str, str, str, str, str, str, str]
# Group order = tuple order; the most frequent tokens come first, since the regex tries alternatives in order.
PUNCT, STRING, WORD, INSTANT, NUMBER, NAME, BAD = range(7)
END: Token = ("", "", "", "", "", "", "")
_LEX = re.compile(
    r"\s*(?:"
    r"([{}\[\]():,])"
    # Backslash escapes never contain a quote, so a doubled quote is the only way a quote sits inside a string.
    r"|('(?:[^']|'')*')"
    r"|([+-]?[A-Za-z_]\w*)"
    r"|([0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)(?![\w.:])"
    r"|([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?![\w.])"  # ASCII digits only
    r"|(\"(?:[^\"]|\"\")*\")"
    r"|(\S)"  # anything else: refused when a reader reaches it
    r")"
)


def tokenize(text: str) -> list[Token]:
    """The tokens of a cqlsh literal, ending with the END token (every group empty)."""
    tokens: list[Token] = _LEX.findall(text)
    tokens.append(END)
    return tokens


def offsets(text: str) -> list[int]:
    """The offset of each token of ``text`` (END last), for error messages."""
    return [m.start(m.lastindex or 0) for m in _LEX.finditer(text)] + [len(text)]


def string_value(raw: str) -> str:
    """The text of a quoted string token: outer quotes removed, doubled quotes and escapes undone."""
    value = raw[1:-1]
    if "''" in value:
        value = value.replace("''", "'")
    return unescape_text(value) if "\\" in value else value


class ParseFailure(Exception):
    """A parse failure at token ``index``; turned into a CqlSyntaxError with the token's offset."""

    def __init__(self, message: str, index: int) -> None:
        """Record the message and the index of the offending token."""
        super().__init__(message)
        self.message = message
        self.index = index


def _describe(tok: Token) -> str:
    if tok == END:
        return "the end of the text"
    if tok[STRING]:
        return "a quoted string"
    if tok[INSTANT]:
        return "a timestamp"
    if tok[NUMBER]:
        return f"the number {number_value(tok[NUMBER])!r}"
    return repr(tok[NAME][1:-1] or tok[WORD] or tok[PUNCT])


def unexpected(what: str, tokens: list[Token], i: int) -> ParseFailure:
    """The failure for token ``i`` where ``what`` was expected (or for the bad character found there)."""
    bad = tokens[i][BAD]
    if bad in ("'", '"'):
        return ParseFailure("unterminated quoted " + ("string" if bad == "'" else "name"), i)
    if bad:
        return ParseFailure(f"unexpected character {bad!r}", i)
    return ParseFailure(f"expected {what}, found {_describe(tokens[i])}", i)


def number_value(raw: str) -> int | float:
    """A number token as an int, or as a float when it has a fraction or an exponent."""
    return float(raw) if "." in raw or "e" in raw or "E" in raw else int(raw)


def timestamp_value(raw: str, i: int) -> int:
    """Epoch ms of the timestamp text of token ``i``; a ParseFailure at that token when it is not one."""
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        raise ParseFailure(f"invalid timestamp {raw!r}", i) from exc
