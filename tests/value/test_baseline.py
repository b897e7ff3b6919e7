"""Tests of uplift.value.baseline: baseline CLV from transactions or a pre-period column.

* The run rate is checked against its formula written out by hand.
* From transactions, on CDNOW's sample of 2,357 customers' purchases (``CDNOW_sample.txt``,
  shipped in the ``lifetimes`` wheel, a dev dependency; ``lifetimes`` is never imported):
  every experiment customer's baseline equals the chain of :mod:`uplift.value.lifetime`
  run by hand (``rfm_summary``, ``fit_bgnbd``, ``fit_gamma_gamma``, ``lifetime_value``),
  whose fits ``tests/value/test_lifetime.py`` checks against Fader, Hardie & Lee's
  published CDNOW parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from uplift.errors import DataError, SpecError
from uplift.spec import load_spec
from uplift.value.baseline import run_rate_clv, transactions_clv
from uplift.value.lifetime import fit_bgnbd, fit_gamma_gamma, lifetime_value, rfm_summary


def test_run_rate_by_hand() -> None:
    spend = pd.Series([365.0, 0.0, 730.0], index=["a", "b", "c"])
    result = run_rate_clv(
        spend,
        period_days=365,
        horizon_months=3,
        annual_discount_rate=0.12,
        margin=0.5,
        unit_value=2.0,
    )
    # 365 a year is 365.25 / 12 = 30.4375 a month; margin x unit value = 1.0; three months
    # discounted at d = 1.12 ** (1 / 12) - 1
    d = 1.12 ** (1 / 12) - 1
    months = sum((1 + d) ** -m for m in (1, 2, 3))
    np.testing.assert_allclose(result.values, [30.4375 * months, 0.0, 60.875 * months], rtol=1e-13)
    assert list(result.values.index) == ["a", "b", "c"]
    assert result.method == "run_rate"
    assert result.to_dict()["total"] == pytest.approx(91.3125 * months, rel=1e-13)


def test_transactions_baseline_is_the_bgnbd_gamma_gamma_chain(
    cdnow_transactions: pd.DataFrame,
) -> None:
    # an experiment of 300 CDNOW customers and 5 customers with no purchase at all
    known = sorted(cdnow_transactions["customer"].unique())[:: 2357 // 300][:300]
    ids = pd.Series([*known, "x1", "x2", "x3", "x4", "x5"], index=range(100, 405))
    result = transactions_clv(
        cdnow_transactions,
        ids,
        id_column="customer",
        date_column="date",
        amount_column="amount",
        observation_end="1998-06-30",
        horizon_months=12,
        annual_discount_rate=0.1,
        margin=0.3,
    )
    # by hand: the same chain on the same table
    history = rfm_summary(
        cdnow_transactions, "customer", "date", "amount", observation_end="1998-06-30"
    )
    bgnbd = fit_bgnbd(history["frequency"], history["recency"], history["T"])
    repeat = history[history["frequency"] > 0]
    spend = fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"])
    clv = lifetime_value(
        bgnbd,
        spend,
        history["frequency"],
        history["recency"],
        history["T"],
        history["monetary_value"],
        months=12,
        annual_discount_rate=0.1,
        margin=0.3,
    )
    np.testing.assert_allclose(result.values.iloc[:300], clv.loc[known].to_numpy(), rtol=1e-12)
    assert (result.values.iloc[300:] == 0).all()
    assert result.without_history == 5
    assert list(result.values.index) == list(ids.index)
    params = {**bgnbd.params.to_dict(), **spend.params.to_dict()}
    assert result.params == pytest.approx(params, rel=1e-12)
    assert result.to_dict()["method"] == "transactions"


def test_transactions_errors_name_the_key_and_what_was_found(
    cdnow_transactions: pd.DataFrame,
) -> None:
    ids = pd.Series(["0001", "0002"])
    options = {
        "id_column": "customer",
        "date_column": "day",
        "amount_column": "amount",
        "observation_end": None,
        "horizon_months": 12,
        "annual_discount_rate": 0.1,
        "margin": 0.3,
        "source": "transactions file t.csv",
    }
    with pytest.raises(DataError, match=r"value\.baseline_clv\.transactions: .*'day'"):
        transactions_clv(cdnow_transactions, ids, **options)
    options["date_column"] = "date"
    with pytest.raises(DataError, match=r"none of the experiment's 2 customers"):
        transactions_clv(cdnow_transactions, pd.Series(["nobody", "none"]), **options)
    late = cdnow_transactions.head(50)
    with pytest.raises(DataError, match=r"value\.baseline_clv\.transactions: transactions file"):
        transactions_clv(late, ids, **{**options, "observation_end": "1997-01-01"})


def _small_example(tmp_path: Path) -> dict[str, Any]:
    """The trial-lessons example config on 3,000 simulated customers, its ledger in tmp_path."""
    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    config["population"]["source"]["n"] = 3000
    config["ledger"] = {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
    return dict(config)


def test_the_pipeline_reads_the_transactions_file_the_spec_names(
    tmp_path: Path, cdnow_transactions: pd.DataFrame
) -> None:
    # a small simulated experiment whose first customers carry CDNOW's purchase histories
    from uplift import pipeline
    from uplift.spec import ExperimentSpec

    config = _small_example(tmp_path)
    config["value"]["baseline_clv"] = {
        "transactions": {"kind": "csv", "path": str(tmp_path / "t.csv"), "amount": "paid"},
        "observation_end": "1998-06-30",
    }
    spec = ExperimentSpec.model_validate(config)
    data = pipeline.prepare(spec)
    ids = data.frame[spec.population.id].astype(str).to_numpy()
    cdnow = sorted(cdnow_transactions["customer"].unique())
    rename = dict(zip(cdnow, ids[: len(cdnow)], strict=False))
    transactions = pd.DataFrame(
        {
            "customer_id": cdnow_transactions["customer"].map(rename),
            "date": cdnow_transactions["date"].dt.strftime("%Y-%m-%d"),
            "paid": cdnow_transactions["amount"],
        }
    ).dropna()
    transactions.to_csv(tmp_path / "t.csv", index=False)

    result = pipeline.baseline_clv(spec, data)

    assert result is not None
    reference = transactions_clv(
        transactions,
        data.frame[spec.population.id],
        id_column="customer_id",
        date_column="date",
        amount_column="paid",
        observation_end="1998-06-30",
        horizon_months=12,
        annual_discount_rate=0.12,  # the spec's value.clv
        margin=0.55,
    )
    np.testing.assert_allclose(result.values, reference.values, rtol=1e-12)
    assert result.values.index.equals(data.frame.index)
    assert result.without_history == len(ids) - min(len(ids), len(cdnow))


def _shifted(cdnow: pd.DataFrame, ids: np.ndarray, last_day: pd.Timestamp) -> pd.DataFrame:
    """CDNOW's purchases as the given customers' (in CDNOW's id order), moved so that its
    last day (1998-06-30) falls on ``last_day``; dates as ISO text, amounts as ``paid``."""
    cdnow_ids = sorted(cdnow["customer"].unique())
    rename = dict(zip(cdnow_ids, ids[: len(cdnow_ids)], strict=False))
    days = cdnow["date"] + (last_day - pd.Timestamp("1998-06-30"))
    return pd.DataFrame(
        {
            "customer_id": cdnow["customer"].map(rename),
            "date": days.dt.strftime("%Y-%m-%d"),
            "paid": cdnow["amount"],
        }
    ).dropna()


def _reference_clv(history: pd.DataFrame, frame: pd.DataFrame, spec: Any, end: Any) -> pd.Series:
    """The reference: ``transactions_clv`` on the purchases up to ``end`` alone, with the
    spec's ``value.clv``."""
    clv = spec.value.clv
    return transactions_clv(
        history,
        frame[spec.population.id],
        id_column="customer_id",
        date_column="date",
        amount_column="paid",
        observation_end=end,
        horizon_months=clv.horizon_months,
        annual_discount_rate=clv.annual_discount_rate,
        margin=clv.margin,
    )


def test_the_baseline_history_ends_the_day_before_launch_and_later_purchases_are_left_out(
    tmp_path: Path, cdnow_transactions: pd.DataFrame
) -> None:
    # the purchases file exported after the window (as migration needs it) holds the
    # campaign's own purchases too: they are the outcome, not the baseline's history
    from uplift import pipeline
    from uplift.spec import ExperimentSpec

    config = _small_example(tmp_path)
    config["value"]["baseline_clv"] = {
        "transactions": {"kind": "csv", "path": str(tmp_path / "t.csv"), "amount": "paid"}
    }
    spec = ExperimentSpec.model_validate(config)
    data = pipeline.prepare(spec)
    assert data.launch is not None
    launch = pd.Timestamp(data.launch.launched_at.date())
    ids = data.frame[spec.population.id].astype(str).to_numpy()
    transactions = _shifted(cdnow_transactions, ids, launch + pd.Timedelta(days=60))
    transactions.to_csv(tmp_path / "t.csv", index=False)
    before = pd.to_datetime(transactions["date"]) < launch
    assert 0 < (~before).sum() < before.sum()
    lines: list[str] = []

    result = pipeline.baseline_clv(spec, data, lines.append)

    assert result is not None
    day_before = (launch - pd.Timedelta(days=1)).date()
    clv = spec.value.clv  # the example config's value.clv
    assert (clv.horizon_months, clv.annual_discount_rate, clv.margin) == (12, 0.12, 0.55)
    reference = _reference_clv(transactions[before], data.frame, spec, day_before)
    np.testing.assert_allclose(result.values, reference.values, rtol=1e-12)
    assert result.to_dict()["history_end"] == str(day_before)
    assert (
        f"value: baseline CLV from the purchases to {day_before}; the "
        f"{int((~before).sum()):,} after it left out"
    ) in lines

    # a history that ends on the launch day would count the campaign's first purchases
    on_launch = config["value"]["baseline_clv"] | {"observation_end": str(launch.date())}
    config["value"]["baseline_clv"] = on_launch
    with pytest.raises(DataError) as info:
        pipeline.baseline_clv(ExperimentSpec.model_validate(config), data)
    assert str(info.value) == (
        f"value.baseline_clv.observation_end: the purchase history must end before the launch "
        f"on {launch.date()}, found {launch.date()}: purchases from the launch on may be the "
        f"campaign's own."
    )


def test_an_observed_experiment_s_baseline_history_ends_the_day_before_it_launched(
    tmp_path: Path, cdnow_transactions: pd.DataFrame
) -> None:
    # before, the history of an observed experiment ran to the file's last purchase, so the
    # treated customers' baseline carried the campaign's own effect
    from uplift import pipeline
    from uplift.spec import ExperimentSpec

    rng = np.random.default_rng(8)
    n = 800
    population = pd.DataFrame(
        {
            "customer_id": [f"k{i:04d}" for i in range(n)],
            "arm": rng.choice(["none", "mail"], n),
            "spend": rng.gamma(1.0, 10.0, n),
            "x": rng.normal(size=n),
        }
    )
    population.to_csv(tmp_path / "population.csv", index=False)
    ids = population["customer_id"].to_numpy()
    transactions = _shifted(cdnow_transactions, ids, pd.Timestamp("2024-05-30"))
    transactions.to_csv(tmp_path / "t.csv", index=False)
    config = {
        "name": "observed-baseline",
        "hypothesis": {"kind": "custom", "statement": "Mail sells.", "owner": "crm@example.com"},
        "population": {
            "source": {"kind": "csv", "path": str(tmp_path / "population.csv")},
            "id": "customer_id",
            "features": ["x"],
        },
        "assignment": {"column": "arm", "control": "none", "launched": "2024-04-01"},
        "outcomes": {
            "window_days": 60,
            "metrics": {"spend": {"column": "spend", "kind": "continuous"}},
            "primary": "spend",
        },
        "value": {
            "baseline_clv": {
                "transactions": {"kind": "csv", "path": str(tmp_path / "t.csv"), "amount": "paid"}
            }
        },
    }
    # without the day it launched there is no day to end the history on: the spec says so
    unlaunched = {**config, "assignment": {"column": "arm", "control": "none"}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(unlaunched), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "spec.yaml")
    assert "key 'value.baseline_clv.observation_end'" in str(info.value)
    assert "give value.baseline_clv.observation_end or assignment.launched" in str(info.value)
    spec = ExperimentSpec.model_validate(config)
    data = pipeline.prepare(spec)

    result = pipeline.baseline_clv(spec, data)

    assert result is not None
    before = pd.to_datetime(transactions["date"]) < pd.Timestamp("2024-04-01")
    assert (~before).sum() > 0
    reference = _reference_clv(transactions[before], data.frame, spec, "2024-03-31")
    np.testing.assert_allclose(result.values, reference.values, rtol=1e-12)
