"""Power analysis: minimum detectable effects and sample sizes for one arm against the control.

Everything here is for one treatment arm compared with the control by a two-sided test at
level ``alpha``:

- continuous metrics use the two-sample t-test (``statsmodels.stats.power.TTestIndPower``) and
  Cohen's d, so the effect in metric units is ``d * sd``;
- binary metrics use the normal approximation on Cohen's h, the difference of arcsine-transformed
  rates ``h = 2 * arcsin(sqrt(p1)) - 2 * arcsin(sqrt(p0))``
  (``statsmodels.stats.power.NormalIndPower``), turned back into an absolute rate difference.

The roots are found with ``solve_power`` and then polished with ``scipy.optimize.brentq`` on the
same statsmodels power function: ``solve_power``'s default tolerances leave the power of its
answer off the target by up to about 2e-4 (e.g. power 0.5, alpha 0.1, 150,000 / 50,000
customers), and the polished answer reproduces the target power to about 1e-12.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.tools.sm_exceptions import ConvergenceWarning

__all__ = [
    "MetricKind",
    "PowerResult",
    "mde_binary",
    "mde_continuous",
    "pre_period_estimate",
    "sample_size_binary",
    "sample_size_continuous",
]

MetricKind = Literal["binary", "continuous"]

_ALTERNATIVE = "two-sided"
# A solved sample size within this distance above an integer is taken as that integer, so that
# the last digits of the root finder do not add a whole customer (the power given up is < 1e-9).
_N_ROUNDING_SLACK = 1e-6


@dataclass(frozen=True)
class PowerResult:
    """Power analysis of one treatment arm against the control.

    Attributes
    ----------
    kind : {"continuous", "binary"}
        The kind of metric analysed.
    alpha : float
        Significance level of the two-sided test.
    power : float
        Target power (probability of rejecting when the true effect equals ``mde``). For the
        sample-size functions the rounded-up sizes give at least this power.
    n_control : int
        Customers in the control arm.
    n_treatment : int
        Customers in the treatment arm.
    baseline : float or None
        Control mean: the baseline rate ``p0`` for a binary metric, the baseline mean (if given)
        for a continuous one.
    sd : float
        Standard deviation of one customer's outcome in the control: as given for a continuous
        metric, the Bernoulli ``sqrt(p0 * (1 - p0))`` for a binary one.
    mde : float
        Absolute effect in metric units (rate points for a binary metric, e.g. 0.02 for two
        percentage points). From the MDE functions, the minimum detectable effect; from the
        sample-size functions, the target effect as given.
    effect_size : float
        The standardized effect: Cohen's d (``mde / sd``) for a continuous metric, Cohen's h
        (``2 * arcsin(sqrt(p1)) - 2 * arcsin(sqrt(p0))``, in absolute value) for a binary one.
    """

    kind: MetricKind
    alpha: float
    power: float
    n_control: int
    n_treatment: int
    baseline: float | None
    sd: float
    mde: float
    effect_size: float

    @property
    def relative_mde(self) -> float | None:
        """``mde / |baseline|``, or None when the baseline is unknown or zero."""
        if self.baseline is None or self.baseline == 0.0:
            return None
        return self.mde / abs(self.baseline)


# --------------------------------------------------------------------------------------------
# validation


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def _check_alpha_power(alpha: float, power: float) -> tuple[float, float]:
    alpha = _check_probability("alpha", alpha)
    power = _check_probability("power", power)
    if power <= alpha:
        raise ValueError(
            f"power must exceed alpha (a test rejects with probability alpha even with no "
            f"effect), got power={power!r} and alpha={alpha!r}"
        )
    return alpha, power


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number of customers, got {value!r}")
    if value < minimum:
        if minimum == 1:
            raise ValueError(f"{name} must be positive, got {value!r}")
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(value)


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return value


def _check_rate(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(
            f"{name} must be a rate strictly between 0 and 1, got {value!r} "
            "(with a rate of 0 or 1 there is no variance to power a test on)"
        )
    return value


def _check_effect(effect: float) -> float:
    effect = float(effect)
    if not (math.isfinite(effect) and effect != 0.0):
        raise ValueError(f"effect must be non-zero and finite, got {effect!r}")
    return effect


# --------------------------------------------------------------------------------------------
# root finding


def _solve_increasing(f: Callable[[float], float], start: float, floor: float) -> float:
    """Root of ``f``, increasing on ``(floor, inf)`` with ``f(floor) < 0``, polished from ``start``.

    ``start`` is a first guess (statsmodels' ``solve_power``); the bracket around it widens
    geometrically away from ``floor`` until it holds a sign change, then ``brentq`` finishes.
    """
    if not (math.isfinite(start) and start > floor):
        start = floor + 1.0
    lo = floor + (start - floor) * (1.0 - 1e-3)
    hi = floor + (start - floor) * (1.0 + 1e-3)
    for _ in range(200):
        f_lo = f(lo)
        if f_lo <= 0.0:
            break
        lo = floor + (lo - floor) / 4.0
    else:  # pragma: no cover - f(floor) < 0 and f is continuous
        raise ValueError("power solver could not bracket the root from below")
    for _ in range(200):
        f_hi = f(hi)
        if f_hi >= 0.0:
            break
        hi = floor + (hi - floor) * 4.0
    else:  # pragma: no cover - power tends to 1
        raise ValueError("power solver could not bracket the root from above")
    if not (math.isfinite(f_lo) and math.isfinite(f_hi)):  # pragma: no cover
        raise ValueError("the power function returned a non-finite value")
    if f_lo == 0.0:
        return lo
    if f_hi == 0.0:
        return hi
    root = optimize.brentq(f, lo, hi, xtol=1e-14 * max(1.0, start), rtol=4 * np.finfo(float).eps)
    return float(root)


def _first_guess(solver: Callable[[], float]) -> float:
    """Run a statsmodels ``solve_power`` call; nan when it fails (the polish then starts alone)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            value = float(np.squeeze(solver()))
    except (ValueError, RuntimeError, ArithmeticError):
        return math.nan
    return value


def _standardized_mde(
    engine: TTestIndPower | NormalIndPower,
    n_control: int,
    n_treatment: int,
    alpha: float,
    power: float,
) -> float:
    ratio = n_control / n_treatment

    def gap(es: float) -> float:
        achieved = engine.power(es, n_treatment, alpha, ratio=ratio, alternative=_ALTERNATIVE)
        return float(achieved) - power

    start = _first_guess(
        lambda: engine.solve_power(
            effect_size=None,
            nobs1=n_treatment,
            ratio=ratio,
            alpha=alpha,
            power=power,
            alternative=_ALTERNATIVE,
        )
    )
    return _solve_increasing(gap, start, 0.0)


def _n_treatment_for(
    engine: TTestIndPower | NormalIndPower,
    effect_size: float,
    ratio: float,
    alpha: float,
    power: float,
    min_per_arm: int,
) -> tuple[int, int]:
    """Smallest (n_control, n_treatment) with n_control = ratio * n_treatment reaching power."""

    def gap(n1: float) -> float:
        achieved = engine.power(effect_size, n1, alpha, ratio=ratio, alternative=_ALTERNATIVE)
        return float(achieved) - power

    floor = max(float(min_per_arm), min_per_arm / ratio)
    if gap(floor) >= 0.0:
        n1 = floor
    else:
        start = _first_guess(
            lambda: engine.solve_power(
                effect_size=effect_size,
                nobs1=None,
                ratio=ratio,
                alpha=alpha,
                power=power,
                alternative=_ALTERNATIVE,
            )
        )
        n1 = _solve_increasing(gap, start, floor)
    n_treatment = max(min_per_arm, math.ceil(n1 - _N_ROUNDING_SLACK))
    n_control = max(min_per_arm, math.ceil(ratio * n1 - _N_ROUNDING_SLACK))
    return n_control, n_treatment


def _cohens_h(p1: float, p0: float) -> float:
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p0))


# --------------------------------------------------------------------------------------------
# public API


def mde_continuous(
    n_control: int,
    n_treatment: int,
    sd: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    baseline_mean: float | None = None,
) -> PowerResult:
    """Minimum detectable effect of a continuous metric (two-sample t-test, two-sided).

    Parameters
    ----------
    n_control, n_treatment : int
        Customers in the control and in the treatment arm (at least 2 each).
    sd : float
        Standard deviation of one customer's outcome, e.g. from :func:`pre_period_estimate`.
    alpha : float, default 0.05
        Significance level of the two-sided test.
    power : float, default 0.8
        Target power.
    baseline_mean : float, optional
        Control mean of the metric; when given and non-zero, ``relative_mde`` is filled in.

    Returns
    -------
    PowerResult
        ``effect_size`` is Cohen's d solved with ``TTestIndPower`` (``nobs1=n_treatment``,
        ``ratio=n_control / n_treatment``); ``mde = d * sd``.

    Raises
    ------
    ValueError
        If a size is not a whole number of at least 2, ``sd`` is not positive, or ``alpha`` or
        ``power`` is outside (0, 1) (or power does not exceed alpha).
    """
    n_control = _check_count("n_control", n_control, 2)
    n_treatment = _check_count("n_treatment", n_treatment, 2)
    sd = _check_positive("sd", sd)
    alpha, power = _check_alpha_power(alpha, power)
    d = _standardized_mde(TTestIndPower(), n_control, n_treatment, alpha, power)
    mde = d * sd
    baseline = None if baseline_mean is None else float(baseline_mean)
    return PowerResult(
        kind="continuous",
        alpha=alpha,
        power=power,
        n_control=n_control,
        n_treatment=n_treatment,
        baseline=baseline,
        sd=sd,
        mde=mde,
        effect_size=d,
    )


def mde_binary(
    n_control: int,
    n_treatment: int,
    baseline_rate: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> PowerResult:
    """Minimum detectable increase of a binary metric's rate (Cohen's h, two-sided z-test).

    Parameters
    ----------
    n_control, n_treatment : int
        Customers in the control and in the treatment arm (positive).
    baseline_rate : float
        Control rate ``p0``, strictly between 0 and 1.
    alpha : float, default 0.05
        Significance level of the two-sided test.
    power : float, default 0.8
        Target power.

    Returns
    -------
    PowerResult
        ``effect_size`` is Cohen's h solved with ``NormalIndPower``; the detectable treated rate
        is ``p1 = sin(arcsin(sqrt(p0)) + h / 2) ** 2`` and ``mde = p1 - p0`` (an absolute
        increase in rate); ``relative_mde = mde / p0``.

    Raises
    ------
    ValueError
        If ``baseline_rate`` is not strictly between 0 and 1, the detectable rate would reach or
        exceed 1, a size is not a positive whole number, or ``alpha`` or ``power`` is outside
        (0, 1) (or power does not exceed alpha).
    """
    n_control = _check_count("n_control", n_control, 1)
    n_treatment = _check_count("n_treatment", n_treatment, 1)
    p0 = _check_rate("baseline_rate", baseline_rate)
    alpha, power = _check_alpha_power(alpha, power)
    h = _standardized_mde(NormalIndPower(), n_control, n_treatment, alpha, power)
    angle = math.asin(math.sqrt(p0)) + h / 2.0
    if angle >= math.pi / 2.0:
        raise ValueError(
            f"with a baseline rate of {p0!r} and {n_control} control / {n_treatment} treated "
            f"customers the detectable effect (Cohen's h = {h:.4g}) would need a treated rate "
            "of 1 or more: the arms are too small to power a test on this metric"
        )
    p1 = math.sin(angle) ** 2
    mde = p1 - p0
    return PowerResult(
        kind="binary",
        alpha=alpha,
        power=power,
        n_control=n_control,
        n_treatment=n_treatment,
        baseline=p0,
        sd=math.sqrt(p0 * (1.0 - p0)),
        mde=mde,
        effect_size=h,
    )


def sample_size_continuous(
    effect: float,
    sd: float,
    *,
    ratio: float = 1.0,
    alpha: float = 0.05,
    power: float = 0.8,
    baseline_mean: float | None = None,
) -> PowerResult:
    """Arm sizes needed to detect an absolute effect on a continuous metric (two-sided t-test).

    Parameters
    ----------
    effect : float
        Target absolute effect in metric units (non-zero; its sign does not matter).
    sd : float
        Standard deviation of one customer's outcome.
    ratio : float, default 1.0
        Allocation ratio ``n_control / n_treatment``.
    alpha : float, default 0.05
        Significance level of the two-sided test.
    power : float, default 0.8
        Target power.
    baseline_mean : float, optional
        Control mean of the metric; when given and non-zero, ``relative_mde`` is filled in.

    Returns
    -------
    PowerResult
        ``n_treatment`` is ``nobs1`` solved with ``TTestIndPower`` for Cohen's
        ``d = |effect| / sd``, rounded up; ``n_control`` is ``ratio * nobs1`` rounded up (at
        least 2 each). ``mde`` is ``effect`` as given.

    Raises
    ------
    ValueError
        If ``effect`` is zero, ``sd`` or ``ratio`` is not positive, or ``alpha`` or ``power`` is
        outside (0, 1) (or power does not exceed alpha).
    """
    effect = _check_effect(effect)
    sd = _check_positive("sd", sd)
    ratio = _check_positive("ratio", ratio)
    alpha, power = _check_alpha_power(alpha, power)
    d = abs(effect) / sd
    n_control, n_treatment = _n_treatment_for(TTestIndPower(), d, ratio, alpha, power, 2)
    baseline = None if baseline_mean is None else float(baseline_mean)
    return PowerResult(
        kind="continuous",
        alpha=alpha,
        power=power,
        n_control=n_control,
        n_treatment=n_treatment,
        baseline=baseline,
        sd=sd,
        mde=effect,
        effect_size=d,
    )


def sample_size_binary(
    effect: float,
    baseline_rate: float,
    *,
    ratio: float = 1.0,
    alpha: float = 0.05,
    power: float = 0.8,
) -> PowerResult:
    """Arm sizes needed to detect an absolute change in a binary metric's rate (Cohen's h).

    Parameters
    ----------
    effect : float
        Target absolute change in rate, ``p1 - p0`` (e.g. 0.02 for two percentage points; may be
        negative, e.g. for a churn reduction).
    baseline_rate : float
        Control rate ``p0``, strictly between 0 and 1.
    ratio : float, default 1.0
        Allocation ratio ``n_control / n_treatment``.
    alpha : float, default 0.05
        Significance level of the two-sided test.
    power : float, default 0.8
        Target power.

    Returns
    -------
    PowerResult
        ``n_treatment`` is ``nobs1`` solved with ``NormalIndPower`` for
        ``|h| = |2 * arcsin(sqrt(p0 + effect)) - 2 * arcsin(sqrt(p0))|``, rounded up;
        ``n_control`` is ``ratio * nobs1`` rounded up. ``mde`` is ``effect`` as given and
        ``relative_mde = effect / p0``.

    Raises
    ------
    ValueError
        If ``baseline_rate`` or ``baseline_rate + effect`` is not strictly between 0 and 1,
        ``effect`` is zero, ``ratio`` is not positive, or ``alpha`` or ``power`` is outside
        (0, 1) (or power does not exceed alpha).
    """
    effect = _check_effect(effect)
    p0 = _check_rate("baseline_rate", baseline_rate)
    p1 = p0 + effect
    if not 0.0 < p1 < 1.0:
        raise ValueError(
            f"baseline_rate + effect must be a rate strictly between 0 and 1, got "
            f"{p0!r} + {effect!r} = {p1!r}"
        )
    ratio = _check_positive("ratio", ratio)
    alpha, power = _check_alpha_power(alpha, power)
    h = abs(_cohens_h(p1, p0))
    n_control, n_treatment = _n_treatment_for(NormalIndPower(), h, ratio, alpha, power, 1)
    return PowerResult(
        kind="binary",
        alpha=alpha,
        power=power,
        n_control=n_control,
        n_treatment=n_treatment,
        baseline=p0,
        sd=math.sqrt(p0 * (1.0 - p0)),
        mde=effect,
        effect_size=h,
    )


def pre_period_estimate(values: pd.Series, kind: MetricKind) -> float:
    """The planning input a pre-period column gives: its sd, or its rate.

    Parameters
    ----------
    values : pandas.Series
        The pre-period twin of the metric, one row per customer; missing values are skipped.
    kind : {"continuous", "binary"}
        ``"continuous"`` returns the sample standard deviation (``ddof=1``), the ``sd`` of
        :func:`mde_continuous`; ``"binary"`` returns the mean of the 0/1 values, the
        ``baseline_rate`` of :func:`mde_binary`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If there are too few non-missing values (two for an sd, one for a rate), a binary
        column holds values other than 0 and 1, or ``kind`` is unknown.
    """
    present = values.dropna()
    if kind == "continuous":
        if len(present) < 2:
            raise ValueError(
                f"a standard deviation needs at least 2 non-missing values, got {len(present)}"
            )
        return float(present.astype(float).std(ddof=1))
    if kind == "binary":
        if len(present) == 0:
            raise ValueError("a baseline rate needs at least 1 non-missing value, got 0")
        numeric = present.astype(float)
        if not numeric.isin([0.0, 1.0]).all():
            raise ValueError("a binary pre-period column must hold only 0 and 1 (or booleans)")
        return float(numeric.mean())
    raise ValueError(f"kind must be 'continuous' or 'binary', got {kind!r}")
