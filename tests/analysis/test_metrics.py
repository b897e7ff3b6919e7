"""Tests of uplift.analysis.metrics.

Reference values come from causalml 0.18: ``causalml.metrics.qini_score`` / ``auuc_score``
(and the curves from ``get_qini`` / ``get_cumgain``) on the same frame, built with exactly the
columns ``y``, ``w`` and one model column named ``model`` (a column named ``tau`` would switch
causalml to ground-truth mode, and any extra column would be scored as a model). causalml is a
core dependency, so those tests import it directly and fail, never skip, when it is missing.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from uplift.analysis.metrics import (
    UpliftCurve,
    auuc_score,
    qini_curve,
    qini_score,
    uplift_at_k,
    uplift_curve,
)

TOL = 1e-9

#: Outcomes of the simulated experiments: binary, and three continuous ones (skewed positive
#: spend, spend that is mostly zero, a normal outcome of either sign).
OUTCOMES = ["binary", "lognormal", "spend", "normal"]


def _causalml_metrics() -> ModuleType:
    import causalml.metrics  # an ImportError here fails the test, on purpose

    return causalml.metrics


def _frame(y: np.ndarray, w: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"y": y, "w": w, "model": score})


def _simulate(
    seed: int, outcome: str, ties: bool, n: int = 2000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = rng.integers(0, 2, size=n)
    tau = 0.3 * x
    if outcome == "binary":
        p = 1.0 / (1.0 + np.exp(-(-1.0 + 0.5 * x + w * tau)))
        y = rng.binomial(1, p).astype(float)
    elif outcome == "lognormal":  # skewed continuous spend
        y = rng.lognormal(mean=1.0 + 0.2 * x + w * tau, sigma=1.0)
    elif outcome == "spend":  # mostly zeros, like Hillstrom's spend: few buy, amounts vary
        buys = rng.random(n) < 1.0 / (1.0 + np.exp(-(-2.5 + 0.5 * x + 2.0 * w * tau)))
        y = np.where(buys, rng.lognormal(mean=4.0, sigma=0.6, size=n), 0.0)
    else:  # "normal": a continuous outcome of either sign, e.g. a change in margin
        y = rng.normal(loc=-0.5 + 0.5 * x + w * tau, scale=3.0)
    score = tau + rng.normal(scale=0.5, size=n)
    if ties:
        score = np.round(score, 1)  # about 30 distinct values for 2,000 customers
    return y, w, score


# --- agreement with causalml 0.18 -----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_scores_match_causalml(outcome: str, ties: bool, seed: int) -> None:
    """causalml 0.18 causalml.metrics.qini_score / auuc_score on the same frame."""
    cm = _causalml_metrics()
    y, w, score = _simulate(seed, outcome, ties)
    df = _frame(y, w, score)
    for normalize in (True, False):
        expected_qini = cm.qini_score(df, normalize=normalize)["model"]
        expected_auuc = cm.auuc_score(df, normalize=normalize)["model"]
        assert qini_score(y, w, score, normalize=normalize) == pytest.approx(
            expected_qini, rel=TOL, abs=TOL
        )
        assert auuc_score(y, w, score, normalize=normalize) == pytest.approx(
            expected_auuc, rel=TOL, abs=TOL
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_curves_match_causalml(outcome: str, ties: bool, seed: int) -> None:
    """causalml 0.18 causalml.metrics.get_qini / get_cumgain (index 0..n) on the same frame."""
    cm = _causalml_metrics()
    y, w, score = _simulate(seed, outcome, ties)
    df = _frame(y, w, score)
    n = len(y)
    for normalize in (True, False):
        expected_qini = cm.get_qini(df, normalize=normalize)
        expected_gain = cm.get_cumgain(df, normalize=normalize)
        assert list(expected_qini.index) == list(range(n + 1))
        ours_qini = qini_curve(y, w, score, normalize=normalize)
        ours_gain = uplift_curve(y, w, score, normalize=normalize)
        np.testing.assert_allclose(
            ours_qini.gain, expected_qini["model"].to_numpy(), rtol=TOL, atol=TOL
        )
        np.testing.assert_allclose(
            ours_gain.gain, expected_gain["model"].to_numpy(), rtol=TOL, atol=TOL
        )
        np.testing.assert_allclose(ours_qini.fraction, np.arange(n + 1) / n)


def test_ties_broken_as_causalml_not_stably() -> None:
    """With heavy ties the tie order changes the score; we follow causalml's unstable sort."""
    cm = _causalml_metrics()
    rng = np.random.default_rng(7)
    n = 2000
    y = rng.lognormal(size=n)
    w = rng.integers(0, 2, size=n)
    score = rng.integers(0, 4, size=n).astype(float)  # only 4 distinct scores
    expected = cm.qini_score(_frame(y, w, score))["model"]
    assert qini_score(y, w, score) == pytest.approx(expected, rel=TOL, abs=TOL)
    # the same data ranked by a stable sort gives another value, so ties really are exercised
    stable = np.argsort(-score, kind="stable")
    ranked_score = np.linspace(1.0, 0.0, n)
    stable_value = qini_score(y[stable], w[stable], ranked_score)
    assert abs(stable_value - expected) > 1e-6


@pytest.mark.parametrize("normalize", [True, False])
def test_leading_interpolation_and_negative_effect_match_causalml(normalize: bool) -> None:
    """causalml 0.18 qini_score / auuc_score / get_qini / get_cumgain: treated-only top of the
    ranking (interpolated leading points) and a negative overall effect (curve ending at -1)."""
    cm = _causalml_metrics()
    rng = np.random.default_rng(11)
    n = 2000
    w = rng.integers(0, 2, size=n)
    y = rng.lognormal(size=n) - 0.4 * w  # treatment lowers the outcome on average
    score = w + rng.uniform(0.0, 0.5, size=n)  # every treated customer ranks first
    df = _frame(y, w, score)
    assert qini_score(y, w, score, normalize=normalize) == pytest.approx(
        cm.qini_score(df, normalize=normalize)["model"], rel=TOL, abs=TOL
    )
    assert auuc_score(y, w, score, normalize=normalize) == pytest.approx(
        cm.auuc_score(df, normalize=normalize)["model"], rel=TOL, abs=TOL
    )
    np.testing.assert_allclose(
        qini_curve(y, w, score, normalize=normalize).gain,
        cm.get_qini(df, normalize=normalize)["model"].to_numpy(),
        rtol=TOL,
        atol=TOL,
    )
    np.testing.assert_allclose(
        uplift_curve(y, w, score, normalize=normalize).gain,
        cm.get_cumgain(df, normalize=normalize)["model"].to_numpy(),
        rtol=TOL,
        atol=TOL,
    )
    if normalize:
        assert qini_curve(y, w, score, normalize=True).gain[-1] == -1.0


def _three_arms(seed: int, outcome: str, n: int = 3000) -> tuple[np.ndarray, ...]:
    """A three-arm experiment: arm "a" helps customers with high x, arm "b" hurts on average."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    arm = rng.choice(np.array(["control", "a", "b"]), size=n)
    tau_a, tau_b = 0.3 * x, -0.2 + 0.1 * x
    effect = np.where(arm == "a", tau_a, np.where(arm == "b", tau_b, 0.0))
    if outcome == "binary":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(-1.0 + 0.5 * x + effect)))).astype(float)
    else:  # spend, mostly zero
        buys = rng.random(n) < 1.0 / (1.0 + np.exp(-(-2.0 + 0.5 * x + 2.0 * effect)))
        y = np.where(buys, rng.lognormal(mean=4.0, sigma=0.6, size=n), 0.0)
    # each arm's model scores every customer; only the arm's and control's rows are scored
    score_a = tau_a + rng.normal(scale=0.5, size=n)
    score_b = np.round(tau_b + rng.normal(scale=0.2, size=n), 2)  # with ties
    return y, arm, score_a, score_b


@pytest.mark.parametrize("outcome", ["binary", "spend"])
@pytest.mark.parametrize("arm", ["a", "b"])
def test_every_arm_of_a_three_arm_experiment_matches_causalml(outcome: str, arm: str) -> None:
    """causalml 0.18 causalml.metrics.qini_score / auuc_score / get_qini / get_cumgain on the
    frame of one arm against control (rows of the other arm dropped first, ``w`` = 1 for the
    arm), columns ``y``, ``w`` and ``model`` only."""
    cm = _causalml_metrics()
    y, arms, score_a, score_b = _three_arms(5, outcome)
    keep = np.isin(arms, [arm, "control"])
    yy, ww = y[keep], (arms[keep] == arm).astype(int)
    score = (score_a if arm == "a" else score_b)[keep]
    assert 1900 < keep.sum() < 2100  # two arms of three: the other arm's rows are gone
    df = _frame(yy, ww, score)
    for normalize in (True, False):
        assert qini_score(yy, ww, score, normalize=normalize) == pytest.approx(
            cm.qini_score(df, normalize=normalize)["model"], rel=TOL, abs=TOL
        )
        assert auuc_score(yy, ww, score, normalize=normalize) == pytest.approx(
            cm.auuc_score(df, normalize=normalize)["model"], rel=TOL, abs=TOL
        )
        np.testing.assert_allclose(
            qini_curve(yy, ww, score, normalize=normalize).gain,
            cm.get_qini(df, normalize=normalize)["model"].to_numpy(),
            rtol=TOL,
            atol=TOL,
        )
        np.testing.assert_allclose(
            uplift_curve(yy, ww, score, normalize=normalize).gain,
            cm.get_cumgain(df, normalize=normalize)["model"].to_numpy(),
            rtol=TOL,
            atol=TOL,
        )
    if arm == "b":  # the arm lowers the outcome on average: the normalized curve ends at -1
        assert qini_curve(yy, ww, score, normalize=True).gain[-1] == -1.0


# --- agreement with scikit-uplift 0.5.1 (binary outcomes only) -----------------------------


def _sklift_fixture(n: int = 2003, seed: int = 20261122) -> tuple[np.ndarray, ...]:
    """The binary experiment behind the hard-coded scikit-uplift numbers; scores distinct."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    w = (rng.random(n) < 0.5).astype(int)
    y = (rng.random(n) < 0.1 + w * 0.2 * x).astype(int)
    score = 0.2 * x + 0.05 * rng.random(n)
    return y, w, score


@pytest.mark.parametrize(
    ("k", "expected"),
    [(0.1, 0.12681704260651627), (0.3, 0.18834698891618773), (0.5, 0.16069061347047642)],
)
def test_uplift_at_k_matches_scikit_uplift(k: float, expected: float) -> None:
    """scikit-uplift 0.5.1, ``sklift.metrics.uplift_at_k(y, score, w, strategy="overall",
    k=k)`` on ``_sklift_fixture()``, hard-coded here: scikit-uplift is not a dependency.

    Its ranking (``argsort(kind="mergesort")[::-1]``) matches ours because the scores are
    distinct; its ``int(n * k)`` top count matches our ``floor`` for these k and n = 2003.
    """
    y, w, score = _sklift_fixture()
    assert np.unique(score).shape[0] == score.shape[0]
    assert uplift_at_k(y, w, score, k=k) == pytest.approx(expected, rel=1e-12, abs=1e-12)


# --- hand-computed cases --------------------------------------------------------------------

# Six customers, listed here in ranked order (score descending):
#
#   rank  score  w  y   N_t  N_c  Y_t  Y_c   Qini = Y_t - Y_c*N_t/N_c   lift = Y_t/N_t - Y_c/N_c
#   1     0.9    1  1   1    0    1    0     undefined -> 0.5 (interp)  undefined -> 1/2 (interp)
#   2     0.8    0  0   1    1    1    0     1 - 0*1/1 = 1              1 - 0   = 1
#   3     0.7    1  1   2    1    2    0     2 - 0*2/1 = 2              1 - 0   = 1
#   4     0.6    0  1   2    2    2    1     2 - 1*2/2 = 1              1 - 1/2 = 1/2
#   5     0.5    1  0   3    2    2    1     2 - 1*3/2 = 1/2            2/3 - 1/2 = 1/6
#   6     0.4    0  0   3    3    2    1     2 - 1*3/3 = 1              2/3 - 1/3 = 1/3
#
# Qini curve (k = 0..6):   0, 1/2, 1, 2, 1, 1/2, 1       (rank 1 lies halfway between 0 and 1)
# Uplift curve = lift * k: 0, 1/2, 2, 3, 2, 5/6, 2       (lift 1/2 at rank 1, times k = 1)
# qini_score = mean(Qini) - Qini(6)/2 = 6/7 - 1/2 = 5/14 (Q(6) = 1, so the same normalized)
# auuc_score = mean(uplift) = (31/3)/7 = 31/21; normalized (divided by 2) 31/42
_HAND_RANKED = pd.DataFrame(
    {
        "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        "w": [1, 0, 1, 0, 1, 0],
        "y": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0],
    }
)
# the functions must rank by score, so feed them the rows shuffled
_HAND = _HAND_RANKED.iloc[[3, 0, 5, 2, 4, 1]].reset_index(drop=True)


def test_hand_computed_qini_curve() -> None:
    curve = qini_curve(_HAND["y"], _HAND["w"], _HAND["score"])
    np.testing.assert_array_equal(curve.gain, [0.0, 0.5, 1.0, 2.0, 1.0, 0.5, 1.0])
    np.testing.assert_array_equal(curve.fraction, np.arange(7) / 6)
    assert curve.kind == "qini"
    assert not curve.normalized


def test_hand_computed_uplift_curve_and_scores() -> None:
    y, w, s = _HAND["y"], _HAND["w"], _HAND["score"]
    np.testing.assert_allclose(
        uplift_curve(y, w, s).gain, [0.0, 0.5, 2.0, 3.0, 2.0, 5 / 6, 2.0], rtol=1e-12
    )
    assert qini_score(y, w, s, normalize=False) == pytest.approx(5 / 14, rel=1e-12)
    assert qini_score(y, w, s) == pytest.approx(5 / 14, rel=1e-12)
    assert auuc_score(y, w, s, normalize=False) == pytest.approx(31 / 21, rel=1e-12)
    assert auuc_score(y, w, s) == pytest.approx(31 / 42, rel=1e-12)


def test_hand_computed_matches_causalml() -> None:
    """causalml 0.18 causalml.metrics.qini_score / auuc_score on the same 6-row frame."""
    cm = _causalml_metrics()
    df = _frame(_HAND["y"].to_numpy(), _HAND["w"].to_numpy(), _HAND["score"].to_numpy())
    assert cm.qini_score(df)["model"] == pytest.approx(5 / 14, rel=1e-12)
    assert cm.auuc_score(df, normalize=False)["model"] == pytest.approx(31 / 21, rel=1e-12)


def test_uplift_at_k_hand_computed_binary() -> None:
    y, w, s = _HAND["y"], _HAND["w"], _HAND["score"]
    # k=0.5: top 3 = ranks 1-3; treated y {1, 1} -> 1, control y {0} -> 0
    assert uplift_at_k(y, w, s, k=0.5) == 1.0
    # k=0.7: floor(4.2) = 4 = ranks 1-4; treated {1, 1} -> 1, control {0, 1} -> 1/2
    assert uplift_at_k(y, w, s, k=0.7) == 0.5
    # k=1: everyone; treated {1, 1, 0} -> 2/3, control {0, 1, 0} -> 1/3
    assert uplift_at_k(y, w, s, k=1.0) == pytest.approx(1 / 3, rel=1e-12)


def test_uplift_at_k_hand_computed_continuous() -> None:
    # ranked: (w=1, y=10), (w=0, y=2), (w=1, y=6), (w=0, y=4), (w=1, y=0), (w=0, y=3)
    score = np.array([0.2, 0.9, 0.5, 0.7, 0.8, 0.1])
    w = np.array([0, 1, 0, 1, 0, 1])
    y = np.array([4.0, 10.0, 0.0, 6.0, 2.0, 3.0])
    # top 3: treated (10 + 6) / 2 = 8, control 2 -> 6
    assert uplift_at_k(y, w, score, k=0.5) == 6.0
    # all 6: treated (10 + 6 + 3) / 3 = 19/3, control (2 + 4 + 0) / 3 = 2 -> 13/3
    assert uplift_at_k(y, w, score, k=1.0) == pytest.approx(13 / 3, rel=1e-12)


def test_uplift_at_k_is_the_uplift_curve_lift() -> None:
    y, w, score = _simulate(3, "lognormal", ties=True)
    gain = uplift_curve(y, w, score).gain
    for k in (0.1, 0.3, 0.55, 1.0):
        n_top = int(np.floor(k * len(y) + 1e-9))
        assert uplift_at_k(y, w, score, k=k) == pytest.approx(gain[n_top] / n_top, rel=1e-9)


def test_uplift_at_k_rounds_share_robustly() -> None:
    # 0.29 * 100 is 28.999999999999996 in floating point; the top 29 must be kept
    n = 100
    score = np.arange(n, 0, -1, dtype=float)
    w = np.tile([1, 0], n // 2)
    y = np.zeros(n)
    y[28] = 1.0  # rank 29, a treated customer; top 29 holds 15 treated and 14 control
    assert uplift_at_k(y, w, score, k=0.29) == pytest.approx(1 / 15, rel=1e-12)


# --- simulation with known ground truth ---------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("outcome", ["binary", "continuous"])
def test_true_effect_ranks_best(outcome: str, seed: int) -> None:
    """Scored by the true effect, the ranking beats a random one, which beats the reverse."""
    rng = np.random.default_rng(seed)
    n = 20_000
    x = rng.normal(size=n)
    w = rng.integers(0, 2, size=n)
    if outcome == "binary":
        base = 1.0 / (1.0 + np.exp(-(-1.0 + 0.5 * x)))
        tau = 0.05 + 0.1 * np.tanh(x)  # from -0.05 to +0.15, +0.05 on average
        y = rng.binomial(1, np.clip(base + w * tau, 0.0, 1.0)).astype(float)
    else:
        tau = 0.5 + x  # negative for a third of the customers
        y = 10.0 + 2.0 * x + w * tau + rng.normal(scale=2.0, size=n)
    random_score = rng.normal(size=n)
    oracle = qini_score(y, w, tau)
    random = qini_score(y, w, random_score)
    reversed_ = qini_score(y, w, -tau)
    assert oracle > random + 0.15
    assert random > reversed_ + 0.15
    assert abs(random) < 0.15  # the random line is subtracted: random ranking scores about 0
    auuc_random = auuc_score(y, w, random_score)
    assert auuc_score(y, w, tau) > auuc_random + 0.15 > auuc_score(y, w, -tau) + 0.3
    assert auuc_random == pytest.approx(0.5, abs=0.15)  # nothing subtracted: about 0.5
    k_oracle = uplift_at_k(y, w, tau, k=0.2)
    assert k_oracle > uplift_at_k(y, w, random_score, k=0.2) > uplift_at_k(y, w, -tau, k=0.2)
    top_true_mean = tau[np.argsort(-tau)[: n // 5]].mean()
    assert k_oracle == pytest.approx(top_true_mean, abs=0.5 * tau.std())


# --- curve object, inputs and scale ---------------------------------------------------------


def test_curve_object() -> None:
    curve = uplift_curve(_HAND["y"], _HAND["w"], _HAND["score"], normalize=True)
    assert isinstance(curve, UpliftCurve)
    assert curve.fraction[0] == 0.0
    assert curve.fraction[-1] == 1.0
    assert curve.gain[0] == 0.0
    assert curve.gain[-1] == 1.0
    frame = curve.to_frame()
    assert list(frame.columns) == ["fraction", "gain", "random"]
    assert len(frame) == 7
    np.testing.assert_allclose(frame["random"], np.arange(7) / 6)
    with pytest.raises(ValueError, match="read-only"):
        curve.gain[1] = 3.0
    with pytest.raises(AttributeError):
        curve.gain = np.zeros(7)  # type: ignore[misc]


def test_accepts_series_with_any_index_and_leaves_inputs_alone() -> None:
    y, w, score = _simulate(5, "lognormal", ties=False, n=300)
    index = pd.Index(np.arange(300)[::-1] * 7)
    ys, ws, ss = pd.Series(y, index=index), pd.Series(w, index=index), pd.Series(score, index)
    copies = (ys.copy(), ws.copy(), ss.copy())
    assert qini_score(ys, ws, ss) == qini_score(y, w, score)
    assert auuc_score(ys, ws.astype(bool), ss) == auuc_score(y, w, score)
    for before, after in zip(copies, (ys, ws, ss), strict=True):
        pd.testing.assert_series_equal(before, after)


_Y = np.array([1.0, 0.0, 1.0, 0.0])
_W = np.array([1, 0, 1, 0])
_S = np.array([0.4, 0.3, 0.2, 0.1])


@pytest.mark.parametrize(
    ("y", "w", "s", "match"),
    [
        (_Y[:3], _W, _S, "same length"),
        (_Y, np.array([1, 0, 2, 0]), _S, "only 0"),
        (_Y, np.array([1.0, 0.0, 0.5, 0.0]), _S, "only 0"),
        (_Y, np.ones(4), _S, "at least one treated and one control"),
        (_Y, np.zeros(4), _S, "at least one treated and one control"),
        (np.array([1.0, np.nan, 0.0, 0.0]), _W, _S, "y must hold finite"),
        (_Y, _W, np.array([0.4, np.inf, 0.2, 0.1]), "score must hold finite"),
        (_Y, np.array([1, 0, -1, 0]), _S, "only 0"),
        (_Y.reshape(2, 2), _W, _S, "one-dimensional"),
        (np.array(["a", "b", "c", "d"]), _W, _S, "numeric"),
        (np.array([]), np.array([]), np.array([]), "at least one treated"),
    ],
    ids=[
        "length",
        "treatment-2",
        "treatment-half",
        "all-treated",
        "all-control",
        "nan-y",
        "inf-score",
        "treatment-negative",
        "2d",
        "strings",
        "empty",
    ],
)
def test_bad_input_raises(y: np.ndarray, w: np.ndarray, s: np.ndarray, match: str) -> None:
    for func in (qini_curve, uplift_curve, qini_score, auuc_score, uplift_at_k):
        with pytest.raises(ValueError, match=match):
            func(y, w, s)


@pytest.mark.parametrize("k", [0.0, -0.1, 1.5, float("nan"), True])
def test_uplift_at_k_bad_k(k: float) -> None:
    with pytest.raises(ValueError, match="k must be a share"):
        uplift_at_k(_Y, _W, _S, k=k)


def test_uplift_at_k_undefined_top_group() -> None:
    with pytest.raises(ValueError, match="selects nobody"):
        uplift_at_k(_Y, _W, _S, k=0.1)  # floor(0.4) = 0 customers
    with pytest.raises(ValueError, match="needs both"):
        uplift_at_k(_Y, _W, _S, k=0.25)  # the top customer only, who is treated


def test_normalize_needs_nonzero_total() -> None:
    y = np.zeros(4)  # nobody converts: the incremental outcome of treating everyone is 0
    with pytest.raises(ValueError, match="cannot normalize"):
        qini_score(y, _W, _S)
    with pytest.raises(ValueError, match="cannot normalize"):
        auuc_score(y, _W, _S)
    assert qini_score(y, _W, _S, normalize=False) == 0.0
