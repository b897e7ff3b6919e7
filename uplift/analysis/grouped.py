"""Least squares with HC2 standard errors in many groups at once, and arm contrasts.

An experiment's effects are needed for every arm, metric and segment. Each one is an
OLS coefficient with HC2 standard errors (:mod:`uplift.analysis.regression`), and each
of those regressions separates into one small regression per arm: in Lin's fully
interacted design ``y ~ 1 + T + Zc + T:Zc`` the columns can be reparametrised into an
intercept and slopes per arm, which leaves fitted values, residuals and leverages
unchanged and makes both ``X'X`` and the HC2 "meat" block-diagonal. So the arm's effect
is the difference of two per-arm intercepts, each evaluated at the covariates' mean over
the pair of arms, and its HC2 variance is the sum of theirs.

:func:`group_fits` therefore fits ``y ~ 1 + (Z - mean_g(Z))`` in every group ``g`` (a
segment and arm) in a few weighted ``numpy.bincount`` passes over the rows, and
:func:`contrast` combines pairs of groups. Without covariates the per-group variance of
the mean is ``s**2 / n``, the HC2 (and Welch) term.

A ratio of means (revenue per order, say) is a group statistic of the same shape: its
delta-method variance (:func:`group_ratios`) takes the place of ``s**2 / n`` and the
contrast is built the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Contrast", "GroupFits", "contrast", "group_fits", "group_ratios"]

# a covariate whose spread within a group is below this share of its magnitude is constant
_CONSTANT = 1e-9
# smallest eigenvalue of the covariates' correlation matrix below which they are collinear
_COLLINEAR = 1e-10


@dataclass(frozen=True)
class GroupFits:
    """Per-group means, and per-group regressions on centred covariates with HC2.

    All arrays have the number of groups as their first dimension.
    """

    n: np.ndarray
    """Rows in each group."""
    mean: np.ndarray
    """Mean outcome (for a ratio: the ratio of the group's means)."""
    var_mean: np.ndarray
    """Variance of ``mean``: ``s**2 / n`` (HC2 and Welch alike), or the delta-method
    variance of a ratio; NaN for fewer than two rows."""
    center: np.ndarray
    """``(G, k)`` covariate means (``k = 0`` without covariates)."""
    slopes: np.ndarray
    """``(G, k)`` least-squares slopes on the centred covariates; 0 where not identified."""
    cov: np.ndarray
    """``(G, k + 1, k + 1)`` HC2 covariance of (intercept, slopes); NaN where not identified."""
    identified: np.ndarray
    """Whether the group's regression on the covariates is identified with residuals to
    spare: more than ``k + 2`` rows and covariates neither constant nor collinear."""


def group_fits(
    y: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    covariates: np.ndarray | None = None,
) -> GroupFits:
    """Fit ``y ~ 1 + (Z - mean_g(Z))`` by OLS with HC2 in every group.

    Parameters
    ----------
    y : np.ndarray
        Outcomes, ``(m,)``.
    groups : np.ndarray
        Each row's group, integers in ``[0, n_groups)``.
    n_groups : int
        Number of groups (groups without rows get NaN statistics).
    covariates : np.ndarray, optional
        ``(m,)`` or ``(m, k)`` pre-period covariates.

    Returns
    -------
    GroupFits
        In each identified group, ``cov`` equals the HC2 covariance of
        ``statsmodels.api.OLS(y_g, [1, Z_g - Z_g.mean(0)]).fit(cov_type="HC2")``.
    """
    y = np.asarray(y, dtype=float)
    g = np.asarray(groups, dtype=np.intp)
    counts = np.bincount(g, minlength=n_groups)
    n = counts.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(g, y, n_groups) / n
        yc = y - mean[g]
        var_mean = np.bincount(g, yc * yc, n_groups) / (n - 1) / n
    var_mean[counts < 2] = np.nan
    if covariates is None:
        return _means_only(counts, mean, var_mean)
    z = np.asarray(covariates, dtype=float).reshape(len(y), -1)
    k = z.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        center = np.column_stack([np.bincount(g, z[:, a], n_groups) / n for a in range(k)])
    w = z - center[g]
    szz = np.empty((n_groups, k, k))
    for a in range(k):
        for b in range(a, k):
            szz[:, a, b] = szz[:, b, a] = np.bincount(g, w[:, a] * w[:, b], n_groups)
    szy = np.column_stack([np.bincount(g, w[:, a] * yc, n_groups) for a in range(k)])
    identified = (counts > k + 2) & _full_rank(szz, center, n)
    inverse = np.zeros_like(szz)
    if identified.any():
        inverse[identified] = np.linalg.inv(szz[identified])
    slopes = np.einsum("gab,gb->ga", inverse, szy)
    resid = yc - np.einsum("ia,ia->i", w, slopes[g])
    leverage = 1.0 / n[g] + np.einsum("ia,iab,ib->i", w, inverse[g], w)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = resid * resid / (1.0 - leverage)
    x = np.column_stack([np.ones(len(y)), w])
    meat = np.empty((n_groups, k + 1, k + 1))
    for a in range(k + 1):
        for b in range(a, k + 1):
            meat[:, a, b] = meat[:, b, a] = np.bincount(g, u * x[:, a] * x[:, b], n_groups)
    bread = np.zeros((int(identified.sum()), k + 1, k + 1))
    bread[:, 0, 0] = 1.0 / n[identified]
    bread[:, 1:, 1:] = inverse[identified]
    cov = np.full((n_groups, k + 1, k + 1), np.nan)
    cov[identified] = bread @ meat[identified] @ bread
    slopes[~identified] = 0.0
    return GroupFits(counts, mean, var_mean, center, slopes, cov, identified)


def _full_rank(szz: np.ndarray, center: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Whether each group's centred covariates vary and are not collinear."""
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.diagonal(szz, axis1=1, axis2=2) / n[:, None]
        magnitude = spread + center**2
        varies = (spread > (_CONSTANT**2) * magnitude).all(axis=1)
    ok = varies.copy()
    if szz.shape[1] > 1 and varies.any():
        d = np.sqrt(np.diagonal(szz[varies], axis1=1, axis2=2))
        corr = szz[varies] / (d[:, :, None] * d[:, None, :])
        ok[varies] = np.linalg.eigvalsh(corr)[:, 0] > _COLLINEAR
    return ok


def group_ratios(
    numerator: np.ndarray, denominator: np.ndarray, groups: np.ndarray, n_groups: int
) -> GroupFits:
    """Ratio of means ``sum(numerator) / sum(denominator)`` in every group.

    The variance is the delta method's (Deng, Knoblich and Lu 2018, section 3):
    ``(s_nn - 2 R s_nd + R**2 s_dd) / (n * mean(d)**2)`` with sample (co)variances
    (``ddof=1``) of the per-customer numerator and denominator.

    Parameters
    ----------
    numerator, denominator : np.ndarray
        Per-customer numerator (revenue, say) and denominator (orders).
    groups : np.ndarray
        Each row's group, integers in ``[0, n_groups)``.
    n_groups : int
        Number of groups.

    Returns
    -------
    GroupFits
        ``mean`` holds the ratios (NaN where a group's denominator sums to zero) and
        ``var_mean`` their delta-method variances; there are no covariates.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    g = np.asarray(groups, dtype=np.intp)
    counts = np.bincount(g, minlength=n_groups)
    n = counts.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_num = np.bincount(g, num, n_groups) / n
        mean_den = np.bincount(g, den, n_groups) / n
        ratio = mean_num / mean_den
        dn, dd = num - mean_num[g], den - mean_den[g]
        s_nn = np.bincount(g, dn * dn, n_groups) / (n - 1)
        s_dd = np.bincount(g, dd * dd, n_groups) / (n - 1)
        s_nd = np.bincount(g, dn * dd, n_groups) / (n - 1)
        var = (s_nn - 2 * ratio * s_nd + ratio**2 * s_dd) / (n * mean_den**2)
    ratio[~np.isfinite(ratio)] = np.nan
    var[(counts < 2) | ~np.isfinite(ratio)] = np.nan
    return _means_only(counts, ratio, np.maximum(var, 0.0))


def _means_only(counts: np.ndarray, mean: np.ndarray, var_mean: np.ndarray) -> GroupFits:
    """Group statistics without covariates: nothing to adjust for."""
    n_groups = len(counts)
    empty = np.zeros((n_groups, 0))
    return GroupFits(
        counts,
        mean,
        var_mean,
        empty,
        empty,
        np.full((n_groups, 1, 1), np.nan),
        np.zeros(n_groups, dtype=bool),
    )


@dataclass(frozen=True)
class Contrast:
    """Treated-group minus control-group effects, one entry per pair of groups."""

    estimate: np.ndarray
    variance: np.ndarray
    control_mean: np.ndarray
    """The control's mean, or with the adjustment its intercept at the pair's covariate
    mean (Lin's estimate of the control's mean)."""
    control_variance: np.ndarray
    unadjusted_estimate: np.ndarray
    unadjusted_variance: np.ndarray
    adjusted: np.ndarray

    @property
    def std_error(self) -> np.ndarray:
        """Standard error of the estimate."""
        return np.sqrt(self.variance)

    def lift(self) -> tuple[np.ndarray, np.ndarray]:
        """Relative lift ``estimate / control_mean`` and its delta-method standard error.

        The joint covariance of the estimate and the control mean is
        ``Cov(A_t - A_c, A_c) = -Var(A_c)``, since the two groups share no rows.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = self.estimate / self.control_mean
            var = (
                self.variance + 2 * lift * self.control_variance + lift**2 * self.control_variance
            ) / self.control_mean**2
        lift[~np.isfinite(lift)] = np.nan
        return lift, np.sqrt(np.maximum(var, 0.0))


def contrast(fits: GroupFits, treated: np.ndarray, control: np.ndarray) -> Contrast:
    """Effects of groups ``treated[i]`` against groups ``control[i]``.

    A pair is adjusted for the covariates when both of its groups are identified: each
    group's intercept is then moved to the covariates' mean over the pair, which is
    Lin's (2013) estimator, and the HC2 variances of the two intercepts add. Otherwise
    the pair's effect is the difference in means with variance ``s_t**2 / n_t +
    s_c**2 / n_c``.

    Parameters
    ----------
    fits : GroupFits
        From :func:`group_fits` or :func:`group_ratios`.
    treated, control : np.ndarray
        Group indices of the pairs.
    """
    t = np.asarray(treated, dtype=np.intp)
    c = np.asarray(control, dtype=np.intp)
    raw = fits.mean[t] - fits.mean[c]
    raw_var = fits.var_mean[t] + fits.var_mean[c]
    adjusted = fits.identified[t] & fits.identified[c]
    estimate, variance = raw.copy(), raw_var.copy()
    control_mean, control_var = fits.mean[c].copy(), fits.var_mean[c].copy()
    if adjusted.any():
        ta, ca = t[adjusted], c[adjusted]
        nt, nc = fits.n[ta][:, None], fits.n[ca][:, None]
        center = (nt * fits.center[ta] + nc * fits.center[ca]) / (nt + nc)
        at, var_t = _intercept_at(fits, ta, center)
        ac, var_c = _intercept_at(fits, ca, center)
        estimate[adjusted] = at - ac
        variance[adjusted] = var_t + var_c
        control_mean[adjusted] = ac
        control_var[adjusted] = var_c
    return Contrast(estimate, variance, control_mean, control_var, raw, raw_var, adjusted)


def _intercept_at(
    fits: GroupFits, groups: np.ndarray, point: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each group's fitted mean at ``point`` and its HC2 variance."""
    offset = point - fits.center[groups]
    value = fits.mean[groups] + np.einsum("ga,ga->g", fits.slopes[groups], offset)
    v = np.column_stack([np.ones(len(groups)), offset])
    variance = np.einsum("ga,gab,gb->g", v, fits.cov[groups], v)
    return value, variance
