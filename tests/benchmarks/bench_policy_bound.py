"""Benchmark: what the trial-lessons experiment can support, beside what the pipeline earns.

``bench_policy_oracle.py`` values the pipeline's targeting policy against the oracle. This
script asks whether the experiment's size is what limits it. On the same experiments (the
config's simulated base at other seeds, prepared by ``pipeline.prepare`` exactly as
``uplift run`` prepares it) and the same fresh base and valuation, it fits two models of
the binary purchase that carries the effect, and of the trial's uptake that carries the
cost, and applies the same rule (the arm with the highest positive expected net value):

* ``specified``: the simulator's own functional form with free parameters, fitted by
  maximum likelihood: ``P(bought) = sigmoid(a0 + a1 log1p(f) + a2 r + a3 plus) +
  k_arm exp(-r / b1) exp(-f / b2)``, uptake ``sigmoid(c0 + c1 log1p(f) + c2 r)`` among
  the treated. It knows the shape, not the values: the best one could hope for.
* ``logistic``: a logistic regression of the purchase per arm (a T-learner) and one of the
  uptake, on a small smooth basis of recency, frequency and the plan, chosen by hand for
  this simulator; no knowledge of the shape beyond which features matter.
* ``spline``: the same T-learner on a basis any spec gives: cubic splines of every numeric
  feature of ``population.features`` and the text ones one-hot.

If the specified model reaches 0.9 of the oracle where the pipeline does not, the data
supports the target and the learners are what fall short.

Run from the repository root::

    .venv/bin/python tests/benchmarks/bench_policy_bound.py [--seeds S ...] [--mult M ...]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_policy_oracle import true_net_values
from scipy import optimize
from scipy.special import expit
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

from uplift import pipeline
from uplift.data.simulate import simulate
from uplift.spec import ExperimentSpec, SimulateSource, load_spec

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "edtech_trial_lessons.yaml"
PRICE = 290.0  # the simulator's course price: revenue moves by it when a purchase does
_EPS = 1e-9


def _rfm(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = frame["frequency_180d"].to_numpy(float)
    r = frame["recency_days"].to_numpy(float)
    plus = (frame["plan"].to_numpy() == "plus").astype(float)
    return f, r, plus


def _nll(theta: np.ndarray, f: np.ndarray, r: np.ndarray, plus: np.ndarray, arm: np.ndarray,
         y: np.ndarray) -> tuple[float, np.ndarray]:  # fmt: skip
    """Mean negative log-likelihood of the specified purchase model, with its gradient."""
    a0, a1, a2, a3, lb1, lb2 = theta[:6]
    lf = np.log1p(f)
    sig = expit(a0 + a1 * lf + a2 * r + a3 * plus)
    b1, b2 = np.exp(lb1), np.exp(lb2)
    shape = np.exp(-r / b1 - f / b2)
    k = np.r_[0.0, theta[6:]][arm]
    raw = sig + k * shape
    p = np.clip(raw, _EPS, 1 - _EPS)
    n = len(y)
    value = -float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p))) / n
    g = np.where((raw > _EPS) & (raw < 1 - _EPS), (p - y) / (p * (1 - p)), 0.0) / n
    ds = g * sig * (1 - sig)
    grad = [ds.sum(), (ds * lf).sum(), (ds * r).sum(), (ds * plus).sum()]
    grad += [(g * k * shape * r / b1).sum(), (g * k * shape * f / b2).sum()]
    grad += [(g * shape * (arm == j)).sum() for j in range(1, len(theta) - 5)]
    return value, np.asarray(grad)


def fit_specified(
    frame: pd.DataFrame, arm: np.ndarray, bought: np.ndarray, took: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum likelihood of the specified model from several starts, and the uptake's."""
    f, r, plus = _rfm(frame)
    n_arms = int(arm.max())
    bounds = [(None, None)] * 4 + [(0.0, np.log(5000)), (np.log(0.05), np.log(500))]
    best = None
    for head in (
        [-2.0, 0.5, -0.005, 0.0, np.log(50), np.log(5)],
        [-3.5, 1.0, -0.02, 0.2, np.log(150), np.log(2)],
        [-1.0, 0.0, 0.0, 0.0, np.log(20), np.log(20)],
    ):
        for k in (0.05, 0.2):
            found = optimize.minimize(
                _nll,
                np.array(head + [k] * n_arms),
                args=(f, r, plus, arm, bought),
                method="L-BFGS-B",
                jac=True,
                bounds=bounds + [(-1.0, 1.0)] * n_arms,
                options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
            )
            if best is None or found.fun < best.fun:
                best = found
    assert best is not None
    treated = arm > 0
    uptake = LogisticRegression(C=np.inf, max_iter=5000).fit(
        np.column_stack([np.log1p(f), r])[treated], took[treated]
    )
    return best.x, np.r_[uptake.intercept_, uptake.coef_[0]]


def specified_net(
    theta: np.ndarray, c: np.ndarray, frame: pd.DataFrame, economics: Any, treatments: list[str]
) -> np.ndarray:
    """Expected net value of each arm per customer under the fitted specified model."""
    f, r, plus = _rfm(frame)
    base = expit(theta[0] + theta[1] * np.log1p(f) + theta[2] * r + theta[3] * plus)
    shape = np.exp(-r / np.exp(theta[4]) - f / np.exp(theta[5]))
    lifts = [
        np.clip(base + theta[6 + i] * shape, 0, 1) - np.clip(base, 0, 1)
        for i in range(len(treatments))
    ]
    uptake = expit(c[0] + c[1] * np.log1p(f) + c[2] * r)
    return _net(economics, treatments, lifts, uptake)


def _net(
    economics: Any, treatments: list[str], lifts: list[np.ndarray], uptake: np.ndarray
) -> np.ndarray:
    """Each arm's expected net value per customer: the purchase lift's worth less the
    contact and the offer's cost at the predicted uptake."""
    took = pd.DataFrame({"took_trial": uptake})
    # a purchase moves the value metric by one when it is the purchase itself (the
    # config's), by the course's price when it is the revenue
    units = 1.0 if economics.value_metric == "bought" else PRICE
    out = np.empty((len(uptake), len(treatments)))
    for i, arm in enumerate(treatments):
        cost = economics.contact_cost + np.asarray(economics.cost_models[arm].cost(took))
        out[:, i] = economics.value_per_unit * units * lifts[i] - cost
    return out


def _t_learner_net(
    data: pipeline.PreparedData,
    economics: Any,
    treatments: list[str],
    chance: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """The net values from ``chance(rows, y)``, a classifier fitted on the experiment's
    ``rows`` and applied to the fresh base: one per arm for the purchase, one on the
    treated for the uptake."""
    arms = data.arms.to_numpy()
    bought = data.outcomes["bought"].to_numpy()
    p0 = chance(arms == data.control, bought)
    lifts = [chance(arms == arm, bought) - p0 for arm in treatments]
    uptake = chance(arms != data.control, data.outcomes["took_trial"].to_numpy())
    return _net(economics, treatments, lifts, uptake)


def _basis(frame: pd.DataFrame) -> np.ndarray:
    f, r, plus = _rfm(frame)
    lf, rr = np.log1p(f), r / 100.0
    return np.column_stack([lf, f / 10.0, rr, rr**2, plus, lf * rr])


def logistic_net(
    data: pipeline.PreparedData, frame: pd.DataFrame, economics: Any, treatments: list[str]
) -> np.ndarray:
    """Expected net value per arm from a logistic T-learner on a smooth basis."""
    X, Xnew = _basis(data.frame), _basis(frame)

    def chance(rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        model = LogisticRegression(C=np.inf, max_iter=5000).fit(X[rows], y[rows])
        return model.predict_proba(Xnew)[:, 1]

    return _t_learner_net(data, economics, treatments, chance)


def spline_net(
    data: pipeline.PreparedData,
    frame: pd.DataFrame,
    economics: Any,
    treatments: list[str],
    features: list[str],
) -> np.ndarray:
    """Expected net value per arm from a logistic T-learner on a generic basis: cubic
    splines (5 knots at quantiles) of every numeric feature of the spec, text one-hot."""
    numeric = [f for f in features if pd.api.types.is_numeric_dtype(data.frame[f])]
    text = [f for f in features if f not in numeric]

    def chance(rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        model = make_pipeline(
            make_column_transformer(
                (SplineTransformer(n_knots=5, knots="quantile"), numeric),
                (OneHotEncoder(handle_unknown="ignore"), text),
            ),
            StandardScaler(with_mean=False),
            LogisticRegression(max_iter=5000),
        )
        return model.fit(data.frame[rows], y[rows]).predict_proba(frame)[:, 1]

    return _t_learner_net(data, economics, treatments, chance)


def share(net: np.ndarray, truth: pd.DataFrame, fixed: float) -> float:
    """The rule's true profit over the oracle's, the fixed cost charged to both."""
    t = truth.to_numpy()
    best = net.argmax(axis=1)
    rows = np.flatnonzero(net[np.arange(len(net)), best] > 0)
    oracle = float(np.maximum(t.max(axis=1), 0).sum())
    return (float(t[rows, best[rows]].sum()) - (fixed if len(rows) else 0.0)) / (oracle - fixed)


def experiment(spec: ExperimentSpec, n: int, seed: int) -> pipeline.PreparedData:
    source = spec.population.source
    assert isinstance(source, SimulateSource)
    with tempfile.TemporaryDirectory() as tmp:
        changed = spec.model_copy(
            update={
                "ledger": spec.ledger.model_copy(update={"url": f"sqlite:///{tmp}/l.db"}),
                "population": spec.population.model_copy(
                    update={"source": source.model_copy(update={"n": n, "seed": seed})}
                ),
            }
        )
        return pipeline.prepare(changed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=list(range(7, 15)))
    parser.add_argument("--mult", type=float, nargs="*", default=[1.0], help="x the config's n")
    parser.add_argument("--fresh", type=int, default=200_000, help="fresh base size")
    args = parser.parse_args()
    spec = load_spec(CONFIG)
    source = spec.population.source
    assert isinstance(source, SimulateSource)
    control = spec.assignment.control
    treatments = [a for a in spec.assignment.arms if a != control]  # type: ignore[union-attr]
    # the fresh base of bench_policy_oracle.py: the config's seed + 1000
    sim = simulate(spec.hypothesis.kind, args.fresh, source.seed + 1000, treatments,
                   source.arm_effects)  # fmt: skip
    frame = pipeline._eligible(spec, sim.population, "fresh simulated base", launched=None)
    truth, _, fixed = true_net_values(spec, sim, frame, treatments, control)
    economics = pipeline.profit_model(spec, treatments)
    rows = []
    for mult in args.mult:
        for seed in args.seeds:
            data = experiment(spec, int(source.n * mult), seed)
            arm = data.arms.map({control: 0, **{a: i + 1 for i, a in enumerate(treatments)}})
            theta, c = fit_specified(
                data.frame,
                arm.to_numpy(int),
                data.outcomes["bought"].to_numpy(float),
                data.outcomes["took_trial"].to_numpy(float),
            )
            rows.append(
                {
                    "n": int(source.n * mult),
                    "seed": seed,
                    "n_experiment": len(data.frame),
                    "specified": share(
                        specified_net(theta, c, frame, economics, treatments), truth, fixed
                    ),
                    "logistic": share(
                        logistic_net(data, frame, economics, treatments), truth, fixed
                    ),
                    "spline": share(
                        spline_net(data, frame, economics, treatments, spec.population.features),
                        truth,
                        fixed,
                    ),
                }
            )
            row = rows[-1]
            print(
                f"n {row['n']:,} seed {seed}: experiment {row['n_experiment']:,}, share of the "
                f"oracle: specified {row['specified']:.3f}, logistic {row['logistic']:.3f}, "
                f"spline {row['spline']:.3f}",
                flush=True,
            )
    table = pd.DataFrame(rows)
    print("\nshare of the oracle over the seeds:")
    shares = table.groupby("n")[["specified", "logistic", "spline"]]
    print(shares.agg(["mean", "min", "max"]).round(3).to_string())


if __name__ == "__main__":
    main()
