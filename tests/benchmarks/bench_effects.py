"""Benchmark: the effects stage on 1,000,000 customers, against statsmodels' HC2 OLS.

Not collected by the test run. Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_effects.py [--rows N] [--repeat R] [--peer-budget S]

It draws a seeded synthetic experiment: a control (20 %) and two treatments (40 % each),
ten segments, and five metrics with small true effects: ``converted`` (binary),
``revenue`` (heavy-tailed, CUPED on ``revenue_pre``, winsorized at its 0.99 quantile),
``sessions`` (CUPED on ``sessions_pre``), ``orders`` (a count) and the ratio
``revenue_per_order`` = revenue / orders (delta method). The effects stage, one
:func:`uplift.analysis.effects.estimate_effects` call plus one
:func:`uplift.analysis.effects.segment_effects` call over all five metrics, is timed
``--repeat`` times (wall clock); the best and the median are reported with the process's
peak resident memory so far (``ru_maxrss``: the data and the effects stage together) and,
from one more untimed call under ``tracemalloc``, the peak memory the stage allocates on
top of its inputs.

The peer runs in the same process on the same data: for every pass (all customers, then
each segment), treatment and mean metric it fits ``statsmodels.api.OLS(y, X)
.fit(cov_type="HC2")`` on the pair's rows, with ``X = [1, T]``, or Lin's design
``[1, T, Zc, Zc * T]`` (``Zc`` the covariate centred over the pair's rows) for the CUPED
metrics, on the winsorized revenue; statsmodels has no ratio-of-means estimator, so the
ratio metric's 22 contrasts use a plain numpy delta method. The fits run in a seeded
shuffled order; if they pass ``--peer-budget`` seconds the rest are skipped and the
peer's time is extrapolated by rows fitted, which the output says. Every peer result
that ran is compared with the framework's estimate and standard error.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from uplift.analysis.effects import (
    EffectResults,
    SegmentEffects,
    estimate_effects,
    segment_effects,
)

CONTROL = "control"
TREATMENTS = ("two_lessons", "four_lessons")
SEGMENTS = tuple(f"seg_{i:02d}" for i in range(10))
METRICS: dict[str, str | tuple[str, str]] = {
    "converted": "converted",
    "revenue": "revenue",
    "sessions": "sessions",
    "orders": "orders",
    "revenue_per_order": ("revenue", "orders"),
}
CUPED = {"revenue": "revenue_pre", "sessions": "sessions_pre"}
WINSORIZE = {"revenue": 0.99}
ALL = "(all customers)"


def make_experiment(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Outcomes with pre-period columns, arms and segments of a synthetic experiment."""
    rng = np.random.default_rng(seed)
    arm_code = rng.choice(3, size=rows, p=[0.2, 0.4, 0.4])
    # segments of unequal size, with their own baselines
    weights = np.linspace(1.0, 2.0, len(SEGMENTS))
    segment_code = rng.choice(len(SEGMENTS), size=rows, p=weights / weights.sum())
    lift = np.array([0.0, 0.02, 0.04])[arm_code]  # small relative effects
    propensity = rng.lognormal(0.0, 0.8, rows) * (0.8 + 0.04 * segment_code)

    revenue_pre = np.round(propensity * rng.gamma(2.0, 15.0, rows), 2)
    orders = rng.poisson(0.9 * propensity * (1 + lift)).astype(float)
    # revenue is the sum of the orders' values: heavy-tailed, zero without orders
    revenue = np.round(orders * rng.lognormal(3.0, 0.7, rows) * (1 + lift), 2)
    sessions_pre = rng.poisson(4.0 * propensity).astype(float)
    sessions = np.maximum(
        0.0, 0.6 * sessions_pre + rng.normal(2.0 + 0.1 * arm_code, 2.0, rows)
    ).round(1)
    converted = (rng.random(rows) < np.clip(0.08 * (1 + 2 * lift) * propensity, 0, 1)).astype(float)
    outcomes = pd.DataFrame(
        {
            "converted": converted,
            "revenue": revenue,
            "revenue_pre": revenue_pre,
            "sessions": sessions,
            "sessions_pre": sessions_pre,
            "orders": orders,
        }
    )
    arms = pd.Series(np.array([CONTROL, *TREATMENTS], dtype=object)[arm_code], name="arm")
    segments = pd.Series(np.array(SEGMENTS, dtype=object)[segment_code], name="segment")
    return outcomes, arms, segments


def effects_stage(
    outcomes: pd.DataFrame, arms: pd.Series, segments: pd.Series
) -> tuple[EffectResults, SegmentEffects, float, float]:
    """The framework's effects stage, overall and per segment, with each call's seconds."""
    start = time.perf_counter()
    covariates = {name: outcomes[[column]] for name, column in CUPED.items()}
    overall = estimate_effects(
        outcomes, arms, METRICS, CONTROL, TREATMENTS, covariates=covariates, winsorize=WINSORIZE
    )
    middle = time.perf_counter()
    by_segment = segment_effects(
        outcomes,
        arms,
        segments,
        METRICS,
        CONTROL,
        TREATMENTS,
        covariates=covariates,
        winsorize=WINSORIZE,
    )
    return overall, by_segment, middle - start, time.perf_counter() - middle


@dataclass(frozen=True)
class PeerFit:
    segment: str
    arm: str
    metric: str
    rows: int


def peer_fits(segments: pd.Series, arms: pd.Series) -> list[PeerFit]:
    """Every (pass, treatment, metric) the peer fits, with the pair's row count."""
    arm = arms.to_numpy()
    seg = segments.to_numpy()
    fits = []
    for segment in (ALL, *SEGMENTS):
        inside = np.ones(len(arm), dtype=bool) if segment == ALL else seg == segment
        n_control = int(np.count_nonzero(inside & (arm == CONTROL)))
        for treatment in TREATMENTS:
            rows = n_control + int(np.count_nonzero(inside & (arm == treatment)))
            fits.extend(PeerFit(segment, treatment, metric, rows) for metric in METRICS)
    return fits


def peer_one(
    fit: PeerFit,
    outcomes: pd.DataFrame,
    arm: np.ndarray,
    seg: np.ndarray,
    caps: dict[str, float],
) -> tuple[float, float]:
    """Estimate and standard error of one pair by statsmodels (or numpy for the ratio)."""
    pair = (arm == CONTROL) | (arm == fit.arm)
    if fit.segment != ALL:
        pair &= seg == fit.segment
    t = (arm[pair] == fit.arm).astype(float)
    column = METRICS[fit.metric]
    if not isinstance(column, str):
        # delta method for the difference of two ratios of means (sample covariances)
        num = outcomes[column[0]].to_numpy()[pair]
        den = outcomes[column[1]].to_numpy()[pair]
        parts = []
        for group in (t == 1, t == 0):
            n_g, d_g = num[group], den[group]
            ratio = n_g.mean() / d_g.mean()
            s = np.cov(n_g, d_g, ddof=1)
            var = (s[0, 0] - 2 * ratio * s[0, 1] + ratio**2 * s[1, 1]) / (
                len(n_g) * d_g.mean() ** 2
            )
            parts.append((ratio, var))
        (r_t, v_t), (r_c, v_c) = parts
        return float(r_t - r_c), float(np.sqrt(v_t + v_c))
    y = outcomes[column].to_numpy()[pair]
    if fit.metric in caps:
        y = np.minimum(y, caps[fit.metric])
    if fit.metric in CUPED:
        z = outcomes[CUPED[fit.metric]].to_numpy()[pair]
        zc = z - z.mean()
        x = np.column_stack([np.ones_like(t), t, zc, zc * t])
    else:
        x = np.column_stack([np.ones_like(t), t])
    result = sm.OLS(y, x).fit(cov_type="HC2")
    return float(result.params[1]), float(result.bse[1])


def run_peer(
    outcomes: pd.DataFrame, arms: pd.Series, segments: pd.Series, budget: float, seed: int
) -> tuple[float, list[tuple[PeerFit, float, float]], int]:
    """Run the peer's fits in a shuffled order until done or past ``budget`` seconds.

    Returns the seconds spent, the results of the fits that ran, and the total number
    of fits.
    """
    fits = peer_fits(segments, arms)
    order = np.random.default_rng(seed).permutation(len(fits))
    done = []
    start = time.perf_counter()
    arm = arms.to_numpy()
    seg = segments.to_numpy()
    # one cap over every customer of the compared arms, as the framework caps
    caps = {
        name: float(np.quantile(outcomes[METRICS[name]].to_numpy(), q))
        for name, q in WINSORIZE.items()
    }
    for i in order:
        done.append((fits[i], *peer_one(fits[i], outcomes, arm, seg, caps)))
        if time.perf_counter() - start > budget:
            break
    return time.perf_counter() - start, done, len(fits)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the framework")
    parser.add_argument(
        "--peer-budget",
        type=float,
        default=90.0,
        help="seconds after which the peer's remaining fits are extrapolated",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    outcomes, arms, segments = make_experiment(args.rows, args.seed)
    shape = (
        f"{args.rows:,} customers x {len(METRICS)} metrics x {len(SEGMENTS)} segments x "
        f"{1 + len(TREATMENTS)} arms"
    )

    times, parts = [], []
    for _ in range(args.repeat):
        overall, by_segment, first, second = effects_stage(outcomes, arms, segments)
        times.append(first + second)
        parts.append((first, second))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    best = min(times)
    split = parts[times.index(best)]
    print(
        f"effects, {shape}: best {best:.2f} s, median {statistics.median(times):.2f} s "
        f"(target < 10 s), peak RSS {peak_gb:.2f} GB (whole process: data and effects)"
    )
    print(
        f"  of the best run: estimate_effects {split[0]:.2f} s, segment_effects {split[1]:.2f} s; "
        f"{len(overall.table)} overall and {len(by_segment.table)} segment rows"
    )

    tracemalloc.start()
    effects_stage(outcomes, arms, segments)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  peak memory the stage allocates beyond its inputs: {traced / 1024**3:.2f} GB "
        f"(tracemalloc, one more untimed run)"
    )

    spent, done, total = run_peer(outcomes, arms, segments, args.peer_budget, args.seed)
    n_ols = sum(isinstance(METRICS[f.metric], str) for f, _, _ in done)
    n_ratio = len(done) - n_ols
    if len(done) == total:
        peer, how = spent, "timed in full"
    else:
        all_rows = sum(f.rows for f in peer_fits(segments, arms))
        done_rows = sum(f.rows for f, _, _ in done)
        peer = spent * all_rows / done_rows
        how = (
            f"timed {len(done)} of {total} in {spent:.1f} s (shuffled order), extrapolated "
            f"by rows fitted"
        )
    total_ols = sum(isinstance(c, str) for c in METRICS.values()) * total // len(METRICS)
    print(
        f'statsmodels OLS(cov_type="HC2"), the same {total_ols} regressions, plus '
        f"{total - total_ols} ratio contrasts by a numpy delta method: {peer:.1f} s ({how}); "
        f"ratio {peer / best:.0f}x"
    )

    worst = {"ols": [0.0, 0.0], "ratio": [0.0, 0.0]}
    for fit, estimate, std_error in done:
        if fit.segment == ALL:
            ours = overall.get(fit.arm, fit.metric)
        else:
            ours = by_segment.get(fit.segment, fit.arm, fit.metric)
        kind = "ols" if isinstance(METRICS[fit.metric], str) else "ratio"
        worst[kind][0] = max(worst[kind][0], abs(float(ours["estimate"]) - estimate))
        worst[kind][1] = max(worst[kind][1], abs(float(ours["std_error"]) - std_error))
    print(
        f"largest difference from statsmodels over {n_ols} checked fits: "
        f"estimate {worst['ols'][0]:.1e}, std_error {worst['ols'][1]:.1e}"
    )
    print(
        f"largest difference from the numpy delta method over {n_ratio} checked ratio "
        f"contrasts: estimate {worst['ratio'][0]:.1e}, std_error {worst['ratio'][1]:.1e}"
    )
    if max(max(pair) for pair in worst.values()) > 1e-8:
        raise SystemExit("the framework differs from the peer by more than 1e-8")


if __name__ == "__main__":
    main()
