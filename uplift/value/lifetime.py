"""Baseline customer lifetime value from a transactions table.

Three steps, each a function:

- :func:`rfm_summary` turns transactions into one row per customer: repeat purchase
  periods (``frequency``), age at the last purchase (``recency``), age at the end of the
  observation (``T``) and mean value of the repeat purchases (``monetary_value``), with the
  conventions of the ``lifetimes`` package.
- :func:`fit_bgnbd` fits the BG/NBD model of purchase counts (Fader, Hardie & Lee 2005,
  "Counting your customers the easy way", Marketing Science 24(2)) and
  :func:`fit_gamma_gamma` the Gamma-Gamma model of spend per purchase (Fader & Hardie
  2013, "The Gamma-Gamma model of monetary value", brucehardie.com/notes/025).
- :func:`lifetime_value` combines them into a discounted expected profit per customer.

Both fits maximise the likelihood over log-parameters with ``scipy.optimize.minimize``;
standard errors come from the inverse Hessian of the negative log-likelihood, taken by
finite differences, and carried to the natural parameters by the delta method.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1

from uplift.errors import DataError, UpliftWarning

__all__ = [
    "BGNBDResult",
    "GammaGammaResult",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "lifetime_value",
    "purchase_dates",
    "rfm_summary",
]

FloatArray = npt.NDArray[np.float64]

# a month is 30 days, as in lifetimes.utils._customer_lifetime_value
_DAYS_PER_MONTH = 30


def rfm_summary(
    transactions: pd.DataFrame,
    id_column: str,
    date_column: str,
    amount_column: str,
    *,
    observation_end: str | date,
    freq: str = "D",
) -> pd.DataFrame:
    """Frequency, recency, age and mean repeat value of every customer.

    Follows ``lifetimes.utils.summary_data_from_transaction_data``: dates are cut into
    periods of ``freq``; several purchases in one period count as one purchase whose
    amount is their sum; the first period is the customer's birth and not a repeat.

    Parameters
    ----------
    transactions : pd.DataFrame
        One row per purchase.
    id_column, date_column, amount_column : str
        Columns holding the customer id, the purchase date and the amount.
    observation_end : str or date
        Last day observed; no purchase may be later.
    freq : str
        Pandas period alias of the time unit, ``"D"`` (days) or ``"W"`` (weeks) say.

    Returns
    -------
    pd.DataFrame
        Indexed by customer id, sorted, with float columns ``frequency`` (distinct
        purchase periods minus one), ``recency`` (periods from first to last purchase),
        ``T`` (periods from first purchase to ``observation_end``) and ``monetary_value``
        (mean amount of the repeat periods, 0 where frequency is 0).

    Raises
    ------
    DataError
        When a column is missing, an id or date is missing, a date cannot be parsed or
        is after ``observation_end``, or an amount is missing or negative.
    """
    roles = (("a customer id", id_column), ("a date", date_column), ("an amount", amount_column))
    for role, column in roles:
        if column not in transactions.columns:
            raise DataError(
                f"rfm_summary needs {role} column {column!r}, but the transactions have no "
                f"such column; their columns are "
                f"{sorted(map(str, transactions.columns))[:30]}."
            )
    ids = transactions[id_column]
    if ids.isna().any():
        raise DataError(
            f"rfm_summary: customer id column {id_column!r} must have no missing values, "
            f"found {int(ids.isna().sum())} missing."
        )
    dates = purchase_dates(transactions[date_column], date_column)
    amounts = _check_amounts(transactions[amount_column], amount_column)

    periods = dates.dt.to_period(freq)
    end = pd.Period(pd.Timestamp(observation_end).tz_localize(None), freq=freq)
    late = periods > end
    if late.any():
        raise DataError(
            f"rfm_summary: date column {date_column!r} must hold no purchase after "
            f"observation_end {end}, found {int(late.sum())} later, the last on "
            f"{dates[late].max()}."
        )

    per_period = (
        pd.DataFrame(
            {
                "id": ids.to_numpy(),
                "period": pd.PeriodIndex(periods).asi8,
                "amount": amounts.to_numpy(),
            }
        )
        .groupby(["id", "period"], sort=True)["amount"]
        .sum()
        .reset_index()
    )
    customers = per_period.groupby("id", sort=True).agg(
        first=("period", "min"),
        last=("period", "max"),
        count=("period", "size"),
        first_amount=("amount", "first"),
        total=("amount", "sum"),
    )
    frequency = customers["count"] - 1
    repeat_total = customers["total"] - customers["first_amount"]
    summary = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": customers["last"] - customers["first"],
            "T": end.ordinal - customers["first"],
            "monetary_value": (repeat_total / frequency.where(frequency > 0)).fillna(0.0),
        }
    ).astype(float)
    summary.index.name = id_column
    return summary


def purchase_dates(values: pd.Series, column: str) -> pd.Series:
    """Purchase dates as datetime64 in local wall-clock time, from dates or ISO 8601 text.

    Parameters
    ----------
    values : pd.Series
        The date column of a purchases table.
    column : str
        Its name, for messages.

    Raises
    ------
    DataError
        When a value is neither a date nor an ISO 8601 string.
    """
    if pd.api.types.is_numeric_dtype(values):
        raise DataError(
            f"date column {column!r} must hold dates or ISO 8601 strings, "
            f"found dtype {values.dtype}."
        )
    try:
        # ISO 8601 only: a per-row guess would read 01/02 and 31/01 with different day orders
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    except ValueError as exc:
        raise DataError(f"date column {column!r} cannot be read: {exc}") from None
    bad = parsed.isna()
    if bad.any():
        examples = [repr(v) for v in values[bad].unique()[:3]]
        raise DataError(
            f"date column {column!r} must hold a date or an ISO 8601 string "
            f"(YYYY-MM-DD, optionally with a time) on every row, found {int(bad.sum())} rows "
            f"without one (for example {', '.join(examples)})."
        )
    # purchases fall in the period of their local wall-clock time
    return parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed


def _check_amounts(values: pd.Series, column: str) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise DataError(
            f"rfm_summary: amount column {column!r} must be numeric, found dtype {values.dtype}."
        )
    amounts = values.astype(float)
    if amounts.isna().any():
        raise DataError(
            f"rfm_summary: amount column {column!r} must have no missing values, "
            f"found {int(amounts.isna().sum())} missing."
        )
    if (amounts < 0).any():
        raise DataError(
            f"rfm_summary: amount column {column!r} must hold non-negative amounts, found "
            f"{int((amounts < 0).sum())} negative (the smallest {amounts.min():g})."
        )
    return amounts


@dataclass(frozen=True)
class BGNBDResult:
    """A fitted BG/NBD model.

    Purchase rates are Gamma(``r``, rate ``alpha``) across customers; after each repeat
    purchase a customer drops out with a probability that is Beta(``a``, ``b``) across
    customers. Times are in the unit of the data the model was fitted on.
    """

    r: float
    alpha: float
    a: float
    b: float
    standard_errors: dict[str, float]
    log_likelihood: float
    n: int
    converged: bool

    @property
    def params(self) -> pd.Series:
        """The parameters r, alpha, a and b."""
        return pd.Series({"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b})

    def summary(self) -> pd.DataFrame:
        """Parameters with their standard errors."""
        return _summary(self.params, self.standard_errors)

    def probability_alive(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """Probability that customers with this history have not dropped out at ``T``.

        Fader, Hardie & Lee (2008), "Computing P(alive) using the BG/NBD model",
        brucehardie.com/notes/021: :math:`1 / (1 + [x > 0] \\frac{a}{b + x - 1}
        (\\frac{\\alpha + T}{\\alpha + t_x})^{r + x})`.
        """
        x, t_x, T_ = np.broadcast_arrays(
            *(np.asarray(v, dtype=float) for v in (frequency, recency, T))
        )
        log_odds_dead = (
            np.log(self.a)
            - np.log(self.b + np.maximum(x, 1.0) - 1.0)
            + (self.r + x) * (np.log(self.alpha + T_) - np.log(self.alpha + t_x))
        )
        return np.where(x > 0, expit(-log_odds_dead), 1.0)

    def expected_purchases(
        self, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """Expected number of purchases in the ``t`` periods after ``T``, given the history.

        Equation (10) of Fader, Hardie & Lee (2005). Its Gauss hypergeometric function
        :math:`{}_2F_1(r + x, b + x; a + b + x - 1; z)` is evaluated through Euler's
        transformation :math:`(1 - z)^{a - 1 - r - x} {}_2F_1(a + b - 1 - r, a - 1;
        a + b + x - 1; z)`, which stays finite for large ``x`` and ``t``.
        """
        t_, x, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, frequency, T)))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        one_minus_z = (alpha + T_) / (alpha + T_ + t_)
        tail = one_minus_z ** (a - 1.0) * hyp2f1(
            a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, 1.0 - one_minus_z
        )
        alive_mean = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail)
        return np.asarray(alive_mean * self.probability_alive(x, recency, T_), dtype=float)

    def expected_purchases_new(self, t: npt.ArrayLike) -> FloatArray:
        """Expected number of repeat purchases of a new customer in its first ``t`` periods.

        Equation (9) of Fader, Hardie & Lee (2005); it is the conditional expectation for
        a customer with no history (x = t_x = T = 0).
        """
        return self.expected_purchases(t, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class GammaGammaResult:
    """A fitted Gamma-Gamma spend model.

    A customer's spends are Gamma(``p``, rate nu); nu is Gamma(``q``, rate ``v``) across
    customers, so the population mean spend is ``p * v / (q - 1)`` when ``q > 1``.
    """

    p: float
    q: float
    v: float
    standard_errors: dict[str, float]
    log_likelihood: float
    n: int
    converged: bool

    @property
    def params(self) -> pd.Series:
        """The parameters p, q and v."""
        return pd.Series({"p": self.p, "q": self.q, "v": self.v})

    def summary(self) -> pd.DataFrame:
        """Parameters with their standard errors."""
        return _summary(self.params, self.standard_errors)

    def expected_average_value(
        self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
    ) -> FloatArray:
        """Expected mean spend per purchase of customers with this history.

        Equation (5) of Fader & Hardie (2013): a weighted mean of the population mean
        ``p v / (q - 1)`` and the customer's own mean, with weight ``p x / (p x + q - 1)``
        on the latter; customers with no repeat purchase get the population mean.
        """
        x, m = np.broadcast_arrays(
            *(np.asarray(v, dtype=float) for v in (frequency, monetary_value))
        )
        px = self.p * x
        return np.asarray(self.p * (self.v + x * m) / (px + self.q - 1.0), dtype=float)


def fit_bgnbd(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    penalizer: float = 0.0,
) -> BGNBDResult:
    """Maximum-likelihood fit of the BG/NBD model.

    The log-likelihood is equation (6) of Fader, Hardie & Lee (2005), computed on the
    log scale as in Fader & Hardie (2013), "Overcoming the BG/NBD model's #NUM! error
    problem", brucehardie.com/notes/027.

    Parameters
    ----------
    frequency, recency, T : array-like
        Repeat purchases, age at the last purchase and age of every customer, as
        returned by :func:`rfm_summary`.
    penalizer : float
        L2 penalty ``penalizer * (r**2 + alpha**2 + a**2 + b**2)`` added to the mean
        negative log-likelihood. As in ``lifetimes``, the fit runs on times divided by the
        largest ``T``, so the penalty on alpha does not depend on the time unit.

    Raises
    ------
    DataError
        When the inputs are not a valid customer history.
    """
    x, t_x, T_ = _check_history(frequency, recency, T)
    scale = 1.0 / T_.max()

    def mean_nll(log_params: FloatArray) -> float:
        params = np.exp(log_params)
        ll = _bgnbd_log_likelihood(params, x, t_x * scale, T_ * scale)
        return float(-ll.mean() + penalizer * np.sum(params**2))

    log_params, se_log, converged = _maximise(mean_nll, np.zeros(4), len(x))
    r, alpha, a, b = np.exp(log_params)
    alpha /= scale
    natural = np.array([r, alpha, a, b])
    if not converged:
        _warn_not_converged("BG/NBD", natural)
    return BGNBDResult(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        standard_errors=dict(
            zip(("r", "alpha", "a", "b"), map(float, natural * se_log), strict=True)
        ),
        log_likelihood=float(_bgnbd_log_likelihood(natural, x, t_x, T_).sum()),
        n=len(x),
        converged=converged,
    )


def _bgnbd_log_likelihood(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    r, alpha, a, b = params
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + T)
    # dropped out right after the last purchase: only possible once there was a repeat
    dropped = np.where(
        x > 0,
        np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return np.asarray(common + np.logaddexp(alive, dropped), dtype=float)


def fit_gamma_gamma(frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> GammaGammaResult:
    """Maximum-likelihood fit of the Gamma-Gamma spend model.

    Only customers with at least one repeat purchase (frequency > 0) inform it; the
    log-likelihood is equation (1a) of Fader & Hardie (2013). The model assumes spend is
    independent of purchase frequency; check their correlation before relying on it.

    Parameters
    ----------
    frequency : array-like
        Repeat purchases of every customer.
    monetary_value : array-like
        Mean amount of each customer's repeat purchases.

    Raises
    ------
    DataError
        When no customer has a repeat purchase or a repeat customer's mean amount is not
        positive.
    """
    x_all, m_all = np.broadcast_arrays(
        np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    )
    repeat = x_all > 0
    x, m = x_all[repeat], m_all[repeat]
    if len(x) == 0:
        raise DataError(
            "fit_gamma_gamma needs customers with frequency > 0, found none: the spend model "
            "learns only from repeat purchases."
        )
    if not np.all(np.isfinite(m) & (m > 0)):
        bad = m[~(np.isfinite(m) & (m > 0))]
        raise DataError(
            f"fit_gamma_gamma: monetary_value must be positive and finite for customers with "
            f"frequency > 0, found {len(bad)} that are not (for example {bad[0]:g})."
        )

    def mean_nll(log_params: FloatArray) -> float:
        return float(-_gamma_gamma_log_likelihood(np.exp(log_params), x, m).mean())

    log_params, se_log, converged = _maximise(mean_nll, np.zeros(3), len(x))
    natural = np.exp(log_params)
    if not converged:
        _warn_not_converged("Gamma-Gamma", natural)
    p, q, v = natural
    if q <= 1:
        warnings.warn(
            f"Gamma-Gamma fit has q = {q:.3g} <= 1: the population mean spend p v / (q - 1) "
            f"is undefined and expected values are meaningless.",
            UpliftWarning,
            stacklevel=2,
        )
    return GammaGammaResult(
        p=float(p),
        q=float(q),
        v=float(v),
        standard_errors=dict(zip(("p", "q", "v"), map(float, natural * se_log), strict=True)),
        log_likelihood=float(_gamma_gamma_log_likelihood(natural, x, m).sum()),
        n=len(x),
        converged=converged,
    )


def _gamma_gamma_log_likelihood(params: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    p, q, v = params
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + x * m),
        dtype=float,
    )


def lifetime_value(
    bgnbd: BGNBDResult,
    gamma_gamma: GammaGammaResult,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    months: int,
    annual_discount_rate: float,
    margin: float,
    period_days: float = 1,
) -> pd.Series:
    """Discounted expected profit of every customer over the next ``months`` months.

    .. math:: \\sum_{k=1}^{K} \\frac{(E[Y(k M)] - E[Y((k - 1) M)]) \\, z \\, \\mu}
              {(1 + d)^k}

    with ``E[Y(t)]`` the BG/NBD expected purchases in the next ``t`` periods, ``M`` the
    periods in a month, ``z`` the Gamma-Gamma expected value per purchase, ``mu`` the
    margin and ``d`` the monthly discount rate, as in ``lifetimes``'
    ``customer_lifetime_value``. Unlike there, the rate given is annual and converted to
    the monthly ``d = (1 + annual) ** (1 / 12) - 1``. A month is 30 days, as there.

    Parameters
    ----------
    bgnbd, gamma_gamma : BGNBDResult, GammaGammaResult
        Fitted models.
    frequency, recency, T, monetary_value : array-like
        Customer histories, as returned by :func:`rfm_summary`.
    months : int
        Horizon in months.
    annual_discount_rate : float
        Discount rate per year.
    margin : float
        Share of the amount that is profit.
    period_days : float
        Days in one time unit of ``recency`` and ``T``: 1 for ``freq="D"``, 7 for weeks.

    Returns
    -------
    pd.Series
        Named ``clv``, indexed like ``frequency`` when it is a Series.
    """
    periods_per_month = _DAYS_PER_MONTH / period_days
    monthly_rate = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    value = gamma_gamma.expected_average_value(frequency, monetary_value) * margin
    clv = np.zeros(np.shape(value))
    previous = np.zeros(np.shape(value))
    for month in range(1, months + 1):
        cumulative = bgnbd.expected_purchases(month * periods_per_month, frequency, recency, T)
        clv = clv + (cumulative - previous) * value / (1.0 + monthly_rate) ** month
        previous = cumulative
    index = frequency.index if isinstance(frequency, pd.Series) else None
    return pd.Series(np.atleast_1d(clv), index=index, name="clv")


def _check_history(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x, t_x, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (frequency, recency, T)))
    problems = {
        "frequency must be whole numbers >= 0": (x < 0) | (x != np.round(x)),
        "recency must be between 0 and T": ~((t_x >= 0) & (t_x <= T_)),
        "recency must be 0 where frequency is 0": (x == 0) & (t_x != 0),
    }
    for expected, bad in problems.items():
        if bad.any():
            raise DataError(
                f"fit_bgnbd: {expected}, found {int(bad.sum())} customers where it is not "
                f"(the first at position {int(np.flatnonzero(bad)[0])})."
            )
    if not (x.size and T_.max() > 0):
        raise DataError("fit_bgnbd needs at least one customer observed for some time (T > 0).")
    return np.atleast_1d(x), np.atleast_1d(t_x), np.atleast_1d(T_)


def _maximise(
    mean_nll: Callable[[FloatArray], float], start: FloatArray, n: int
) -> tuple[FloatArray, FloatArray, bool]:
    """Minimise a mean negative log-likelihood over log-parameters.

    Returns the optimum, the standard errors of the log-parameters and whether the
    optimiser converged.
    """
    result = minimize(mean_nll, start, method="BFGS", jac="3-point", options={"gtol": 1e-8})
    # BFGS reports "precision loss" when it cannot improve a gradient that is already tiny
    converged = bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-5
    hessian = n * _hessian(mean_nll, result.x)
    try:
        variances = np.diag(np.linalg.inv(hessian))
    except np.linalg.LinAlgError:
        variances = np.full(len(start), np.nan)
    se = np.sqrt(np.where(variances > 0, variances, np.nan))
    return np.asarray(result.x, dtype=float), se, converged


def _hessian(f: Callable[[FloatArray], float], x: FloatArray, step: float = 1e-4) -> FloatArray:
    """Central finite-difference Hessian of ``f`` at ``x``."""
    k = len(x)
    hessian = np.empty((k, k))
    basis = np.eye(k) * step
    for i in range(k):
        for j in range(i, k):
            hessian[i, j] = hessian[j, i] = (
                f(x + basis[i] + basis[j])
                - f(x + basis[i] - basis[j])
                - f(x - basis[i] + basis[j])
                + f(x - basis[i] - basis[j])
            ) / (4 * step**2)
    return hessian


def _summary(params: pd.Series, standard_errors: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"coef": params, "std err": pd.Series(standard_errors)})


def _warn_not_converged(model: str, params: FloatArray) -> None:
    warnings.warn(
        f"{model} fit did not converge; the estimates {np.round(params, 4).tolist()} may be off.",
        UpliftWarning,
        stacklevel=3,
    )
