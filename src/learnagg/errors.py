"""The package's exceptions; each maps once to a one-line CLI error (and later to the reference error envelope)."""

from __future__ import annotations


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
