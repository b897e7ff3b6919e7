"""R, F and M from the spec's purchases table (``value.rfm.transactions``).

At launch, :func:`launch_rfm` computes each new customer's R, F and M over the look-back
that ends the day before the launch (or on ``value.rfm.as_of``), and the launch freezes
them in the snapshot beside the customer's other pre-period values, under
:data:`FROZEN_COLUMNS`, with the settings that produced them in the snapshot file's
metadata. The analysis (:func:`rfm_from_purchases`) reads them back from there, so a
purchases file edited after launch cannot move a customer's segment; the file is then
needed only for the end of the window (segment migration). A snapshot without frozen
values (launched before they were frozen, or before ``value.rfm.transactions`` was
added), or frozen under other settings, is scored from the file, and the analysis says so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from uplift.data.sources import read_table
from uplift.design.launch import FrozenColumns
from uplift.errors import DataError
from uplift.spec import ExperimentSpec

__all__ = [
    "FROZEN_COLUMNS",
    "METADATA_KEY",
    "PurchaseRFM",
    "Purchases",
    "history_end",
    "launch_rfm",
    "look_back_end",
    "rfm_from_purchases",
]

#: Dimension -> the launch snapshot's column that freezes it.
FROZEN_COLUMNS = {
    "recency": "uplift_rfm_recency",
    "frequency": "uplift_rfm_frequency",
    "monetary": "uplift_rfm_monetary",
}
#: Key of the snapshot file's metadata that records the settings of its frozen R, F and M.
METADATA_KEY = b"uplift.rfm"


def history_end(key: str, given: dt.date | None, launched: dt.date | None) -> dt.date | None:
    """The last day of a purchase history before the campaign: ``given`` (the spec's
    ``key``), by default the day before ``launched``; ``None`` when there is neither.

    Raises
    ------
    DataError
        When ``given`` falls on or after the launch (purchases from then on may be the
        campaign's own).
    """
    if given is None:
        return launched - dt.timedelta(days=1) if launched is not None else None
    if launched is not None and given >= launched:
        raise DataError(
            f"{key}: the purchase history must end before the launch on {launched}, "
            f"found {given}: purchases from the launch on may be the campaign's own."
        )
    return given


def look_back_end(spec: ExperimentSpec, launched: dt.date | None) -> dt.date:
    """The last day of the look-back at launch: ``value.rfm.as_of``, by default the day
    before ``launched`` (:func:`history_end`).

    Raises
    ------
    DataError
        When there is no launch day and no ``as_of``, or ``as_of`` falls on or after the
        launch.
    """
    as_of = history_end("value.rfm.as_of", spec.value.rfm.as_of, launched)
    if as_of is None:
        raise DataError(
            "value.rfm.as_of: RFM from transactions needs the last day before the "
            "campaign, and this experiment has no launch date; give value.rfm.as_of "
            "(or assignment.launched)."
        )
    return as_of


def _where(spec: ExperimentSpec) -> str:
    """The purchases file, for messages."""
    source = spec.value.rfm.transactions
    assert source is not None
    return f"value.rfm.transactions: transactions file {source.path}"


def _settings(spec: ExperimentSpec, as_of: dt.date) -> dict[str, Any]:
    """What decides a customer's R, F and M, given the purchases."""
    rfm = spec.value.rfm
    return {
        "as_of": as_of.isoformat(),
        "window_days": rfm.window_days,
        "count": rfm.count,
        "spend": rfm.spend,
    }


class Purchases:
    """The purchases table of ``value.rfm.transactions``, read and checked once.

    Parameters
    ----------
    spec : ExperimentSpec
        The experiment; ``value.rfm.transactions`` must be set.

    Raises
    ------
    DataError
        When the file cannot be read, or its dates are not dates.
    """

    def __init__(self, spec: ExperimentSpec) -> None:
        from uplift.value.lifetime import purchase_dates

        source = spec.value.rfm.transactions
        if source is None:
            raise ValueError("Purchases needs value.rfm.transactions")
        self.spec = spec
        self.where = _where(spec)
        self.id_column = source.id or spec.population.id
        table = read_table(source.kind, source.path, "value.rfm.transactions.path")
        if source.date in table.columns:
            # the parser of the baseline's purchases (ISO 8601 only, local wall-clock time)
            try:
                table = table.assign(
                    **{source.date: purchase_dates(table[source.date], source.date)}
                )
            except DataError as exc:
                raise DataError(f"{self.where}: {exc}") from None
        if self.id_column in table.columns:
            table = table.assign(**{self.id_column: table[self.id_column].astype(str)})
        self.table = table

    def rfm(self, as_of: dt.date, customers: Sequence[str] | pd.Index | None) -> pd.DataFrame:
        """R, F and M as of ``as_of`` (columns ``recency``, ``frequency``, ``monetary``),
        indexed by customer id as text: ``customers`` in their order, or by default every
        customer with a purchase on or before ``as_of``."""
        from uplift.value.rfm import rfm_from_transactions

        source = self.spec.value.rfm.transactions
        assert source is not None
        rfm = self.spec.value.rfm
        try:
            return rfm_from_transactions(
                self.table,
                as_of,
                id_column=self.id_column,
                date_column=source.date,
                amount_column=source.amount,
                customers=customers,
                window_days=rfm.window_days,
                frequency=rfm.count,
                monetary=rfm.spend,
            )
        except DataError as exc:
            raise DataError(f"{self.where}: {exc}") from None

    def first_day(self) -> dt.date | None:
        """The day of the earliest purchase in the file (``None`` when it has none)."""
        return self._day("min")

    def last_day(self) -> dt.date | None:
        """The day of the latest purchase in the file (``None`` when it has none)."""
        return self._day("max")

    def _day(self, which: str) -> dt.date | None:
        source = self.spec.value.rfm.transactions
        assert source is not None
        found = pd.Timestamp(getattr(self.table[source.date], which)())
        return None if pd.isna(found) else found.date()


def launch_rfm(spec: ExperimentSpec) -> Callable[[dt.date], FrozenColumns] | None:
    """What a launch of ``spec`` freezes from the purchases (the ``freeze`` argument of
    :func:`~uplift.design.launch.launch`); ``None`` without ``value.rfm.transactions``.

    The purchases are read when the launch first has new customers to freeze, and scored
    once for every customer in them; a customer without a purchase in the look-back gets
    the values :func:`~uplift.value.rfm.rfm_from_transactions` gives (frequency and
    monetary 0, recency the look-back's length).
    """
    source = spec.value.rfm.transactions
    if source is None:
        return None
    id_column = spec.population.id

    def freeze(launched: dt.date) -> FrozenColumns:
        as_of = look_back_end(spec, launched)
        purchases = Purchases(spec)
        known = purchases.rfm(as_of, None)
        if not (known["frequency"] > 0).any():
            # frozen, such a file would make every customer's segment the lowest for good
            first, last = purchases.first_day(), purchases.last_day()
            found = f"the purchases run from {first} to {last}" if first else "it has none"
            raise DataError(
                f"{purchases.where}: no purchase falls in the {spec.value.rfm.window_days} "
                f"days to {as_of}, the look-back the launch freezes R, F and M over "
                f"({found}); nothing was launched. Export the purchases up to the launch, or "
                f"set value.rfm.as_of."
            )
        defaults = {"recency": spec.value.rfm.window_days, "frequency": 0, "monetary": 0.0}
        settings = {**_settings(spec, as_of), "path": str(source.path)}

        def columns(rows: pd.DataFrame) -> pd.DataFrame:
            scored = known.reindex(pd.Index(rows[id_column].astype(str)))
            scored = scored.fillna(defaults).astype(
                {"recency": "int64", "frequency": "int64", "monetary": "float64"}
            )
            return scored.set_axis(rows.index).rename(columns=FROZEN_COLUMNS)

        return FrozenColumns(
            columns,
            tuple(FROZEN_COLUMNS.values()),
            {METADATA_KEY: json.dumps(settings).encode()},
        )

    return freeze


@dataclass(frozen=True)
class PurchaseRFM:
    """R, F and M of the experiment's customers from the purchases, and where they came from."""

    launch: pd.DataFrame
    """At launch: columns ``recency``, ``frequency`` and ``monetary``, rows as the frame's."""
    end: pd.DataFrame | None
    """The same at the end of the window (with ``value.migration``), else ``None``."""
    source: str
    """``launch snapshot`` (the values frozen at launch) or ``purchases file``."""
    as_of: dt.date
    """The last day of the look-back at launch."""
    why_file: str | None = None
    """Why the values at launch were scored from the file (``None`` when frozen, or for an
    experiment without a ledger)."""
    changed: int | None = None
    """Customers whose frozen values the file no longer gives (``None``: not compared,
    which happens when the file is not read)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the summary."""
        return {
            "source": self.source,
            "as_of": self.as_of.isoformat(),
            "why_file": self.why_file,
            "changed_since_launch": self.changed,
        }


def rfm_from_purchases(
    spec: ExperimentSpec,
    frame: pd.DataFrame,
    launched: dt.date | None,
    frozen: pd.DataFrame | None = None,
    frozen_settings: Sequence[bytes | None] = (),
    report: Callable[[str], None] | None = None,
) -> PurchaseRFM:
    """R, F and M of the experiment's customers from ``value.rfm.transactions``.

    At launch, the look-back ends on ``value.rfm.as_of``, by default the day before
    ``launched`` (:func:`look_back_end`). Those are the values frozen in the launch snapshot
    (``frozen``) when every batch froze them under the spec's settings; otherwise they are
    computed from the file. With ``value.migration``, R, F and M again at the end of the
    outcome window: the same look-back ending ``outcomes.window_days`` days later (the
    window's last day, with the default ``as_of``); a purchases table that ends before that
    day is refused, since the window would look quiet.

    Parameters
    ----------
    spec : ExperimentSpec
        The experiment; ``value.rfm.transactions`` must be set.
    frame : pd.DataFrame
        The experiment's customers (with the ``population.id`` column).
    launched : date, optional
        The day the campaign started, when known.
    frozen : pd.DataFrame, optional
        The snapshot's :data:`FROZEN_COLUMNS` for the rows of ``frame`` (missing values
        where a batch froze none).
    frozen_settings : sequence of bytes or None
        Each snapshot batch's metadata under :data:`METADATA_KEY` (``None`` for a batch
        that froze none).
    report : callable, optional
        Told where the values at launch came from when they are not the frozen ones, and
        when the file no longer gives the frozen ones.

    Returns
    -------
    PurchaseRFM
        At launch and at the end of the window (``None`` without ``value.migration``),
        indexed like ``frame``, with where the values at launch came from.
    """
    rfm = spec.value.rfm
    if rfm.transactions is None:
        raise ValueError("rfm_from_purchases needs value.rfm.transactions")
    say = report or (lambda _line: None)
    as_of = look_back_end(spec, launched)
    customers = pd.Index(frame[spec.population.id].astype(str))
    usable, why = _frozen_usable(spec, as_of, frozen, frozen_settings)
    purchases = None
    if usable:
        assert frozen is not None
        launch = (
            frozen[list(FROZEN_COLUMNS.values())]
            .rename(columns={v: k for k, v in FROZEN_COLUMNS.items()})
            .astype({"recency": "int64", "frequency": "int64", "monetary": "float64"})
        )
    else:
        if why:
            say(f"value.rfm: R, F and M at launch scored from the purchases file: {why}")
        purchases = Purchases(spec)
        launch = purchases.rfm(as_of, customers).set_axis(frame.index)
    if not (launch["frequency"] > 0).any():
        raise DataError(
            f"{_where(spec)}: none of the experiment's {len(customers):,} customers has a purchase "
            f"in the {rfm.window_days} days to {as_of} (ids such as {customers[0]!r} in column "
            f"{rfm.transactions.id or spec.population.id!r})."
        )
    source = "launch snapshot" if usable else "purchases file"
    if spec.value.migration is None:
        return PurchaseRFM(launch, None, source, as_of, why)
    changed = None
    if purchases is None:
        purchases = Purchases(spec)
        changed = _check_unchanged(purchases.rfm(as_of, customers), launch, say)
    end_day = as_of + dt.timedelta(days=spec.outcomes.window_days)
    last = purchases.last_day()
    if last is None or last < end_day:
        raise DataError(
            f"{purchases.where}: migration scores R, F and M on the window's last day, "
            f"{end_day}, but the purchases end on {last}: the window is not over yet, or the "
            f"file was exported before it ended."
        )
    end = purchases.rfm(end_day, customers).set_axis(frame.index)
    return PurchaseRFM(launch, end, source, as_of, why, changed)


def _frozen_usable(
    spec: ExperimentSpec,
    as_of: dt.date,
    frozen: pd.DataFrame | None,
    settings: Sequence[bytes | None],
) -> tuple[bool, str | None]:
    """Whether the snapshot's frozen values serve, and if not, why (``None``: nothing was
    frozen because the experiment has no ledger)."""
    if frozen is None:
        return False, None
    if not settings or any(s is None for s in settings):
        return False, (
            "the launch snapshot has none frozen (launched before value.rfm.transactions was "
            "set, or by an earlier version of uplift)"
        )
    wanted = _settings(spec, as_of)
    for raw in settings:
        assert raw is not None
        recorded = {k: v for k, v in json.loads(raw).items() if k in wanted}
        if recorded != wanted:
            changed = ", ".join(
                f"{key} {recorded.get(key)!r} at launch, {wanted[key]!r} now"
                for key in wanted
                if recorded.get(key) != wanted[key]
            )
            return False, f"the spec's look-back differs from the launch's ({changed})"
    if frozen[list(FROZEN_COLUMNS.values())].isna().to_numpy().any():
        return False, "the launch snapshot lacks them for some customers"
    return True, None


def _check_unchanged(
    recomputed: pd.DataFrame, launch: pd.DataFrame, report: Callable[[str], None]
) -> int:
    """Tell when the purchases before launch no longer give the frozen values
    (``recomputed`` is indexed by customer id, ``launch`` in the same order); returns how
    many customers differ."""
    now, then = recomputed.to_numpy(dtype=float), launch.to_numpy(dtype=float)
    differs = (now != then).any(axis=1)
    if differs.any():
        first = int(differs.argmax())
        report(
            f"value.rfm.transactions: the purchases before launch now give other R, F or M "
            f"than were frozen at launch for {int(differs.sum()):,} customers (customer "
            f"{recomputed.index[first]!r}: frozen {then[first].tolist()}, now "
            f"{now[first].tolist()}); the analysis uses the frozen values"
        )
    return int(differs.sum())
