"""The targeting policy: whom to treat, with which arm, and what that is worth.

The policy treats a customer with the arm of highest expected net value when that value
is above zero, and leaves the customer untreated otherwise (optionally within a budget:
at most so many customers, or so much expected spend). It is the rule ``uplift score``
applies to a new base.

Its worth is estimated honestly on the experiment's own customers: every customer's
predicted net values come from models that never saw that customer (cross-fitting), and
the policy's incremental profit against treating no one is the mean of the doubly robust
(augmented inverse-propensity) scores of the arms it picks:

.. math::

    \\Gamma_i(a) = \\hat m_a(x_i) + \\frac{1\\{A_i = a\\}}{e_a} (Y_i - \\hat m_a(x_i)),
    \\qquad \\hat V(\\pi) = \\frac{1}{n} \\sum_i \\Gamma_i(\\pi(x_i)) - \\Gamma_i(0)

where :math:`Y_i` is the customer's realised net value (lifetime worth of the value
metric minus the contact and offer costs of their arm), :math:`e_a` the known share of
arm :math:`a` (the randomisation), and :math:`\\hat m_a = \\hat m_0 + \\widehat{NV}_a` the
out-of-fold outcome model of the control plus the predicted net uplift of the arm. With the
assignment probabilities known the estimate is unbiased whatever the quality of
:math:`\\hat m` (Robins, Rotnitzky & Zhao 1994); a good :math:`\\hat m` narrows the
interval, which is the normal interval of the mean of the per-customer scores. The same
estimator values treating everyone with each arm, treating no one (zero by definition)
and any other rule given as an arm per customer, and the differences between two rules
have paired intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "NO_ARM",
    "RISK_SCREEN",
    "VALUE_MARGIN",
    "PolicyComparison",
    "PolicyEvaluation",
    "PolicyValue",
    "ProfitCurve",
    "choose_arms",
    "compare_policies",
    "doubly_robust_scores",
    "evaluate_policies",
    "net_value_risk",
    "policy_value",
    "profit_curve",
    "within_budget",
]

#: The arm of a customer the policy leaves untreated.
NO_ARM = "none"


def choose_arms(
    net_value: pd.DataFrame,
    *,
    max_treated: float | None = None,
    max_spend: float | None = None,
    spend: pd.DataFrame | None = None,
) -> pd.Series:
    """Each customer's arm: the one of highest expected net value, when that is positive.

    Parameters
    ----------
    net_value : pd.DataFrame
        Expected net value of each treatment arm (columns) for each customer (rows).
    max_treated : int, optional
        Treat at most this many customers: those of highest net value.
    max_spend : float, optional
        Spend at most this much: customers are taken in order of net value while the
        sum of their expected spend stays within it.
    spend : pd.DataFrame, optional
        Expected spend (contact and offer cost) of each arm per customer; needed with
        ``max_spend``.

    Returns
    -------
    pd.Series
        The arm per customer, or :data:`NO_ARM`, indexed like ``net_value``.
    """
    values = net_value.to_numpy(dtype=float)
    arms = np.asarray(net_value.columns, dtype=object)
    choice = np.full(len(values), NO_ARM, dtype=object)
    if values.size == 0:
        return pd.Series(choice, index=net_value.index, name="arm")
    best = np.argmax(values, axis=1)
    gain = values[np.arange(len(values)), best]
    cost = None
    if max_spend is not None:
        if spend is None:
            raise ValueError("max_spend needs the expected spend of each arm")
        cost = spend.to_numpy(dtype=float)[np.arange(len(values)), best]
    treat = within_budget(gain, cost, max_treated=max_treated, max_spend=max_spend)
    choice[treat] = arms[best[treat]]
    return pd.Series(choice, index=net_value.index, name="arm")


def within_budget(
    gain: np.ndarray,
    spend: np.ndarray | None = None,
    *,
    max_treated: float | None = None,
    max_spend: float | None = None,
) -> np.ndarray:
    """Whom to treat: positive ``gain``, in order of gain, within the budgets.

    Parameters
    ----------
    gain : np.ndarray
        Each customer's expected net value of their best arm.
    spend : np.ndarray, optional
        Each customer's expected spend in that arm; needed with ``max_spend``.
    max_treated : float, optional
        Treat at most this many customers (fractions round down).
    max_spend : float, optional
        Customers are taken in order of gain while their cumulated spend stays within it.

    Returns
    -------
    np.ndarray
        A boolean mask of the customers to treat. Ties in gain keep the customers' order.
    """
    gain = np.asarray(gain, dtype=float)
    treat = gain > 0
    if max_treated is None and max_spend is None:
        return treat
    order = np.argsort(-np.where(treat, gain, -np.inf), kind="stable")
    ranked = order[treat[order]]
    if max_treated is not None:
        ranked = ranked[: int(np.floor(max_treated))]
    if max_spend is not None:
        if spend is None:
            raise ValueError("max_spend needs the expected spend of each customer")
        ranked = ranked[np.cumsum(np.asarray(spend, dtype=float)[ranked]) <= max_spend]
    keep = np.zeros(len(gain), dtype=bool)
    keep[ranked] = True
    return keep


def doubly_robust_scores(
    net_outcome: np.ndarray,
    arms: np.ndarray,
    control: str,
    treatments: Sequence[str],
    propensity: Mapping[str, float],
    baseline: np.ndarray,
    net_uplift: pd.DataFrame,
) -> pd.DataFrame:
    """Per-customer doubly robust score of each arm's incremental net value.

    Parameters
    ----------
    net_outcome : np.ndarray
        Each customer's realised net value in their own arm.
    arms : np.ndarray
        Each customer's arm.
    control : str
        The control arm.
    treatments : sequence of str
        The treatment arms.
    propensity : mapping
        Probability of every arm, the control included (they sum to 1).
    baseline : np.ndarray
        Out-of-fold prediction of each customer's net value in the control.
    net_uplift : pd.DataFrame
        Out-of-fold predicted net value of each treatment arm over the control.

    Returns
    -------
    pd.DataFrame
        :math:`\\Gamma_i(a) - \\Gamma_i(0)` per treatment arm (columns); the mean of a
        column estimates the arm's incremental net value per customer.
    """
    y = np.asarray(net_outcome, dtype=float)
    arm = np.asarray(arms).astype(str)
    m0 = np.asarray(baseline, dtype=float)
    in_control = arm == control
    gamma0 = m0 + in_control / propensity[control] * (y - m0)
    out = {}
    for a in treatments:
        ma = m0 + net_uplift[a].to_numpy(dtype=float)
        out[a] = ma + (arm == a) / propensity[a] * (y - ma) - gamma0
    return pd.DataFrame(out, index=net_uplift.index)


@dataclass(frozen=True)
class PolicyValue:
    """A targeting rule's incremental profit against treating no one, with its interval."""

    name: str
    per_customer: float
    """Incremental net value per customer of the experiment (before the fixed cost)."""
    std_error: float
    ci_low: float
    ci_high: float
    treated_share: float
    arms: Mapping[str, int]
    """Customers per arm the rule picks (:data:`NO_ARM` included)."""
    n: int

    def to_dict(self) -> dict[str, Any]:
        """The value as plain JSON-ready values (``total`` without the fixed cost)."""
        return {
            "rule": self.name,
            "per_customer": self.per_customer,
            "std_error": self.std_error,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "treated_share": self.treated_share,
            "total": self.per_customer * self.n,
            "arms": dict(self.arms),
        }

    def total(self, fixed_cost: float = 0.0) -> float:
        """Incremental profit over the ``n`` customers, less the fixed cost if anyone is
        treated."""
        charge = fixed_cost if self.treated_share > 0 else 0.0
        return self.per_customer * self.n - charge


def policy_value(
    choice: pd.Series, scores: pd.DataFrame, *, name: str = "policy", alpha: float = 0.05
) -> PolicyValue:
    """The doubly robust estimate of a rule that picks ``choice`` per customer.

    ``scores`` are :func:`doubly_robust_scores`; a customer left untreated scores zero.
    """
    values = _picked(choice, scores)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    q = float(stats.norm.ppf(1 - alpha / 2))
    counts = choice.value_counts()
    arms = {str(a): int(counts.get(a, 0)) for a in [*scores.columns, NO_ARM]}
    treated = 1.0 - arms[NO_ARM] / n if n else 0.0
    return PolicyValue(name, mean, se, mean - q * se, mean + q * se, treated, arms, n)


def _picked(choice: pd.Series, scores: pd.DataFrame) -> np.ndarray:
    column = {str(a): i for i, a in enumerate(scores.columns)}
    position = choice.astype(str).map(column).to_numpy(dtype=float)
    picked = ~np.isnan(position)
    values = np.zeros(len(choice))
    rows = np.flatnonzero(picked)
    values[rows] = scores.to_numpy(dtype=float)[rows, position[rows].astype(int)]
    return values


@dataclass(frozen=True)
class ProfitCurve:
    """Incremental profit per customer when the top share of customers is treated.

    Customers are ranked by the expected net value of their best arm, and the top
    ``share`` of them are treated with that arm, whether or not its value is positive;
    each point is the doubly robust estimate of that rule against treating no one, with
    a pointwise normal interval.
    """

    share: np.ndarray
    per_customer: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray

    def to_records(self) -> list[dict[str, float]]:
        """One ``{"share", "per_customer", "ci_low", "ci_high"}`` dict per point."""
        columns = (self.share, self.per_customer, self.ci_low, self.ci_high)
        return [
            {"share": float(s), "per_customer": float(v), "ci_low": float(lo), "ci_high": float(hi)}
            for s, v, lo, hi in zip(*columns, strict=True)
        ]


def profit_curve(
    net_value: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    points: int = 21,
    treated: int | None = None,
    fixed_cost: float = 0.0,
    alpha: float = 0.05,
) -> ProfitCurve:
    """The doubly robust profit of treating the top share of customers, share by share.

    Parameters
    ----------
    net_value : pd.DataFrame
        Out-of-fold expected net value of each treatment arm (columns) per customer; the
        ranking and each customer's arm.
    scores : pd.DataFrame
        :func:`doubly_robust_scores` of the same customers and arms.
    points : int
        Evenly spaced shares from 0 to 1; the share the policy treats is added, so the
        policy lies on the curve.
    treated : int, optional
        Customers the policy treats (default: those of positive best net value). A
        budget keeps a prefix of the same ranking, so a budgeted policy is a point too.
    fixed_cost : float
        Charged once, shared over the customers, at every share above zero.
    alpha : float
        One minus the confidence level of the pointwise intervals.
    """
    values = net_value.to_numpy(dtype=float)
    n = len(values)
    if n == 0:
        empty = np.array([], dtype=float)
        return ProfitCurve(empty, empty, empty, empty)
    best = np.argmax(values, axis=1)
    gain = values[np.arange(n), best]
    picked = scores[list(net_value.columns)].to_numpy(dtype=float)[np.arange(n), best]
    ranked = picked[np.argsort(-gain, kind="stable")]
    total = np.concatenate([[0.0], np.cumsum(ranked)])
    squares = np.concatenate([[0.0], np.cumsum(ranked**2)])
    counts = np.unique(
        np.concatenate(
            [
                np.round(np.linspace(0, n, points)),
                [np.count_nonzero(gain > 0) if treated is None else treated],
            ]
        )
    ).astype(int)
    mean = total[counts] / n
    # the rule's per-customer values are the top-k picked scores and zeros elsewhere
    variance = np.maximum(squares[counts] / n - mean**2, 0.0) * n / max(n - 1, 1)
    half = float(stats.norm.ppf(1 - alpha / 2)) * np.sqrt(variance / n)
    mean = mean - np.where(counts > 0, fixed_cost / n, 0.0)
    return ProfitCurve(counts / n, mean, mean - half, mean + half)


@dataclass(frozen=True)
class PolicyEvaluation:
    """The targeting rule beside treating everyone with each arm and treating no one."""

    values: tuple[PolicyValue, ...]
    """The policy first, then every treat-all rule, then treating no one, then any other."""
    gain_over_treat_all: float
    """The policy's value minus the best treat-all rule's, per customer."""
    gain_ci_low: float
    gain_ci_high: float
    best_treat_all: str
    alpha: float
    choice: pd.Series | None = None
    """The policy's arm per customer (:data:`NO_ARM`: untreated)."""
    curve: ProfitCurve | None = None
    """Profit against the share treated, customers ranked as the policy ranks them."""

    @property
    def policy(self) -> PolicyValue:
        """The targeting policy's value."""
        return self.values[0]

    def to_frame(self) -> pd.DataFrame:
        """One row per rule, with a column ``n_<arm>`` of customers per arm."""
        rows = []
        for v in self.values:
            row = v.to_dict()
            arms = row.pop("arms")
            rows.append({**row, **{f"n_{arm}": count for arm, count in arms.items()}})
        return pd.DataFrame(rows)


def evaluate_policies(
    choice: pd.Series,
    scores: pd.DataFrame,
    *,
    alpha: float = 0.05,
    others: Mapping[str, pd.Series] | None = None,
) -> PolicyEvaluation:
    """Value the policy ``choice`` beside treat-all with each arm, treat-none and ``others``.

    The gain over the best treat-all rule is the mean of the per-customer differences of
    the two rules' scores, so its interval is paired.
    """
    index = scores.index
    values = [policy_value(choice, scores, name="policy", alpha=alpha)]
    treat_all = {
        arm: pd.Series(arm, index=index, dtype=object, name="arm") for arm in scores.columns
    }
    for arm, rule in treat_all.items():
        values.append(policy_value(rule, scores, name=f"treat_all:{arm}", alpha=alpha))
    none = pd.Series(NO_ARM, index=index, dtype=object, name="arm")
    values.append(policy_value(none, scores, name="treat_none", alpha=alpha))
    for name, rule in (others or {}).items():
        values.append(policy_value(rule, scores, name=name, alpha=alpha))
    best = max(scores.columns, key=lambda a: float(scores[a].mean()))
    gap = _picked(choice, scores) - scores[best].to_numpy(dtype=float)
    n = len(gap)
    mean = float(gap.mean()) if n else float("nan")
    se = float(gap.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    q = float(stats.norm.ppf(1 - alpha / 2))
    return PolicyEvaluation(
        tuple(values), mean, mean - q * se, mean + q * se, str(best), alpha, choice
    )


@dataclass(frozen=True)
class PolicyComparison:
    """Several learners' targeting policies valued on the same doubly robust scores."""

    table: pd.DataFrame
    """One row per learner: its policy's value per customer with interval, the share it
    treats, and the paired difference from the chosen learner's policy with its interval;
    with the learners' net values, also ``risk`` (:func:`net_value_risk`), its paired
    difference from the lowest with its standard error, and ``screened_out``."""
    chosen: str
    """The learner of lowest risk, unless a policy the screen keeps is worth clearly more
    than its own; then the most valuable such policy (without net values, the most
    valuable policy)."""
    alpha: float
    screen: float | None = None
    """Standard errors of the risk difference beyond which a learner is screened out
    (``None``: no screen)."""
    margin: float | None = None
    """Standard errors of the paired value difference by which a policy must beat that of
    the learner of lowest risk to be chosen over it (``None``: no risk, no margin)."""

    def to_frame(self) -> pd.DataFrame:
        """The comparison table (a copy)."""
        return self.table.copy()


def net_value_risk(net_value: pd.DataFrame, scores: pd.DataFrame) -> np.ndarray:
    """Each customer's squared error of a learner's predicted net values against the scores.

    The sum over the treatment arms of :math:`(\\Gamma_i(a) - \\Gamma_i(0) -
    \\widehat{NV}_a(x_i))^2`. Because the scores are unbiased for the true net value
    :math:`NV_a(x_i)` given the features (known assignment probabilities, out-of-fold
    models), the mean of this loss is the mean squared error of the prediction against the
    true net value plus a term shared by every prediction scored on the same scores (the
    doubly robust "tau-risk" of Schuler et al. 2018; Saito & Yasui 2020). Differences
    between learners scored on the same scores therefore estimate differences of their
    true errors.

    Parameters
    ----------
    net_value : pd.DataFrame
        A learner's out-of-fold predicted net value of each treatment arm, columns as
        ``scores``'.
    scores : pd.DataFrame
        :func:`doubly_robust_scores` of the same customers.

    Returns
    -------
    np.ndarray
        The loss of each customer; its mean is the learner's risk.
    """
    if list(net_value.columns) != list(scores.columns) or len(net_value) != len(scores):
        raise ValueError(
            f"net values need the scores' arms {list(scores.columns)} and {len(scores)} rows; "
            f"found {list(net_value.columns)} and {len(net_value)} rows"
        )
    error = scores.to_numpy(dtype=float) - net_value.to_numpy(dtype=float)
    loss: np.ndarray = (error**2).sum(axis=1)
    return loss


#: Standard errors of the paired risk difference beyond which :func:`compare_policies`
#: sets a learner aside by default
RISK_SCREEN = 1.0
#: Standard errors of the paired value difference by which :func:`compare_policies` needs
#: a learner's policy to beat that of the learner of lowest risk before choosing it: a
#: one-sided test at the 5% level
VALUE_MARGIN = 1.645


def compare_policies(
    choices: Mapping[str, pd.Series],
    scores: pd.DataFrame,
    *,
    net_values: Mapping[str, pd.DataFrame] | None = None,
    screen: float = RISK_SCREEN,
    margin: float = VALUE_MARGIN,
    alpha: float = 0.05,
) -> PolicyComparison:
    """Value every learner's policy on common scores and pick one.

    Every policy is valued by :func:`policy_value` on the same ``scores``, so the
    difference between two policies is the mean of per-customer differences and has a
    paired interval. Without ``net_values`` the most valuable policy is chosen; picking the
    highest of several noisy estimates flatters the winner a little (winner's curse), and
    the difference intervals show how clear the choice is.

    With ``net_values``, learners are also compared on how well they predict the net value
    itself (:func:`net_value_risk`). A learner whose risk exceeds the lowest by more than
    ``screen`` standard errors of the paired difference is set aside. The learner of lowest
    risk is then chosen unless the policy of another learner the screen keeps is worth more
    than its policy by over ``margin`` standard errors of their paired difference; of the
    policies that are, the most valuable is chosen. A policy's value depends on the sign of
    the prediction alone, and the data often cannot tell two policies apart, so the most
    valuable is often so by luck; the squared error weighs every customer's error and
    tells learners apart with far more certainty (the idea of the one-standard-error rule
    of Breiman et al. 1984: prefer the steadier model unless the data clearly favour
    another). It weighs errors that flip no decision too, though, so the value comparison
    keeps the last word when it is clear: by default, when a one-sided test at the 5% level
    says the other policy earns more. On the simulated examples
    (``tests/benchmarks/bench_policy_oracle.py --selection``, 80 experiments) this raised
    trial lessons' mean share of the oracle's profit from 0.893 (a margin of 0: the most
    valuable policy the screen keeps) to 0.906 over 48 seeds, lowered lower check's from
    0.931 to 0.921 over 24, and left feature unlock's as it was.

    Parameters
    ----------
    choices : mapping
        Learner label -> arm per customer (:data:`NO_ARM` for untreated).
    scores : pd.DataFrame
        :func:`doubly_robust_scores` of every customer.
    net_values : mapping, optional
        Learner label -> its out-of-fold predicted net value per arm (the predictions
        its choice was made from); the same labels as ``choices``.
    screen : float, default 1.0
        Standard errors of the risk difference a learner may lie above the lowest risk
        and stay in the comparison.
    margin : float, default 1.645
        Standard errors of the paired value difference by which a policy must beat the
        policy of the learner of lowest risk to be chosen over it.
    alpha : float
        One minus the confidence level of the intervals.

    Raises
    ------
    ValueError
        If ``choices`` is empty, if ``net_values`` names other learners than
        ``choices``, or if ``screen`` or ``margin`` is negative or NaN.
    """
    if not choices:
        raise ValueError("compare_policies needs at least one policy")
    for key, width in (("screen", screen), ("margin", margin)):
        # NaN fails this too; an infinite width is allowed (no screen, or never leave the
        # learner of lowest risk)
        if not width >= 0:
            raise ValueError(
                f"{key} is a number of standard errors and must be at least 0 (inf allowed); "
                f"got {width!r}"
            )
    if net_values is not None and set(net_values) != set(choices):
        raise ValueError(
            f"net_values need the same learners as choices: {sorted(choices)}; "
            f"found {sorted(net_values)}"
        )
    picked = {name: _picked(choice, scores) for name, choice in choices.items()}
    values = {name: policy_value(c, scores, name=name, alpha=alpha) for name, c in choices.items()}
    risk = _screened(net_values, scores, screen) if net_values is not None else None
    contenders = [n for n in values if risk is None or not risk.loc[n, "screened_out"]]
    if risk is None:
        chosen = max(contenders, key=lambda name: values[name].per_customer)
    else:
        # _screened keeps the learner of lowest risk whatever the width; with a margin of
        # 0 every policy worth more than its own clears it, so the most valuable is chosen
        lowest = str(risk["risk"].idxmin())
        clear = [n for n in contenders if _beats(picked[n], picked[lowest], margin)]
        chosen = max(clear, key=lambda n: values[n].per_customer) if clear else lowest
    q = float(stats.norm.ppf(1 - alpha / 2))
    rows = []
    for name, value in values.items():
        mean, se = _paired(picked[name] - picked[chosen])
        rows.append(
            {
                "name": name,
                "per_customer": value.per_customer,
                "std_error": value.std_error,
                "ci_low": value.ci_low,
                "ci_high": value.ci_high,
                "treated_share": value.treated_share,
                "difference": mean,
                "difference_ci_low": mean - q * se if name != chosen else 0.0,
                "difference_ci_high": mean + q * se if name != chosen else 0.0,
                **(risk.loc[name].to_dict() if risk is not None else {}),
                "chosen": name == chosen,
            }
        )
    with_risk = net_values is not None
    return PolicyComparison(
        pd.DataFrame(rows),
        chosen,
        alpha,
        screen if with_risk else None,
        margin if with_risk else None,
    )


def _beats(challenger: np.ndarray, incumbent: np.ndarray, margin: float) -> bool:
    """Whether the challenger's policy is worth more than the incumbent's by over ``margin``
    standard errors of the paired per-customer difference."""
    mean, se = _paired(challenger - incumbent)
    # NaN (fewer than two customers) fails both; an infinite margin is never cleared
    return mean > 0 and mean > margin * se


def _paired(gap: np.ndarray) -> tuple[float, float]:
    """The mean of per-customer differences and its standard error (NaN where undefined)."""
    n = len(gap)
    mean = float(gap.mean()) if n else float("nan")
    se = float(gap.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return mean, se


def _screened(
    net_values: Mapping[str, pd.DataFrame], scores: pd.DataFrame, screen: float
) -> pd.DataFrame:
    """Each learner's risk, its paired difference from the lowest (with standard error),
    and whether that difference exceeds ``screen`` standard errors."""
    loss = {name: net_value_risk(net, scores) for name, net in net_values.items()}
    risk = {name: float(values.mean()) for name, values in loss.items()}
    lowest = min(risk, key=lambda name: risk[name])
    rows = {}
    for name, values in loss.items():
        difference, se = _paired(values - loss[lowest])
        rows[name] = {
            "risk": risk[name],
            "risk_difference": difference,
            "risk_difference_se": se if name != lowest else 0.0,
            # a difference of zero is never screened out, whatever its standard error
            "screened_out": bool(difference > screen * se) if name != lowest else False,
        }
    return pd.DataFrame.from_dict(rows, orient="index")
