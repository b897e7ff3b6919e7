"""Tests of uplift.value.migration and the launch-level scoring it adds to uplift.value.rfm.

- Launch cut points (:func:`ranked_bounds`, :func:`rfm_bounds`): hand-computed cases with
  ties, and the property that scoring the launch values on them gives back
  :func:`ranked_score` exactly.
- Transition matrices and moving up: a ten-customer fixture whose counts are written out
  below and can be checked by eye.
- Intervals and p-values: reference values from statsmodels 0.15.0
  (``statsmodels.stats.proportion.confint_proportions_2indep`` with ``method="newcomb"`` and
  ``"wald"``, ``compare="diff"``; ``proportions_ztest`` for the p-value), written out for the
  fixture and compared live on a grid of counts.
- A simulation with a known truth: the simulators' end-of-window RFM columns, the true
  effect on P(move up) computed by Monte Carlo over the simulator's noise with the
  customers fixed, and the coverage of the interval over repeated randomizations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from uplift.data.simulate import Simulation, simulate
from uplift.errors import DataError
from uplift.value.migration import (
    ALL_LEVELS,
    difference_in_proportions,
    move_up_effects,
    rfm_levels,
    transition_matrices,
)
from uplift.value.rfm import (
    SEGMENT_ORDER,
    Role,
    bounded_score,
    ranked_bounds,
    ranked_score,
    rfm_bounds,
    rfm_scores,
    rfm_scores_on_bounds,
    rfm_segments,
)

# --- launch cut points --------------------------------------------------------------------


def test_ranked_bounds_by_hand_with_ties() -> None:
    values = pd.Series([10, 20, 20, 30, 40, 40, 40, 50, 60])
    # ranked scores 1, 1, 1, 2, 2, 2, 2, 3, 3 (tests/value/test_rfm.py); the largest value
    # scored at most 1 is 20, at most 2 is 40
    assert ranked_bounds(values, 3) == (20.0, 40.0)
    later = pd.Series([5, 20, 21, 40, 41, 1000])
    assert list(bounded_score(later, (20.0, 40.0), strict=False)) == [1, 1, 2, 2, 3, 3]


def test_ranked_bounds_descending_by_hand() -> None:
    recency = pd.Series([5, 5, 100, 200, 30, 1])
    # descending scores 3, 3, 1, 1, 2, 3: the largest recency scored 3 is 5, scored 2 or
    # more is 30; at most 5 days scores 3, 6 to 30 scores 2, more than 30 scores 1
    assert ranked_bounds(recency, 3, ascending=False) == (5.0, 30.0)
    later = pd.Series([0, 5, 6, 30, 31, 400])
    scores = bounded_score(later, (5.0, 30.0), ascending=False, strict=False)
    assert list(scores) == [3, 3, 2, 2, 1, 1]


def test_empty_launch_scores_stay_empty() -> None:
    # ten tied values share score 3 of 4 (average rank 5.5 of 10, times 4: 2.2 -> 3):
    # scores 1 and 2 have no value below them, score 4 none above; every later value,
    # however small or large, lands on the only level that occurred at launch
    tied = pd.Series([7.0] * 10)
    assert set(ranked_score(tied, 4)) == {3}
    bounds = ranked_bounds(tied, 4)
    assert bounds == (-math.inf, -math.inf, math.inf)
    assert set(bounded_score(pd.Series([-5.0, 7.0, 8.0, 1e9]), bounds, strict=False)) == {3}
    # an empty score in the middle repeats the cut point before it
    values = pd.Series([1, 1, 1, 1, 1, 1, 2, 3])
    scores = ranked_score(values, 4)  # ranks 3.5 -> 2 (x6), 7 -> 4, 8 -> 4: no 1, no 3
    assert list(scores) == [2] * 6 + [4, 4]
    bounds = ranked_bounds(values, 4)
    assert bounds == (-math.inf, 1.0, 1.0)
    assert list(bounded_score(pd.Series([0.5, 1, 1.5, 9]), bounds, strict=False)) == [2, 2, 4, 4]


def test_bounded_score_stays_strict_by_default() -> None:
    with pytest.raises(ValueError, match="finite"):
        bounded_score(pd.Series([1.0]), (-math.inf, 2.0))
    with pytest.raises(ValueError, match="strictly increasing"):
        bounded_score(pd.Series([1.0]), (2.0, 2.0))
    with pytest.raises(ValueError, match="must not decrease"):
        bounded_score(pd.Series([1.0]), (3.0, 2.0), strict=False)
    with pytest.raises(ValueError, match="must be a number"):
        bounded_score(pd.Series([1.0]), (math.nan, 2.0), strict=False)
    with pytest.raises(ValueError, match="at least one value"):
        ranked_bounds(pd.Series([], dtype=float), 3)


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=60),
    bins=st.integers(min_value=2, max_value=10),
    ascending=st.booleans(),
)
def test_launch_values_score_the_same_on_their_cut_points(
    values: list[int], bins: int, ascending: bool
) -> None:
    series = pd.Series(values, dtype=float)
    bounds = ranked_bounds(series, bins, ascending=ascending)
    assert all(b <= c for b, c in itertools.pairwise(bounds))
    again = bounded_score(series, bounds, ascending=ascending, strict=False)
    pd.testing.assert_series_equal(again, ranked_score(series, bins, ascending=ascending))
    # any other value lands on a score that occurred at launch
    others = pd.Series(np.arange(-2.0, 11.0, 0.5))
    later = bounded_score(others, bounds, ascending=ascending, strict=False)
    assert set(later) <= set(again)


def test_rfm_bounds_reproduce_the_launch_scores() -> None:
    sim = simulate("lower_check_offer", 3000, 4, ["offer"])
    columns = ("recency_days", "frequency_180d", "monetary_180d")
    explicit = {"frequency": [1, 4]}
    for bounds in (None, explicit):
        cuts = rfm_bounds(sim.population, *columns, 4 if bounds is None else 3, bounds=bounds)
        scores = rfm_scores(sim.population, *columns, 4 if bounds is None else 3, bounds=bounds)
        pd.testing.assert_frame_equal(rfm_scores_on_bounds(sim.population, *columns, cuts), scores)
    assert rfm_bounds(sim.population, *columns, bounds=explicit)["frequency"] == (1.0, 4.0)
    with pytest.raises(ValueError, match="exactly the dimensions"):
        rfm_scores_on_bounds(sim.population, *columns, {"recency": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"value.migration.monetary"):
        rfm_scores_on_bounds(
            sim.population.drop(columns="monetary_180d"),
            *columns,
            cuts,
            key="value.migration",
            where="end-of-window data",
        )


def test_rfm_levels_score_the_end_on_the_launch_scale_not_by_rank() -> None:
    # monetary at launch 10..60 scores 1, 1, 2, 2, 3, 3 (cut points 20 and 40); recency and
    # frequency are all equal and score 2 of 3 (average rank 3.5 of 6, times 3: 1.75 -> 2)
    launch = pd.DataFrame(
        {"r": [10] * 6, "f": [2] * 6, "m": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]},
        index=list("abcdef"),
    )
    # at the end everyone spent more: a, b and d cross a launch boundary, c stays (30 -> 35
    # is still within (20, 40]); re-ranked among the end values they would still be
    # 1, 1, 2, 2, 3, 3. Rows come in another order and with an extra customer.
    end = pd.DataFrame(
        {"r_end": [1, 400, 10, 10, 10, 10, 10], "f": [9, 2, 2, 0, 2, 2, 2]},
        index=list("zfedcba"),
    )
    end["m_end"] = [1.0, 61.0, 55.0, 41.0, 35.0, 25.0, 21.0]
    levels = rfm_levels(
        launch, end, "r", "f", "m", end_columns={"recency": "r_end", "monetary": "m_end"}
    )
    assert list(levels.launch["M"]) == [1, 1, 2, 2, 3, 3]
    assert list(levels.end["M"]) == [2, 2, 2, 3, 3, 3]
    assert levels.end.index.equals(launch.index)
    assert levels.bounds["monetary"] == (20.0, 40.0)
    # recency: all 10 at launch score 2; cut points (-inf, inf): nothing moves
    assert list(levels.end["R"]) == [2] * 6
    # frequency: 2 at launch scores 2; 0 at the end stays on the only launch level, 2
    assert list(levels.end["F"]) == [2] * 6
    assert list(levels.launch["segment"]) == list(rfm_segments(levels.launch[["R", "F", "M"]]))
    assert levels.segments == tuple(SEGMENT_ORDER)
    assert levels.to_dict() == {
        "bins": 3,
        "bounds": {"recency": ["-inf", "inf"], "frequency": ["-inf", "inf"], "monetary": [20, 40]},
        "segments": SEGMENT_ORDER,
    }
    frame = levels.to_frame()
    assert list(frame.columns[:4]) == ["launch_R", "launch_F", "launch_M", "launch_segment"]
    with pytest.raises(DataError, match="lack 1 of the 6"):
        rfm_levels(launch, end.drop(index="a"), "r", "f", "m")
    with pytest.raises(ValueError, match="by dimension"):
        rfm_levels(launch, end, "r", "f", "m", end_columns={"money": "m_end"})


# --- the ten-customer fixture -------------------------------------------------------------

#: customer:         a  b  c  d  e    f  g  h  i  j
#: arm:              control (a-e)    treated (f-j)
#: M at launch:      1  1  2  2  3    1  1  2  2  3
#: M at the end:     1  2  2  1  3    2  3  3  2  2
#: moved up:            b                f  g  h        control 1/5, treated 3/5
#: moved down:             d                      j     control 1/5, treated 1/5
ARMS = pd.Series(["control"] * 5 + ["treated"] * 5, index=list("abcdefghij"))
LAUNCH = pd.DataFrame({"M": [1, 1, 2, 2, 3, 1, 1, 2, 2, 3]}, index=ARMS.index)
END = pd.DataFrame({"M": [1, 2, 2, 1, 3, 2, 3, 3, 2, 2]}, index=ARMS.index)

# statsmodels 0.15.0, confint_proportions_2indep(count1, nobs1, count2, nobs2, compare="diff")
NEWCOMBE_3_5_VS_1_5 = (-0.16261479448193844, 0.726436164874867)
WALD_3_5_VS_1_5 = (-0.15436152973987144, 0.9543615297398713)
NEWCOMBE_2_2_VS_1_2 = (-0.2725727851131816, 0.9054687942657693)  # also 1/2 against 0/2
# statsmodels 0.15.0, proportions_ztest([count1, count2], [nobs1, nobs2])[1]
P_3_5_VS_1_5 = 0.19670560245894686
P_2_2_VS_1_2 = 0.24821307898992362  # also 1/2 against 0/2


def test_transition_matrices_by_hand() -> None:
    result = transition_matrices(LAUNCH, END, ARMS)
    assert result.arms == ("control", "treated")
    assert result.levels == {"M": (1, 2, 3)}
    control = [[1, 1, 0], [1, 1, 0], [0, 0, 1]]  # a, b | d, c | e
    treated = [[0, 1, 1], [0, 1, 1], [0, 1, 0]]  # f, g | i, h | j
    assert result.matrix("M", "control").to_numpy().tolist() == control
    assert result.matrix("M", "treated").to_numpy().tolist() == treated
    shares = result.matrix("M", "treated", share=True)
    assert shares.to_numpy().tolist() == [[0, 0.5, 0.5], [0, 0.5, 0.5], [0, 1, 0]]
    assert shares.index.name == "launch" and shares.columns.name == "end"
    frame = result.to_frame()
    assert list(frame.columns) == ["dimension", "arm", "launch", "end", "count", "share"]
    assert len(frame) == 2 * 3 * 3 and frame["count"].sum() == 10
    as_dict = result.to_dict()
    assert as_dict["arms"] == ["control", "treated"]
    assert as_dict["dimensions"]["M"]["levels"] == [1, 2, 3]
    assert as_dict["dimensions"]["M"]["counts"]["control"] == control
    assert as_dict["dimensions"]["M"]["shares"]["control"][2] == [0.0, 0.0, 1.0]
    assert "M, arm 'treated'" in result.summary()


def test_transition_matrices_with_named_levels_and_unlisted_arms() -> None:
    launch = pd.Series(["Loyal", "At Risk", "Loyal", "Champions"], index=[1, 2, 3, 4])
    end = pd.Series(["Champions", "At Risk", "Loyal", "Loyal"], index=[4, 3, 2, 1])
    arms = pd.Series(["c", "c", None, "holdout"], index=[1, 2, 3, 4])
    order = ["Champions", "Loyal", "Promising", "At Risk"]
    result = transition_matrices(
        launch.rename("segment"),
        end.rename("segment"),
        arms,
        levels={"segment": order},
        arm_order=["c"],
    )
    matrix = result.matrix("segment", "c")
    assert list(matrix.index) == order
    # customer 1: Loyal -> Loyal; customer 2: At Risk -> Loyal; 3 has no arm, 4 another arm
    assert matrix.loc["Loyal", "Loyal"] == 1 and matrix.loc["At Risk", "Loyal"] == 1
    assert matrix.to_numpy().sum() == 2
    # a level that never occurs has no row share
    assert result.matrix("segment", "c", share=True).loc["Promising"].isna().all()
    assert result.to_dict()["dimensions"]["segment"]["shares"]["c"][2] == [None] * 4
    with pytest.raises(DataError, match="not among"):
        transition_matrices(launch, end, arms, levels={"level": ["Loyal", "At Risk"]})
    with pytest.raises(DataError, match="lack 1 customers"):
        transition_matrices(launch, end.drop(index=2), arms)
    with pytest.raises(ValueError, match="same columns"):
        transition_matrices(launch.rename("a"), end.rename("b"), arms)
    with pytest.raises(KeyError, match="no arm"):
        result.matrix("segment", "holdout")


def test_move_up_effects_by_hand() -> None:
    result = move_up_effects(
        LAUNCH, END, ARMS, "control", ["treated"], dimensions=["M"], by_level=True
    )
    table = result.to_frame()
    # all customers, then launch levels 1 and 2; level 3 is the top, nobody can move up
    assert list(table["launch_level"]) == [ALL_LEVELS, 1, 2]
    assert list(table["n_treated"]) == [5, 2, 2] and list(table["n_control"]) == [5, 2, 2]
    assert list(table["moved_treated"]) == [3, 2, 1]
    assert list(table["moved_control"]) == [1, 1, 0]
    assert table["estimate"].tolist() == pytest.approx([0.4, 0.5, 0.5])
    np.testing.assert_allclose(table.loc[0, ["ci_low", "ci_high"]], NEWCOMBE_3_5_VS_1_5)
    np.testing.assert_allclose(table.loc[1, ["ci_low", "ci_high"]], NEWCOMBE_2_2_VS_1_2)
    np.testing.assert_allclose(table.loc[2, ["ci_low", "ci_high"]], NEWCOMBE_2_2_VS_1_2)
    np.testing.assert_allclose(table["p_value"], [P_3_5_VS_1_5, P_2_2_VS_1_2, P_2_2_VS_1_2])
    row = result.get("treated", "M", 1)
    assert row["share_treated"] == 1.0 and row["share_control"] == 0.5
    assert result.get("treated", "M")["launch_level"] == ALL_LEVELS
    as_dict = result.to_dict()
    assert as_dict["method"] == "newcombe" and as_dict["direction"] == "up"
    assert as_dict["rows"][0]["moved_treated"] == 3
    assert "Newcombe hybrid score 95% CI" in result.summary()

    wald = move_up_effects(
        LAUNCH, END, ARMS, "control", ["treated"], dimensions=["M"], method="wald"
    )
    np.testing.assert_allclose(wald.to_frame().loc[0, ["ci_low", "ci_high"]], WALD_3_5_VS_1_5)

    down = move_up_effects(
        LAUNCH, END, ARMS, "control", ["treated"], dimensions=["M"], by_level=True, direction="down"
    )
    frame = down.to_frame()
    # nobody can move down from level 1; d moved 2 -> 1, j 3 -> 2
    assert list(frame["launch_level"]) == [ALL_LEVELS, 2, 3]
    assert list(frame["moved_treated"]) == [1, 0, 1]
    assert list(frame["moved_control"]) == [1, 1, 0]


def test_move_up_effects_refuse_what_they_cannot_compare() -> None:
    with pytest.raises(ValueError, match="needs customers"):
        move_up_effects(LAUNCH, END, ARMS, "control", ["missing"])
    with pytest.raises(DataError, match="no dimension 'F'"):
        move_up_effects(LAUNCH, END, ARMS, "control", ["treated"], dimensions=["F"])
    named = LAUNCH.assign(segment="Loyal")
    with pytest.raises(DataError, match="ordered numeric levels"):
        move_up_effects(named, named, ARMS, "control", ["treated"], dimensions=["segment"])
    with pytest.raises(ValueError, match="direction"):
        move_up_effects(LAUNCH, END, ARMS, "control", ["treated"], direction="sideways")  # type: ignore[arg-type]


def test_difference_in_proportions_matches_statsmodels() -> None:
    cases = [
        (c1, n1, c2, n2)
        for n1, n2 in [(1, 1), (5, 7), (40, 25), (1000, 1200)]
        for c1 in sorted({0, 1, n1 // 3, n1 - 1, n1})
        for c2 in sorted({0, n2 // 2, n2})
    ]
    x1, n1, x2, n2 = (np.array(v) for v in zip(*cases, strict=True))
    methods: list[tuple[Literal["newcombe", "wald"], str]] = [
        ("newcombe", "newcomb"),
        ("wald", "wald"),
    ]
    for method, name in methods:
        for alpha in (0.05, 0.1):
            ours = difference_in_proportions(x1, n1, x2, n2, alpha=alpha, method=method)
            for i, (c1, m1, c2, m2) in enumerate(cases):
                low, high = confint_proportions_2indep(
                    c1, m1, c2, m2, method=name, compare="diff", alpha=alpha
                )
                assert ours.loc[i, "ci_low"] == pytest.approx(low, abs=1e-12), (method, cases[i])
                assert ours.loc[i, "ci_high"] == pytest.approx(high, abs=1e-12), (method, cases[i])
    p = difference_in_proportions(x1, n1, x2, n2)["p_value"].to_numpy()
    for i, (c1, m1, c2, m2) in enumerate(cases):
        if 0 < c1 + c2 < m1 + m2:
            assert p[i] == pytest.approx(proportions_ztest([c1, c2], [m1, m2])[1], rel=1e-10)
        else:  # every trial or none succeeded: no variance, no test
            assert np.isnan(p[i])
    empty = difference_in_proportions(0, 0, 1, 2)
    assert empty.isna().all(axis=None)
    with pytest.raises(ValueError, match="between 0"):
        difference_in_proportions(3, 2, 1, 2)
    with pytest.raises(ValueError, match="method"):
        difference_in_proportions(1, 2, 1, 2, method="exact")  # type: ignore[arg-type]


# --- a simulated campaign with a known truth ----------------------------------------------

COLUMNS = ("recency_days", "frequency_180d", "monetary_180d")
N_CUSTOMERS = 3000
N_TRUTH_DRAWS = 60
N_REPLICATES = 200


def _end_scores(
    sim: Simulation, drawn: pd.DataFrame, cuts: Mapping[Role, Sequence[float]]
) -> pd.DataFrame:
    """R, F and M of the drawn end-of-window columns, on the launch's cut points."""
    end = sim.simulator.end_of_window
    recency, frequency, monetary = (end[c] for c in COLUMNS)
    return rfm_scores_on_bounds(drawn, recency, frequency, monetary, cuts)


def _coverage(
    kind: str, n: int = N_CUSTOMERS, replicates: int = N_REPLICATES, seed: int = 5
) -> tuple[dict[str, float], dict[str, float], float]:
    """Coverage of the 95% intervals of the effect on moving up in M and in F, the true
    effects, and the mean half-width of the intervals."""
    sim = simulate(kind, n, 21, ["offer"])
    pop = sim.population
    cuts = rfm_bounds(pop, *COLUMNS)
    launch = rfm_scores(pop, *COLUMNS)
    rng = np.random.default_rng(seed)

    many = np.tile(np.arange(n), N_TRUTH_DRAWS)
    rows = pop.iloc[many].reset_index(drop=True)
    shares = {}
    for arm, scale in (("control", 0.0), ("offer", 1.0)):
        drawn = sim.simulator.draw(rows, np.full(len(rows), scale), rng.random((len(rows), 6)))
        end = _end_scores(sim, drawn, cuts)
        for dim in ("M", "F"):
            shares[(arm, dim)] = (end[dim].to_numpy() > launch[dim].to_numpy()[many]).mean()
    truth = {dim: shares[("offer", dim)] - shares[("control", dim)] for dim in ("M", "F")}

    covered = dict.fromkeys(truth, 0)
    half_widths = []
    for _ in range(replicates):
        treated = np.zeros(n, dtype=bool)
        treated[rng.permutation(n)[: n // 2]] = True
        arms = pd.Series(np.where(treated, "offer", "control"), index=pop.index)
        drawn = sim.simulator.draw(pop, treated.astype(float), rng.random((n, 6)))
        end = _end_scores(sim, drawn, cuts)
        result = move_up_effects(launch, end, arms, "control", ["offer"])
        for row in result.to_frame().itertuples():
            covered[str(row.dimension)] += row.ci_low <= truth[str(row.dimension)] <= row.ci_high
            half_widths.append((row.ci_high - row.ci_low) / 2)
    coverage = {dim: hits / replicates for dim, hits in covered.items()}
    return coverage, truth, float(np.mean(half_widths))


@pytest.mark.parametrize("kind", ["lower_check_offer", "trial_lessons", "feature_unlock"])
def test_the_interval_covers_the_true_effect_on_moving_up(kind: str) -> None:
    # The customers are fixed (one simulated base of 3000) and the launch levels with
    # them; what varies is who is treated (a complete randomization, half and half) and
    # the outcome noise. The truth is each customer's probability of ending above their
    # launch level in M (and in F) with and without the offer, averaged over the
    # customers: a Monte Carlo over the simulator's noise with the customers fixed, 60
    # draws of each customer per arm (standard error under 0.001, against half-widths of
    # the intervals of about 0.01 to 0.03). The difference in shares is unbiased for it,
    # so the 95% intervals should hold it about 95% of the time.
    coverage, truth, half_width = _coverage(kind)
    # the offer has a real effect on moving up, so coverage is not won by a null effect
    assert truth["M"] > 0.004 and truth["F"] > 0.004, truth
    assert min(coverage.values()) >= 0.9, f"{kind}: coverage {coverage}, truth {truth}"
    assert half_width < 0.03


def test_migration_runs_the_three_steps_on_the_launch_scale() -> None:
    # the wrapper the pipeline calls gives what the three functions give one by one
    from uplift.value.migration import migration

    rng = np.random.default_rng(8)
    n = 600
    launch = pd.DataFrame(
        {
            "rec": rng.integers(0, 300, n),
            "freq": rng.poisson(2.0, n),
            "mon": rng.gamma(2.0, 40.0, n).round(2),
        }
    )
    end = pd.DataFrame(
        {
            "recency": launch["rec"] + 30,
            "frequency": launch["freq"] + rng.integers(0, 2, n),
            "monetary": launch["mon"] + rng.gamma(1.0, 20.0, n),
        }
    )
    arms = pd.Series(rng.choice(["control", "offer"], n))
    result = migration(
        launch, end, arms, "control", ["offer"], recency="rec", frequency="freq", monetary="mon"
    )
    levels = rfm_levels(
        launch,
        end,
        "rec",
        "freq",
        "mon",
        end_columns={"recency": "recency", "frequency": "frequency", "monetary": "monetary"},
    )
    pd.testing.assert_frame_equal(result.levels.end, levels.end)
    moves = move_up_effects(levels.launch, levels.end, arms, "control", ["offer"], by_level=True)
    pd.testing.assert_frame_equal(result.moves.to_frame(), moves.to_frame())
    assert set(result.to_dict()) == {"scale", "transitions", "moves"}


def test_the_pipeline_reads_the_end_columns_and_names_a_missing_one(tmp_path) -> None:
    # an observed-assignment experiment in one CSV file: features, arm and outcomes, with the
    # simulator's end-of-window R, F and M; then the same file without them
    import yaml

    from uplift import pipeline
    from uplift.data.simulate import simulate
    from uplift.errors import DataError
    from uplift.spec import ExperimentSpec

    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    sim = simulate("trial_lessons", 3000, 5, ["two_lessons", "four_lessons"])
    arms = pd.Series(
        np.random.default_rng(5).choice(["control", "two_lessons", "four_lessons"], 3000),
        index=sim.population.index,
    )
    frame = pd.concat([sim.population, sim.draw(arms)], axis=1).assign(arm=arms)
    frame.to_csv(tmp_path / "base.csv", index=False)
    config["population"]["source"] = {"kind": "csv", "path": str(tmp_path / "base.csv")}
    config["assignment"] = {"column": "arm", "control": "control"}
    config["outcomes"]["source"] = {"kind": "population"}
    spec = ExperimentSpec.model_validate(config)
    data = pipeline.prepare(spec)
    assert data.end_of_window is not None
    assert list(data.end_of_window.columns) == ["recency", "frequency", "monetary"]
    expected = frame.set_index("customer_id").loc[data.frame["customer_id"], "frequency_180d_end"]
    np.testing.assert_array_equal(data.end_of_window["frequency"], expected.to_numpy())
    moved = pipeline.segment_migration(spec, data)
    assert moved is not None and set(moved.moves.to_frame()["arm"]) == {
        "two_lessons",
        "four_lessons",
    }

    frame.drop(columns="recency_days_end").to_csv(tmp_path / "base.csv", index=False)
    with pytest.raises(DataError, match=r"value\.migration\.recency: .*'recency_days_end'"):
        pipeline.prepare(spec)
