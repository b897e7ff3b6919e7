"""The experiment spec: pydantic models of the YAML file and :func:`load_spec`.

One YAML file describes one experiment: the hypothesis, who is eligible, how arms are
assigned (by us, or read from the data), which outcomes are measured, how outcomes turn
into money, the economics of the offer, the uplift models, the decision rule and where
results are tracked. Every model forbids unknown keys, so a typo is an error, never a
silently ignored setting.

Relative paths in the spec (data files, the SQLite tracking store) are resolved against
the directory the command runs in, the project root in the README's commands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.constructor import SafeConstructor

from uplift.errors import SpecError
from uplift.expressions import ExpressionError, parse

__all__ = [
    "BUCKETS",
    "WORTH",
    "Assignment",
    "Economics",
    "EffectsSpec",
    "ExperimentSpec",
    "FileSource",
    "HashAssignment",
    "LearnerSpec",
    "LedgerSpec",
    "Metric",
    "ObservedAssignment",
    "Outcomes",
    "PerCustomer",
    "SimulateSource",
    "SqlSource",
    "load_spec",
    "spec_json_schema",
]

# libyaml's parser where PyYAML was built with it: the same nodes and marks, ten times
# faster than the pure-Python one.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Number of hash buckets; arm weights must be multiples of ``1 / BUCKETS``.
BUCKETS = 10_000

#: Name of the value metric when ``value.metrics`` prices several metrics: each customer's
#: worth, the sum of every priced metric times its unit's value.
WORTH = "worth"

# YAML reads `yes` as true; strict numbers refuse it instead of reading it as 1
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]

HypothesisKind = Literal[
    "trial_lessons", "feature_unlock", "lower_check_offer", "channel", "custom"
]


class KeyPathError(ValueError):
    """A cross-field problem that belongs to a key below the model being validated."""

    def __init__(self, keys: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.keys = tuple(keys)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hypothesis(_Model):
    """What the campaign claims and who owns the claim."""

    kind: HypothesisKind
    statement: str = Field(min_length=1)
    owner: str | None = None


class SimulateSource(_Model):
    """A simulated campaign of the hypothesis kind, with known ground truth."""

    kind: Literal["simulate"]
    n: Int = Field(default=200_000, ge=100, le=50_000_000)
    seed: Int = 0
    arm_effects: dict[str, Float] | None = None
    """Scale of the true effect per treatment arm (default: 1.0, 1.5, 2.0, ... in order)."""


class FileSource(_Model):
    """A CSV or Parquet file keyed by the population id."""

    kind: Literal["csv", "parquet"]
    path: Path
    number_rows: bool = False
    """The file has no id column: its rows are numbered 1, 2, ... in ``population.id``.
    Only for an experiment that already ran (observed assignment) with its outcomes in
    the same file, since row numbers are not customer ids that last."""


class SqlSource(_Model):
    """A table, or the rows of a query, in a SQL database (through SQLAlchemy)."""

    kind: Literal["sql"]
    url: str = Field(min_length=1)
    """A SQLAlchemy URL (``postgresql+psycopg://user@host/db``); a password in it is masked
    in every message and everything logged."""
    table: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"
    )
    """``table`` or ``schema.table``."""
    query: str | None = Field(default=None, min_length=1)
    """A ``SELECT`` statement, instead of ``table``."""

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise KeyPathError(
                ["table"],
                "a sql source needs exactly one of table and query, found "
                + ("both" if self.table is not None else "neither"),
            )
        return self


class PopulationSpec(_Model):
    source: Annotated[SimulateSource | FileSource | SqlSource, Field(discriminator="kind")]
    id: str = "customer_id"
    eligible: str | None = None
    features: list[str] = Field(min_length=1)
    missing_features: Literal["impute", "drop", "fail"] = "impute"
    """What to do with experiment customers missing a feature value: ``impute`` (the
    learners handle it: LightGBM natively, the linear bases by the median), ``drop`` (the
    customers leave the analysis, counted; features are measured before launch, so this
    keeps the arms comparable), or ``fail`` (exit 2 naming the features)."""
    features_as_of: str | None = None
    """A column with the date (or time) each customer's features were measured. Every
    value must fall before the launch (``uplift assign``'s time, or ``assignment.launched``
    for an experiment that already ran): features measured after it can carry the
    campaign's own effect, and are refused."""

    @field_validator("eligible")
    @classmethod
    def _parse_eligible(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse(value)
            except ExpressionError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("features")
    @classmethod
    def _unique_features(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for i, name in enumerate(value):
            if name in seen:
                raise KeyPathError([i], f"feature {name!r} is listed twice")
            seen.add(name)
        return value


class HashAssignment(_Model):
    """We assign: a salted hash of the id puts each customer in a fixed bucket range."""

    salt: str = Field(min_length=1)
    arms: dict[str, Float]
    """Arm -> share of the experiment's buckets, in the order that fixes their ranges.

    Shares may sum to less than 1: the rest is left unallocated, so an arm added later at
    the end of the list moves nobody already assigned."""
    control: str = "control"
    layer: str | None = None
    """Experiments naming the same layer never share a customer."""
    layer_share: Float = Field(default=1.0, gt=0.0, le=1.0)
    """Share of the layer's buckets this experiment takes (the ledger allocates the range)."""
    global_holdout: Float | None = Field(default=None, ge=0.0, lt=0.5)
    """Programme-wide share held out of every campaign; fixed by the first launch in the
    ledger, so it is best left unset (inherit) or given the ledger's value."""

    @field_validator("arms")
    @classmethod
    def _weights(cls, arms: dict[str, Float]) -> dict[str, Float]:
        if len(arms) < 2:
            raise ValueError(
                f"at least two arms are needed (a control and a treatment), found {len(arms)}"
            )
        for name, weight in arms.items():
            if not weight > 0:
                raise KeyPathError([name], f"arm weight must be positive, found {weight}")
            if not math.isclose(weight * BUCKETS, round(weight * BUCKETS), abs_tol=1e-6):
                raise KeyPathError(
                    [name], f"arm weight must be a multiple of 1/{BUCKETS}, found {weight}"
                )
        total = sum(arms.values())
        if total > 1.0 + 1e-9:
            parts = " + ".join(f"{k} {v:g}" for k, v in arms.items())
            raise ValueError(f"arm weights must sum to at most 1, found {total:g} ({parts})")
        return arms

    @field_validator("layer_share")
    @classmethod
    def _layer_share(cls, share: float) -> float:
        if not math.isclose(share * BUCKETS, round(share * BUCKETS), abs_tol=1e-6):
            raise ValueError(f"layer share must be a multiple of 1/{BUCKETS}, found {share}")
        return share

    @model_validator(mode="after")
    def _control_is_an_arm(self) -> HashAssignment:
        if self.control not in self.arms:
            raise KeyPathError(
                ["control"],
                f"control arm {self.control!r} is not one of the arms {sorted(self.arms)}",
            )
        if self.layer is None and self.layer_share != 1.0:
            raise KeyPathError(["layer_share"], "a layer share needs a layer name (layer: ...)")
        return self

    @property
    def treatments(self) -> list[str]:
        """Treatment arm names in spec order."""
        return [arm for arm in self.arms if arm != self.control]


class ObservedAssignment(_Model):
    """The experiment already ran: a column of the data says who got what."""

    column: str
    control: str
    launched: dt.datetime | dt.date | None = None
    """When the campaign started: a date (features measured on that day pass) or a time
    (UTC unless it names a zone). Needed with ``population.features_as_of``."""

    @field_validator("launched", mode="before")
    @classmethod
    def _date_or_time(cls, value: Any) -> Any:
        # a text date stays a date (the whole day), not midnight as a time would be
        if isinstance(value, str) and len(value.strip()) == 10:
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                return value
        return value


def _assignment_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "observed" if "column" in value else "hash"
    if isinstance(value, ObservedAssignment):
        return "observed"
    return "hash"


Assignment = Annotated[
    Annotated[HashAssignment, Tag("hash")] | Annotated[ObservedAssignment, Tag("observed")],
    Discriminator(_assignment_kind),
]


class OutcomeSource(_Model):
    """Where outcomes come from; ``population`` means the population file holds them."""

    kind: Literal["simulate", "csv", "parquet", "population"]
    path: Path | None = None

    @model_validator(mode="after")
    def _path_for_files(self) -> OutcomeSource:
        if self.kind in ("csv", "parquet") and self.path is None:
            raise KeyPathError(["path"], f"an outcome source of kind {self.kind!r} needs a path")
        if self.kind in ("simulate", "population") and self.path is not None:
            raise KeyPathError(["path"], f"an outcome source of kind {self.kind!r} takes no path")
        return self


class Metric(_Model):
    """One outcome: a binary (0/1) or continuous column, or a ratio of two other metrics.

    A ratio metric (revenue per order: ``numerator: revenue``, ``denominator: orders``)
    compares ``sum(numerator) / sum(denominator)`` between arms, by the delta method.
    """

    kind: Literal["binary", "continuous", "ratio"]
    column: str | None = None
    pre_period: str | None = None
    """Column of the same quantity before launch: the effect is then CUPED (Lin) adjusted."""
    winsorize: Float | None = Field(default=None, gt=0.5, lt=1.0)
    """Cap a continuous metric at this quantile of the experiment's values (0.99, say);
    the raw estimate is reported beside the capped one."""
    numerator: str | None = None
    denominator: str | None = None

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> Metric:
        if self.kind == "ratio":
            for key in ("numerator", "denominator"):
                if getattr(self, key) is None:
                    raise KeyPathError([key], f"a ratio metric needs a {key} (a metric name)")
            for key in ("column", "pre_period", "winsorize"):
                if getattr(self, key) is not None:
                    raise KeyPathError(
                        [key],
                        f"a ratio metric takes no {key}: it is computed from its numerator "
                        f"and denominator metrics",
                    )
            return self
        if self.column is None:
            raise KeyPathError(["column"], f"a {self.kind} metric needs a column")
        for key in ("numerator", "denominator"):
            if getattr(self, key) is not None:
                raise KeyPathError([key], f"only a ratio metric takes a {key}")
        if self.winsorize is not None and self.kind != "continuous":
            raise KeyPathError(
                ["winsorize"], f"only a continuous metric can be winsorized, not a {self.kind} one"
            )
        return self


class Outcomes(_Model):
    source: OutcomeSource = OutcomeSource(kind="population")
    window_days: Int = Field(gt=0, le=3660)
    metrics: dict[str, Metric] = Field(min_length=1)
    primary: str

    @model_validator(mode="after")
    def _primary_is_a_metric(self) -> Outcomes:
        if self.primary not in self.metrics:
            raise KeyPathError(
                ["primary"],
                f"primary metric {self.primary!r} is not one of the metrics {sorted(self.metrics)}",
            )
        if self.metrics[self.primary].kind == "ratio":
            raise KeyPathError(
                ["primary"],
                f"the primary metric is modelled per customer, so it cannot be the ratio "
                f"metric {self.primary!r}; choose one of {sorted(self.per_customer)}",
            )
        for name, metric in self.metrics.items():
            if metric.kind != "ratio":
                continue
            for key in ("numerator", "denominator"):
                part = getattr(metric, key)
                if part not in self.per_customer:
                    raise KeyPathError(
                        ["metrics", name, key],
                        f"{key} {part!r} must be one of the binary or continuous metrics "
                        f"{sorted(self.per_customer)}",
                    )
        return self

    @property
    def per_customer(self) -> dict[str, Metric]:
        """The metrics with a value per customer (every kind but ratio)."""
        return {name: m for name, m in self.metrics.items() if m.kind != "ratio"}

    def columns(self, name: str) -> str | tuple[str, str]:
        """The metric's column name in the outcomes frame, or its ratio's two."""
        metric = self.metrics[name]
        if metric.kind == "ratio":
            return (str(metric.numerator), str(metric.denominator))
        return name


class CLV(_Model):
    """Turns a window effect into lifetime value."""

    horizon_months: Float = Field(default=12.0, gt=0, le=120)
    margin: Float = Field(default=1.0, gt=0, le=1)
    annual_discount_rate: Float = Field(default=0.1, ge=0, le=1)
    persistence: Float = Field(default=0.0, ge=0, le=1)
    """Share of the window effect that repeats in each following window of the horizon."""


class RFMRule(_Model):
    """A named RFM segment: inclusive score ranges ``[lo, hi]``; a range left out means any."""

    name: str
    r: tuple[Int, Int] | None = None
    f: tuple[Int, Int] | None = None
    m: tuple[Int, Int] | None = None

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip():
            raise ValueError(f"a segment needs a name, found {name!r}")
        return name


class TransactionsSource(_Model):
    """A CSV or Parquet table of purchases: one row per purchase."""

    kind: Literal["csv", "parquet"]
    path: Path
    id: str | None = None
    """The customer id column (default: ``population.id``)."""
    date: str = "date"
    amount: str = "amount"


class RFMSpec(_Model):
    recency: str = "recency_days"
    frequency: str = "frequency_180d"
    monetary: str = "monetary_180d"
    bins: Int = Field(default=3, ge=2, le=10)
    bounds: dict[Literal["recency", "frequency", "monetary"], list[Float]] = {}
    """Explicit cut points by dimension, ``bins - 1`` finite strictly increasing values each;
    a value equal to a cut point goes with the values below it (recency ``[30, 90]``: up to
    30 days scores 3, the best). A dimension left out is scored by ranked quantile."""
    rules: list[RFMRule] | None = Field(default=None, min_length=1)
    """Ordered segment rules, first match wins (default: Champions, Loyal, Promising,
    At Risk, Hibernating from the R and F scores)."""
    default: str = Field(default="Other", min_length=1)
    """Segment of the customers that match no rule."""
    transactions: TransactionsSource | None = None
    """A purchases table to compute R, F and M from, as of ``as_of``, instead of the
    ``recency``, ``frequency`` and ``monetary`` columns of the population."""
    as_of: dt.date | None = None
    """Last day of the transactions' look-back (default: the day before launch, from the
    ledger or ``assignment.launched``); it must fall before the launch."""
    window_days: Int = Field(default=180, ge=1)
    """Days of the transactions' look-back, ``as_of`` included."""
    count: Literal["purchases", "days"] = "purchases"
    """F from transactions: the purchases (rows), or the distinct days with a purchase."""
    spend: Literal["total", "mean"] = "total"
    """M from transactions: the total spent in the look-back, or the mean per purchase."""

    @model_validator(mode="after")
    def _transactions_or_columns(self) -> RFMSpec:
        # compared with the defaults, not with the keys given, so that a spec written back
        # with every default (model_dump) reads again
        defaults = type(self).model_fields
        if self.transactions is not None:
            for key in ("recency", "frequency", "monetary"):
                if getattr(self, key) != defaults[key].default:
                    raise KeyPathError(
                        [key],
                        f"with transactions, R, F and M come from the purchases; "
                        f"leave out the column {key}: {getattr(self, key)!r}",
                    )
        else:
            for key in ("as_of", "window_days", "count", "spend"):
                if getattr(self, key) != defaults[key].default:
                    raise KeyPathError(
                        [key], f"{key} goes with transactions (a purchases table), found none"
                    )
        return self

    @model_validator(mode="after")
    def _within_bins(self) -> RFMSpec:
        for role, cuts in self.bounds.items():
            if len(cuts) != self.bins - 1:
                raise KeyPathError(
                    ["bounds", role],
                    f"{self.bins} scores (bins) need {self.bins - 1} cut points, "
                    f"found {len(cuts)}: {cuts}",
                )
            for i, cut in enumerate(cuts):
                if not math.isfinite(cut):
                    raise KeyPathError(
                        ["bounds", role, i], f"cut point must be finite, found {cut}"
                    )
                if i and not cut > cuts[i - 1]:
                    raise KeyPathError(
                        ["bounds", role, i],
                        f"cut points must be strictly increasing, found {cuts[i - 1]} then {cut}",
                    )
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules or []):
            if rule.name in seen:
                raise KeyPathError(
                    ["rules", i, "name"],
                    f"segment {rule.name!r} is already the name of rule {seen[rule.name]}",
                )
            seen[rule.name] = i
            for key in ("r", "f", "m"):
                span = getattr(rule, key)
                if span is not None and not 1 <= span[0] <= span[1] <= self.bins:
                    raise KeyPathError(
                        ["rules", i, key],
                        f"a score range [lo, hi] needs 1 <= lo <= hi <= {self.bins} (bins), "
                        f"found [{span[0]}, {span[1]}]",
                    )
        return self


class BaselineCLVSpec(_Model):
    """Where each customer's baseline CLV comes from: a transactions table (BG/NBD and
    Gamma-Gamma) or a pre-period spend column continued at its run rate."""

    transactions: TransactionsSource | None = None
    observation_end: dt.date | None = None
    """Last day of history; later purchases are left out, since the window's purchases are
    the campaign's outcome. Default: the day before launch (the ledger's launch, or
    ``assignment.launched``, which an experiment that already ran must then give); it must
    fall before the launch."""
    column: str | None = None
    """A pre-period column of the population (frozen at launch) in units of the value
    metric (in money when ``value.metrics`` prices several metrics)."""
    period_days: Int | None = Field(default=None, gt=0)
    """Days ``column`` covers."""

    @model_validator(mode="after")
    def _one_source(self) -> BaselineCLVSpec:
        if self.transactions is not None and self.column is not None:
            raise KeyPathError(
                ["column"], "give either transactions or column (with period_days), not both"
            )
        if self.transactions is None and self.column is None:
            raise ValueError(
                "give either transactions (a purchases table) or column (with period_days)"
            )
        if self.column is not None and self.period_days is None:
            raise KeyPathError(["period_days"], "column needs period_days, the days it covers")
        if self.column is None and self.period_days is not None:
            raise KeyPathError(["period_days"], "period_days goes with column")
        return self


class Migration(_Model):
    """End-of-window R, F and M columns of the outcomes, for segment migration per arm
    (none with ``value.rfm.transactions``: the purchases give the end of the window too)."""

    recency: str | None = None
    frequency: str | None = None
    monetary: str | None = None
    dimensions: list[Literal["R", "F", "M"]] = Field(default=["M", "F"], min_length=1)
    """Dimensions whose move up a level is compared between each arm and the control."""
    by_level: bool = True
    """Also compare the move up from each launch level (M(n) to M(n+1) and above)."""
    interval: Literal["newcombe", "wald"] = "newcombe"
    """Interval of a difference of two shares: Newcombe's hybrid score, or Wald."""

    @field_validator("dimensions")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"each dimension once, found {value}")
        return value


class Value(_Model):
    segments: str = "rfm"
    """``rfm`` for named RFM segments from the pre-period features, or a column name."""
    metric: str | None = None
    """The metric whose unit has a money value (default: the primary metric)."""
    unit_value: Float = Field(default=1.0, gt=0)
    metrics: dict[str, Annotated[float, Strict(), Field(gt=0)]] | None = Field(
        default=None, min_length=1
    )
    """Several metrics with a money value each (metric -> the worth of one unit), instead
    of ``metric`` and ``unit_value``: a customer's value is the sum of every priced metric
    times its unit's worth (the value metric ``worth``), before the margin."""
    clv: CLV = CLV()
    rfm: RFMSpec = RFMSpec()
    min_segment_size: Int = Field(default=200, ge=10)
    migration: Migration | None = None
    """Where the outcomes hold R, F and M at the end of the window (levels on the launch's
    cut points of ``rfm``); without it, no migration is measured."""
    baseline_clv: BaselineCLVSpec | None = None
    """Each customer's CLV without the campaign, reported per segment beside the
    incremental CLV; without it, none is computed."""

    @model_validator(mode="after")
    def _one_way_to_price(self) -> Value:
        # compared with the defaults, so that a spec written back in full reads again
        if self.metrics is not None and (self.metric is not None or self.unit_value != 1.0):
            given = "metric" if self.metric is not None else "unit_value"
            raise KeyPathError(
                [given],
                f"value.metrics prices every valued metric; leave out {given} "
                f"(found {getattr(self, given)!r}), or price one metric with metric and "
                f"unit_value and leave out metrics",
            )
        return self

    @model_validator(mode="after")
    def _rfm_from_columns_or_transactions(self) -> Value:
        roles = ("recency", "frequency", "monetary")
        if self.rfm.transactions is None:
            if self.migration is not None:
                for role in roles:
                    if getattr(self.migration, role) is None:
                        raise KeyPathError(
                            ["migration", role],
                            f"migration needs the outcomes' end-of-window {role} column "
                            f"(or R, F and M from purchases: rfm.transactions), found none",
                        )
            return self
        if self.segments != "rfm":
            raise KeyPathError(
                ["rfm", "transactions"],
                f"RFM from transactions names the segments of segments: rfm, but segments "
                f"is {self.segments!r}",
            )
        if self.migration is not None:
            for role in roles:
                if getattr(self.migration, role) is not None:
                    raise KeyPathError(
                        ["migration", role],
                        f"with rfm.transactions the end of the window is scored from the "
                        f"purchases too; leave out the column {role}: "
                        f"{getattr(self.migration, role)!r}",
                    )
        return self


class TrialLessonsOffer(_Model):
    kind: Literal["trial_lessons"]
    price: Float = Field(ge=0)
    delivery_cost: Float = Field(ge=0)
    uptake_metric: str | None = None
    """Binary metric saying who took the lessons; without it every treated customer does."""


class FeatureUnlockOffer(_Model):
    kind: Literal["feature_unlock"]
    serving_cost_per_day: Float = Field(ge=0)
    days: Int = Field(gt=0)


class LowerCheckOffer(_Model):
    kind: Literal["lower_check_offer"]
    discount: Float = Field(gt=0, lt=1)
    """Share of the check given back on every order of a treated customer in the window."""
    revenue_metric: str | None = None
    """Continuous metric of gross revenue the discount applies to (default: the value metric)."""


class ChannelOffer(_Model):
    kind: Literal["channel"]
    cost: Float = Field(ge=0)


Offer = Annotated[
    TrialLessonsOffer | FeatureUnlockOffer | LowerCheckOffer | ChannelOffer,
    Field(discriminator="kind"),
]


class Economics(_Model):
    contact_cost: Float = Field(default=0.0, ge=0)
    fixed_cost: Float = Field(default=0.0, ge=0)
    offer: Offer | None = None
    """The offer of every treatment arm, unless ``offers`` names one per arm."""
    offers: dict[str, Offer] | None = None

    @model_validator(mode="after")
    def _one_offer_form(self) -> Economics:
        if self.offer is not None and self.offers is not None:
            raise KeyPathError(
                ["offers"], "give either 'offer' (all arms) or 'offers' (per arm), not both"
            )
        return self


LearnerName = Literal[
    "s_learner", "t_learner", "x_learner", "r_learner", "dr_learner", "uplift_forest"
]
BaseName = Literal["lightgbm", "xgboost", "random_forest", "linear"]


class LearnerSpec(_Model):
    """One uplift learner: a causalml meta-learner on a base model, or the uplift forest."""

    learner: LearnerName
    base: BaseName | None = None
    """The meta-learner's base regressor (default: ``models.base``)."""
    params: dict[str, Any] | None = None
    """Base model (or uplift forest) parameters (default: ``models.base_params`` where the
    entry's base is ``models.base``; an entry on another base starts from that base's
    defaults, since the parameters of one kind of model do not fit another)."""
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")
    """The learner's label in reports (default: the learner, with the base when given)."""

    @property
    def label(self) -> str:
        """The name reports use."""
        if self.name is not None:
            return self.name
        return self.learner if self.base is None else f"{self.learner}.{self.base}"


def _learner_form(value: Any) -> str:
    return "learner_name" if isinstance(value, str) else "learner_entry"


Learner = Annotated[
    Annotated[LearnerName, Tag("learner_name")] | Annotated[LearnerSpec, Tag("learner_entry")],
    Discriminator(_learner_form),
]


class Models(_Model):
    learners: list[Learner] = Field(default=["t_learner"], min_length=1)
    """Learner names, or ``{learner, base, params, name}`` entries to set each one up."""
    base: BaseName = "lightgbm"
    base_params: dict[str, Any] = Field(default_factory=dict)
    folds: Int = Field(default=5, ge=2, le=20)
    seed: Int = 0
    sample_size: Int | None = Field(default=None, ge=1000)
    """Fit, compare and value the uplift models on a seeded sample of this many of the
    experiment's customers, stratified by arm (each arm keeps its share), instead of on
    every customer: for a base too large to model whole. Effects, segment economics and
    migration still use every customer; the policy's per-customer value is estimated on
    the sample and applied to the experiment's customers."""

    @model_validator(mode="after")
    def _unique_labels(self) -> Models:
        seen: set[str] = set()
        for i, entry in enumerate(self.configured()):
            if entry.label in seen:
                raise KeyPathError(
                    ["learners", i],
                    f"two learners are called {entry.label!r}; give one a different name",
                )
            seen.add(entry.label)
        return self

    def configured(self) -> list[LearnerSpec]:
        """Every learner as a full entry, defaults filled in from ``base`` and ``base_params``."""
        out = []
        for entry in self.learners:
            spec = LearnerSpec(learner=entry) if isinstance(entry, str) else entry
            base = spec.base or self.base
            params = spec.params
            if params is None:
                params = self.base_params if base == self.base else {}
            out.append(spec.model_copy(update={"base": base, "params": params, "name": spec.label}))
        return out


class EffectsSpec(_Model):
    """How effects are reported per segment (the segments of ``value.segments``)."""

    correction: Literal["holm", "fdr_bh", "bonferroni", "none"] = "holm"
    """Multiple-testing correction across arms x metrics x segments: Holm (family-wise
    error), Benjamini-Hochberg (``fdr_bh``, false discovery rate), Bonferroni, or none."""
    min_segment_size: Int = Field(default=200, ge=2)
    """Fewest customers in the arm and in the control for a segment to be tested."""
    power: Float = Field(default=0.8, gt=0.5, lt=1.0)
    """Power at which the effect a segment could have detected is reported."""


class Budget(_Model):
    """Limits on a rollout to the eligible base; the targeting policy fills them in order of
    expected net value (in the experiment, pro rata to its share of the eligible base)."""

    max_treated: Int | None = Field(default=None, ge=0)
    """Treat at most this many customers."""
    max_spend: Float | None = Field(default=None, ge=0)
    """Spend at most this much on contact and offer costs (expected, per the models)."""


class Decision(_Model):
    objective: Literal["incremental_profit"] = "incremental_profit"
    alpha: Float = Field(default=0.05, gt=0, lt=0.5)
    budget: Budget = Budget()
    """Optional limits on whom the targeting policy treats."""


class LedgerSpec(_Model):
    """Where assignments and launch snapshots are kept."""

    url: str = "sqlite:///experiments/ledger.db"
    """Any SQLAlchemy URL; PostgreSQL (``postgresql+psycopg://...``) for teams."""
    snapshots: Path | None = None
    """Folder of the launch snapshots (default: ``snapshots/`` beside a SQLite ledger,
    else ``experiments/snapshots``)."""


class PerCustomer(_Model):
    """Opt-in logging of per-customer output to the tracking server."""

    key: Literal["hashed", "id"] = "hashed"
    """``hashed``: each customer is keyed by HMAC-SHA256 of their id under a secret salt;
    ``id``: by the raw id, for a store the customers' data may go to."""
    salt_env: str = Field(default="UPLIFT_CUSTOMER_SALT", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable holding the salt (at least 16 characters). The salt is
    never logged, so the logged keys cannot be turned back into ids from the store."""


class Tracking(_Model):
    uri: str = "sqlite:///experiments/mlflow.db"
    experiment: str = "crm-uplift"
    per_customer: PerCustomer | None = None
    """Log each modelled customer's arm, out-of-fold uplift, expected net value and policy
    arm as ``customers/scores.parquet``. Unset (the default), no customer identifier or
    row is sent to the tracking server."""


class ExperimentSpec(_Model):
    """A whole experiment, as written in one YAML file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    hypothesis: Hypothesis
    population: PopulationSpec
    assignment: Assignment
    outcomes: Outcomes
    value: Value = Value()
    economics: Economics = Economics()
    effects: EffectsSpec = EffectsSpec()
    models: Models = Models()
    decision: Decision = Decision()
    ledger: LedgerSpec = LedgerSpec()
    tracking: Tracking = Tracking()

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        metrics = self.outcomes.metrics
        if self.value.metric is not None and self.value.metric not in self.outcomes.per_customer:
            raise KeyPathError(
                ["value", "metric"],
                f"value metric {self.value.metric!r} must be one of the binary or continuous "
                f"metrics {sorted(self.outcomes.per_customer)}",
            )
        for name in self.value.metrics or {}:
            if name not in self.outcomes.per_customer:
                raise KeyPathError(
                    ["value", "metrics", name],
                    f"a priced metric must be one of the binary or continuous metrics "
                    f"{sorted(self.outcomes.per_customer)}; found {name!r}",
                )
        several = self.value.metrics is not None and len(self.value.metrics) > 1
        if several and WORTH in metrics:
            raise KeyPathError(
                ["value", "metrics"],
                f"with several priced metrics the value metric is named {WORTH!r}, which is "
                f"already the name of an outcome metric; rename that metric",
            )
        primary = metrics[self.outcomes.primary]
        for i, entry in enumerate(self.models.learners):
            learner = entry if isinstance(entry, str) else entry.learner
            if learner == "uplift_forest" and primary.kind != "binary":
                raise KeyPathError(
                    ["models", "learners", i],
                    f"the uplift forest models a binary outcome, but the primary metric "
                    f"{self.outcomes.primary!r} is {primary.kind}",
                )
        simulated_population = isinstance(self.population.source, SimulateSource)
        observed = self.assignment if isinstance(self.assignment, ObservedAssignment) else None
        if self.population.features_as_of and observed and observed.launched is None:
            raise KeyPathError(
                ["assignment", "launched"],
                "population.features_as_of is checked against the launch, so an experiment "
                "that already ran needs assignment.launched (the date the campaign started)",
            )
        baseline = self.value.baseline_clv
        if (
            observed
            and observed.launched is None
            and baseline is not None
            and baseline.transactions is not None
            and baseline.observation_end is None
        ):
            # else the history would run to the file's last purchase, the campaign's included
            raise KeyPathError(
                ["value", "baseline_clv", "observation_end"],
                "the baseline CLV from purchases needs the last day before the campaign, and "
                "this experiment that already ran gives no launch; give "
                "value.baseline_clv.observation_end or assignment.launched",
            )
        if self.outcomes.source.kind == "simulate" and not simulated_population:
            raise KeyPathError(
                ["outcomes", "source", "kind"],
                "simulated outcomes need a simulated population (population.source.kind: simulate)",
            )
        if simulated_population and self.outcomes.source.kind != "simulate":
            raise KeyPathError(
                ["outcomes", "source", "kind"],
                "a simulated population needs simulated outcomes (outcomes.source.kind: simulate)",
            )
        if simulated_population and not isinstance(self.assignment, HashAssignment):
            raise KeyPathError(
                ["assignment"], "a simulated population is assigned by hash: give salt and arms"
            )
        if getattr(self.population.source, "number_rows", False):
            if isinstance(self.assignment, HashAssignment):
                raise KeyPathError(
                    ["population", "source", "number_rows"],
                    "row numbers are not stable customer ids, so an experiment assigned by "
                    "hash needs an id column; number_rows is for an observed assignment",
                )
            if self.outcomes.source.kind != "population":
                raise KeyPathError(
                    ["population", "source", "number_rows"],
                    "outcomes in another file cannot be joined to row numbers; with "
                    "number_rows the outcomes must be columns of the population file "
                    "(outcomes.source.kind: population)",
                )
        if isinstance(self.assignment, HashAssignment):
            treatments = self.assignment.treatments
            effects = getattr(self.population.source, "arm_effects", None)
            if effects is not None:
                for arm in effects:
                    if arm not in treatments:
                        raise KeyPathError(
                            ["population", "source", "arm_effects", arm],
                            f"{arm!r} is not a treatment arm; treatment arms are {treatments}",
                        )
            if self.economics.offers is not None:
                for arm in self.economics.offers:
                    if arm not in treatments:
                        raise KeyPathError(
                            ["economics", "offers", arm],
                            f"{arm!r} is not a treatment arm; treatment arms are {treatments}",
                        )
                missing = [arm for arm in treatments if arm not in self.economics.offers]
                if missing:
                    raise KeyPathError(
                        ["economics", "offers"], f"no offer given for treatment arms {missing}"
                    )
        for key, offer in self._offer_items():
            if self.hypothesis.kind != "custom" and offer.kind != self.hypothesis.kind:
                raise KeyPathError(
                    [*key, "kind"],
                    f"offer kind {offer.kind!r} does not match hypothesis kind "
                    f"{self.hypothesis.kind!r}",
                )
            revenue = getattr(offer, "revenue_metric", None) or (
                self.value_metric if offer.kind == "lower_check_offer" else None
            )
            if several and revenue == WORTH:
                raise KeyPathError(
                    [*key, "revenue_metric"],
                    f"value.metrics prices several metrics, so the discount's revenue metric "
                    f"cannot default to the value metric: name one of the continuous metrics "
                    f"{sorted(m for m, spec in metrics.items() if spec.kind == 'continuous')}",
                )
            if revenue is not None and (
                revenue not in metrics or metrics[revenue].kind != "continuous"
            ):
                continuous = sorted(m for m, spec in metrics.items() if spec.kind == "continuous")
                raise KeyPathError(
                    [*key, "revenue_metric"],
                    f"the discount applies to revenue: {revenue!r} must be one of the continuous "
                    f"metrics {continuous}",
                )
            if isinstance(offer, FeatureUnlockOffer) and offer.days > self.outcomes.window_days:
                days = offer.days
                raise KeyPathError(
                    [*key, "days"],
                    f"the features stay unlocked {days} days but outcomes.window_days is "
                    f"{self.outcomes.window_days}: the upgrade revenue that customers who would "
                    f"have paid anyway hold back while the features are free falls partly "
                    f"after the window, so the profit would miss it; measure at least {days} "
                    f"days",
                )
            uptake = getattr(offer, "uptake_metric", None)
            if uptake is not None and (uptake not in metrics or metrics[uptake].kind != "binary"):
                raise KeyPathError(
                    [*key, "uptake_metric"],
                    f"uptake metric {uptake!r} must be one of the binary metrics "
                    f"{sorted(m for m, spec in metrics.items() if spec.kind == 'binary')}",
                )
        return self

    def _offer_items(self) -> list[tuple[list[str], Any]]:
        if self.economics.offer is not None:
            return [(["economics", "offer"], self.economics.offer)]
        if self.economics.offers is not None:
            return [(["economics", "offers", arm], o) for arm, o in self.economics.offers.items()]
        return []

    @property
    def value_metric(self) -> str:
        """The metric whose unit the value block prices: ``value.metric``, the one metric
        of ``value.metrics``, :data:`WORTH` when that prices several, else the primary."""
        if self.value.metrics is not None:
            return next(iter(self.value.metrics)) if len(self.value.metrics) == 1 else WORTH
        return self.value.metric or self.outcomes.primary

    @property
    def value_units(self) -> dict[str, float]:
        """Each priced metric and the money worth of one unit of it."""
        if self.value.metrics is not None:
            return dict(self.value.metrics)
        return {self.value_metric: self.value.unit_value}

    def offer_for(self, arm: str) -> Any:
        """The offer a treatment arm receives, or ``None`` when it costs only the contact."""
        if self.economics.offers is not None:
            return self.economics.offers.get(arm)
        return self.economics.offer

    def digest(self) -> str:
        """SHA-256 of the spec's canonical JSON: equal specs give equal digests.

        Values left at their defaults are not hashed, so a key added to the spec later (with
        a default) leaves the digests of existing specs, and the models they find, as they
        are; a key written out with its default value hashes as if it were left out.
        """
        canonical = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of the experiment YAML, for editors and validators."""
    return ExperimentSpec.model_json_schema()


# --- loading --------------------------------------------------------------------------------


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read, parse and validate an experiment YAML file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    ExperimentSpec
        The validated spec.

    Raises
    ------
    SpecError
        When the file is missing or unreadable, is not YAML, repeats a key, or does
        not match the spec. The message names the file, each offending key path with
        its line, what was expected and what was found.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"Spec file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"Spec file {path} cannot be read: {exc}.") from None
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
        if node is not None:
            # Before construction, which flattens merge keys into the node in place.
            _refuse_duplicate_keys(node, path)
        data = SafeConstructor().construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = getattr(exc, "context_mark", None)
        if context is not None and mark is not None and context.line != mark.line:
            where += f" ({getattr(exc, 'context', None) or 'context'} at line {context.line + 1})"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"Spec file {path} is not valid YAML{where}: {problem}.") from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError(
            f"Spec file {path} must hold a mapping of keys (name, hypothesis, population, ...), "
            f"found {found}."
        )
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(path, exc, node)) from None


def _refuse_duplicate_keys(node: yaml.Node, path: Path, trail: tuple[str, ...] = ()) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = ".".join((*trail, key))
                raise SpecError(
                    f"Spec file {path}, line {line}: key {where!r} is given twice "
                    f"(first at line {seen[key]}); YAML would silently keep only the last one."
                )
            seen[key] = line
            _refuse_duplicate_keys(value_node, path, (*trail, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, path, (*trail, str(i)))


# tags of the spec's unions, which appear in pydantic's error locations but not in the file
_UNION_TAGS = ("hash", "observed", "learner_name", "learner_entry")


def _locate(node: yaml.Node | None, loc: Sequence[str | int]) -> tuple[list[str | int], int | None]:
    """Follow a pydantic error location through the YAML tree: the key path and its line."""
    keys: list[str | int] = []
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    keys.append(part)
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                kinds = [v for k, v in node.value if str(k.value) == "kind"]
                tag = kinds and isinstance(kinds[0], yaml.ScalarNode) and kinds[0].value == part
                if tag or part in _UNION_TAGS or "[" in str(part):
                    continue  # a union tag, not a key of the file
                keys.append(part)
                node = None
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            keys.append(part)
        elif not (isinstance(part, str) and ("[" in part or part in _UNION_TAGS)):
            keys.append(part)
    return keys, line


def _format_errors(path: Path, exc: ValidationError, root: yaml.Node | None) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        ctx = error.get("ctx") or {}
        original = ctx.get("error")
        if isinstance(original, KeyPathError):
            loc += list(original.keys)
            message = str(original)
        elif error["type"] == "value_error" and original is not None:
            message = str(original)
        else:
            message = _describe(error)
        keys, line = _locate(root, loc)
        where = ".".join(str(k) for k in keys) or "(top level)"
        at = f"line {line}, " if line is not None else ""
        problems.append(f"{at}key {where!r}: {message}")
    return f"Invalid experiment spec {path}: " + "; ".join(problems) + "."


def _describe(error: Any) -> str:
    kind = error["type"]
    found = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key (check its spelling and the README's spec reference)"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    message = message[0].lower() + message[1:] if message else message
    if isinstance(found, dict | list):
        shown = f"a {'mapping' if isinstance(found, dict) else 'list'}"
    else:
        shown = repr(found)
        if len(shown) > 80:
            shown = shown[:77] + "..."
    return f"expected: {message}; found {shown}"
