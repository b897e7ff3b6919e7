"""Covariate balance: does each treatment arm look like the control before the campaign?

For every treatment arm and every pre-treatment feature, the diagnostic compares the arm's
mean with the control's through the standardized mean difference (SMD)::

    smd = (mean_treatment - mean_control) / sqrt((var_treatment + var_control) / 2)

with sample variances (``ddof=1``), the definition of Rosenbaum and Rubin (1985) as
reviewed by Austin (2009). Unlike a t-test it does not grow with the sample size, so the
same rule of thumb, |smd| above 0.1, reads the same on a thousand customers as on ten
million.

* Numeric and boolean columns are used as they are (booleans as 0/1).
* Categorical and text columns (``object``, ``string`` and ``category`` dtypes) become one
  0/1 indicator per level, named ``"{feature}={level}"``, whose SMD compares the level's
  share in the two arms; a missing value is a level of its own, ``"(missing)"``. Levels
  follow the categories' order for ``category`` columns and sorted order for text, and
  only levels seen in the compared arms get a row.
* A numeric column with missing values is compared on its non-missing values, and an extra
  row ``"{feature} missing"`` compares the share of missing values (its means are the
  missing shares), since a difference in missingness is itself an imbalance.
* When both variances are zero the SMD is 0 if the means are equal and infinite (so
  flagged) otherwise. When a variance is undefined (fewer than two values in an arm) the
  SMD is NaN and is not flagged; an infinite value in a numeric column makes it NaN too.

References
----------
Rosenbaum, P. R. and Rubin, D. B. (1985). Constructing a control group using multivariate
matched sampling methods that incorporate the propensity score. *The American
Statistician* 39(1), 33-38.

Austin, P. C. (2009). Balance diagnostics for comparing the distribution of baseline
covariates between treatment groups in propensity-score matched samples. *Statistics in
Medicine* 28(25), 3083-3107.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.errors import DataError

__all__ = ["DEFAULT_SMD_THRESHOLD", "MISSING_LEVEL", "BalanceResult", "covariate_balance"]

#: The usual rule of thumb: an absolute SMD above this is an imbalance worth a look.
DEFAULT_SMD_THRESHOLD = 0.1
#: The level that missing values of a categorical feature are counted under.
MISSING_LEVEL = "(missing)"

_TABLE_COLUMNS = ["arm", "feature", "mean_treatment", "mean_control", "smd", "flagged"]


@dataclass(frozen=True, eq=False)
class BalanceResult:
    """Covariate balance of each treatment arm against the control.

    Attributes
    ----------
    table : pd.DataFrame
        One row per treatment arm and balance feature, with columns ``arm``, ``feature``,
        ``mean_treatment``, ``mean_control``, ``smd`` and ``flagged``; arms in the order
        given, features in column order (a categorical column's levels, then its
        ``"(missing)"`` level; a numeric column, then its ``"{feature} missing"`` row).
    control : str
        The control arm every treatment arm is compared with.
    treatments : tuple of str
        The treatment arms, in the order of the table.
    threshold : float
        An absolute SMD above this is flagged.
    counts : dict of str to int
        Rows per arm (control first).
    columns : tuple of str
        The input feature columns the table was built from.
    """

    table: pd.DataFrame
    control: str
    treatments: tuple[str, ...]
    threshold: float
    counts: dict[str, int]
    columns: tuple[str, ...]

    @property
    def flagged(self) -> pd.DataFrame:
        """The rows of :attr:`table` whose absolute SMD is above the threshold (a copy)."""
        return self.table.loc[self.table["flagged"].to_numpy(dtype=bool)].copy()

    @property
    def max_abs_smd(self) -> float:
        """The largest absolute SMD in the table (NaN SMDs ignored; NaN if there are none)."""
        smd = np.abs(self.table["smd"].to_numpy(dtype=float))
        smd = smd[~np.isnan(smd)]
        return float(smd.max()) if smd.size else float("nan")

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`table`.

        Returns
        -------
        pd.DataFrame
            Columns ``arm, feature, mean_treatment, mean_control, smd, flagged``.
        """
        return self.table.copy()

    def summary(self) -> str:
        """A short text report: arms, features, the largest |SMD| and the flagged rows.

        Returns
        -------
        str
            Several lines, the flagged rows listed by decreasing |SMD|.
        """
        rule = "=" * 72
        n_rows = len(self.table) // len(self.treatments) if self.treatments else 0
        arms = ", ".join(f"{arm} {n:,}" for arm, n in self.counts.items())
        lines = [
            rule,
            f"Covariate balance against control {self.control!r}".center(72),
            rule,
            f"Treatment arms:   {len(self.treatments)} ({', '.join(self.treatments)})",
            f"Rows per arm:     {arms}",
            f"Features:         {len(self.columns)} columns, {n_rows} balance rows per arm",
            f"Threshold:        |SMD| > {self.threshold:g}",
        ]
        max_abs = self.max_abs_smd
        if np.isnan(max_abs):
            lines.append("Max |SMD|:        n/a")
        else:
            abs_smd = self.table["smd"].abs()
            top = self.table.loc[abs_smd.idxmax()]
            lines.append(f"Max |SMD|:        {max_abs:.4f} ({top['arm']}: {top['feature']})")
        flagged = self.flagged
        lines.append(f"Flagged:          {len(flagged)} of {len(self.table)}")
        if len(flagged):
            flagged = flagged.iloc[np.argsort(-flagged["smd"].abs().to_numpy(), kind="stable")]
            arm_w = max(3, *(len(str(a)) for a in flagged["arm"]))
            feat_w = max(7, *(len(str(f)) for f in flagged["feature"]))
            lines.append(rule.replace("=", "-"))
            lines.append(
                f"{'arm':<{arm_w}}  {'feature':<{feat_w}}  {'treatment':>11}  "
                f"{'control':>11}  {'smd':>8}"
            )
            for row in flagged.itertuples(index=False):
                lines.append(
                    f"{row.arm!s:<{arm_w}}  {row.feature!s:<{feat_w}}  "
                    f"{row.mean_treatment:>11.4g}  {row.mean_control:>11.4g}  {row.smd:>8.4f}"
                )
        lines.append(rule)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def covariate_balance(
    features: pd.DataFrame,
    arms: pd.Series,
    control: str,
    treatments: Sequence[str],
    threshold: float = DEFAULT_SMD_THRESHOLD,
) -> BalanceResult:
    """Standardized mean differences of every feature between each treatment arm and control.

    The SMD of a feature is ``(mean_t - mean_c) / sqrt((var_t + var_c) / 2)`` with sample
    variances (``ddof=1``): Rosenbaum and Rubin (1985), Austin (2009). Rows whose arm is
    neither the control nor one of the treatments (a holdout, a missing label) are ignored.

    Parameters
    ----------
    features : pd.DataFrame
        Pre-treatment features, one row per customer. Numeric and boolean columns are
        compared as they are; ``object``, ``string`` and ``category`` columns are expanded
        into one indicator per level (``"{feature}={level}"``, missing values counted as the
        level ``"(missing)"``). A numeric column with missing values is compared on its
        non-missing values, plus a ``"{feature} missing"`` row comparing the missing shares.
    arms : pd.Series
        The arm of each row, with the same index as ``features``.
    control : str
        The control arm.
    treatments : sequence of str
        The treatment arms, each compared with the control.
    threshold : float
        Flag a row when its absolute SMD is above this (default 0.1).

    Returns
    -------
    BalanceResult
        The tidy table (``arm, feature, mean_treatment, mean_control, smd, flagged``) with
        the summary helpers.

    Raises
    ------
    TypeError
        If ``treatments`` is a single string rather than a list of arm names.
    ValueError
        If there are no treatments, an arm is listed twice (or as both control and
        treatment), or the threshold is negative or NaN.
    DataError
        If ``features`` and ``arms`` are not indexed alike, a column name repeats, a column
        has a type that cannot be compared (dates, complex numbers), or an arm has no rows.

    Notes
    -----
    Computed with weighted ``bincount`` passes, one numeric column at a time (the means,
    then the squared deviations from them) and one per categorical column, so ten million
    rows take seconds in little memory beyond the columns. When both variances are zero the
    SMD is 0 if the means are equal and ``±inf`` (flagged) otherwise; when a variance is
    undefined (fewer than two values) the SMD is NaN and is not flagged.

    Examples
    --------
    >>> features = pd.DataFrame({"age": [30, 40, 50, 35, 45, 55]})
    >>> arms = pd.Series(["control"] * 3 + ["offer"] * 3)
    >>> result = covariate_balance(features, arms, "control", ["offer"])
    >>> round(float(result.table.loc[0, "smd"]), 4)
    0.5
    """
    if isinstance(treatments, str):
        raise TypeError(f"treatments must be a list of arm names, found the string {treatments!r}")
    treatments = tuple(treatments)
    labels = (control, *treatments)
    if not treatments:
        raise ValueError("covariate balance needs at least one treatment arm")
    if len(set(labels)) != len(labels):
        raise ValueError(f"arms must be distinct, found control {control!r} and {treatments}")
    if not threshold >= 0:  # also catches NaN
        raise ValueError(f"the SMD threshold must be a non-negative number, found {threshold}")
    if not features.index.equals(arms.index):
        raise DataError(
            "features and arms must have the same index "
            f"({len(features):,} feature rows, {len(arms):,} arm labels)"
        )
    names = [str(c) for c in features.columns]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"feature column names must be unique, found {repeated} repeated")

    codes, sizes, keep = _arm_codes(arms, labels)
    if (sizes == 0).any():
        empty = [label for label, n in zip(labels, sizes, strict=True) if n == 0]
        raise DataError(f"arm(s) {empty} have no rows in the balance data")

    numeric: dict[int, pd.Series] = {}
    categorical: dict[int, pd.Series] = {}
    for j, name in enumerate(names):
        column = features.iloc[:, j]  # every row: the blocks skip the ones not compared
        if _is_categorical(column.dtype):
            categorical[j] = column
        elif pd.api.types.is_bool_dtype(column.dtype) or (
            pd.api.types.is_numeric_dtype(column.dtype)
            and not pd.api.types.is_complex_dtype(column.dtype)
        ):
            numeric[j] = column
        else:
            raise DataError(
                f"feature {name!r} has type {column.dtype}, which covariate balance cannot "
                "compare; convert it to a number or a category first"
            )

    blocks: dict[int, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    if numeric:
        blocks.update(_numeric_blocks(numeric, names, codes, sizes, keep))
    for j, column in categorical.items():
        blocks[j] = _categorical_block(column, names[j], codes, sizes, keep)

    rows = [row for j in range(len(names)) for row in blocks[j]]
    n_arms, n_rows = len(treatments), len(rows)
    means = np.array([m for _, m, _ in rows], dtype=float).reshape(n_rows, len(labels)).T
    variances = np.array([v for _, _, v in rows], dtype=float).reshape(n_rows, len(labels)).T
    smd = _smd(means[1:], means[:1], variances[1:], variances[:1])
    table = pd.DataFrame(
        {
            "arm": np.repeat(np.array(treatments, dtype=object), n_rows),
            "feature": np.tile(np.array([f for f, _, _ in rows], dtype=object), n_arms),
            "mean_treatment": means[1:].ravel(),
            "mean_control": np.tile(means[0], n_arms),
            "smd": smd.ravel(),
            "flagged": (np.abs(smd) > threshold).ravel(),
        },
        columns=_TABLE_COLUMNS,
    )
    return BalanceResult(
        table=table,
        control=control,
        treatments=treatments,
        threshold=float(threshold),
        counts={label: int(n) for label, n in zip(labels, sizes, strict=True)},
        columns=tuple(names),
    )


def _arm_codes(
    arms: pd.Series, labels: tuple[Hashable, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Position of each compared row's arm in ``labels``, rows per label, rows to keep.

    The third item is the boolean mask of rows whose arm is one of ``labels``, or None
    when every row is.
    """
    raw, uniques = pd.factorize(arms, use_na_sentinel=True)
    position = {label: i for i, label in enumerate(labels)}
    # one extra slot at the end, so that the NA sentinel -1 maps to -1 too
    lookup = np.array([position.get(u, -1) for u in uniques] + [-1], dtype=np.intp)
    codes = lookup[raw]
    keep: np.ndarray | None = codes >= 0
    if keep is not None and keep.all():
        keep = None
    else:
        codes = codes[keep]
    sizes = np.bincount(codes, minlength=len(labels))
    return codes, sizes, keep


def _is_categorical(dtype: object) -> bool:
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _numeric_blocks(
    columns: dict[int, pd.Series],
    names: list[str],
    codes: np.ndarray,
    sizes: np.ndarray,
    keep: np.ndarray | None,
) -> dict[int, list[tuple[str, np.ndarray, np.ndarray]]]:
    """Per-arm means and variances of the numeric columns, plus missing-share rows.

    One column at a time, with weighted ``bincount`` passes: the means, then the sums of
    squared deviations from each arm's own mean (the two-pass formula, which does not
    cancel catastrophically the way sums of squares do on large values).
    """
    n_groups = len(sizes)
    blocks: dict[int, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for j, col in columns.items():
        x = col.to_numpy(dtype=np.float64, na_value=np.nan)
        if keep is not None:
            x = x[keep]
        missing = np.isnan(x)
        values, groups = (x[~missing], codes[~missing]) if missing.any() else (x, codes)
        n = np.bincount(groups, minlength=n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.bincount(groups, weights=values, minlength=n_groups) / n
            deviation = values - mean[groups]
            squares = np.bincount(groups, weights=deviation * deviation, minlength=n_groups)
            var = np.where(n > 1, squares / (n - 1), np.nan)
        # an arm whose values are all equal has variance 0 and its value as mean exactly;
        # the summed mean may be an ulp off, which would turn an SMD of 0 into an infinite
        # one. Only arms whose variance is at rounding level can be constant.
        with np.errstate(invalid="ignore"):
            suspect = (n > 1) & ~(var > 1e-20 * np.maximum(mean * mean, 1e-300))
        if suspect.any():
            sample = np.full(n_groups, np.nan)
            sample[groups] = values
            differs = np.bincount(groups, weights=values != sample[groups], minlength=n_groups)
            constant = suspect & (differs == 0) & np.isfinite(sample)
            mean[constant], var[constant] = sample[constant], 0.0
        block = [(names[j], mean, var)]
        if missing.any():
            share = np.bincount(codes[missing], minlength=n_groups) / sizes
            block.append((f"{names[j]} missing", share, _indicator_variance(share, sizes)))
        blocks[j] = block
    return blocks


def _categorical_block(
    column: pd.Series, name: str, codes: np.ndarray, sizes: np.ndarray, keep: np.ndarray | None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per-arm shares (and their indicator variances) of each level of one column."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        level_codes = column.cat.codes.to_numpy().astype(np.intp)
        levels = list(column.cat.categories)
    else:
        raw, uniques = pd.factorize(column, use_na_sentinel=True)
        try:
            order = np.argsort(np.asarray(uniques), kind="stable")
        except TypeError:  # mixed types in an object column: order them as text
            order = np.argsort(np.array([str(u) for u in uniques], dtype=object), kind="stable")
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        level_codes = np.append(rank, -1)[raw]
        levels = [uniques[i] for i in order]
    n_levels = len(levels) + 1  # the last slot counts missing values
    if keep is not None:
        level_codes = level_codes[keep]
    level_codes = np.where(level_codes < 0, len(levels), level_codes)
    counts = np.bincount(codes * n_levels + level_codes, minlength=len(sizes) * n_levels)
    shares = counts.reshape(len(sizes), n_levels) / sizes[:, None]
    present = counts.reshape(len(sizes), n_levels).sum(axis=0) > 0
    level_names = [f"{name}={level}" for level in levels] + [f"{name}={MISSING_LEVEL}"]
    return [
        (level_names[i], shares[:, i], _indicator_variance(shares[:, i], sizes))
        for i in np.flatnonzero(present)
    ]


def _indicator_variance(share: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Sample variance (ddof=1) of a 0/1 variable with mean ``share`` over ``n`` rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = share * (1.0 - share) * n / (n - 1)
    return np.where(n > 1, variance, np.nan)


def _smd(
    mean_t: np.ndarray, mean_c: np.ndarray, var_t: np.ndarray, var_c: np.ndarray
) -> np.ndarray:
    """Standardized mean difference, 0 or ±inf when both variances are zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = mean_t - mean_c
        smd = diff / np.sqrt((var_t + var_c) / 2.0)
    both_zero = (var_t == 0) & (var_c == 0)
    degenerate = np.where(diff == 0, 0.0, np.copysign(np.inf, diff))
    return np.where(both_zero, degenerate, smd)
