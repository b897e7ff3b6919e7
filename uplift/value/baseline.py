"""Baseline CLV: what each customer is worth over the CLV horizon without the campaign.

Two ways, chosen in the spec (``value.baseline_clv``):

* **from a transactions table** (id, date, amount): the BG/NBD purchase model and the
  Gamma-Gamma spend model (:mod:`uplift.value.lifetime`) are fitted on every customer's
  history up to the observation end, and each customer's discounted expected profit over
  the horizon is :func:`uplift.value.lifetime.lifetime_value`. Customers of the
  experiment with no transaction get zero and are counted;
* **from a pre-period feature** (the run rate): a column holding what the customer spent
  in the ``period_days`` before launch is taken as their spending rate, continued over the
  horizon month by month and discounted at the annual rate:

  .. math:: \\mathrm{CLV} = \\mu \\, u \\, \\frac{x \\cdot 30.4375}{P}
            \\sum_{m=1}^{H} (1 + d)^{-m}, \\qquad d = (1 + r)^{1/12} - 1

  with margin :math:`\\mu`, unit value :math:`u`, the column's value :math:`x` over
  :math:`P` days, the horizon :math:`H` in months and the annual rate :math:`r`.

Being measured before launch, the baseline is the same whatever arm a customer is in;
per segment it gives the scale against which an incremental CLV is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from uplift.errors import DataError

__all__ = ["BaselineCLV", "run_rate_clv", "transactions_clv"]

_DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class BaselineCLV:
    """Every customer's baseline CLV and how it was obtained."""

    values: pd.Series
    """Baseline CLV per customer, indexed like the experiment's customers."""
    method: str
    """``transactions`` (BG/NBD and Gamma-Gamma) or ``run_rate`` (a pre-period column)."""
    params: dict[str, float] = field(default_factory=dict)
    """The fitted parameters (r, alpha, a, b, p, q, v) of the transactions models."""
    without_history: int = 0
    """Customers of the experiment with no transaction (baseline zero)."""
    history_end: date | None = None
    """The last day of the purchase history the transactions models saw."""

    def to_dict(self) -> dict[str, Any]:
        """The method, the parameters, the per-customer mean and total and the history's
        last day, JSON-ready."""
        return {
            "method": self.method,
            "params": dict(self.params),
            "mean": float(self.values.mean()) if len(self.values) else None,
            "total": float(self.values.sum()),
            "without_history": self.without_history,
            "history_end": None if self.history_end is None else self.history_end.isoformat(),
        }


def _discount_sum(horizon_months: float, annual_discount_rate: float) -> float:
    monthly = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    months = np.arange(1, int(np.floor(horizon_months + 1e-9)) + 1)
    return float(np.sum((1.0 + monthly) ** -months.astype(float)))


def run_rate_clv(
    spend: pd.Series,
    *,
    period_days: float,
    horizon_months: float,
    annual_discount_rate: float,
    margin: float,
    unit_value: float = 1.0,
) -> BaselineCLV:
    """Baseline CLV from a pre-period spend column, continued at its run rate.

    Parameters
    ----------
    spend : pd.Series
        What each customer spent in the ``period_days`` before launch.
    period_days : float
        Days the column covers.
    horizon_months : float
        CLV horizon; whole months count.
    annual_discount_rate : float
        Discount rate per year, applied monthly.
    margin : float
        Share of spend that is profit.
    unit_value : float
        Worth of one unit of the column.
    """
    per_month = spend.to_numpy(dtype=float) * _DAYS_PER_MONTH / period_days
    factor = margin * unit_value * _discount_sum(horizon_months, annual_discount_rate)
    return BaselineCLV(
        pd.Series(per_month * factor, index=spend.index, name="baseline_clv"), "run_rate"
    )


def transactions_clv(
    transactions: pd.DataFrame,
    ids: pd.Series,
    *,
    id_column: str,
    date_column: str,
    amount_column: str,
    observation_end: str | date | None,
    horizon_months: float,
    annual_discount_rate: float,
    margin: float,
    source: str = "transactions",
) -> BaselineCLV:
    """Baseline CLV from purchase histories with BG/NBD and Gamma-Gamma.

    Parameters
    ----------
    transactions : pd.DataFrame
        One row per purchase.
    ids : pd.Series
        The experiment's customer ids, indexed like its customers.
    id_column, date_column, amount_column : str
        Columns of ``transactions``.
    observation_end : str or date, optional
        Last day observed (the launch); default: the last purchase date.
    horizon_months, annual_discount_rate, margin : float
        As for :func:`uplift.value.lifetime.lifetime_value` (whole months count).
    source : str
        Where the transactions came from, for messages.

    Raises
    ------
    DataError
        When a column is missing, or no experiment customer has a history.
    """
    from uplift.value.lifetime import fit_bgnbd, fit_gamma_gamma, lifetime_value, rfm_summary

    missing = [c for c in (id_column, date_column, amount_column) if c not in transactions]
    if missing:
        raise DataError(
            f"value.baseline_clv.transactions: {source} has no column(s) {missing}; its "
            f"columns are {sorted(map(str, transactions.columns))[:30]}."
        )
    table = transactions.assign(**{id_column: transactions[id_column].astype(str)})
    if observation_end is None:
        observation_end = pd.to_datetime(table[date_column]).max().date()
    try:
        history = rfm_summary(
            table, id_column, date_column, amount_column, observation_end=observation_end
        )
    except DataError as exc:
        raise DataError(f"value.baseline_clv.transactions: {source}: {exc}") from None
    keys = ids.astype(str)
    known = keys.isin(history.index).to_numpy()
    if not known.any():
        raise DataError(
            f"value.baseline_clv.transactions: none of the experiment's {len(keys):,} "
            f"customers has a purchase in {source} (ids such as {keys.iloc[0]!r} are not in "
            f"column {id_column!r})."
        )
    bgnbd = fit_bgnbd(history["frequency"], history["recency"], history["T"])
    repeat = history[history["frequency"] > 0]
    spend = fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"])
    clv = lifetime_value(
        bgnbd,
        spend,
        history["frequency"],
        history["recency"],
        history["T"],
        history["monetary_value"],
        months=int(np.floor(horizon_months + 1e-9)),
        annual_discount_rate=annual_discount_rate,
        margin=margin,
    )
    values = np.zeros(len(keys))
    values[known] = clv.reindex(keys[known].to_numpy()).to_numpy()
    params = {**bgnbd.params.to_dict(), **spend.params.to_dict()}
    return BaselineCLV(
        pd.Series(values, index=ids.index, name="baseline_clv"),
        "transactions",
        {str(k): float(v) for k, v in params.items()},
        int((~known).sum()),
        pd.Timestamp(observation_end).date(),
    )
