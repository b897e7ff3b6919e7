"""Benchmark: each learner's out-of-fold Qini beside the oracle's, on the simulated examples.

Not collected by the test run. Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_learners.py [--n N] [--folds K] [--learners ...]

For each simulated example config (one per hypothesis kind) it simulates ``--n``
customers (default 100,000), launches them into a temporary ledger, and cross-fits every
learner on the primary metric (K folds, the spec's seed, the known assignment
propensity). For every treatment arm it prints two shares of the oracle, the ranking of
customers by their true effect (which the simulator knows):

``observed``
    the normalized Qini score of the out-of-fold predictions
    (:func:`uplift.analysis.metrics.qini_score`, causalml's convention) over the oracle's
    Qini on the same drawn outcomes. Both are read off one sample of noisy outcomes, so
    at this size the ratio moves by about 0.1 with the draw;
``expected``
    the same ratio with the drawn outcomes replaced by the true incremental outcome of
    every customer: the area between the curve of the cumulative true effect of the
    customers ranked by the predictions and the random-targeting line, over the same
    area for the oracle's ranking. It measures how well the predictions rank customers
    without the outcome noise of one draw.

The chosen learner is the one :func:`uplift.analysis.selection.compare_learners` picks
(the highest mean out-of-fold Qini over the arms), as the pipeline does; the issue asks
that its Qini reach 0.8 of the oracle's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from uplift.analysis.features import encode_features
from uplift.analysis.learners import cross_fit_uplift
from uplift.analysis.metrics import qini_score
from uplift.analysis.selection import compare_learners
from uplift.pipeline import prepare
from uplift.spec import ExperimentSpec

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [
    ROOT / "configs" / "edtech_trial_lessons.yaml",
    ROOT / "configs" / "saas_feature_unlock.yaml",
    ROOT / "configs" / "ecommerce_lower_check.yaml",
]
# (learner, base, params): the registry's learners on their default base models
LEARNERS: dict[str, tuple[str, str, dict[str, object]]] = {
    "x_learner.linear": ("x_learner", "linear", {}),
    "s_learner": ("s_learner", "lightgbm", {}),
    "t_learner": ("t_learner", "lightgbm", {}),
    "x_learner": ("x_learner", "lightgbm", {}),
    "r_learner": ("r_learner", "lightgbm", {}),
    "dr_learner": ("dr_learner", "lightgbm", {}),
    "t_learner.xgboost": ("t_learner", "xgboost", {}),
    "t_learner.random_forest": ("t_learner", "random_forest", {}),
}
DEFAULT = ["s_learner", "t_learner", "x_learner.linear"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--learners", nargs="*", default=DEFAULT, choices=list(LEARNERS))
    parser.add_argument("--n-jobs", type=int, default=2, help="threads of each base model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for config in CONFIGS:
            run_example(config, Path(tmp), args)


def run_example(config: Path, tmp: Path, args: argparse.Namespace) -> None:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["population"]["source"]["n"] = args.n
    data["ledger"] = {"url": f"sqlite:///{tmp / (config.stem + '.db')}"}
    spec = ExperimentSpec.model_validate(data)
    prepared = prepare(spec)
    sim = prepared.simulation
    assert sim is not None
    primary = spec.outcomes.primary
    column = spec.outcomes.metrics[primary].column
    X = encode_features(prepared.frame, spec.population.features)
    y = prepared.outcomes[primary]
    weights = prepared.weights or {}
    control = prepared.control
    propensity = {a: weights[a] / (weights[a] + weights[control]) for a in prepared.treatments}
    arms = prepared.arms.astype(str).to_numpy()
    untreated = sim.expected(control, prepared.frame.index)[column].to_numpy()
    truth = {
        arm: sim.expected(arm, prepared.frame.index)[column].to_numpy() - untreated
        for arm in prepared.treatments
    }
    print(
        f"\n{spec.hypothesis.kind} ({config.name}): {len(X):,} customers in the experiment, "
        f"{X.shape[1]} features, primary metric {primary!r}, {args.folds}-fold cross-fitting"
    )
    oracle = {}
    for arm in prepared.treatments:
        keep = (arms == arm) | (arms == control)
        t = (arms[keep] == arm).astype(int)
        oracle[arm] = qini_score(y.to_numpy()[keep], t, truth[arm][keep])
        print(f"  oracle / {arm}: Qini {oracle[arm]:.4f}")
    predictions = {}
    shares: dict[str, list[tuple[float, float]]] = {}
    for label in args.learners:
        learner, base, params = LEARNERS[label]
        if base != "linear":
            params = {**params, "n_jobs": args.n_jobs}
        start = time.perf_counter()
        result = cross_fit_uplift(
            learner,
            X,
            prepared.arms,
            y,
            control,
            prepared.treatments,
            folds=args.folds,
            seed=spec.models.seed,
            propensity=propensity,
            base=base,
            base_params=params,
            # a 0/1 metric's outcome models fit its log loss, as the pipeline fits them
            binary=spec.outcomes.metrics[primary].kind == "binary",
        )
        seconds = time.perf_counter() - start
        predictions[label] = result.predictions
        shares[label] = []
        for arm in prepared.treatments:
            keep = (arms == arm) | (arms == control)
            t = (arms[keep] == arm).astype(int)
            score = result.predictions[arm].to_numpy()[keep]
            observed = qini_score(y.to_numpy()[keep], t, score) / oracle[arm]
            expected = _true_gain_area(truth[arm][keep], score) / _true_gain_area(
                truth[arm][keep], truth[arm][keep]
            )
            shares[label].append((observed, expected))
            print(
                f"  {label:<24} / {arm}: Qini {observed:.2f} of the oracle's observed, "
                f"{expected:.2f} expected ({seconds:.0f} s for all arms)"
            )
    comparison = compare_learners(
        predictions, y, prepared.arms, control, prepared.treatments, seed=spec.models.seed
    )
    print("  " + comparison.summary().replace("\n", "\n  "))
    chosen = comparison.chosen
    ratios = ", ".join(
        f"{arm} {obs:.2f} observed, {exp:.2f} expected"
        for arm, (obs, exp) in zip(prepared.treatments, shares[chosen], strict=True)
    )
    print(f"  chosen: {chosen}; share of the oracle's Qini: {ratios}")


def _true_gain_area(effect: np.ndarray, score: np.ndarray) -> float:
    """Area between the cumulative true effect of customers ranked by ``score`` and the
    random-targeting line (ties broken by row order)."""
    gain = np.concatenate([[0.0], np.cumsum(effect[np.argsort(-score, kind="stable")])])
    return float(gain.mean() - gain[-1] / 2)


if __name__ == "__main__":
    main()
