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
* ``treat_all:<arm>`` for the best arm;
* ``true_uplift``: the same rule on the true uplift and the model's predicted costs (what
  the cost side alone loses);
* ``best_cut``: the model's ranking of customers (by their best arm's predicted net value)
  treated down to the cut the truth says is best, rather than down to a predicted net
  value of zero: the most that correcting the level of the predictions could add, which
  separates a ranking that is wrong from a ranking cut at the wrong place.

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
value and risk against the chosen one's (the summary's ``model_selection.policies``), and
beside them what each learner's out-of-fold policy truly earns per customer of the
experiment (``in_sample_truth``, the quantity ``per_customer`` estimates) and its true share
of the oracle had it been chosen (refitted on every customer and valued on the fresh base as
the chosen one is); then, over the seeds, the true share of the learner that the choice
would have taken with other widths of its risk screen and other margins of its value
comparison, and how far each learner's out-of-fold value gap to the learner of lowest risk
misses the true gap.
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
from uplift.scoring import ScoringModel
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
) -> tuple[dict[str, Any], pd.DataFrame | None]:
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
    source = spec.population.source
    sim = simulate(spec.hypothesis.kind, fresh, fresh_seed, data.treatments, source.arm_effects)
    frame = pipeline._eligible(spec, sim.population, "fresh simulated base", launched=None)
    truth, worth, fixed = true_net_values(spec, sim, frame, data.treatments, data.control)
    table = None
    if selection and modelling.policies is not None:
        columns = ["name", "per_customer", "difference", "difference_ci_low"]
        columns += ["difference_ci_high", "risk_difference", "risk_difference_se"]
        columns += ["screened_out", "chosen"]
        table = modelling.policies.to_frame()[columns]
        # each learner's arms as the pipeline's own comparison valued them (the spec's
        # budget included)
        nets, spend = modelling.net_uplift, modelling.targeting.spend
        choices = {label: pipeline._choose(spec, data, nets[label], spend[label]) for label in nets}
        table["in_sample_truth"] = _in_sample_truth(spec, data, choices, table["name"])
        table["true_ratio"] = [
            _true_share(_refitted(spec, data, modelling, label), frame, truth, fixed)
            for label in table["name"]
        ]
        table.attrs["rules"] = _rule_choices(choices, modelling)
        print(f"{name} seed {source.seed}: the learner choice (true_ratio: each learner")
        print("refitted and valued on the fresh base with the truth, as the chosen one is)")
        print(table.to_string(index=False), flush=True)
    model = modelling.scoring_model
    _, net, spend = model._economics(model.encoder.transform(frame).to_numpy(dtype=float))
    t = truth.to_numpy()
    rows, best = _recommended(net)
    policy = float(t[rows, best[rows]].sum())
    oracle = float(np.maximum(t.max(axis=1), 0).sum())
    # the same rule on the true uplift and the model's predicted costs: what the cost side
    # alone loses
    treat, best_mixed = _recommended(worth.to_numpy() - spend)
    cost_side = float(t[treat, best_mixed[treat]].sum())
    treat_all = float(t.sum(axis=0).max())
    # the model's ranking cut where the truth says is best, rather than at a predicted net
    # value of zero: the most that calibrating the predictions' level could add
    gain = t[np.arange(len(t)), best][np.argsort(-net[np.arange(len(net)), best], kind="stable")]
    cumulative = np.cumsum(gain) - fixed
    cut = int(np.argmax(cumulative)) + 1 if len(gain) and cumulative.max() > 0 else 0
    best_cut = float(cumulative[cut - 1]) if cut else 0.0
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
        "best_cut_ratio": best_cut / (oracle - fixed),
        "best_cut_share_treated": cut / len(frame),
    }, table


def _rule_choices(choices: dict[str, pd.Series], modelling: Any) -> dict[str, str]:
    """The learner :func:`~uplift.value.policy.compare_policies` takes on this experiment
    with each width of its risk screen and each margin of its value comparison, keyed
    ``"width/margin"``."""
    from uplift.value.policy import compare_policies

    return {
        f"{width:g}/{margin:g}": compare_policies(
            choices, modelling.scores, net_values=modelling.net_uplift, screen=width, margin=margin
        ).chosen
        for width in WIDTHS
        for margin in MARGINS
    }


def _recommended(net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows treated and each row's best arm (a column of ``net``): the best arm when its
    net value is positive, the rule ``ScoringModel.predict`` writes as ``recommended_arm``."""
    best = net.argmax(axis=1)
    return np.flatnonzero(net[np.arange(len(net)), best] > 0), best


def _refitted(spec: ExperimentSpec, data: Any, modelling: Any, label: str) -> ScoringModel:
    """The scoring model ``uplift run`` would have logged had it chosen ``label``."""
    if label == modelling.chosen:
        return modelling.scoring_model
    encoder = modelling.scoring_model.encoder  # fitted on the same customers and features
    entry = next(e for e in spec.models.configured() if e.label == label)
    return pipeline.scoring_model(spec, data, encoder, encoder.transform(data.frame), entry)


def _in_sample_truth(
    spec: ExperimentSpec, data: Any, choices: dict[str, pd.Series], labels: pd.Series
) -> list[float]:
    """What each learner's out-of-fold policy truly earns per customer of the experiment
    (before the fixed cost): the quantity its out-of-fold value (``per_customer``)
    estimates, so the two differ by that estimate's error alone."""
    sim = data.simulation  # the simulated base the experiment was drawn from
    ids = spec.population.id
    rows = pd.Index(sim.population[ids]).get_indexer(data.frame[ids])
    truth, _, _ = true_net_values(
        spec, sim, sim.population.iloc[rows], data.treatments, data.control
    )
    t = np.c_[truth.to_numpy(), np.zeros(len(truth))]  # the last column: untreated
    column = {arm: i for i, arm in enumerate(data.treatments)}
    out = []
    for label in labels:
        picked = choices[label].map(column).fillna(len(column)).to_numpy(dtype=int)
        out.append(float(t[np.arange(len(t)), picked].mean()))
    return out


def _true_share(
    model: ScoringModel, frame: pd.DataFrame, truth: pd.DataFrame, fixed: float
) -> float:
    """The true profit of ``model``'s recommendations over the oracle's, fixed cost charged."""
    _, net, _ = model._economics(model.encoder.transform(frame).to_numpy(dtype=float))
    t = truth.to_numpy()
    rows, best = _recommended(net)
    oracle = float(np.maximum(t.max(axis=1), 0).sum())
    policy = float(t[rows, best[rows]].sum()) - (fixed if len(rows) else 0.0)
    return policy / (oracle - fixed)


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
    measured = [
        measure(name, args.n, args.fresh, seed, models, args.selection)
        for name in args.configs
        for seed in (args.seeds or [None])
    ]
    table = pd.DataFrame([row for row, _ in measured])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.3f}"))
        if args.seeds and len(args.seeds) > 1:
            print("\nshare of the oracle over the seeds (the policy, and its ranking's best cut):")
            shares = table.groupby("config")[["ratio", "best_cut_ratio"]]
            print(shares.agg(["mean", "min", "max"]).round(3))
        choices = [(row, choice) for row, choice in measured if choice is not None]
        if choices:
            print("\nthe true share of the learner chosen with each screen width and margin:")
            print(_rules(choices).to_string(float_format=lambda x: f"{x:.3f}"))
            print("\nout-of-fold value against in_sample_truth, each learner beside the one")
            print("of lowest risk (gap: the lowest-risk learner's value minus this one's):")
            print(_value_errors(choices).to_string(float_format=lambda x: f"{x:.3f}"))


#: Widths of the learner choice's risk screen and margins of its value comparison, in
#: standard errors, that ``--selection`` compares (the pipeline's are
#: :func:`uplift.value.policy.compare_policies`' ``screen`` and ``margin``)
WIDTHS = (0.5, 1.0, 2.0, float("inf"))
MARGINS = (0.0, 1.0, 1.645, 1.96)


def _value_errors(choices: list[tuple[dict[str, Any], pd.DataFrame]]) -> pd.DataFrame:
    """Over the seeds, how far each learner's out-of-fold value gap to the learner of
    lowest risk misses the true gap (``in_sample_truth``), per config and learner."""
    rows = []
    for row, table in choices:
        lowest = table.loc[table["risk_difference"].idxmin()]
        for _, other in table[table["name"] != lowest["name"]].iterrows():
            estimated = lowest["per_customer"] - other["per_customer"]
            true = lowest["in_sample_truth"] - other["in_sample_truth"]
            rows.append(
                {
                    "config": row["config"],
                    "learner": other["name"],
                    "beside": lowest["name"],
                    "error": estimated - true,
                    "true_gap": true,
                }
            )
    frame = pd.DataFrame(rows).groupby(["config", "learner", "beside"])
    out = frame["error"].agg(["count", "mean", "std"])
    return out.join(frame["true_gap"].agg(true_gap_min="min", true_gap_max="max"))


def _rules(choices: list[tuple[dict[str, Any], pd.DataFrame]]) -> pd.DataFrame:
    """The true share of the learner each screen width and value margin would have chosen,
    per config, over the seeds."""
    rows = []
    for row, table in choices:
        ratio = dict(zip(table["name"], table["true_ratio"], strict=True))
        for rule, label in table.attrs["rules"].items():
            width, margin = (float(x) for x in rule.split("/"))
            rows.append(
                {
                    "config": row["config"],
                    "width": width,
                    "margin": margin,
                    "true_ratio": ratio[label],
                    "chosen": label,
                }
            )
    frame = pd.DataFrame(rows)
    keys = ["config", "width", "margin"]
    out = frame.groupby(keys)["true_ratio"].agg(["mean", "min", "max"])
    out["learners chosen"] = frame.groupby(keys)["chosen"].agg(
        lambda names: ", ".join(f"{k} {v}x" for k, v in names.value_counts().items())
    )
    return out


if __name__ == "__main__":
    main()
