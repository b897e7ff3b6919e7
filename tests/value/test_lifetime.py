"""Tests of uplift.value.lifetime.

Reference values come from the CDNOW data that the ``lifetimes`` wheel ships (read as
CSV files; ``lifetimes`` itself is never imported) and from the publications and
documentation that report fits on it; each names its source. Simulations from the
models with known parameters check the fits and the conditional expectations within
sampling error, and a quadrature of the model's defining integrals checks the closed
forms. ``rfm_summary`` is checked against a table computed by hand and against the
published CDNOW calibration summary, rebuilt from the CDNOW sample's purchases.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.special import betaln

from uplift.errors import DataError
from uplift.value.lifetime import (
    BGNBDResult,
    GammaGammaResult,
    fit_bgnbd,
    fit_gamma_gamma,
    lifetime_value,
    rfm_summary,
)


def _lifetimes_dataset(name: str) -> pd.DataFrame:
    """A CSV file of ``lifetimes/datasets``, located through the installed distribution."""
    try:
        distribution = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the CDNOW reference data ship with lifetimes: pip install 'lifetimes>=0.11'")
    path = next(f for f in distribution.files or [] if f.name == name)
    return pd.read_csv(str(distribution.locate_file(path)), index_col=0)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    # 2357 CDNOW customers, times in weeks (Fader, Hardie & Lee 2005)
    return _lifetimes_dataset("cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def cdnow_money() -> pd.DataFrame:
    # the same customers with the mean value of their repeat purchases, columns x, t_x, T, zbar
    return _lifetimes_dataset("cdnow_customers_summary_with_transactions.csv")


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow: pd.DataFrame) -> BGNBDResult:
    return fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="module")
def cdnow_gamma_gamma(cdnow_money: pd.DataFrame) -> GammaGammaResult:
    return fit_gamma_gamma(cdnow_money["x"], cdnow_money["zbar"])


# --- BG/NBD on CDNOW ------------------------------------------------------------------


def test_bgnbd_on_cdnow_gives_the_published_estimates(cdnow_bgnbd: BGNBDResult) -> None:
    # Fader, Hardie & Lee (2005), section 4: r = 0.243, alpha = 4.414, a = 0.793,
    # b = 2.426 and log-likelihood -9582.4; lifetimes' Quickstart prints the same fit
    assert cdnow_bgnbd.converged
    assert cdnow_bgnbd.n == 2357
    assert cdnow_bgnbd.r == pytest.approx(0.243, abs=1e-3)
    assert cdnow_bgnbd.alpha == pytest.approx(4.414, abs=1e-3)
    assert cdnow_bgnbd.a == pytest.approx(0.793, abs=1e-3)
    assert cdnow_bgnbd.b == pytest.approx(2.426, abs=1e-3)
    assert cdnow_bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.05)


def test_bgnbd_standard_errors_on_cdnow(cdnow_bgnbd: BGNBDResult) -> None:
    # lifetimes 0.11.3 BetaGeoFitter().fit(...).summary on the same file, run once by
    # hand (its standard errors come from autograd's exact Hessian): 0.012557, 0.378221,
    # 0.185719, 0.705345
    expected = {"r": 0.012557, "alpha": 0.378221, "a": 0.185719, "b": 0.705345}
    for name, se in expected.items():
        assert cdnow_bgnbd.standard_errors[name] == pytest.approx(se, rel=1e-3)
    summary = cdnow_bgnbd.summary()
    assert list(summary.index) == ["r", "alpha", "a", "b"]
    assert summary.loc["b", "std err"] == pytest.approx(0.705345, rel=1e-3)


def test_conditional_expectation_matches_hardies_spreadsheet(cdnow_bgnbd: BGNBDResult) -> None:
    # Fader, Hardie & Lee, "Implementing the BG/NBD model for customer base analysis in
    # Excel" (brucehardie.com/notes/004): customer 1 (x = 2, t_x = 30.43, T = 38.86) is
    # expected to make 1.226 purchases in the next 39 weeks (also lifetimes' test suite,
    # test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet)
    assert cdnow_bgnbd.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=1e-3)


def test_unconditional_expectation_matches_hardies_spreadsheet(cdnow_bgnbd: BGNBDResult) -> None:
    # Hardie's BG/NBD spreadsheet (brucehardie.com/notes/004), as quoted by lifetimes' test
    # test_expectation_returns_same_value_Hardie_excel_sheet
    weeks = [0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00]
    expected = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    np.testing.assert_allclose(cdnow_bgnbd.expected_purchases_new(weeks), expected, atol=1e-3)


def test_best_customers_match_the_lifetimes_quickstart(
    cdnow: pd.DataFrame, cdnow_bgnbd: BGNBDResult
) -> None:
    # lifetimes docs/Quickstart.md, "Ranking customers from best to worst": expected
    # purchases in the next week of the five best CDNOW customers
    expected = pd.Series(
        {509: 0.424877, 841: 0.474738, 1981: 0.486526, 157: 0.662396, 1516: 0.710623}
    )
    best = cdnow.loc[expected.index]
    predicted = cdnow_bgnbd.expected_purchases(1, best["frequency"], best["recency"], best["T"])
    np.testing.assert_allclose(predicted, expected.to_numpy(), rtol=1e-5)


def _expected_purchases_by_quadrature(
    model: BGNBDResult, t: float, x: int, t_x: float, T: float
) -> float:
    """E[Y(t) | x, t_x, T] integrated numerically from the model's definition.

    With the purchase rate integrated out in closed form (a Gamma integral), what is left
    is one integral over the dropout probability p ~ Beta(a, b): the likelihood of the
    history, split into "still alive" and "dropped out after the last purchase", and the
    expected purchases (1 - exp(-lambda p t)) / p of an alive customer. Fader, Hardie &
    Lee (2005), equations (3) and (7). No hypergeometric function is involved.
    """
    r, alpha, a, b = model.r, model.alpha, model.a, model.b

    def beta_density(p: float) -> float:
        return float(np.exp((a - 1) * np.log(p) + (b - 1) * np.log1p(-p) - betaln(a, b)))

    def alive_purchases(p: float) -> float:
        shrink = ((alpha + T) / (alpha + T + p * t)) ** (r + x)
        return (1 - p) ** x * (1 - shrink) / p * beta_density(p)

    def likelihood(p: float) -> float:
        dropped = p * (1 - p) ** (x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x else 0.0
        return ((1 - p) ** x + dropped) * beta_density(p)

    options: dict[str, Any] = {"limit": 200, "epsabs": 0, "epsrel": 1e-10}
    return quad(alive_purchases, 0, 1, **options)[0] / quad(likelihood, 0, 1, **options)[0]


@pytest.mark.parametrize(
    ("t", "x", "t_x", "T"),
    [
        (39, 2, 30.43, 38.86),
        (1, 29, 37.71, 38.0),
        (39, 0, 0.0, 38.86),
        (10, 5, 10.0, 38.0),
        # a heavy buyer far out: the plain 2F1(r + x, b + x; ...) of equation (10) is huge
        (52, 200, 38.5, 38.86),
    ],
)
def test_conditional_expectation_equals_the_integral_it_stands_for(
    cdnow_bgnbd: BGNBDResult, t: float, x: int, t_x: float, T: float
) -> None:
    expected = _expected_purchases_by_quadrature(cdnow_bgnbd, t, x, t_x, T)
    assert cdnow_bgnbd.expected_purchases(t, x, t_x, T) == pytest.approx(expected, rel=1e-8)


def test_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence(
    cdnow_bgnbd: BGNBDResult,
) -> None:
    # the BG/NBD lets customers drop out only right after a repeat purchase
    assert cdnow_bgnbd.probability_alive(0, 0, 38.86) == pytest.approx(1.0)
    silent_for = np.array([0.0, 5.0, 15.0, 30.0])
    p_alive = cdnow_bgnbd.probability_alive(3, 38.0 - silent_for, 38.0)
    assert np.all(np.diff(p_alive) < 0)
    assert 0 < p_alive[-1] < p_alive[0] < 1


def test_penalizer_shrinks_the_parameters(cdnow: pd.DataFrame, cdnow_bgnbd: BGNBDResult) -> None:
    # lifetimes' test_penalizer_term_will_shrink_coefs_to_0, same penalty
    penalized = fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"], penalizer=0.1)
    assert np.all(penalized.params.to_numpy() < cdnow_bgnbd.params.to_numpy())


# --- Gamma-Gamma on CDNOW -------------------------------------------------------------


def test_gamma_gamma_on_cdnow_gives_the_published_estimates(
    cdnow_gamma_gamma: GammaGammaResult,
) -> None:
    # lifetimes docs/Quickstart.md: "fitted with 946 subjects, p: 6.25, q: 3.74, v: 15.45";
    # Fader & Hardie (2013), brucehardie.com/notes/025: p = 6.25, q = 3.74, gamma = 15.44
    assert cdnow_gamma_gamma.converged
    assert cdnow_gamma_gamma.n == 946
    assert cdnow_gamma_gamma.p == pytest.approx(6.25, abs=1e-2)
    assert cdnow_gamma_gamma.q == pytest.approx(3.74, abs=1e-2)
    assert cdnow_gamma_gamma.v == pytest.approx(15.445, abs=1e-2)


def test_expected_average_value_matches_the_lifetimes_quickstart(
    cdnow_money: pd.DataFrame, cdnow_gamma_gamma: GammaGammaResult
) -> None:
    # lifetimes docs/Quickstart.md, conditional_expected_average_profit of customers 1, 2,
    # 3 (no repeat purchase: the population mean), 6 and 9, and its mean over all 2357
    expected = pd.Series({1: 24.658619, 2: 18.911489, 3: 35.170981, 6: 71.462843, 9: 27.282408})
    rows = cdnow_money.loc[expected.index]
    np.testing.assert_allclose(
        cdnow_gamma_gamma.expected_average_value(rows["x"], rows["zbar"]),
        expected.to_numpy(),
        rtol=1e-5,
    )
    everyone = cdnow_gamma_gamma.expected_average_value(cdnow_money["x"], cdnow_money["zbar"])
    assert everyone.mean() == pytest.approx(35.2529588256, rel=1e-5)


def test_lifetime_value_matches_the_lifetimes_quickstart(
    cdnow_money: pd.DataFrame, cdnow_gamma_gamma: GammaGammaResult
) -> None:
    # lifetimes docs/Quickstart.md, customer_lifetime_value(bgf, ..., time=12,
    # discount_rate=0.01) of customers 1..10. That call keeps lifetimes' default
    # freq="D", so it takes 30 of CDNOW's weekly periods for a month: period_days=1
    # reproduces it, and a monthly 1% is an annual 1.01**12 - 1.
    expected = [140.096211, 18.943467, 38.180574, 38.180574, 38.180574]
    expected += [1003.868107, 28.109683, 38.180574, 167.418216, 38.180574]
    x, t_x, T, zbar = (cdnow_money[c] for c in ("x", "t_x", "T", "zbar"))
    bgnbd = fit_bgnbd(x, t_x, T)
    clv = lifetime_value(
        bgnbd,
        cdnow_gamma_gamma,
        x,
        t_x,
        T,
        zbar,
        months=12,
        annual_discount_rate=1.01**12 - 1,
        margin=1.0,
        period_days=1,
    )
    assert clv.name == "clv"
    assert clv.index.equals(cdnow_money.index)
    np.testing.assert_allclose(clv.loc[1:10].to_numpy(), expected, rtol=1e-5)


# --- lifetime_value by hand -----------------------------------------------------------

_BGNBD = BGNBDResult(0.243, 4.414, 0.793, 2.426, {}, float("nan"), 0, True)
_GAMMA_GAMMA = GammaGammaResult(6.25, 3.74, 15.44, {}, float("nan"), 0, True)
_HISTORY = {"frequency": [0.0, 2.0, 7.0], "recency": [0.0, 30.43, 29.43], "T": [38.86] * 3}
_MONEY = [0.0, 22.35, 73.74]


def test_undiscounted_lifetime_value_is_expected_purchases_times_value() -> None:
    # without discounting the monthly increments add up to the purchases over 12 months,
    # here of 30 days in weeks
    frequency, recency, T = _HISTORY.values()
    clv = lifetime_value(
        _BGNBD, _GAMMA_GAMMA, frequency, recency, T, _MONEY,
        months=12, annual_discount_rate=0.0, margin=0.25, period_days=7,
    )  # fmt: skip
    purchases = _BGNBD.expected_purchases(12 * 30 / 7, frequency, recency, T)
    value = _GAMMA_GAMMA.expected_average_value(frequency, _MONEY)
    np.testing.assert_allclose(clv.to_numpy(), purchases * value * 0.25, rtol=1e-12)
    assert clv.index.equals(pd.RangeIndex(3))


def test_one_month_is_discounted_at_the_monthly_equivalent_of_the_annual_rate() -> None:
    frequency, recency, T = _HISTORY.values()
    clv = lifetime_value(
        _BGNBD, _GAMMA_GAMMA, frequency, recency, T, _MONEY,
        months=1, annual_discount_rate=0.12, margin=1.0, period_days=7,
    )  # fmt: skip
    purchases = _BGNBD.expected_purchases(30 / 7, frequency, recency, T)
    value = _GAMMA_GAMMA.expected_average_value(frequency, _MONEY)
    # (1 + 0.12) ** (1 / 12) = 1.009489 per month
    np.testing.assert_allclose(clv.to_numpy(), purchases * value / 1.12 ** (1 / 12), rtol=1e-12)


# --- simulations with known parameters ------------------------------------------------


@pytest.fixture(scope="module")
def simulated_bgnbd() -> dict[str, np.ndarray]:
    """20,000 customers of a BG/NBD process with CDNOW-like parameters.

    After each repeat purchase a customer drops out with probability p, so the number of
    repeat purchases before dropping out is geometric. Given n purchase events of the
    Poisson process in (0, T], they are uniform on it and the x-th is T times a
    Beta(x, n - x + 1). The holdout counts purchases in (T, T + 39], which a customer
    alive at T makes at the same rate, up to the dropout.
    """
    rng = np.random.default_rng(20050301)
    n, (r, alpha, a, b) = 20_000, (0.25, 4.0, 0.8, 2.5)
    rate = rng.gamma(r, 1 / alpha, n)
    purchases_before_dropout = rng.geometric(rng.beta(a, b, n))
    T = rng.uniform(10, 60, n)
    events = rng.poisson(rate * T)
    x = np.minimum(events, purchases_before_dropout)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), events - x + 1), 0.0)
    alive = purchases_before_dropout > events
    holdout = np.where(
        alive, np.minimum(rng.poisson(rate * 39), purchases_before_dropout - events), 0
    )
    return {"x": x, "t_x": t_x, "T": T, "alive": alive, "holdout": holdout}


def test_bgnbd_recovers_simulated_parameters(simulated_bgnbd: dict[str, np.ndarray]) -> None:
    fit = fit_bgnbd(simulated_bgnbd["x"], simulated_bgnbd["t_x"], simulated_bgnbd["T"])
    assert fit.converged
    for name, true in {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}.items():
        se = fit.standard_errors[name]
        assert 0 < se < 0.5 * true
        assert abs(fit.params[name] - true) < 4 * se, (name, fit.params[name], se)


@pytest.mark.parametrize(("low", "high"), [(0, 0), (1, 1), (2, 4), (5, 10_000)])
def test_conditional_expectations_match_simulated_holdouts(
    simulated_bgnbd: dict[str, np.ndarray], low: int, high: int
) -> None:
    # with the true parameters, within each frequency group the mean of the predicted
    # holdout purchases (and P(alive)) must equal the realised mean up to sampling error
    truth = BGNBDResult(0.25, 4.0, 0.8, 2.5, {}, float("nan"), 0, True)
    sim = simulated_bgnbd
    group = (sim["x"] >= low) & (sim["x"] <= high)
    history = (sim["x"][group], sim["t_x"][group], sim["T"][group])
    for realised, predicted in (
        (sim["holdout"][group], truth.expected_purchases(39, *history)),
        (sim["alive"][group], truth.probability_alive(*history)),
    ):
        error = realised - predicted
        sampling_error = error.std() / np.sqrt(group.sum())
        assert abs(error.mean()) <= 4 * sampling_error, (realised.mean(), predicted.mean())


@pytest.fixture(scope="module")
def simulated_spend() -> dict[str, np.ndarray]:
    """5,000 repeat customers of a Gamma-Gamma spend process.

    Each customer's spends are Gamma(p, rate nu) with nu ~ Gamma(q, rate v), so the mean
    of x of them is Gamma(p x, rate x nu) and the customer's true mean spend is p / nu.
    """
    rng = np.random.default_rng(2013)
    n, (p, q, v) = 5_000, (6.0, 4.0, 15.0)
    x = 1 + rng.poisson(2.0, n)
    nu = rng.gamma(q, 1 / v, n)
    return {"x": x, "m": rng.gamma(p * x, 1 / (x * nu)), "true_mean": p / nu}


def test_gamma_gamma_recovers_simulated_parameters(simulated_spend: dict[str, np.ndarray]) -> None:
    # customers without repeat purchases carry no spend information and are left out
    frequency = np.concatenate([simulated_spend["x"], np.zeros(500)])
    monetary = np.concatenate([simulated_spend["m"], np.zeros(500)])
    fit = fit_gamma_gamma(frequency, monetary)
    assert fit.converged
    assert fit.n == 5_000
    for name, true in {"p": 6.0, "q": 4.0, "v": 15.0}.items():
        se = fit.standard_errors[name]
        assert 0 < se < 0.5 * true
        assert abs(fit.params[name] - true) < 4 * se, (name, fit.params[name], se)


def test_expected_average_value_matches_simulated_true_means(
    simulated_spend: dict[str, np.ndarray],
) -> None:
    # the conditional expectation, averaged over customers with similar observed means,
    # equals their average true mean spend up to sampling error
    truth = GammaGammaResult(6.0, 4.0, 15.0, {}, float("nan"), 0, True)
    x, m, true_mean = simulated_spend["x"], simulated_spend["m"], simulated_spend["true_mean"]
    predicted = truth.expected_average_value(x, m)
    quartile = np.searchsorted(np.quantile(m, [0.25, 0.5, 0.75]), m)
    for q in range(4):
        error = (true_mean - predicted)[quartile == q]
        assert abs(error.mean()) < 4 * error.std() / np.sqrt(len(error))
    # shrinkage: the low observed means are pulled up, the high ones down
    assert predicted[quartile == 0].mean() > m[quartile == 0].mean()
    assert predicted[quartile == 3].mean() < m[quartile == 3].mean()


# --- rfm_summary ----------------------------------------------------------------------


def test_rfm_summary_of_the_cdnow_sample_is_the_published_calibration_summary(
    cdnow_money: pd.DataFrame, cdnow_transactions: pd.DataFrame
) -> None:
    # Fader, Hardie & Lee's CDNOW calibration summary (the 39 weeks to 30 September 1997),
    # as lifetimes ships it (cdnow_customers_summary_with_transactions.csv: x, t_x and T in
    # weeks, zbar the mean repeat purchase, all to 2 decimals), rebuilt from the purchases
    # of CDNOW_sample.txt, shipped beside it
    raw = cdnow_transactions
    calibration = raw[raw["date"] <= "1997-09-30"]
    summary = rfm_summary(calibration, "customer", "date", "amount", observation_end="1997-09-30")
    assert len(summary) == len(cdnow_money) == 2357
    assert list(summary.index.astype(int)) == list(cdnow_money.index)
    np.testing.assert_array_equal(summary["frequency"], cdnow_money["x"])
    # days to weeks, against figures rounded to 2 decimals
    np.testing.assert_allclose(summary["recency"] / 7, cdnow_money["t_x"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(summary["T"] / 7, cdnow_money["T"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(summary["monetary_value"], cdnow_money["zbar"], atol=0.005 + 1e-9)


def _transactions() -> pd.DataFrame:
    # a: 1 Jan twice (10 + 5), 11 Jan twice (20 + 4), 21 Jan: periods worth 15, 24, 30
    # b: one purchase; c: first and only purchase on the last day, late in the evening
    # d: two purchases on one day only; e: a zero amount first, then 30 Jan just before midnight
    rows = [
        ("a", "2024-01-11 09:00", 20.0),
        ("b", "2024-01-15", 12.0),
        ("a", "2024-01-01 08:00", 10.0),
        ("c", "2024-01-31 18:30", 7.0),
        ("a", "2024-01-21", 30.0),
        ("d", "2024-01-05", 3.0),
        ("a", "2024-01-01 17:45", 5.0),
        ("e", "2024-01-10", 0.0),
        ("d", "2024-01-05", 9.0),
        ("a", "2024-01-11 20:00", 4.0),
        ("e", "2024-01-30 23:59", 8.0),
    ]
    return pd.DataFrame(rows, columns=["customer", "bought_at", "amount"])


def test_rfm_summary_by_hand_in_days() -> None:
    summary = rfm_summary(
        _transactions(), "customer", "bought_at", "amount", observation_end="2024-01-31"
    )
    expected = pd.DataFrame(
        {
            # a: 3 purchase days; last 20 days after the first; 30 days old; (24 + 30) / 2
            # b, d: one purchase day; T = 31 - 15 and 31 - 5
            # c: first purchase on observation_end: T = 0
            # e: 10 and 30 Jan; repeat value 8
            "frequency": [2.0, 0.0, 0.0, 0.0, 1.0],
            "recency": [20.0, 0.0, 0.0, 0.0, 20.0],
            "T": [30.0, 16.0, 0.0, 26.0, 21.0],
            "monetary_value": [27.0, 0.0, 0.0, 0.0, 8.0],
        },
        index=pd.Index(["a", "b", "c", "d", "e"], name="customer"),
    )
    pd.testing.assert_frame_equal(summary, expected)


def test_rfm_summary_by_hand_in_weeks() -> None:
    # weeks run Monday to Sunday; 1 Jan 2024 is a Monday: a buys in weeks 0, 1 and 2
    # (21 Jan is a Sunday) and 31 Jan is in week 4; e buys in weeks 1 and 4
    summary = rfm_summary(
        _transactions(), "customer", "bought_at", "amount", observation_end="2024-01-31", freq="W"
    )
    assert summary.loc["a"].tolist() == [2.0, 2.0, 4.0, 27.0]
    assert summary.loc["e"].tolist() == [1.0, 3.0, 3.0, 8.0]
    assert summary.loc["b"].tolist() == [0.0, 0.0, 2.0, 0.0]


def test_rfm_summary_takes_datetime_columns_and_timestamps() -> None:
    transactions = _transactions().assign(
        bought_at=lambda t: pd.to_datetime(t["bought_at"], format="ISO8601")
    )
    summary = rfm_summary(
        transactions, "customer", "bought_at", "amount", observation_end=pd.Timestamp("2024-02-10")
    )
    assert summary["T"].tolist() == [40.0, 26.0, 10.0, 36.0, 31.0]


@pytest.mark.parametrize("missing", ["customer", "bought_at", "amount"])
def test_rfm_summary_names_a_missing_column(missing: str) -> None:
    columns = {"id_column": "customer", "date_column": "bought_at", "amount_column": "amount"}
    transactions = _transactions().drop(columns=missing)
    with pytest.raises(DataError, match=f"column '{missing}'.*no such column"):
        rfm_summary(transactions, **columns, observation_end="2024-01-31")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("bought_at", "31/01/2024", r"date column 'bought_at' must hold a date .*'31/01/2024'"),
        ("bought_at", "not a date", r"date column 'bought_at' .*1 rows without one"),
        ("bought_at", None, r"date column 'bought_at' .*1 rows without one"),
        ("bought_at", "2024-02-01", r"'bought_at' must hold no purchase after .*2024-01-31"),
        ("amount", -5.0, r"amount column 'amount' must hold non-negative .*1 negative .*-5"),
        ("amount", np.nan, r"amount column 'amount' must have no missing values, found 1"),
        ("customer", None, r"customer id column 'customer' must have no missing values"),
    ],
)
def test_rfm_summary_rejects_bad_values_naming_the_column(
    column: str, value: object, message: str
) -> None:
    transactions = _transactions()
    transactions[column] = transactions[column].astype(object)
    transactions.loc[3, column] = value
    if column == "amount":
        transactions[column] = transactions[column].astype(float)
    with pytest.raises(DataError, match=message):
        rfm_summary(transactions, "customer", "bought_at", "amount", observation_end="2024-01-31")


def test_rfm_summary_rejects_numbers_as_dates() -> None:
    transactions = _transactions().assign(bought_at=20240101)
    with pytest.raises(DataError, match=r"date column 'bought_at' .*found dtype int64"):
        rfm_summary(transactions, "customer", "bought_at", "amount", observation_end="2024-01-31")


# --- input checks of the fits ---------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1.5, 0], [1, 0], [2, 2], "frequency must be whole numbers"),
        ([1, 0], [3, 0], [2, 2], "recency must be between 0 and T"),
        ([0, 1], [1, 1], [2, 2], "recency must be 0 where frequency is 0"),
        ([0, 0], [0, 0], [0, 0], "T > 0"),
    ],
)
def test_fit_bgnbd_rejects_impossible_histories(
    frequency: list[float], recency: list[float], T: list[float], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        fit_bgnbd(frequency, recency, T)


def test_fit_gamma_gamma_needs_positive_spend_of_repeat_customers() -> None:
    with pytest.raises(DataError, match="monetary_value must be positive"):
        fit_gamma_gamma([2, 1, 0], [10.0, 0.0, 0.0])
    with pytest.raises(DataError, match="frequency > 0, found none"):
        fit_gamma_gamma([0, 0], [0.0, 0.0])
