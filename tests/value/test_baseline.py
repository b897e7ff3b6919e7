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

import numpy as np
import pandas as pd
import pytest
import yaml

from uplift.errors import DataError
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


def test_the_pipeline_reads_the_transactions_file_the_spec_names(
    tmp_path: Path, cdnow_transactions: pd.DataFrame
) -> None:
    # a small simulated experiment whose first customers carry CDNOW's purchase histories
    from uplift import pipeline
    from uplift.spec import ExperimentSpec

    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    config["population"]["source"]["n"] = 3000
    config["ledger"] = {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
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
