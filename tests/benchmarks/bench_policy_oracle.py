"""Benchmark: the targeting policy's true profit against the oracle's, on the simulators.

For each simulated example config, at the size the config sets, the pipeline prepares the
experiment, cross-fits and compares its learners and refits the chosen one
(:func:`uplift.pipeline.fit_models`), exactly as ``uplift run`` does. The refitted model
then scores a *fresh* base drawn from the same simulator with another seed (customers the
model never saw), as ``uplift score`` would, and each rule is valued with the simulator's
truth: every customer's expected net value in each arm over the control (lifetime worth of
the value metric, less the contact and offer costs of the expected outcomes).

Rules compared, each as total incremental profit over the fresh base:

* ``oracle``: each customer's truly best arm when its true net value is positive;
* ``policy``: the model's recommended arm (what ``uplift score`` writes);
* ``treat_all:<arm>`` for the best arm.

The fixed cost of the campaign is charged once to every rule that treats anyone; the
share of the oracle is reported with and without it. The issue's target is a policy
share of at least 0.9.

Run from the repository root::

    .venv/bin/python tests/benchmarks/bench_policy_oracle.py [--n N] [--fresh N] [--seeds S ...]
        [--learners L ...] [--base-params JSON] [--selection]

``--seeds`` repeats the experiment with other simulation seeds (one fresh base for all):
one seed's share is one draw of a noisy experiment. ``--learners`` and ``--base-params``
set the spec's ``models.learners`` and ``models.base_params``, as a user would.
``--selection`` prints each experiment's learner choice: every learner's out-of-fold policy
value and risk against the chosen one's (the summary's ``model_selection.policies``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from uplift import pipeline
from uplift.data.simulate import simulate
from uplift.spec import ExperimentSpec, load_spec

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["edtech_trial_lessons", "saas_feature_unlock", "ecommerce_lower_check"]


def true_net_values(spec: ExperimentSpec, sim, frame: pd.DataFrame, treatments, control):
    """Each customer's true incremental net value per arm (columns), without the fixed cost,
    and the true value part alone (lifetime worth of the uplift on the value metric)."""
    economics = pipeline.profit_model(spec, list(treatments))

    def expected(arm: str) -> pd.DataFrame:
        e = sim.expected(arm, frame.index)
        return pd.DataFrame(
            {name: e[m.column] for name, m in spec.outcomes.per_customer.items()},
            index=frame.index,
        )

    base = expected(control)
    out, worth = {}, {}
    for arm in treatments:
        treated = expected(arm)
        value = economics.value_per_unit * (economics.value_of(treated) - economics.value_of(base))
        cost = economics.contact_cost + economics.cost_models[arm].cost(treated)
        out[arm] = value - np.asarray(cost, dtype=float)
        worth[arm] = value
    net = pd.DataFrame(out, index=frame.index)
    return net, pd.DataFrame(worth, index=frame.index), economics.fixed_cost


def measure(
    name: str,
    n: int | None,
    fresh: int,
    seed: int | None = None,
    models: dict[str, Any] | None = None,
    selection: bool = False,
) -> dict[str, float]:
    spec = load_spec(ROOT / "configs" / f"{name}.yaml")
    if models:  # the spec's models section changed as a user would change it
        spec = spec.model_copy(update={"models": spec.models.model_copy(update=models)})
    fresh_seed = spec.population.source.seed + 1000  # one fresh base whatever the experiment
    with tempfile.TemporaryDirectory() as tmp:
        update = {"ledger": spec.ledger.model_copy(update={"url": f"sqlite:///{tmp}/l.db"})}
        changes = {k: v for k, v in {"n": n, "seed": seed}.items() if v is not None}
        if changes:
            source = spec.population.source.model_copy(update=changes)
            update["population"] = spec.population.model_copy(update={"source": source})
        spec = spec.model_copy(update=update)
        start = time.perf_counter()
        data = pipeline.prepare(spec)
        modelling = pipeline.fit_models(spec, data)
        fit_s = time.perf_counter() - start
    if selection and modelling.policies is not None:
        columns = ["name", "per_customer", "difference", "difference_ci_low"]
        columns += ["difference_ci_high", "risk_difference", "risk_difference_se"]
        columns += ["screened_out", "chosen"]
        print(f"{name} seed {spec.population.source.seed}: the learner choice")
        print(modelling.policies.to_frame()[columns].to_string(index=False), flush=True)
    source = spec.population.source
    sim = simulate(spec.hypothesis.kind, fresh, fresh_seed, data.treatments, source.arm_effects)
    frame = pipeline._eligible(spec, sim.population, "fresh simulated base", launched=None)
    truth, worth, fixed = true_net_values(spec, sim, frame, data.treatments, data.control)
    model = modelling.scoring_model
    scores = model.predict(frame)
    column = {arm: i for i, arm in enumerate(data.treatments)}
    picked = scores["recommended_arm"].map(column).to_numpy(dtype=float)
    t = truth.to_numpy()
    rows = np.flatnonzero(~np.isnan(picked))
    policy = float(t[rows, picked[rows].astype(int)].sum())
    oracle = float(np.maximum(t.max(axis=1), 0).sum())
    # the same rule on the true uplift and the model's predicted costs: what the cost side
    # alone loses
    _, _, spend = model._economics(model.encoder.transform(frame).to_numpy(dtype=float))
    mixed = worth.to_numpy() - spend
    best = mixed.argmax(axis=1)
    treat = np.flatnonzero(mixed[np.arange(len(mixed)), best] > 0)
    cost_side = float(t[treat, best[treat]].sum())
    treat_all = float(t.sum(axis=0).max())
    charge = fixed if len(rows) else 0.0
    return {
        "config": name,
        "seed": source.seed,
        "n_experiment": len(data.frame),
        "n_fresh": len(frame),
        "chosen": modelling.chosen,
        "fit_s": fit_s,
        "oracle_share_treated": float((t.max(axis=1) > 0).mean()),
        "policy_share_treated": len(rows) / len(frame),
        "oracle": oracle - fixed,
        "policy": policy - charge,
        "treat_all": treat_all - fixed,
        "ratio": (policy - charge) / (oracle - fixed),
        "ratio_before_fixed": policy / oracle,
        "treat_all_ratio": (treat_all - fixed) / (oracle - fixed),
        "true_uplift_ratio": (cost_side - (fixed if len(treat) else 0.0)) / (oracle - fixed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="base size (default: the config's)")
    parser.add_argument("--fresh", type=int, default=200_000, help="fresh base size")
    parser.add_argument("--configs", nargs="*", default=CONFIGS)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=None,
        help="experiment seeds (default: the config's); the fresh base stays the config's",
    )
    parser.add_argument(
        "--learners", nargs="*", default=None, help="models.learners (default: the config's)"
    )
    parser.add_argument(
        "--base-params",
        type=json.loads,
        default=None,
        help="models.base_params as JSON, e.g. '{\"num_leaves\": 7}' (default: the config's)",
    )
    parser.add_argument(
        "--selection",
        action="store_true",
        help="print each experiment's learner choice (model_selection.policies)",
    )
    args = parser.parse_args()
    models: dict[str, Any] = {}
    if args.learners:
        models["learners"] = args.learners
    if args.base_params is not None:
        models["base_params"] = args.base_params
    rows = [
        measure(name, args.n, args.fresh, seed, models, args.selection)
        for name in args.configs
        for seed in (args.seeds or [None])
    ]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.3f}"))
        if args.seeds and len(args.seeds) > 1:
            print("\nshare of the oracle over the seeds:")
            print(table.groupby("config")["ratio"].agg(["mean", "min", "max"]).round(3))


if __name__ == "__main__":
    main()
