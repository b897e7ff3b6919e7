"""The summary JSON document of a run: its models and its JSON Schema.

Other tools read this document (DESIGN.md section 4), so its shape is a contract: the
schema shipped in ``uplift/schemas/summary.schema.json`` is generated from these models
and a test keeps the two equal. Numbers that cannot be computed are ``null``.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = [
    "AssignmentSummary",
    "BalanceFlag",
    "DecisionSummary",
    "EffectRow",
    "ModelRow",
    "PolicySummary",
    "SegmentEffectRow",
    "SegmentEffectsSummary",
    "SegmentRow",
    "Summary",
    "TargetingRow",
    "TargetingSummary",
    "shipped_schema",
    "summary_json_schema",
]

Number = float | None


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _nan_is_null(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value


class BalanceFlag(_Row):
    arm: str
    feature: str
    smd: Number


class AssignmentSummary(_Row):
    method: str
    """``hash`` (assigned by uplift) or ``observed`` (read from the data)."""
    control: str
    counts: dict[str, int]
    expected_shares: dict[str, float] | None
    """The shares at launch the sample-ratio test checks (arms added later are left out)."""
    srm_p_value: Number
    srm_alert: bool | None
    global_holdout: int
    """Eligible customers held out of every campaign (not in the counts)."""
    version: int | None
    """The experiment version in the ledger (hash assignment)."""
    launched_at: str | None
    """When the version was launched, ISO 8601 UTC."""
    balance_max_abs_smd: Number
    """Largest absolute standardized mean difference of a feature, treatment vs control."""
    balance_flagged: list[BalanceFlag]
    """Features whose |SMD| exceeds 0.1."""


class EffectRow(_Row):
    arm: str
    metric: str
    kind: str = "mean"
    """``mean`` (difference in means, or Lin-adjusted) or ``ratio`` (delta method)."""
    estimate: Number
    ci_low: Number
    ci_high: Number
    p_value: Number
    std_error: Number
    method: str
    adjusted_for: str = ""
    variance_reduction: Number = None
    lift: Number = None
    lift_ci_low: Number = None
    lift_ci_high: Number = None
    detectable_effect: Number = None
    """Effect the test detects with the spec's power (``effects.power``) at ``alpha``."""
    winsorized_at: Number = None
    """The cap of a winsorized metric; the ``unwinsorized_*`` fields are its raw estimate."""
    unwinsorized_estimate: Number = None
    unwinsorized_ci_low: Number = None
    unwinsorized_ci_high: Number = None
    welch_estimate: Number = None
    welch_ci_low: Number = None
    welch_ci_high: Number = None
    welch_df: Number = None
    n_treated: int
    n_control: int
    mean_treated: Number
    mean_control: Number


class SegmentEffectRow(_Row):
    segment: str
    arm: str
    metric: str
    estimate: Number
    ci_low: Number
    ci_high: Number
    p_value: Number
    std_error: Number
    method: str
    adjusted_for: str
    variance_reduction: Number
    lift: Number
    lift_ci_low: Number
    lift_ci_high: Number
    n_treated: int
    n_control: int
    mean_treated: Number
    mean_control: Number
    winsorized_at: Number
    unwinsorized_estimate: Number
    unwinsorized_ci_low: Number
    unwinsorized_ci_high: Number
    p_adjusted: Number
    level: Number
    """Significance level the correction spent on this test; the corrected interval is
    the normal interval at this level."""
    corrected_ci_low: Number
    corrected_ci_high: Number
    detectable_effect: Number
    status: str
    """``positive``, ``negative``, ``inconclusive``, ``too_small`` or ``not_tested``."""


class SegmentEffectsSummary(_Row):
    correction: str
    """``holm``, ``fdr_bh``, ``bonferroni`` or ``none``."""
    family_size: int
    """Tests corrected together: segments x arms x metrics large enough to test."""
    min_segment_size: int
    power: float
    rows: list[SegmentEffectRow]


class SegmentRow(_Row):
    segment: str
    arm: str
    n: int
    n_treated: int
    n_control: int
    eligible: int
    estimate: Number = None
    ci_low: Number = None
    ci_high: Number = None
    p_value: Number = None
    baseline_clv: Number = None
    """Mean CLV without the campaign of the segment's customers (``value.baseline_clv``)."""
    incremental_clv: Number = None
    """Lifetime worth of the effect on the value metric per treated customer."""
    clv_ci_low: Number = None
    clv_ci_high: Number = None
    """``incremental_clv`` times the Welch interval of the effect on the value metric."""
    clv_lift: Number = None
    """``incremental_clv`` as a share of ``baseline_clv``."""
    cost_per_customer: Number = None
    """Contact and offer cost per treated customer, plus the fixed cost's share."""
    cost_ci_low: Number = None
    cost_ci_high: Number = None
    contact_cost: Number = None
    """The contact cost per treated customer: a part of ``cost_per_customer``."""
    offer_cost: Number = None
    """The offer's mean cost per treated customer on what the arm's customers did (for
    example lessons taken times their net cost): a part of ``cost_per_customer``."""
    fixed_cost_share: Number = None
    """The fixed cost over the experiment's customers: the rest of ``cost_per_customer``."""
    incremental_profit: Number = None
    profit_se: Number = None
    profit_ci_low: Number = None
    profit_ci_high: Number = None
    roi: Number = None
    """Incremental profit over the cost per treated customer."""
    roi_ci_low: Number = None
    roi_ci_high: Number = None
    """Delta-method interval of ``roi``."""
    break_even_uplift: Number = None
    """Effect on the value metric per customer at which the arm exactly pays its cost."""
    break_even_ci_low: Number = None
    break_even_ci_high: Number = None
    total_incremental_profit: Number = None
    n_to_settle: Number = None
    """For an inconclusive row: customers (arm and control, same split) at which a true
    profit equal to the estimate would give an interval clear of zero with 80% power."""
    decision: str
    reason: str


class ModelRow(_Row):
    name: str
    learner: str | None = None
    """The causalml learner (``t_learner``, ..., ``uplift_forest``)."""
    base: str | None = None
    """The meta-learner's base model (none for the uplift forest)."""
    arm: str
    metric: str
    qini: Number
    """Normalized Qini score of the out-of-fold predictions (causalml's convention)."""
    qini_ci_low: Number = None
    qini_ci_high: Number = None
    """Percentile bootstrap interval of ``qini`` (200 replicates, predictions held fixed)."""
    auuc: Number
    """Normalized area under the uplift curve (causalml's convention)."""
    auuc_ci_low: Number = None
    auuc_ci_high: Number = None
    uplift_at_k: Number
    """Treated minus control mean outcome among the top ``k`` share by predicted uplift."""
    uplift_at_k_ci_low: Number = None
    uplift_at_k_ci_high: Number = None
    k: float
    chosen: bool = False
    """Whether this learner is the chosen model."""


class LearnerComparisonRow(_Row):
    name: str
    qini: Number
    """Mean over the treatment arms of the out-of-fold normalized Qini."""
    ci_low: Number
    ci_high: Number
    difference: Number
    """This learner's score minus the chosen learner's."""
    difference_ci_low: Number
    difference_ci_high: Number
    """Paired bootstrap interval of ``difference`` (the same replicates for every learner)."""
    distinguishable: bool
    chosen: bool


class ImportanceRow(_Row):
    feature: str
    arm: str
    rank: int
    """1 for the feature whose shuffling costs the arm's Qini most."""
    qini_drop: Number
    """Out-of-fold Qini lost when the feature is shuffled among held-out customers."""
    qini_drop_std: Number
    prediction_change: Number
    """Mean absolute change of the predicted uplift when the feature is shuffled."""
    relative_prediction_change: Number
    """``prediction_change`` over the standard deviation of the arm's predictions."""


class PolicyComparisonRow(_Row):
    name: str
    per_customer: Number
    """The learner's policy: incremental net value per customer against treating no one
    (doubly robust on scores common to every learner, out of fold, before the fixed
    cost)."""
    std_error: Number
    ci_low: Number
    ci_high: Number
    treated_share: float
    difference: Number
    """This policy's value minus the chosen one's, per customer (paired)."""
    difference_ci_low: Number
    difference_ci_high: Number
    risk: Number = None
    """Mean squared error of the learner's out-of-fold predicted net values against the
    doubly robust scores: its true error plus a constant shared by every learner."""
    risk_difference: Number = None
    """This learner's risk minus the lowest (paired, on the same customers)."""
    risk_difference_se: Number = None
    screened_out: bool = False
    """The risk difference exceeds ``screen`` standard errors (``model_selection``): the
    learner was not a candidate."""
    chosen: bool


class ModelSelectionSummary(_Row):
    criterion: str
    screen: float | None = None
    """Standard errors of the paired risk difference beyond which a learner is screened
    out (``None``: one learner, no comparison; runs before this field screened at 1)."""
    margin: float | None = None
    """Standard errors of the paired policy-value difference by which a learner must beat
    the learner of lowest risk to be chosen over it (``None``: one learner, or a run before
    this field, which chose the most valuable policy the screen kept)."""
    chosen: str
    qini_leader: str
    """The learner with the highest mean normalized out-of-fold Qini (``learners``)."""
    policies: list[PolicyComparisonRow]
    """Every learner's targeting policy valued out of fold, with its risk; of those not
    ``screened_out``, the learner of lowest risk is chosen unless a policy beats its
    policy by over ``margin`` standard errors (then the most valuable of those)."""
    alpha: float
    n_boot: int
    learners: list[LearnerComparisonRow]
    """The Qini comparison: its ``chosen`` column marks the Qini leader and its
    differences are taken from it."""
    importance: list[ImportanceRow]
    """Permutation importance of the chosen learner's features, per arm."""
    n_customers: int | None = None
    """Customers the models were fitted and valued on: all of the experiment's, or the
    stratified sample ``models.sample_size`` asks for."""


class SegmentRuleSummary(_Row):
    rule: str
    treated: list[dict[str, Any]]
    treat_share: float
    expected_incremental_profit: float
    ci_low: float
    ci_high: float


class PolicySegmentRow(_Row):
    segment: str
    customers: int
    treated_share: float
    arms: dict[str, int]
    """Customers of the segment the policy treats with each arm (``none``: untreated)."""


class ProfitCurvePoint(_Row):
    share: float
    per_customer: Number
    ci_low: Number
    ci_high: Number


class PolicySummary(_Row):
    rule: str
    arms: dict[str, int]
    """Customers of the experiment the policy treats with each arm (``none``: untreated)."""
    treat_share: float
    per_customer: Number
    """Incremental profit per customer of the experiment, net of every cost including the
    fixed cost's share (doubly robust, out of fold)."""
    ci_low: Number
    ci_high: Number
    expected_incremental_profit: Number
    """``per_customer`` times the experiment's customers: the fixed cost charged once."""
    total_ci_low: Number
    total_ci_high: Number
    by_segment: list[PolicySegmentRow]
    """Whom the policy treats, per segment of ``value.segments``."""
    segment_rule: SegmentRuleSummary
    """The in-sample rule of treating the segments that pay back, for comparison."""
    curve: list[ProfitCurvePoint] = []
    """Incremental profit per customer, net of every cost including the fixed cost's
    share, when the top share of customers by expected net value is treated with their
    best arm (doubly robust, out of fold, pointwise intervals); the policy's share is a
    point of it."""


class TargetingRow(_Row):
    rule: str
    """``policy``, ``treat_all:<arm>``, ``treat_none`` or ``segments``."""
    per_customer: Number
    """Incremental net value per customer of the experiment, against treating no one
    (doubly robust, out of fold; the fixed cost not included)."""
    std_error: Number
    ci_low: Number
    ci_high: Number
    treated_share: float
    total: Number
    """``per_customer`` times the experiment's customers."""
    arms: dict[str, int]
    """Customers the rule treats with each arm (``none``: untreated)."""


class TargetingSummary(_Row):
    rule: str
    estimator: str
    rows: list[TargetingRow]
    best_treat_all: str
    gain_over_treat_all: Number
    """The policy's value minus the best treat-all rule's, per customer (paired)."""
    gain_ci_low: Number
    gain_ci_high: Number


class DecisionSummary(_Row):
    verdict: str
    reason: str
    best_arm: str | None


class Summary(_Row):
    """The whole summary document."""

    experiment: str
    hypothesis_kind: str
    spec_digest: str
    uplift_version: str
    mlflow_run_id: str | None
    tracking_uri: str | None
    n_population: int
    n_eligible: int
    primary_metric: str
    alpha: float
    assignment: AssignmentSummary
    effects: list[EffectRow]
    programme: list[EffectRow]
    """Everyone in the experiment (arm ``crm_programme``) against the eligible customers of
    the global holdout: the long-run value of the CRM programme. Empty without a holdout."""
    segment_effects: SegmentEffectsSummary
    """Effects per segment (``value.segments``), arm and metric."""
    segments: list[SegmentRow]
    models: list[ModelRow]
    model_selection: ModelSelectionSummary
    """How the chosen model was picked, with paired intervals, and what drives its uplift."""
    policy: PolicySummary
    """The per-customer policy the verdict rests on, and the segment rule beside it."""
    targeting: TargetingSummary
    """The per-customer policy that ``uplift score`` applies, valued out of fold beside
    treating everyone with each arm, treating no one and the segment rule."""
    baseline_clv: dict[str, Any] | None = None
    """How the baseline CLV was obtained (``method``: ``transactions`` or ``run_rate``), the
    fitted BG/NBD and Gamma-Gamma parameters, the mean and total over the experiment's
    customers, the customers with no transaction, and the last day of the purchase history
    the models saw (``history_end``; null for ``run_rate``)."""
    rfm_from_purchases: dict[str, Any] | None = None
    """With ``value.rfm.transactions``: where R, F and M at launch came from (``source``:
    ``launch snapshot``, the values frozen by ``uplift assign``, or ``purchases file``),
    the look-back's last day (``as_of``), why the file was read instead of the snapshot
    (``why_file``), and how many customers' frozen values the file no longer gives
    (``changed_since_launch``; null when the file was not compared)."""
    migration: dict[str, Any] | None = None
    """RFM migration (``value.migration``): ``scale`` (bins, the launch's cut points,
    segment names), ``transitions`` (per dimension, counts and row shares of launch level
    by end level for each arm) and ``moves`` (each arm against the control: the share of
    customers who moved up a level, overall and per launch level, with the interval of
    the difference)."""
    decision: DecisionSummary


def summary_json_schema() -> dict[str, Any]:
    """The JSON Schema of the summary document, generated from the models."""
    schema = Summary.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "uplift/summary.schema.json"
    return schema


def shipped_schema() -> dict[str, Any]:
    """The schema file shipped with the package."""
    text = resources.files("uplift").joinpath("schemas/summary.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result
