"""From a window effect to lifetime value."""

from __future__ import annotations

import math

__all__ = ["clv_multiplier"]

_DAYS_PER_MONTH = 365.25 / 12


def clv_multiplier(
    window_days: int, horizon_months: float, annual_discount_rate: float, persistence: float
) -> float:
    """Discounted lifetime worth of one unit of effect observed in the outcome window.

    The horizon is cut into consecutive windows as long as the outcome window. The
    effect seen in the first window repeats in the k-th following one scaled by
    ``persistence ** k`` and is discounted to launch at the annual rate:

    .. math:: m = \\sum_{k=0}^{K-1} p^k (1 + r)^{-k w / 12}

    with ``K = max(1, floor(horizon / w))`` windows of ``w`` months. With no persistence
    the multiplier is 1: only the measured window counts.

    Parameters
    ----------
    window_days : int
        Length of the outcome window.
    horizon_months : float
        CLV horizon.
    annual_discount_rate : float
        Discount rate per year.
    persistence : float
        Share of the effect that carries over to each following window, in [0, 1].
    """
    window_months = window_days / _DAYS_PER_MONTH
    periods = max(1, math.floor(horizon_months / window_months + 1e-9))
    return sum(
        persistence**k / (1.0 + annual_discount_rate) ** (k * window_months / 12)
        for k in range(periods)
    )
