"""When features were measured: refuse features measured after the campaign started.

A feature measured after launch can already hold the campaign's effect (a customer who
took the trial lessons has more sessions), so the arms differ in it for reasons the
models would then credit to the customer. ``population.features_as_of`` names a column
with each customer's measurement date or time; every value must fall before the launch.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from uplift.data.sources import shown
from uplift.errors import DataError

__all__ = ["check_measured_before", "launch_limit"]


def launch_limit(launched: dt.datetime | dt.date) -> pd.Timestamp:
    """The first instant after which a measurement is too late, in UTC.

    A date stands for the whole launch day: a measurement on it passes, one on the next
    day does not. A time without a zone is taken as UTC.
    """
    if isinstance(launched, dt.datetime):
        stamp = pd.Timestamp(launched)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return pd.Timestamp(launched).tz_localize("UTC") + pd.Timedelta(days=1)


def check_measured_before(
    frame: pd.DataFrame,
    column: str,
    launched: dt.datetime | dt.date,
    id_column: str,
    source: str,
) -> None:
    """Every customer of ``frame`` had their features measured before ``launched``.

    Parameters
    ----------
    frame : pd.DataFrame
        The customers, with ``column`` and ``id_column``.
    column : str
        The measurement date or time of each row (``population.features_as_of``): dates,
        timestamps, or ISO 8601 text; a time without a zone is taken as UTC.
    launched : datetime or date
        When the campaign started (see :func:`launch_limit`).
    id_column : str
        The id column, to name an offending customer.
    source : str
        Where the frame was read from, for messages.

    Raises
    ------
    DataError
        When the column is absent, holds values that are not dates or are missing, or
        dates on or after the launch's limit.
    """
    key = "population.features_as_of"
    if column not in frame.columns:
        raise DataError(
            f"{key}: the {source} has no column {column!r}; its columns are "
            f"{sorted(map(str, frame.columns))[:30]}."
        )
    values = frame[column]
    when = _as_utc(values)
    missing = values.isna().to_numpy()
    wrong = when.isna().to_numpy() & ~missing
    if missing.any() or wrong.any():
        found = [f"{int(missing.sum()):,} missing values"] if missing.any() else []
        if wrong.any():
            found.append(
                f"{int(wrong.sum()):,} {'value that is' if wrong.sum() == 1 else 'values that are'}"
                f" not a date (for example {shown(values[wrong].iloc[0])})"
            )
        raise DataError(
            f"{key}: column {column!r} of the {source} has {' and '.join(found)}; each "
            f"customer needs the date or time their features were measured."
        )
    limit = launch_limit(launched)
    late = (when >= limit).to_numpy()
    if late.any():
        first = int(late.argmax())
        raise DataError(
            f"{key}: {int(late.sum()):,} of the {len(frame):,} customers read from the "
            f"{source} had their features measured after the launch at "
            f"{_shown_launch(launched)} (for example customer "
            f"{shown(frame[id_column].iloc[first])}, measured "
            f"{when.iloc[first].isoformat()}); features measured after launch can carry the "
            f"campaign's effect. Use the features as they were before the launch."
        )


def _as_utc(values: pd.Series) -> pd.Series:
    """``values`` as UTC timestamps; ``NaT`` where a value is missing or not a date."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize("UTC")
    text = values.astype("string")
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    return pd.Series(parsed, index=values.index)


def _shown_launch(launched: dt.datetime | dt.date) -> str:
    if isinstance(launched, dt.datetime):
        return launch_limit(launched).isoformat()
    return f"{launched.isoformat()} (measurements on that day pass)"
