"""Simulated campaigns with known ground truth, one per hypothesis kind.

Each simulator draws a customer base with pre-period, transaction-derived features
(recency, frequency, monetary value, tenure, plan), then knows, for every customer and
every arm, the expected value of each outcome. Outcomes are drawn from those
expectations once the arms are known. The true effect of an arm on a customer is the
difference of expectations, so tests can check estimates against the truth.

Effects are heterogeneous by design, so that the average misleads: in every kind there
are customers for whom the campaign loses money (a discount paid on orders that would
have happened anyway, trial lessons given to people who would have bought the course
anyway, an unlock that delays upgrades that were coming).

Outcome draws are deterministic given the seed, the customer's row and the arm: the
noise is drawn once per customer and mapped through the arm's distribution, so the
same customer in the same arm always has the same outcome.

End of the window
    Beside the window's outcomes, every simulator draws the customer's recency,
    frequency and monetary value at the end of the outcome window, over the same 180-day
    look-back as the launch features (:attr:`CampaignSimulator.end_of_window` names the
    columns), so that segment migration has a known truth. The roll-forward is simple
    and deterministic given the noise. With a window of ``w`` days, the look-back at the
    end keeps the last ``180 - w`` days of the pre-period:

    - *kept purchases*: none when the last pre-period purchase falls out of the
      look-back (``recency_days >= 180 - w``, or no purchase at all); otherwise
      ``frequency_180d * (180 - w) / 180`` rounded up or down at random (up with
      probability its fractional part, so its mean is that product), and at least 1,
      the last purchase. Each kept purchase carries the pre-period's mean spend,
      ``monetary_180d / frequency_180d``.
    - *window purchases*: what the window's outcomes say was bought. Trial lessons: the
      course and the extra purchase, the two parts of ``revenue_60d`` (the trial
      lessons themselves are priced in the economics, not in the revenue); feature
      unlock: each paid month of the upgrade, at the upgrade price (the plan's own fee
      is not in the pre-period features either); lower check: the orders and their
      revenue.
    - frequency and monetary value at the end are the kept plus the window's
      purchases and spend; recency is the days from the last of ``k > 0`` window
      purchases to the end, ``floor(w * (1 - u ** (1 / k)))`` (the last of ``k`` days
      drawn uniformly over the window), or ``recency_days + w`` when nothing was bought
      in the window.

    The treatment moves F and M up for the customers it makes buy more, and down for
    those whose purchases it delays. Two further uniforms per customer drive the
    rounding and the last day; they come from a stream of their own, so the window's
    outcomes are exactly what they were before these columns existed.
    :meth:`CampaignSimulator.expected` gives the exact expectation of the three
    columns (recency through the probability generating function of the number of
    window purchases).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "END_OF_WINDOW",
    "LOOKBACK_DAYS",
    "NOISE_COLUMNS",
    "SIMULATORS",
    "CampaignSimulator",
    "FeatureUnlockSimulator",
    "LowerCheckOfferSimulator",
    "Simulation",
    "TrialLessonsSimulator",
    "simulate",
]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


#: Days of the look-back of the RFM features, at launch and at the end of the window.
LOOKBACK_DAYS = 180

#: Uniform numbers per customer that :meth:`CampaignSimulator.draw` takes.
NOISE_COLUMNS = 6

#: Launch RFM feature -> the same feature at the end of the outcome window.
END_OF_WINDOW = {
    "recency_days": "recency_days_end",
    "frequency_180d": "frequency_180d_end",
    "monetary_180d": "monetary_180d_end",
}
_END_OUTCOMES = dict.fromkeys(END_OF_WINDOW.values(), "continuous")


def _customer_base(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Transaction-derived pre-period features shared by every kind."""
    tenure = rng.integers(30, 1500, n)
    intensity = rng.gamma(1.2, 1.0, n)
    frequency = rng.poisson(intensity * 2.5)
    recency = np.where(
        frequency > 0,
        rng.exponential(180.0 / (frequency + 1.0)),
        180.0 + rng.exponential(240.0, n),
    )
    recency = np.minimum(np.round(recency), tenure).astype(int)
    check = rng.lognormal(np.log(45.0), 0.45, n)
    monetary = np.round(frequency * check * rng.lognormal(0.0, 0.15, n), 2)
    return pd.DataFrame(
        {
            "customer_id": np.char.add("c", np.arange(1, n + 1).astype(str)).astype(object),
            "recency_days": recency,
            "frequency_180d": frequency,
            "monetary_180d": monetary,
            "tenure_days": tenure,
            "avg_check": np.round(check, 2),
        }
    )


class CampaignSimulator(ABC):
    """A hypothesis kind's customer base and outcome model.

    Subclasses define the base (:meth:`_population`), the expected outcomes of a customer
    under an effect scale (:meth:`expected`; scale 0 is the control arm) and how outcomes
    are drawn around those expectations (:meth:`_draw`).
    """

    kind: ClassVar[str]
    #: outcome column -> "binary" or "continuous"
    outcomes: ClassVar[dict[str, str]]
    #: outcome column -> its pre-period twin, drawn with the population
    pre_period: ClassVar[dict[str, str]] = {}
    #: days of the outcome window after launch
    window_days: ClassVar[int]
    #: launch RFM feature -> the same feature at the end of the outcome window (an outcome)
    end_of_window: ClassVar[dict[str, str]] = END_OF_WINDOW

    def population(self, n: int, seed: int) -> pd.DataFrame:
        """Draw ``n`` customers with their pre-period features and eligibility columns."""
        return self._population(np.random.default_rng([seed, 0]), n)

    @abstractmethod
    def _population(self, rng: np.random.Generator, n: int) -> pd.DataFrame: ...

    @abstractmethod
    def expected(self, population: pd.DataFrame, scale: np.ndarray) -> pd.DataFrame:
        """Expected outcomes per customer when the effect is scaled by ``scale`` (0: control)."""

    @abstractmethod
    def _draw(
        self, population: pd.DataFrame, scale: np.ndarray, noise: np.ndarray
    ) -> pd.DataFrame: ...

    def draw(self, population: pd.DataFrame, scale: np.ndarray, noise: np.ndarray) -> pd.DataFrame:
        """Draw outcomes for each customer under its arm's effect ``scale``.

        ``noise`` holds six uniform numbers per customer (see :meth:`Simulation.noise`):
        the first four drive the window's outcomes, the last two the end-of-window RFM
        columns.
        """
        noise = np.asarray(noise, dtype=float)
        if noise.shape != (len(population), NOISE_COLUMNS):
            raise ValueError(
                f"noise must hold {NOISE_COLUMNS} uniform numbers per customer, an array of "
                f"shape ({len(population)}, {NOISE_COLUMNS}); found shape {noise.shape}"
            )
        return self._draw(population, np.asarray(scale, dtype=float), noise)

    def _roll_forward(
        self, pop: pd.DataFrame, purchases: np.ndarray, spend: np.ndarray, noise: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Drawn end-of-window RFM columns, from the window's purchases and spend."""
        w = self.window_days
        f0, m0, r0, kept_mean, inside = _kept(pop, w)
        kept = np.where(inside, np.maximum(1, np.floor(kept_mean + noise[:, 4])), 0).astype(int)
        per_purchase = np.divide(m0, f0, out=np.zeros(len(pop)), where=f0 > 0)
        k = np.asarray(purchases, dtype=int)
        with np.errstate(divide="ignore"):
            last = np.floor(w * (1.0 - noise[:, 5] ** (1.0 / np.maximum(k, 1))))
        recency = np.where(k > 0, np.minimum(last, w - 1), r0 + w).astype(int)
        names = list(self.end_of_window.values())
        return {
            names[0]: recency,
            names[1]: kept + k,
            names[2]: np.round(per_purchase * kept + spend, 2),
        }

    def _roll_forward_expected(
        self,
        pop: pd.DataFrame,
        pgf: Callable[[float], np.ndarray],
        mean_purchases: np.ndarray,
        mean_spend: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Expected end-of-window RFM columns.

        ``pgf(s)`` is each customer's ``E[s ** K]`` for the number ``K`` of window
        purchases. With ``K = k > 0`` the expected recency is
        ``sum_{j=1}^{w-1} (1 - j/w) ** k`` (the mean of the floor), so over ``K`` it is
        ``sum_j (pgf(1 - j/w) - pgf(0))``, plus ``pgf(0) * (recency_days + w)``.
        """
        w = self.window_days
        f0, m0, r0, kept_mean, inside = _kept(pop, w)
        kept = np.where(inside, np.maximum(1.0, kept_mean), 0.0)
        per_purchase = np.divide(m0, f0, out=np.zeros(len(pop)), where=f0 > 0)
        none = pgf(0.0)
        recency = none * (r0 + w)
        for j in range(1, w):
            recency = recency + (pgf(1.0 - j / w) - none)
        names = list(self.end_of_window.values())
        return {
            names[0]: recency,
            names[1]: kept + mean_purchases,
            names[2]: per_purchase * kept + mean_spend,
        }


def _kept(pop: pd.DataFrame, window: int) -> tuple[np.ndarray, ...]:
    """Pre-period purchases still in the look-back at the end of the window.

    Returns the launch frequency, monetary value and recency, the mean number of kept
    purchases before rounding, and whether the last purchase is still in the look-back.
    """
    f0 = pop["frequency_180d"].to_numpy(dtype=float)
    m0 = pop["monetary_180d"].to_numpy(dtype=float)
    r0 = pop["recency_days"].to_numpy(dtype=float)
    keep = (LOOKBACK_DAYS - window) / LOOKBACK_DAYS
    inside = (f0 > 0) & (r0 < LOOKBACK_DAYS - window)
    return f0, m0, r0, f0 * keep, inside


class TrialLessonsSimulator(CampaignSimulator):
    """EdTech: paid trial lessons for applicants who did not buy the premium course.

    Recent, light learners convert more after a trial. Frequent, recent learners would
    mostly have bought anyway and take the cheap lessons; lapsed applicants rarely take
    them and almost never convert: in both groups the lessons cost more than they bring.
    """

    kind = "trial_lessons"
    outcomes: ClassVar[dict[str, str]] = {
        "took_trial": "binary",
        "bought_course": "binary",
        "revenue_60d": "continuous",
        **_END_OUTCOMES,
    }
    pre_period: ClassVar[dict[str, str]] = {"revenue_60d": "revenue_pre_60d"}
    window_days = 60
    course_price = 290.0
    extra_rate = 0.25
    extra_mean = 30.0

    def _population(self, rng: np.random.Generator, n: int) -> pd.DataFrame:
        base = _customer_base(rng, n)
        base["plan"] = rng.choice(["free", "basic", "plus"], n, p=[0.5, 0.35, 0.15])
        base["applied_premium"] = (rng.random(n) < 0.6).astype(int)
        base["bought_premium_before"] = (rng.random(n) < 0.1).astype(int)
        p0 = self._baseline(base)
        extra = (rng.random(n) < self.extra_rate) * rng.lognormal(np.log(25.0), 0.5, n)
        base["revenue_pre_60d"] = np.round(
            self.course_price * (rng.random(n) < 0.5 * p0) + extra, 2
        )
        return base.drop(columns="avg_check")

    @staticmethod
    def _baseline(pop: pd.DataFrame) -> np.ndarray:
        f = np.log1p(pop["frequency_180d"].to_numpy())
        r = pop["recency_days"].to_numpy()
        plus = (pop["plan"].to_numpy() == "plus") * 0.4
        return _sigmoid(-3.0 + 1.2 * f - r / 90.0 + plus)

    def _rates(self, pop: pd.DataFrame, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = pop["frequency_180d"].to_numpy()
        r = pop["recency_days"].to_numpy()
        p0 = self._baseline(pop)
        lift = 0.13 * np.exp(-r / 70.0) * np.exp(-f / 4.0)
        bought = np.clip(p0 + scale * lift, 0.0, 1.0)
        uptake = np.where(scale > 0, _sigmoid(-0.3 + 0.5 * np.log1p(f) - r / 120.0), 0.0)
        return bought, uptake

    def expected(self, population: pd.DataFrame, scale: np.ndarray) -> pd.DataFrame:
        bought, uptake = self._rates(population, np.broadcast_to(scale, len(population)))
        extra = self.extra_rate * self.extra_mean
        revenue = self.course_price * bought + extra
        e = self.extra_rate
        # window purchases: the course (Bernoulli(bought)) and the extra (Bernoulli(e))
        end = self._roll_forward_expected(
            population,
            lambda s: (1.0 - bought + bought * s) * (1.0 - e + e * s),
            bought + e,
            revenue,
        )
        return pd.DataFrame(
            {"took_trial": uptake, "bought_course": bought, "revenue_60d": revenue, **end},
            index=population.index,
        )

    def _draw(self, population: pd.DataFrame, scale: np.ndarray, noise: np.ndarray) -> pd.DataFrame:
        bought_p, uptake_p = self._rates(population, scale)
        bought = (noise[:, 0] < bought_p).astype(int)
        took = (noise[:, 1] < uptake_p).astype(int)
        # lognormal(mu, 0.5) has mean extra_mean
        mu = np.log(self.extra_mean) - 0.5**2 / 2
        extra = (noise[:, 2] < self.extra_rate) * stats.lognorm.ppf(
            noise[:, 3], 0.5, scale=np.exp(mu)
        )
        revenue = np.round(self.course_price * bought + extra, 2)
        purchases = bought + (noise[:, 2] < self.extra_rate)
        end = self._roll_forward(population, purchases, revenue, noise)
        return pd.DataFrame(
            {"took_trial": took, "bought_course": bought, "revenue_60d": revenue, **end},
            index=population.index,
        )


class FeatureUnlockSimulator(CampaignSimulator):
    """B2B SaaS: paid features unlocked for a month for accounts that hit their plan's limits.

    Active accounts that use the product moderately upgrade more after seeing the paid
    features. Heavy users would have upgraded anyway; the free month only delays their
    upgrade, so their revenue in the window falls. Lapsing accounts churn a little less.
    """

    kind = "feature_unlock"
    outcomes: ClassVar[dict[str, str]] = {
        "upgraded": "binary",
        "churned": "binary",
        "revenue_90d": "continuous",
        **_END_OUTCOMES,
    }
    pre_period: ClassVar[dict[str, str]] = {"revenue_90d": "revenue_pre_90d"}
    window_days = 90
    upgrade_price = 49.0
    plan_price: ClassVar[dict[str, float]] = {"starter": 19.0, "team": 59.0}

    def _population(self, rng: np.random.Generator, n: int) -> pd.DataFrame:
        base = _customer_base(rng, n)
        base["plan"] = rng.choice(["starter", "team", "enterprise"], n, p=[0.6, 0.3, 0.1])
        base["seats"] = 1 + rng.poisson(2.0, n)
        activity = np.log1p(base["frequency_180d"].to_numpy())
        base["hit_limit_30d"] = (rng.random(n) < _sigmoid(-1.0 + 0.9 * activity)).astype(int)
        monthly = self._monthly(base)
        base["revenue_pre_90d"] = np.round(3 * monthly * rng.lognormal(0.0, 0.2, n), 2)
        return base.drop(columns="avg_check")

    def _monthly(self, pop: pd.DataFrame) -> np.ndarray:
        price = pop["plan"].map(self.plan_price).fillna(99.0).to_numpy(dtype=float)
        return np.asarray(price * np.sqrt(pop["seats"].to_numpy()))

    def _rates(
        self, pop: pd.DataFrame, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = pop["frequency_180d"].to_numpy()
        r = pop["recency_days"].to_numpy()
        p0 = _sigmoid(-3.2 + 0.45 * f - r / 60.0)
        lift = 0.12 * np.exp(-((np.log1p(f) - 1.2) ** 2)) * np.exp(-r / 90.0)
        upgraded = np.clip(p0 + scale * lift, 0.0, 1.0)
        # months of upgrade revenue in the 90-day window: 2 on average for an upgrader;
        # accounts that would have upgraded anyway wait out the free month
        delayed = np.minimum(scale, 1.0) * p0
        months = 2.0 * upgraded - delayed
        churn0 = _sigmoid(-2.5 + r / 120.0)
        churned = np.clip(churn0 * (1.0 - 0.25 * np.minimum(scale, 2.0) * (r > 60)), 0.0, 1.0)
        return upgraded, months, churned

    def expected(self, population: pd.DataFrame, scale: np.ndarray) -> pd.DataFrame:
        upgraded, months, churned = self._rates(population, np.broadcast_to(scale, len(population)))
        base = 3 * self._monthly(population)
        # window purchases: the paid months, 0 without an upgrade, else Binomial(3, q)
        q = self._month_share(upgraded, months)
        end = self._roll_forward_expected(
            population,
            lambda s: 1.0 - upgraded + upgraded * (1.0 - q + q * s) ** 3,
            3.0 * upgraded * q,
            self.upgrade_price * 3.0 * upgraded * q,
        )
        return pd.DataFrame(
            {
                "upgraded": upgraded,
                "churned": churned,
                "revenue_90d": base * (1.0 - 0.5 * churned) + self.upgrade_price * months,
                **end,
            },
            index=population.index,
        )

    @staticmethod
    def _month_share(up_p: np.ndarray, months_mean: np.ndarray) -> np.ndarray:
        """Share ``q`` of the 3 months an upgrader pays: months ~ Binomial(3, q)."""
        q = np.divide(months_mean, 3.0 * up_p, out=np.zeros_like(up_p), where=up_p > 0)
        return np.asarray(np.clip(q, 0.0, 1.0))

    def _draw(self, population: pd.DataFrame, scale: np.ndarray, noise: np.ndarray) -> pd.DataFrame:
        up_p, months_mean, churn_p = self._rates(population, scale)
        upgraded = (noise[:, 0] < up_p).astype(int)
        churned = (noise[:, 1] < churn_p).astype(int)
        # months paid by an upgrader ~ Binomial(3, q) with the mean that the arm implies
        q = self._month_share(up_p, months_mean)
        months = upgraded * stats.binom.ppf(noise[:, 2], 3, q)
        base = 3 * self._monthly(population)
        revenue = base * (1.0 - 0.5 * churned) + self.upgrade_price * months
        end = self._roll_forward(population, months.astype(int), self.upgrade_price * months, noise)
        return pd.DataFrame(
            {
                "upgraded": upgraded,
                "churned": churned,
                "revenue_90d": np.round(revenue, 2),
                **end,
            },
            index=population.index,
        )


class LowerCheckOfferSimulator(CampaignSimulator):
    """E-commerce: a discount on every order for a month, trading a lower check for more checks.

    Lapsing and occasional shoppers order more under the discount. Frequent, recent
    shoppers order about as much as they would have anyway, so the discount on their
    orders is pure cost.
    """

    kind = "lower_check_offer"
    outcomes: ClassVar[dict[str, str]] = {
        "redeemed": "binary",
        "orders_30d": "continuous",
        "revenue_30d": "continuous",
        **_END_OUTCOMES,
    }
    pre_period: ClassVar[dict[str, str]] = {"revenue_30d": "revenue_pre_30d"}
    window_days = 30
    check_shape = 2.0

    def _population(self, rng: np.random.Generator, n: int) -> pd.DataFrame:
        base = _customer_base(rng, n)
        base["plan"] = rng.choice(["none", "silver", "gold"], n, p=[0.7, 0.2, 0.1])
        lam = self._baseline(base)
        orders = rng.poisson(lam)
        base["revenue_pre_30d"] = np.round(
            rng.gamma(
                np.maximum(orders, 1) * self.check_shape, base["avg_check"] / self.check_shape
            )
            * (orders > 0),
            2,
        )
        return base

    @staticmethod
    def _baseline(pop: pd.DataFrame) -> np.ndarray:
        f = pop["frequency_180d"].to_numpy()
        r = pop["recency_days"].to_numpy()
        return np.asarray(f / 6.0 * np.exp(-r / 120.0) + 0.03)

    def _rate(self, pop: pd.DataFrame, scale: np.ndarray) -> np.ndarray:
        f = pop["frequency_180d"].to_numpy()
        r = pop["recency_days"].to_numpy()
        lift = 0.35 * np.exp(-f / 3.0) * (0.3 + np.exp(-r / 150.0))
        return np.asarray(self._baseline(pop) + scale * lift)

    def expected(self, population: pd.DataFrame, scale: np.ndarray) -> pd.DataFrame:
        scale = np.broadcast_to(scale, len(population))
        lam = self._rate(population, scale)
        check = population["avg_check"].to_numpy()
        # window purchases: the orders, Poisson(lam)
        end = self._roll_forward_expected(
            population, lambda s: np.exp(lam * (s - 1.0)), lam, lam * check
        )
        return pd.DataFrame(
            {
                "redeemed": np.where(scale > 0, 1.0 - np.exp(-lam), 0.0),
                "orders_30d": lam,
                "revenue_30d": lam * check,
                **end,
            },
            index=population.index,
        )

    def _draw(self, population: pd.DataFrame, scale: np.ndarray, noise: np.ndarray) -> pd.DataFrame:
        lam = self._rate(population, scale)
        orders = stats.poisson.ppf(noise[:, 0], lam).astype(int)
        check = population["avg_check"].to_numpy()
        # the sum of k Gamma(shape, check/shape) checks is Gamma(k * shape, check/shape)
        revenue = np.zeros(len(population))
        has = orders > 0
        revenue[has] = stats.gamma.ppf(
            noise[has, 1], orders[has] * self.check_shape, scale=check[has] / self.check_shape
        )
        revenue = np.round(revenue, 2)
        end = self._roll_forward(population, orders, revenue, noise)
        return pd.DataFrame(
            {
                "redeemed": ((scale > 0) & has).astype(int),
                "orders_30d": orders,
                "revenue_30d": revenue,
                **end,
            },
            index=population.index,
        )


SIMULATORS: dict[str, type[CampaignSimulator]] = {
    cls.kind: cls
    for cls in (TrialLessonsSimulator, FeatureUnlockSimulator, LowerCheckOfferSimulator)
}


@dataclass(frozen=True)
class Simulation:
    """A simulated base and the simulator that knows its truth."""

    simulator: CampaignSimulator
    population: pd.DataFrame
    arm_scale: Mapping[str, float]
    seed: int

    def scales(self, arms: pd.Series) -> np.ndarray:
        """The effect scale of each customer's arm (0 for control and unknown arms)."""
        return arms.map(self.arm_scale).fillna(0.0).to_numpy(dtype=float)

    def noise(self) -> np.ndarray:
        """Six uniform numbers per customer of the whole base, fixed by the seed.

        The first four (stream ``[seed, 1]``) drive the window's outcomes; the last two
        (stream ``[seed, 2]``) the end-of-window RFM columns, so that adding those
        columns left the first four, and every outcome drawn from them, unchanged.
        """
        n = len(self.population)
        outcomes = np.random.default_rng([self.seed, 1]).random((n, 4))
        roll_forward = np.random.default_rng([self.seed, 2]).random((n, NOISE_COLUMNS - 4))
        return np.hstack([outcomes, roll_forward])

    def draw(self, arms: pd.Series) -> pd.DataFrame:
        """Outcomes for the customers in ``arms`` (indexed like the population).

        Each customer's noise is taken by their row in the whole base, so their outcome
        does not depend on who else is drawn or in what order.
        """
        positions = self.population.index.get_indexer(arms.index)
        if (positions < 0).any():
            raise ValueError("arms names customers that are not in the simulated population")
        rows = self.population.iloc[positions]
        return self.simulator.draw(rows, self.scales(arms), self.noise()[positions])

    def expected(self, arm: str, index: pd.Index | None = None) -> pd.DataFrame:
        """Expected outcomes of every customer (or those in ``index``) were they in ``arm``."""
        rows = self.population if index is None else self.population.loc[index]
        return self.simulator.expected(rows, np.asarray(self.arm_scale.get(arm, 0.0)))


def simulate(
    kind: str,
    n: int,
    seed: int,
    treatments: Sequence[str],
    arm_effects: Mapping[str, float] | None = None,
) -> Simulation:
    """Simulate a customer base for a hypothesis kind.

    Parameters
    ----------
    kind : str
        ``trial_lessons``, ``feature_unlock`` or ``lower_check_offer``.
    n : int
        Customers to draw (eligible or not).
    seed : int
        Seed of the base and of the outcome noise.
    treatments : sequence of str
        Treatment arm names; by default the first has effect scale 1.0, the next 1.5, ...
    arm_effects : mapping, optional
        Effect scale per treatment arm, overriding the default.

    Returns
    -------
    Simulation
    """
    if kind not in SIMULATORS:
        raise ValueError(
            f"no simulator for hypothesis kind {kind!r}; there are {sorted(SIMULATORS)}"
        )
    simulator = SIMULATORS[kind]()
    scale = {arm: 1.0 + 0.5 * i for i, arm in enumerate(treatments)}
    scale.update(arm_effects or {})
    return Simulation(simulator, simulator.population(n, seed), scale, seed)
