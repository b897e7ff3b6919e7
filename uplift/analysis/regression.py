"""Treatment effects by least squares with HC2 standard errors, and Lin's adjustment.

The effect of a treatment arm against the control is the coefficient of the arm's
indicator ``T`` in an ordinary least-squares regression. Without covariates that is
``y ~ 1 + T``, whose coefficient is the difference in means and whose HC2 standard
error equals the unpooled (Welch) one. With pre-period covariates ``Z`` it is Lin's
(2013) fully interacted regression ``y ~ 1 + T + Zc + T:Zc`` on covariates centred over
the two arms, which is never less precise asymptotically than the difference in means
and is the regression form of CUPED (Deng et al. 2013).

Standard errors are MacKinnon and White's (1985) HC2: the residuals are scaled by
``1 / (1 - h_ii)`` with ``h_ii`` the leverage. Intervals and p-values use the normal
distribution, as ``statsmodels`` does for ``OLS(...).fit(cov_type="HC2")``.

The relative lift ``effect / control mean`` gets a delta-method interval from the joint
HC2 covariance of the effect and the intercept (the control mean at the covariates'
average).

References
----------
Lin, W. (2013). Agnostic notes on regression adjustments to experimental data:
reexamining Freedman's critique. *The Annals of Applied Statistics* 7(1), 295-318.

Deng, A., Xu, Y., Kohavi, R. and Walker, T. (2013). Improving the sensitivity of online
controlled experiments by utilizing pre-experiment data. *WSDM '13*, 123-132.

MacKinnon, J. G. and White, H. (1985). Some heteroskedasticity-consistent covariance
matrix estimators with improved finite sample properties. *Journal of Econometrics*
29(3), 305-325.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from uplift.analysis.grouped import contrast, group_fits

__all__ = ["HC2Fit", "RegressionEffect", "ols_hc2", "regression_effect"]


@dataclass(frozen=True)
class HC2Fit:
    """Least-squares coefficients and their HC2 covariance."""

    params: np.ndarray
    cov: np.ndarray

    @property
    def bse(self) -> np.ndarray:
        """Standard errors of the coefficients."""
        return np.sqrt(np.diag(self.cov))


def ols_hc2(X: np.ndarray, y: np.ndarray) -> HC2Fit:
    """Ordinary least squares of ``y`` on the columns of ``X`` with the HC2 covariance.

    Parameters
    ----------
    X : np.ndarray
        Design matrix ``(n, p)`` of full column rank, intercept included.
    y : np.ndarray
        Outcomes ``(n,)``.

    Returns
    -------
    HC2Fit
        Equal to ``statsmodels.api.OLS(y, X).fit(cov_type="HC2")``'s ``params`` and
        ``cov_params()``.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    bread = np.linalg.inv(X.T @ X)
    params = bread @ (X.T @ y)
    resid = y - X @ params
    leverage = np.einsum("ij,jk,ik->i", X, bread, X)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = resid**2 / (1.0 - leverage)
    meat = X.T @ (X * weights[:, None])
    return HC2Fit(params, bread @ meat @ bread)


@dataclass(frozen=True)
class RegressionEffect:
    """One arm's effect against the control from :func:`regression_effect`."""

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    control_mean: float
    """The intercept: the control's mean, or when adjusted the control's predicted mean at
    the covariates' average over both arms (Lin's estimate of the control's mean)."""
    lift: float
    """``estimate / control_mean`` (when adjusted, not ``estimate`` over the raw control mean)."""
    lift_ci_low: float
    lift_ci_high: float
    unadjusted_std_error: float
    """The difference in means' HC2 (= Welch) standard error, for the variance reduction."""
    adjusted: bool = False
    """Whether the covariates were used; see :func:`regression_effect` for when they are not."""

    @property
    def variance_reduction(self) -> float:
        """``1 - (std_error / unadjusted_std_error) ** 2``: 0 without covariates."""
        if not self.unadjusted_std_error > 0:
            return float("nan")
        return 1.0 - (self.std_error / self.unadjusted_std_error) ** 2


def regression_effect(
    y: np.ndarray,
    treated: np.ndarray,
    covariates: np.ndarray | None = None,
    alpha: float = 0.05,
) -> RegressionEffect:
    """The effect of treatment on ``y`` by OLS with HC2, Lin-adjusted when covariates are given.

    Parameters
    ----------
    y : np.ndarray
        Outcomes of the customers of the two arms.
    treated : np.ndarray
        Boolean, True for the treatment arm, False for the control.
    covariates : np.ndarray, optional
        Pre-period covariates, ``(n,)`` or ``(n, k)``, measured before the campaign. They
        are not used (``adjusted`` is then False) when an arm has ``k + 2`` customers or
        fewer, or when they are constant, or collinear, within an arm: the adjusted
        regression is then not identified or would understate its error.
    alpha : float
        One minus the confidence level.

    Returns
    -------
    RegressionEffect
    """
    y = np.asarray(y, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    n_treated = int(treated.sum())
    if n_treated < 2 or y.size - n_treated < 2:
        raise ValueError(
            f"an effect needs at least two customers per arm, found {n_treated} treated "
            f"and {y.size - n_treated} control"
        )
    # Lin's regression is the two arms' own regressions side by side (see grouped.py)
    fits = group_fits(y, treated.astype(np.intp), 2, covariates)
    pair = contrast(fits, np.array([1]), np.array([0]))
    q = float(special.ndtri(1 - alpha / 2))
    estimate, se = float(pair.estimate[0]), float(pair.std_error[0])
    p_value = float(2 * special.ndtr(-abs(estimate / se))) if se > 0 else float("nan")
    lift, lift_se = (float(v[0]) for v in pair.lift())
    return RegressionEffect(
        estimate=estimate,
        std_error=se,
        ci_low=estimate - q * se,
        ci_high=estimate + q * se,
        p_value=p_value,
        control_mean=float(pair.control_mean[0]),
        lift=lift,
        lift_ci_low=lift - q * lift_se,
        lift_ci_high=lift + q * lift_se,
        unadjusted_std_error=float(np.sqrt(pair.unadjusted_variance[0])),
        adjusted=bool(pair.adjusted[0]),
    )
