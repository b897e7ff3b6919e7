"""The effects stage on Hillstrom's MineThatData e-mail experiment, through its spec.

``configs/hillstrom_email.yaml`` analyses the real three-arm experiment with its observed
assignment. Reference values:

* per-arm sizes and means: the published figures in ``../shared/data/hillstrom/README.md``
  (Hillstrom 2008), which that file reproduces;
* every interval: ``statsmodels.api.OLS(y, X).fit(cov_type="HC2")`` on the same CSV read here
  with pandas, X = [1, T] for visit and conversion, and Lin's [1, T, Zc, T*Zc] with Z the
  pre-period spend ``history`` (centred over the two arms compared) for spend; the Welch
  interval from ``statsmodels.stats.weightstats.CompareMeans.tconfint_diff``; the same
  regressions on each zip_code area's rows for the segment effects, and statsmodels'
  ``multipletests(method="holm")`` for their correction;
* spend per conversion (a ratio of means): statsmodels' delta method
  (``statsmodels.stats._delta_method.NonlinearDeltaCov``).

The data lives outside the repository; the tests skip, saying so, where it is absent, and
fail if a file is there with other bytes than the published checksum.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from uplift import pipeline
from uplift.analysis.effects import EffectResults, SegmentEffects
from uplift.spec import ExperimentSpec

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "hillstrom"
FILE = DATA / "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv"
SHA256 = "0e5893329d8b93cefecc571777672028290ab69865718020c78c7284f291aece"
CONTROL = "No E-Mail"
TOL = 1e-8

# ../shared/data/hillstrom/README.md, "Published per-arm figures": n, visit, conversion, spend
PUBLISHED = {
    "Mens E-Mail": (21_307, 0.18276, 0.01253, 1.42262),
    "Womens E-Mail": (21_387, 0.15140, 0.00884, 1.07720),
    "No E-Mail": (21_306, 0.10617, 0.00573, 0.65279),
}

pytestmark = pytest.mark.skipif(
    not FILE.is_file(),
    reason=f"the Hillstrom data is not at {FILE} (the shared data folder beside the repository)",
)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    assert hashlib.sha256(FILE.read_bytes()).hexdigest() == SHA256, (
        f"{FILE} is not the published file"
    )
    return pd.read_csv(FILE)


@pytest.fixture(scope="module")
def effects() -> EffectResults:
    config = yaml.safe_load((ROOT / "configs" / "hillstrom_email.yaml").read_text("utf-8"))
    assert Path(config["population"]["source"]["path"]).name == FILE.name
    config["population"]["source"]["path"] = str(FILE)  # wherever the tests run from
    spec = ExperimentSpec.model_validate(config)
    data = pipeline.prepare(spec)
    return pipeline.average_effects(spec, data)


def test_the_spec_reproduces_the_published_per_arm_figures(effects: EffectResults) -> None:
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        for k, metric in enumerate(("visit", "conversion", "spend")):
            row = effects.get(arm, metric)
            assert row["n_treated"] == PUBLISHED[arm][0]
            assert row["n_control"] == PUBLISHED[CONTROL][0]
            assert round(row["mean_treated"], 5) == PUBLISHED[arm][k + 1]
            assert round(row["mean_control"], 5) == PUBLISHED[CONTROL][k + 1]


@pytest.mark.parametrize("arm", ["Mens E-Mail", "Womens E-Mail"])
@pytest.mark.parametrize("metric", ["visit", "conversion", "spend"])
def test_every_interval_equals_statsmodels_hc2(
    effects: EffectResults, raw: pd.DataFrame, arm: str, metric: str
) -> None:
    pair = raw[raw["segment"].isin([arm, CONTROL])]
    y = pair[metric].to_numpy(dtype=float)
    t = (pair["segment"] == arm).to_numpy(dtype=float)
    columns = [np.ones(len(y)), t]
    if metric == "spend":  # the spec names history as spend's pre-period column
        z = pair["history"].to_numpy(dtype=float)
        z = z - z.mean()
        columns += [z, z * t]
    fit = sm.OLS(y, np.column_stack(columns)).fit(cov_type="HC2")
    low, high = fit.conf_int(alpha=0.05)[1]
    row = effects.get(arm, metric)
    assert row["method"] == ("lin_hc2" if metric == "spend" else "ols_hc2")
    assert row["estimate"] == pytest.approx(fit.params[1], abs=TOL)
    assert row["std_error"] == pytest.approx(fit.bse[1], abs=TOL)
    assert row["ci_low"] == pytest.approx(low, abs=TOL)
    assert row["ci_high"] == pytest.approx(high, abs=TOL)
    assert row["p_value"] == pytest.approx(fit.pvalues[1], abs=TOL)
    # the relative lift: delta method on the intercept and the effect
    b0, b1 = fit.params[0], fit.params[1]
    cov = fit.cov_params()
    gradient = np.array([-b1 / b0**2, 1 / b0])
    lift_se = float(np.sqrt(gradient @ cov[:2, :2] @ gradient))
    assert row["lift"] == pytest.approx(b1 / b0, abs=TOL)
    assert row["lift_ci_high"] - row["lift"] == pytest.approx(1.959963984540054 * lift_se, abs=TOL)
    # the plain difference in means with its Welch interval
    compare = CompareMeans(DescrStatsW(y[t == 1]), DescrStatsW(y[t == 0]))
    welch_low, welch_high = compare.tconfint_diff(alpha=0.05, usevar="unequal")
    assert row["welch_ci_low"] == pytest.approx(welch_low, abs=TOL)
    assert row["welch_ci_high"] == pytest.approx(welch_high, abs=TOL)


def test_cuped_on_last_years_spend_narrows_the_spend_interval(effects: EffectResults) -> None:
    # a measured property of this data, not a target: history explains a little of spend
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        row = effects.get(arm, "spend")
        assert row["adjusted_for"] == "history"
        assert 0 < row["variance_reduction"] < 0.2


@pytest.mark.parametrize("arm", ["Mens E-Mail", "Womens E-Mail"])
def test_spend_per_conversion_equals_statsmodels_delta_method(
    effects: EffectResults, raw: pd.DataFrame, arm: str
) -> None:
    # reference: statsmodels' delta method (NonlinearDeltaCov, numerical derivative) on the
    # arms' mean spend and conversion and their covariance np.cov(ddof=1) / n
    params, blocks = [], []
    for label in (CONTROL, arm):
        rows = raw[raw["segment"] == label]
        stacked = np.vstack([rows["spend"], rows["conversion"].astype(float)])
        params += list(stacked.mean(axis=1))
        blocks.append(np.cov(stacked, ddof=1) / len(rows))
    cov = np.zeros((4, 4))
    cov[:2, :2], cov[2:, 2:] = blocks
    ref = NonlinearDeltaCov(lambda p: np.atleast_1d(p[2] / p[3] - p[0] / p[1]), params, cov)
    row = effects.get(arm, "spend_per_conversion")
    assert row["method"] == "delta_ratio"
    assert row["estimate"] == pytest.approx(ref.predicted()[0], abs=TOL)
    assert row["std_error"] == pytest.approx(np.sqrt(ref.var()[0]), rel=1e-6)


@pytest.fixture(scope="module")
def by_zip_code() -> SegmentEffects:
    config = yaml.safe_load((ROOT / "configs" / "hillstrom_email.yaml").read_text("utf-8"))
    config["population"]["source"]["path"] = str(FILE)
    spec = ExperimentSpec.model_validate(config)
    return pipeline.effects_by_segment(spec, pipeline.prepare(spec))


@pytest.mark.parametrize("zip_code", ["Rural", "Surburban", "Urban"])
@pytest.mark.parametrize("arm", ["Mens E-Mail", "Womens E-Mail"])
def test_every_segment_interval_equals_statsmodels_hc2(
    by_zip_code: SegmentEffects, raw: pd.DataFrame, zip_code: str, arm: str
) -> None:
    pair = raw[raw["segment"].isin([arm, CONTROL]) & (raw["zip_code"] == zip_code)]
    t = (pair["segment"] == arm).to_numpy(dtype=float)
    for metric in ("visit", "conversion", "spend"):
        columns = [np.ones(len(pair)), t]
        if metric == "spend":  # Lin's design, history centred over this area's pair
            z = pair["history"].to_numpy(dtype=float)
            columns += [z - z.mean(), (z - z.mean()) * t]
        fit = sm.OLS(pair[metric].to_numpy(dtype=float), np.column_stack(columns))
        ref = fit.fit(cov_type="HC2")
        row = by_zip_code.get(zip_code, arm, metric)
        low, high = ref.conf_int(alpha=0.05)[1]
        assert row["estimate"] == pytest.approx(ref.params[1], abs=TOL)
        assert row["ci_low"] == pytest.approx(low, abs=TOL)
        assert row["ci_high"] == pytest.approx(high, abs=TOL)
        assert row["p_value"] == pytest.approx(ref.pvalues[1], abs=TOL)


def test_segment_effects_are_holm_corrected_across_areas_arms_and_metrics(
    by_zip_code: SegmentEffects,
) -> None:
    table = by_zip_code.to_frame()
    assert by_zip_code.correction == "holm"
    assert by_zip_code.family_size == len(table) == 3 * 2 * 4
    # reference: statsmodels' Holm adjustment of the same 24 p-values
    expected = multipletests(table["p_value"], alpha=0.05, method="holm")[1]
    np.testing.assert_allclose(table["p_adjusted"], expected, atol=1e-15)
    # both e-mails raise visits in every area, whatever the correction
    visits = table[table["metric"] == "visit"]
    assert (visits["status"] == "positive").all()


def test_womens_email_visits_out_of_fold_qini_interval_is_above_zero() -> None:
    # Womens E-Mail against No E-Mail on visit: a T-learner on the spec's features,
    # 5-fold cross-fitted, its out-of-fold normalized Qini (causalml's convention) with a
    # 200-replicate percentile bootstrap interval. A measured property of this data: the
    # women's e-mail works better for some customers, and the model finds which.
    from uplift.analysis.features import encode_features
    from uplift.analysis.learners import cross_fit_uplift
    from uplift.analysis.metrics import qini_interval

    config = yaml.safe_load((ROOT / "configs" / "hillstrom_email.yaml").read_text("utf-8"))
    config["population"]["source"]["path"] = str(FILE)
    spec = ExperimentSpec.model_validate(config)
    data = pipeline.prepare(spec)
    pair = data.arms.isin(["Womens E-Mail", CONTROL]).to_numpy()
    X = encode_features(data.frame[pair], spec.population.features)
    arms = data.arms[pair]
    visit = data.outcomes.loc[pair, "visit"]
    result = cross_fit_uplift(
        "t_learner", X, arms, visit, CONTROL, ["Womens E-Mail"], folds=5, seed=0
    )
    treated = (arms == "Womens E-Mail").to_numpy().astype(int)
    qini = qini_interval(visit.to_numpy(), treated, result.predictions["Womens E-Mail"].to_numpy())
    print(
        f"Hillstrom Womens E-Mail / visit: out-of-fold Qini {qini.score:.4f} "
        f"(95% CI {qini.ci_low:.4f} to {qini.ci_high:.4f})"
    )
    assert qini.ci_low > 0
