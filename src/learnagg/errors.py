"""The package's exceptions; each maps once to a one-line CLI error (and later to the reference error envelope)."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a driver's original error when wrapped), for one-line errors."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class LearnaggError(Exception):
    """Base class: a failure with a one-line message meant for the user."""


class ConfigurationError(LearnaggError):
    """A setting is invalid or a configured backend cannot be loaded."""


class StoreUnavailable(LearnaggError):
    """The database cannot be reached or used."""


class InputError(LearnaggError):
    """A file or argument given by the user is invalid."""


class NotFound(LearnaggError):
    """A requested object does not exist."""
