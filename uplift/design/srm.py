"""Sample-ratio mismatch: do the arm counts match the configured weights?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["SRM_ALERT_P", "SRMResult", "srm_test"]

#: Below this p-value the split is declared broken.
SRM_ALERT_P = 0.001


@dataclass(frozen=True)
class SRMResult:
    """Chi-square goodness-of-fit of arm counts against the expected shares."""

    counts: dict[str, int]
    expected_shares: dict[str, float]
    statistic: float
    p_value: float

    @property
    def alert(self) -> bool:
        """True when the mismatch is too large to be chance (p below 0.001)."""
        return self.p_value < SRM_ALERT_P


def srm_test(counts: Mapping[str, int], weights: Mapping[str, float]) -> SRMResult:
    """Pearson chi-square test of arm counts against weights (renormalized to sum to 1)."""
    total_weight = sum(weights.values())
    shares = {arm: w / total_weight for arm, w in weights.items()}
    n = sum(counts.get(arm, 0) for arm in shares)
    observed = [counts.get(arm, 0) for arm in shares]
    expected = [n * s for s in shares.values()]
    # Pearson's statistic and the chi-square survival function on k - 1 degrees of freedom,
    # what scipy.stats.chisquare computes; scipy.special alone imports in a third of the time
    o, e = np.asarray(observed, dtype=float), np.asarray(expected, dtype=float)
    statistic = float(np.sum((o - e) ** 2 / e))
    p_value = float(special.chdtrc(len(o) - 1, statistic))
    return SRMResult(
        {arm: int(counts.get(arm, 0)) for arm in shares}, shares, float(statistic), float(p_value)
    )
