"""Counted nouns in CLI output: "1 row", "2 rows", "0 rows"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` followed by ``noun``, in the plural (``plural``, or ``noun`` + "s") unless ``n`` is exactly 1."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
