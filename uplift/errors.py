"""The exceptions and warnings raised by ``uplift``.

Every error the user can fix is an :class:`UpliftError`; the command line turns
it into a one-paragraph message and exit code 2. Anything else is a bug and
exits with code 1.

::

    UpliftError
    ├── SpecError          the experiment YAML is malformed or inconsistent
    ├── DataError          a population or outcome source does not match the spec
    ├── AssignmentError    arms cannot be assigned as asked
    ├── TrackingError      the MLflow tracking store cannot be used
    └── BrowserError       no browser to render a page with, or the page fails

    UpliftWarning          something is suspicious but the run can go on
"""

from __future__ import annotations

__all__ = [
    "AssignmentError",
    "BrowserError",
    "DataError",
    "SpecError",
    "TrackingError",
    "UpliftError",
    "UpliftWarning",
]


class UpliftError(Exception):
    """Base class of every error a user can fix by changing input."""


class SpecError(UpliftError):
    """The experiment spec is malformed: a key, a type, a value or an expression."""


class DataError(UpliftError):
    """A data source is missing, unreadable or does not have what the spec names."""


class AssignmentError(UpliftError):
    """Customers cannot be assigned to arms as the spec asks."""


class TrackingError(UpliftError):
    """The MLflow tracking store cannot be reached or written."""


class BrowserError(UpliftError):
    """No browser to render a page with, or the page could not be rendered."""


class UpliftWarning(UserWarning):
    """A result is usable but something about it deserves a reviewer's attention."""
