"""Domain exceptions: errors the user can fix (a bad file, a missing index, a wrong setting).

The CLI prints their one-line message and exits with status 2; any other exception is a bug and
shows its traceback. Each class also derives from the built-in exception it replaced, so code that
catches `ValueError` or `RuntimeError` around a call keeps working.
"""
from __future__ import annotations


class OhbotError(Exception):
    """An error with a one-line message for the user, who can fix its cause."""


class ConfigError(OhbotError, ValueError):
    """A setting (flag, environment variable) has no usable value."""


class InputError(OhbotError, ValueError):
    """A file or value the user gave is malformed: the message names it and says what is expected."""


class CampaignError(InputError):
    """A campaign does not exist, exists already, or its settings are impossible."""


class OutputError(OhbotError, RuntimeError):
    """Some output files could not be written (the message names each and why); the others were."""


class IndexUnavailable(OhbotError, RuntimeError):
    """The index is missing, of another model, inconsistent or corrupt: rebuild it."""


class ModelUnavailable(OhbotError, RuntimeError):
    """The embedding model cannot be loaded offline."""


class DatabaseUnavailable(OhbotError, RuntimeError):
    """The state database cannot be reached (down, wrong URL, connection lost): retry or fix the URL."""


class SchemaOutdated(OhbotError, RuntimeError):
    """The state database's schema is not the one this code expects: run `ohbot db upgrade`."""
