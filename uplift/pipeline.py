"""Runs the stages in order and hands their results to the tracking layer.

This is the only module that knows every stage: data, design, analysis, value and
tracking. Each stage can also be used alone; :func:`prepare` and :func:`analyze` return
plain results without touching MLflow, :func:`run` logs them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from uplift import __version__
from uplift.data.memory import release_arrow_memory
from uplift.data.sources import check_features, check_ids, metric_frame, read_table, shown
from uplift.data.timing import check_measured_before
from uplift.design.balance import BalanceResult, covariate_balance
from uplift.design.hashing import GLOBAL_HOLDOUT, assign_arms
from uplift.design.launch import Definition, LaunchResult, launch
from uplift.design.ledger import ARM_COLUMN, ExperimentRecord, Ledger
from uplift.design.srm import SRMResult, srm_test
from uplift.errors import AssignmentError, DataError, SpecError, TrackingError
from uplift.expressions import parse
from uplift.purchase_rfm import (
    FROZEN_COLUMNS,
    METADATA_KEY,
    history_end,
    launch_rfm,
    look_back_end,
    rfm_from_purchases,
)
from uplift.spec import (
    BUCKETS,
    ExperimentSpec,
    FileSource,
    HashAssignment,
    ObservedAssignment,
    SimulateSource,
    SqlSource,
)

if TYPE_CHECKING:
    # the analysis, modelling, value and simulation stages import statsmodels, scipy.stats
    # and scikit-learn, two seconds before any work; each function below imports the
    # stages it runs, so `uplift assign` and `uplift power` do not pay for the others
    from uplift.analysis.calibration import UpliftCalibration
    from uplift.analysis.effects import EffectResults, SegmentEffects
    from uplift.analysis.features import FeatureEncoder
    from uplift.analysis.importance import UpliftImportance
    from uplift.analysis.learners import CrossFitResult
    from uplift.analysis.metrics import UpliftCurve, UpliftMetrics
    from uplift.analysis.selection import ModelComparison
    from uplift.data.simulate import Simulation
    from uplift.design.power import PowerResult
    from uplift.scoring import ScoringModel
    from uplift.spec import LearnerSpec
    from uplift.tracking.mlflow_log import RunLogger
    from uplift.value.baseline import BaselineCLV
    from uplift.value.decision import CampaignDecision, SegmentPolicy
    from uplift.value.migration import SegmentMigration
    from uplift.value.policy import PolicyComparison, PolicyEvaluation, PolicyValue
    from uplift.value.profit import ProfitModel, SegmentResults

__all__ = [
    "Analysis",
    "Diagnostics",
    "PowerPlan",
    "PreparedData",
    "RunOutcome",
    "analyze",
    "assign",
    "average_effects",
    "build_summary",
    "customer_output",
    "diagnostics",
    "effects_by_segment",
    "open_ledger",
    "power_plan",
    "prepare",
    "profit_model",
    "rfm_from_purchases",
    "run",
    "segment_labels",
]

UPLIFT_AT_K = 0.3
#: The fewest customers an arm may have: the uplift models are cross-fitted, compared on
#: the top ``UPLIFT_AT_K`` of scores and calibrated by score decile, which a handful of
#: customers cannot support.
MIN_ARM_CUSTOMERS = 50
#: Each learner's measures logged per arm, in the parent run and in its nested run.
_MODEL_METRICS = (
    "qini",
    "qini_ci_low",
    "qini_ci_high",
    "auuc",
    "auuc_ci_low",
    "auuc_ci_high",
    "uplift_at_k",
    "uplift_at_k_ci_low",
    "uplift_at_k_ci_high",
)
#: Label of the experiment's customers, pooled, when compared with the global holdout.
PROGRAMME = "crm_programme"

Report = Callable[[str], None]
"""Receives one line per stage; a line ending ``[i/n]`` is step ``i`` of ``n`` of a stage
(the command line draws those as a progress bar on a terminal)."""


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class PreparedData:
    """The experiment's customers with their arms, features and outcomes."""

    frame: pd.DataFrame
    """Eligible customers in the experiment (global holdout removed)."""
    arms: pd.Series
    outcomes: pd.DataFrame
    """Outcomes by metric name."""
    control: str
    treatments: list[str]
    n_population: int
    n_eligible: int
    n_global_holdout: int
    weights: dict[str, float] | None
    """Arm -> share of the buckets (hash assignment), or ``None`` when observed."""
    srm_weights: dict[str, float] | None
    """The shares at launch, which the sample-ratio test checks (arms added later aside)."""
    simulation: Simulation | None
    launch: ExperimentRecord | None = None
    """The ledger's record of the launched version (hash assignment)."""
    holdout_outcomes: pd.DataFrame | None = None
    """Outcomes of the eligible customers in the programme's global holdout."""
    end_of_window: pd.DataFrame | None = None
    """R, F and M at the end of the window (columns ``recency``, ``frequency``,
    ``monetary``) with ``value.migration``: from the outcomes, or from the purchases of
    ``value.rfm.transactions``."""
    rfm: pd.DataFrame | None = None
    """R, F and M at launch from ``value.rfm.transactions`` (columns ``recency``,
    ``frequency``, ``monetary``; rows as ``frame``); ``None`` without a transactions table."""
    rfm_source: dict[str, Any] | None = None
    """Where ``rfm`` came from (:meth:`uplift.purchase_rfm.PurchaseRFM.to_dict`)."""


@dataclass(frozen=True)
class Modelling:
    """The uplift learners, their comparison and the chosen model refitted for scoring."""

    results: list[CrossFitResult]
    """Each learner's out-of-fold predictions of the primary metric."""
    table: pd.DataFrame
    """One row per learner and arm: Qini, AUUC and uplift@k with their intervals."""
    curves: dict[str, UpliftCurve]
    """Qini curve per ``"learner / arm"``."""
    comparison: ModelComparison
    calibration: dict[str, UpliftCalibration]
    """The chosen learner's observed against predicted uplift by decile, per arm."""
    importance: UpliftImportance
    """Permutation importance of each feature for the chosen learner's uplift."""
    scoring_model: ScoringModel
    """The chosen learner refitted on every customer, with the economics, for scoring."""
    targeting: TargetingInputs | None = None
    """The out-of-fold pieces every learner's targeting policy is valued with."""
    net_uplift: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Each learner's out-of-fold expected net value of every arm, per customer."""
    policies: PolicyComparison | None = None
    """Every learner's targeting policy valued on common doubly robust scores, with each
    learner's risk and the choice of :func:`~uplift.value.policy.compare_policies` (with
    one learner, ``None``)."""
    scores: pd.DataFrame | None = None
    """The doubly robust scores every policy is valued with (their outcome model averages
    the learners' predicted net values)."""

    @property
    def chosen(self) -> str:
        """The chosen learner's label: that of the policy comparison or, with one learner,
        the Qini leader."""
        return self.policies.chosen if self.policies is not None else self.comparison.chosen


@dataclass(frozen=True)
class TargetingInputs:
    """Out-of-fold pieces of the targeting policies' values.

    ``spend`` is, per learner, each arm's expected contact and offer cost per customer:
    out-of-fold regressions of the metrics the offer costs read, on the learner's base
    model, as its scoring model fits them (learners on the same base share them).
    ``realised`` is every customer's realised net value, ``baseline`` an out-of-fold
    regression on ``models.base`` of the control customers' net value, and ``shares`` the
    known share of every arm.
    """

    spend: dict[str, pd.DataFrame]
    realised: np.ndarray
    baseline: np.ndarray
    shares: dict[str, float]
    value_per_unit: float


@dataclass(frozen=True)
class Analysis:
    """Every stage's result for one experiment."""

    data: PreparedData
    srm: SRMResult | None
    balance: BalanceResult
    programme: EffectResults | None
    """Everyone in the experiment against the global holdout: the CRM programme's value."""
    effects: EffectResults
    segment_effects: SegmentEffects
    """Effects per segment of ``value.segments``, corrected for multiple testing."""
    modelling: Modelling
    segments: SegmentResults
    decision: CampaignDecision
    targeting: PolicyEvaluation
    """The per-customer policy (what ``uplift score`` applies), valued out of fold beside
    treating everyone with each arm, treating no one, and the segment rule."""
    data_digest: str
    migration: SegmentMigration | None = None
    """RFM levels from launch to the end of the window per arm (``value.migration``)."""
    baseline: BaselineCLV | None = None
    """Each customer's CLV without the campaign (``value.baseline_clv``)."""
    segments_of: pd.Series | None = None
    """Each customer's segment of ``value.segments``."""
    model_rows: np.ndarray | None = None
    """Positions of the customers the uplift models saw (``models.sample_size``), or
    ``None`` when they saw every customer."""


def _population(spec: ExperimentSpec) -> tuple[pd.DataFrame, Simulation | None, str]:
    from uplift.data.simulate import SIMULATORS, simulate

    source = spec.population.source
    if isinstance(source, SimulateSource):
        kind = spec.hypothesis.kind
        if kind not in SIMULATORS:
            raise SpecError(
                f"population.source: there is no simulator for hypothesis kind {kind!r}; "
                f"simulated campaigns exist for {sorted(SIMULATORS)}."
            )
        treatments = (
            spec.assignment.treatments if isinstance(spec.assignment, HashAssignment) else []
        )
        sim = simulate(kind, source.n, source.seed, treatments, source.arm_effects)
        return sim.population, sim, f"simulated {kind} population"
    if isinstance(source, SqlSource):
        from uplift.data.sql_source import masked_url

        where = f"SQL {source.table or 'query'} at {masked_url(source.url)}"
        return _population_table(source), None, where
    frame = _population_table(source)
    if source.number_rows:
        id_column = spec.population.id
        if id_column in frame.columns:
            raise DataError(
                f"population.source.number_rows: the population file {source.path} already "
                f"has a column {id_column!r} (population.id); use it as the id and drop "
                f"number_rows, or name another id column."
            )
        frame.insert(0, id_column, np.arange(1, len(frame) + 1))
    return frame, None, f"population file {source.path}"


def _eligible(
    spec: ExperimentSpec,
    population: pd.DataFrame,
    where: str,
    launched: dt.datetime | dt.date | None,
) -> pd.DataFrame:
    check_ids(population, spec.population.id, where)
    if spec.population.eligible:
        mask = parse(spec.population.eligible).evaluate(population, source=where).to_numpy()
        eligible = population if mask.all() else population[mask]
    else:
        eligible = population
    if eligible.empty:
        raise DataError(f"population.eligible: no customer of the {where} is eligible.")
    check_features(eligible, spec.population.features)
    _check_timing(spec, eligible, where, launched)
    return eligible


def _check_timing(
    spec: ExperimentSpec, frame: pd.DataFrame, where: str, launched: dt.datetime | dt.date | None
) -> None:
    """The features were measured before the launch (``population.features_as_of``)."""
    if spec.population.features_as_of is not None:
        # the spec requires assignment.launched with features_as_of when observed
        assert launched is not None
        check_measured_before(
            frame, spec.population.features_as_of, launched, spec.population.id, where
        )


def open_ledger(spec: ExperimentSpec, url: str | None = None) -> Ledger:
    """The assignment ledger the spec names (or ``url``, overriding it)."""
    return Ledger(url or spec.ledger.url, spec.ledger.snapshots)


def assign(
    spec: ExperimentSpec,
    ledger: Ledger,
    *,
    new_version: bool = False,
    report: Report = _quiet,
    population: tuple[pd.DataFrame, Simulation | None, str] | None = None,
    alongside: Callable[[LaunchResult], None] | None = None,
    engine: str = "pandas",
    spark_master: str = "local[2]",
) -> LaunchResult:
    """Read the base as it is now, select the eligible and launch (or extend) the experiment.

    With ``engine="spark"`` Spark's workers (on ``spark_master``) select and hash a Parquet
    base (:func:`uplift.engines.spark.assign_with_spark`); the launch is recorded here.

    ``population`` is the base already read or simulated, with its simulation and a
    description for messages; by default it is read from the spec's source: a Parquet
    file or dataset, or a SQL table, in chunks of :data:`LAUNCH_CHUNK_ROWS` rows (memory
    then follows the chunk and the new customers' ids, not the base), a CSV file whole.
    ``alongside`` runs while the ledger writes (see :func:`uplift.design.launch.launch`).
    """
    streamed = None if population is not None or engine == "spark" else population_chunks(spec)
    freeze = launch_rfm(spec)
    if engine == "spark":
        from uplift.engines.spark import assign_with_spark

        result = assign_with_spark(
            spec,
            ledger,
            new_version=new_version,
            master=spark_master,
            report=report,
            alongside=alongside,
            freeze=freeze,
        )
        report(
            f"population: {result.batches[-1].n_population or 0:,} customers, "
            f"{result.n_eligible:,} eligible"
        )
    elif streamed is not None:
        chunks, where = streamed
        counted = _Counted()
        report(f"population: reading {where} in chunks of {LAUNCH_CHUNK_ROWS:,} rows")
        result = launch(
            spec,
            _eligible_chunks(spec, chunks, where, counted),
            ledger,
            new_version=new_version,
            n_population=lambda: counted.rows,
            alongside=alongside,
            source=where,
            freeze=freeze,
        )
        report(f"population: {counted.rows:,} customers, {result.n_eligible:,} eligible")
    else:
        base, _, where = population or _population(spec)
        release_arrow_memory()
        report(f"population: {len(base):,} customers ({where})")
        eligible = _eligible(spec, base, where, dt.datetime.now(dt.UTC))
        result = launch(
            spec,
            eligible,
            ledger,
            new_version=new_version,
            n_population=len(base),
            alongside=alongside,
            source=where,
            freeze=freeze,
        )
    record = result.experiment
    purchases = spec.value.rfm.transactions
    if purchases is not None and result.n_new:
        as_of = look_back_end(spec, record.launched_at.date())
        report(
            f"value.rfm: R, F and M of the {result.n_new:,} new customers frozen in the launch "
            f"snapshot, from {purchases.path} over the {spec.value.rfm.window_days} days to "
            f"{as_of}"
        )
    if result.created:
        report(f"launched {record.name!r} version {record.version}: {result.n_new:,} customers")
    elif result.batch is not None:
        report(
            f"{record.name!r} version {record.version}: appended {result.n_new:,} newly "
            f"eligible customers as batch {result.batch}"
        )
    else:
        report(f"{record.name!r} version {record.version}: already launched, nobody new")
    return result


#: Rows of the base a launch reads at a time from a Parquet or SQL source.
LAUNCH_CHUNK_ROWS = 1_000_000


def population_chunks(
    spec: ExperimentSpec, chunk_rows: int | None = None
) -> tuple[Iterator[pd.DataFrame], str] | None:
    """The spec's population in chunks, with a description for messages.

    ``chunk_rows`` defaults to :data:`LAUNCH_CHUNK_ROWS`. ``None`` for sources read
    whole: a simulation, or a CSV file (whose ids pandas reads
    by type inference: streaming it as Arrow text would turn ``007`` into another
    customer than the one launched before).
    """
    source = spec.population.source
    chunk_rows = chunk_rows or LAUNCH_CHUNK_ROWS
    if isinstance(source, SqlSource):
        from uplift.data.sql_source import iter_sql, masked_url

        rows = iter_sql(source.url, table=source.table, query=source.query, chunk_rows=chunk_rows)
        # the first (empty) frame comes once the query ran: a wrong URL, table or query
        # fails here, before the launch reports anything
        first = next(rows)
        return itertools.chain([first], rows), f"SQL {source.table or 'query'} at " + masked_url(
            source.url
        )
    if isinstance(source, FileSource) and source.kind == "parquet" and not source.number_rows:
        from uplift.data.chunks import iter_chunks

        where = f"population file {source.path}"
        return iter_chunks(source.path, None, chunk_rows, key="population.source.path"), where
    return None


@dataclass
class _Counted:
    rows: int = 0


def _eligible_chunks(
    spec: ExperimentSpec, chunks: Iterator[pd.DataFrame], where: str, counted: _Counted
) -> Iterator[pd.DataFrame]:
    """Each chunk's eligible customers; ids checked chunk by chunk (repeats across chunks
    are found by the launch, among the customers it takes)."""
    rule = parse(spec.population.eligible) if spec.population.eligible else None
    now = dt.datetime.now(dt.UTC)
    for chunk in chunks:
        counted.rows += len(chunk)
        if chunk.empty:
            continue
        check_ids(chunk, spec.population.id, where, repeats=False)
        check_features(chunk, spec.population.features)
        if rule is not None:
            mask = rule.evaluate(chunk, source=where).to_numpy()
            chunk = chunk if mask.all() else chunk[mask]
        _check_timing(spec, chunk, where, now)
        yield chunk


@dataclass(frozen=True)
class AggregateEffects:
    """The average effects of a launched experiment from per-arm aggregates over its base."""

    table: pd.DataFrame
    """:meth:`uplift.analysis.aggregates.ArmMoments.effects`: one row per metric and arm."""
    experiment: ExperimentRecord
    n_assigned: int
    n_rows: int
    n_matched: int
    source: str
    engine: str
    seconds: float
    alpha: float


def aggregate_effects(
    spec: ExperimentSpec,
    ledger: Ledger,
    *,
    outcomes: Path | None = None,
    engine: str = "pandas",
    spark_master: str = "local[2]",
    report: Report = _quiet,
) -> AggregateEffects:
    """Each treatment arm's effect on every per-customer metric, over the whole launched base.

    The ledger's assignments of the latest version (the global holdout left out) are
    matched with the outcomes (``outcomes``, else the spec's outcome file), which a
    Parquet file or folder streams chunk by chunk (a CSV file is read whole); only each
    arm's count, mean and sum of squares are kept (:mod:`uplift.analysis.aggregates`).
    With ``engine="spark"`` Spark joins a Parquet outcomes base with the assignments and
    aggregates (:func:`uplift.engines.spark.gather_with_spark`).

    Raises
    ------
    AssignmentError
        When the experiment was never launched in the ledger.
    DataError
        When the outcomes cannot be read, or an assigned customer's outcome is missing
        or repeated.
    """
    import time

    from uplift.analysis.aggregates import gather_moments
    from uplift.data.ids import ids_as_arrow

    assignment = spec.assignment
    if not isinstance(assignment, HashAssignment):
        raise SpecError(
            "assignment: `uplift effects` reads a launched experiment's assignments from the "
            "ledger; this spec's assignment is observed in the data."
        )
    path, where = _outcomes_path(spec, outcomes)
    metrics = {name: str(m.column) for name, m in spec.outcomes.per_customer.items()}
    began = time.perf_counter()
    with ledger.engine.connect() as conn:
        record = ledger.latest(conn, spec.name)
        if record is None:
            raise AssignmentError(
                f"Experiment {spec.name!r} was never launched in ledger {ledger.display_url}; "
                f"run `uplift assign` first."
            )
        assigned = ledger.assignments(conn, record.id)
    compared = assigned[assigned["arm"] != GLOBAL_HOLDOUT]
    report(
        f"{len(compared):,} customers in {spec.name!r} version {record.version}; reading {where}"
    )
    ids = ids_as_arrow(compared["customer_id"])
    arms = pd.Categorical(compared["arm"], categories=list(assignment.arms))
    del assigned, compared
    if engine == "spark":
        from uplift.engines.spark import gather_with_spark

        gathered = gather_with_spark(
            ids, arms, path, spec.population.id, metrics, where, master=spark_master
        )
    else:
        chunks = _outcome_chunks(path, spec.population.id, list(metrics.values()))
        gathered = gather_moments(ids, arms, chunks, spec.population.id, metrics, where)
    alpha = spec.decision.alpha
    table = gathered.moments.effects(assignment.control, assignment.treatments, alpha)
    report(f"matched {gathered.n_matched:,} of {gathered.n_rows:,} rows of outcomes")
    return AggregateEffects(
        table,
        record,
        gathered.n_assigned,
        gathered.n_rows,
        gathered.n_matched,
        where,
        engine,
        time.perf_counter() - began,
        alpha,
    )


def _outcomes_path(spec: ExperimentSpec, outcomes: Path | None) -> tuple[Path, str]:
    if outcomes is not None:
        return outcomes, f"outcomes file {outcomes}"
    source = spec.outcomes.source
    if source.kind in ("csv", "parquet") and source.path is not None:
        return source.path, f"outcomes file {source.path}"
    population = spec.population.source
    if source.kind == "population" and isinstance(population, FileSource):
        return population.path, f"population file {population.path}"
    raise SpecError(
        f"outcomes.source: `uplift effects` reads outcomes from a CSV or Parquet file; this "
        f"spec's outcomes are {source.kind!r}. Name the file with --outcomes."
    )


def _outcome_chunks(path: Path, id_column: str, columns: list[str]) -> Iterator[pd.DataFrame]:
    from uplift.data.chunks import file_format, iter_chunks

    key = "--outcomes"
    if file_format(path, key) == "csv":
        # whole, as `uplift run` reads it: pandas' reading of the ids is the ledger's
        frame = read_table("csv", path, key)
        missing = [c for c in [id_column, *columns] if c not in frame.columns]
        if missing:
            raise DataError(
                f"{key}: the csv file {path} has no column {', '.join(map(repr, missing))}; "
                f"found {sorted(map(str, frame.columns))[:30]}."
            )
        return iter([frame])
    return iter_chunks(path, [id_column, *columns], LAUNCH_CHUNK_ROWS, key=key)


@dataclass(frozen=True)
class Diagnostics:
    """Sample-ratio and covariate-balance checks of a launched experiment."""

    srm: SRMResult
    balance: BalanceResult


#: Customers of the snapshot the balance check reads at most: a uniform sample of a larger
#: base (the SMD of a sample this size is within about 0.003 of the base's).
BALANCE_SAMPLE_ROWS = 2_000_000


def diagnostics(spec: ExperimentSpec, ledger: Ledger, result: LaunchResult) -> Diagnostics:
    """SRM of every batch's counts against the launch weights, and balance of the frozen
    features (on a uniform sample of :data:`BALANCE_SAMPLE_ROWS` where the base is larger).

    Reads the snapshot files only, so it may run while the launch still writes the ledger.
    """
    launched = Definition.from_json(result.batches[0].definition)
    every_arm = result.assignments["arm"].value_counts()
    counts = {str(k): int(v) for k, v in every_arm.items() if k != GLOBAL_HOLDOUT and v}
    srm = srm_test(counts, launched.weights())
    columns = [ARM_COLUMN, *spec.population.features]
    snapshot = ledger.read_snapshot(
        result.experiment, result.batches, columns, sample_rows=BALANCE_SAMPLE_ROWS
    )
    release_arrow_memory()
    arms = snapshot[ARM_COLUMN]
    treatments = [a for a in result.definition.arms if a != result.definition.control]
    present = [a for a in treatments if counts.get(a)]
    # the global holdout's rows are in no compared arm, so the balance skips them
    balance = covariate_balance(
        snapshot[spec.population.features], arms, result.definition.control, present
    )
    return Diagnostics(srm, balance)


@dataclass(frozen=True)
class PowerPlan:
    """Power of the primary metric for every treatment arm at the experiment's size."""

    metric: str
    kind: str
    source: str
    """Where the baseline and spread came from."""
    arms: dict[str, PowerResult]
    """Treatment arm -> its minimum detectable effect against the control."""
    needed: dict[str, PowerResult]
    """Treatment arm -> the sample size for the target effect (when one was given)."""


def power_plan(
    spec: ExperimentSpec,
    *,
    metric: str | None = None,
    effect: float | None = None,
    power: float = 0.8,
    sd: float | None = None,
    baseline: float | None = None,
    report: Report = _quiet,
) -> PowerPlan:
    """Minimum detectable effects at the spec's size, and the size for a target effect.

    The arm sizes are those the spec's assignment gives on today's eligible base (after
    the global holdout and the layer share) or the observed arms. The spread comes
    from ``sd`` / ``baseline`` when given, else from the metric's pre-period column.
    """
    from uplift.design.power import (
        mde_binary,
        mde_continuous,
        pre_period_estimate,
        sample_size_binary,
        sample_size_continuous,
    )

    name = metric or spec.outcomes.primary
    if name not in spec.outcomes.metrics:
        raise SpecError(
            f"--metric: {name!r} is not one of the metrics {sorted(spec.outcomes.metrics)}."
        )
    definition = spec.outcomes.metrics[name]
    if definition.kind == "ratio":
        raise SpecError(
            f"--metric: {name!r} is a ratio metric; plan the power of its numerator or "
            f"denominator, one of {sorted(spec.outcomes.per_customer)}."
        )
    population, _, where = _population(spec)
    eligible = _eligible(spec, population, where, dt.datetime.now(dt.UTC))
    assignment = spec.assignment
    if isinstance(assignment, HashAssignment):
        # the layer's actual range is allocated at launch; its size is what counts here
        layer = (
            (assignment.layer, 0, round(assignment.layer_share * BUCKETS))
            if assignment.layer
            else None
        )
        arms = assign_arms(
            eligible[spec.population.id],
            assignment.salt,
            assignment.arms,
            assignment.global_holdout or 0.0,
            layer,
        )
        control, treatments = assignment.control, assignment.treatments
    else:
        _, arms, control, treatments = _observed_arms(spec, eligible, where)
    counts = arms.value_counts()
    value = baseline if definition.kind == "binary" else sd
    mean = None
    source = "given on the command line"
    if value is None:
        option = "--baseline" if definition.kind == "binary" else "--sd"
        column = definition.pre_period
        if column is None:
            raise SpecError(
                f"outcomes.metrics.{name}: no pre_period column is given to estimate its "
                f"{'baseline rate' if definition.kind == 'binary' else 'standard deviation'}; "
                f"name one in the spec or pass {option}."
            )
        if column not in eligible.columns:
            raise DataError(
                f"outcomes.metrics.{name}.pre_period: the {where} has no column {column!r}."
            )
        value = pre_period_estimate(eligible[column], definition.kind)
        mean = float(eligible[column].mean())
        source = f"pre-period column {column!r} of the {len(eligible):,} eligible customers"
    report(f"spread of {name!r}: {value:.6g} ({source})")
    alpha = spec.decision.alpha
    n_control = int(counts.get(control, 0))
    results, needed = {}, {}
    for arm in treatments:
        n_treatment = int(counts.get(arm, 0))
        try:
            if definition.kind == "binary":
                results[arm] = mde_binary(n_control, n_treatment, value, alpha=alpha, power=power)
                if effect is not None:
                    needed[arm] = sample_size_binary(
                        effect, value, ratio=n_control / n_treatment, alpha=alpha, power=power
                    )
            else:
                results[arm] = mde_continuous(
                    n_control, n_treatment, value, alpha=alpha, power=power, baseline_mean=mean
                )
                if effect is not None:
                    needed[arm] = sample_size_continuous(
                        effect, value, ratio=n_control / n_treatment, alpha=alpha, power=power
                    )
        except (ValueError, ZeroDivisionError) as exc:
            raise DataError(f"power of {name!r} for arm {arm!r}: {exc}") from None
    return PowerPlan(name, definition.kind, source, results, needed)


def prepare(
    spec: ExperimentSpec, report: Report = _quiet, ledger: Ledger | None = None
) -> PreparedData:
    """The experiment's customers, arms and outcomes, ready for analysis.

    With hash assignment the customers, their arms and their pre-launch features come
    from the frozen launch snapshot in the ledger; eligibility is never re-evaluated on
    data read after launch. A simulated campaign launches (or extends) itself first.
    """
    assignment = spec.assignment
    simulation: Simulation | None = None
    srm_weights: dict[str, float] | None = None
    frozen_rfm: pd.DataFrame | None = None
    frozen_settings: list[bytes | None] = []
    if isinstance(assignment, HashAssignment):
        ledger = ledger or open_ledger(spec)
        if isinstance(spec.population.source, SimulateSource):
            population, simulation, where = _population(spec)
            assign(spec, ledger, report=report, population=(population, simulation, where))
        with ledger.engine.begin() as conn:
            record = ledger.latest(conn, spec.name)
            if record is None:
                raise AssignmentError(
                    f"Experiment {spec.name!r} has no launch in the ledger {ledger.display_url}. "
                    f"Run `uplift assign SPEC --out arms.csv` at launch: it freezes who was "
                    f"eligible and their features, which the analysis reads instead of today's "
                    f"data."
                )
            snapshot = ledger.snapshot(conn, record)
            batches = ledger.batches(conn, record.id)
        launch_day: dt.date | None = record.launched_at.date()
        where = f"launch snapshot of {spec.name!r} version {record.version}"
        id_column = spec.population.id
        all_arms = snapshot.pop(ARM_COLUMN).astype(object).rename("arm")
        if simulation is not None:
            keys = snapshot[id_column].astype(str)
            positions = pd.Index(simulation.population[id_column].astype(str)).get_indexer(keys)
            if (positions < 0).any():
                raise AssignmentError(
                    f"population.source: {int((positions < 0).sum()):,} customers launched in "
                    f"{spec.name!r} version {record.version} are not in today's simulated "
                    f"population (were population.source n or seed changed after launch?). "
                    f"Restore them, or launch a new version with `uplift assign --new-version`."
                )
            snapshot.index = simulation.population.index[positions]
            all_arms.index = snapshot.index
        current = Definition.from_json(batches[-1].definition)
        launched = Definition.from_json(batches[0].definition)
        control = current.control
        treatments = [arm for arm in current.arms if arm != control]
        weights = current.weights()
        srm_weights = launched.weights()
        n_population = batches[-1].n_population or 0
        n_eligible = batches[-1].n_eligible
        n_holdout = int((all_arms == GLOBAL_HOLDOUT).sum())
        if spec.value.rfm.transactions is not None:
            # missing values for a batch launched before they were frozen
            frozen_rfm = snapshot.reindex(columns=list(FROZEN_COLUMNS.values()))
            frozen_settings = [ledger.snapshot_metadata(b, METADATA_KEY) for b in batches]
        snapshot = snapshot.drop(columns=list(FROZEN_COLUMNS.values()), errors="ignore")
        in_experiment = (all_arms != GLOBAL_HOLDOUT).to_numpy()
        frame, arms = snapshot[in_experiment], all_arms[in_experiment]
        held = snapshot[~in_experiment]
        report(
            f"launch snapshot: version {record.version}, {len(batches)} batch(es), "
            f"{len(snapshot):,} customers frozen at launch"
        )
    else:
        population, _, where = _population(spec)
        report(f"population: {len(population):,} customers ({where})")
        assert isinstance(assignment, ObservedAssignment)
        launch_day = _day_of(assignment.launched)
        eligible = _eligible(spec, population, where, assignment.launched)
        n_population, n_eligible, n_holdout = len(population), len(eligible), 0
        frame, arms, control, treatments = _observed_arms(spec, eligible, where)
        held = frame.iloc[:0]
        weights = None
    for arm in [control, *treatments]:
        if not (arms == arm).any():
            raise DataError(f"arm {arm!r} has no eligible customers.")
    frame, arms = _missing_features(spec, frame, arms, report)
    _refuse_small_arms(arms, [control, *treatments])

    metrics = {name: (str(m.column), m.kind) for name, m in spec.outcomes.per_customer.items()}
    migration = spec.value.migration
    end_columns = (
        {}
        if migration is None or spec.value.rfm.transactions is not None
        else {
            role: (getattr(migration, role), "continuous")
            for role in ("recency", "frequency", "monetary")
        }
    )

    def end_of(table: pd.DataFrame, where: str) -> pd.DataFrame | None:
        if not end_columns:
            return None
        return metric_frame(table, end_columns, where, key="value.migration")

    source = spec.outcomes.source
    holdout_outcomes = None
    if source.kind == "simulate":
        assert simulation is not None  # the spec validator ties the two together
        drawn = simulation.draw(arms)
        outcomes = metric_frame(drawn, metrics, "simulated outcomes")
        end = end_of(drawn, "simulated outcomes")
        if len(held) >= 2:
            holdout_arms = pd.Series(GLOBAL_HOLDOUT, index=held.index, name="arm")
            holdout_outcomes = metric_frame(
                simulation.draw(holdout_arms), metrics, "simulated outcomes"
            )
    elif source.kind == "population" and weights is None:
        outcomes = metric_frame(frame, metrics, where)
        end = end_of(frame, where)
    else:
        if source.kind == "population":
            population_source = spec.population.source
            assert not isinstance(population_source, SimulateSource)
            table = _population_table(population_source)
            path = (
                population_source.path
                if isinstance(population_source, FileSource)
                else "the population's SQL source"
            )
        else:
            assert source.path is not None
            path = source.path
            table = read_table(source.kind, path, "outcomes.source.path")
        check_ids(table, spec.population.id, f"outcome file {path}")
        outcomes = _joined_outcomes(table, frame, spec.population.id, metrics, path)
        if end_columns:
            joined = _joined(table, frame, spec.population.id, path)
            end = end_of(joined, f"outcome file {path}")
        else:
            end = None
        if len(held) >= 2:
            try:
                holdout_outcomes = _joined_outcomes(table, held, spec.population.id, metrics, path)
            except DataError as exc:
                report(f"global holdout left out of the programme comparison: {exc}")
    _refuse_constant(outcomes, spec)
    rfm = rfm_source = None
    if spec.value.rfm.transactions is not None:
        scored = rfm_from_purchases(
            spec,
            frame,
            launch_day,
            frozen_rfm.loc[frame.index] if frozen_rfm is not None else None,
            frozen_settings,
            report,
        )
        rfm, end, rfm_source = scored.launch, scored.end, scored.to_dict()
    report(
        f"eligible: {n_eligible:,}; in the experiment: {len(frame):,} "
        f"({', '.join(f'{a} {int((arms == a).sum()):,}' for a in [control, *treatments])})"
    )
    return PreparedData(
        frame,
        arms,
        outcomes,
        control,
        list(treatments),
        n_population,
        n_eligible,
        n_holdout,
        weights,
        srm_weights,
        simulation,
        record if isinstance(assignment, HashAssignment) else None,
        holdout_outcomes,
        end,
        rfm,
        rfm_source,
    )


def _day_of(moment: dt.datetime | dt.date | None) -> dt.date | None:
    """The calendar day of a launch date or time (UTC for a time with a zone)."""
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC)
        return moment.date()
    return moment


def _missing_features(
    spec: ExperimentSpec, frame: pd.DataFrame, arms: pd.Series, report: Report
) -> tuple[pd.DataFrame, pd.Series]:
    """Apply ``population.missing_features`` to the experiment's customers; an infinite
    value, or one beyond :data:`~uplift.analysis.features.MAX_FEATURE_MAGNITUDE`, counts as
    missing (a launch snapshot cannot be corrected afterwards)."""
    from uplift.analysis.features import out_of_range

    features = [f for f in spec.population.features if f in frame.columns]
    wild = {
        f: out_of_range(frame[f].to_numpy(dtype=float, na_value=np.nan))
        for f in features
        if pd.api.types.is_float_dtype(frame[f])
    }
    wild = {f: rows for f, rows in wild.items() if rows.any()}
    if wild:
        frame = frame.copy()
        for name, rows in wild.items():
            frame[name] = frame[name].mask(rows)
    missing = frame[features].isna()
    counts = missing.sum()
    if not counts.any():
        return frame, arms
    rows = missing.any(axis=1).to_numpy()
    listed = ", ".join(f"{name!r} {int(n):,}" for name, n in counts.items() if n)
    if wild:
        listed += "; infinite or beyond ±1e100, so counted as missing: " + ", ".join(
            f"{name!r} {int(bad.sum()):,}" for name, bad in wild.items()
        )
    policy = spec.population.missing_features
    if policy == "fail":
        raise DataError(
            f"population.features: {int(rows.sum()):,} of the experiment's {len(frame):,} "
            f"customers miss a feature value ({listed}), and population.missing_features is "
            f"'fail'. Fill them, or set missing_features to 'impute' or 'drop'."
        )
    if policy == "drop":
        report(
            f"features: dropped {int(rows.sum()):,} customers missing a value ({listed}); "
            f"population.missing_features: drop"
        )
        kept = ~rows
        for arm in arms.unique():
            if not (kept & (arms == arm).to_numpy()).any():
                raise DataError(
                    f"population.missing_features: dropping the customers who miss a feature "
                    f"value leaves arm {arm!r} with no customer ({listed})."
                )
        return frame[kept], arms[kept]
    report(f"features: missing values kept for the learners to impute ({listed})")
    return frame, arms


def _refuse_small_arms(arms: pd.Series, order: list[str]) -> None:
    """Every arm needs enough customers for the uplift models' cross-fitting and deciles."""
    counts = arms.value_counts()
    small = [arm for arm in order if counts.get(arm, 0) < MIN_ARM_CUSTOMERS]
    if small:
        found = ", ".join(f"{arm!r} {int(counts.get(arm, 0)):,}" for arm in order)
        raise DataError(
            f"arm {small[0]!r} has fewer than {MIN_ARM_CUSTOMERS} customers in the experiment "
            f"({found}); the uplift models are cross-fitted and judged by score decile, which "
            f"needs at least {MIN_ARM_CUSTOMERS} in each arm. Check the assignment column and "
            f"population.eligible, or leave the arm out."
        )


def _refuse_constant(outcomes: pd.DataFrame, spec: ExperimentSpec) -> None:
    """A metric with one value for every customer of the experiment has no effect to estimate."""
    for name in outcomes.columns:
        values = outcomes[name].to_numpy()
        if len(values) and (values == values[0]).all():
            column = spec.outcomes.metrics[str(name)].column
            raise DataError(
                f"outcomes.metrics.{name}: column {column!r} is {values[0]:g} for every one of "
                f"the experiment's {len(values):,} customers, so it has no effect to estimate. "
                f"Check the outcome source, or remove the metric from the spec."
            )


def _observed_arms(
    spec: ExperimentSpec, eligible: pd.DataFrame, where: str
) -> tuple[pd.DataFrame, pd.Series, str, list[str]]:
    assignment = spec.assignment
    assert isinstance(assignment, ObservedAssignment)
    if assignment.column not in eligible.columns:
        raise DataError(f"assignment.column: the {where} has no column {assignment.column!r}.")
    if eligible[assignment.column].isna().any():
        raise DataError(
            f"assignment.column: column {assignment.column!r} has "
            f"{int(eligible[assignment.column].isna().sum())} customers with no arm."
        )
    arms = eligible[assignment.column].astype(str).rename("arm")
    control = assignment.control
    found = sorted(arms.unique())
    if control not in found:
        raise DataError(
            f"assignment.control: the control label {control!r} is not in column "
            f"{assignment.column!r}, which holds {found[:20]}."
        )
    treatments = [a for a in found if a != control]
    if not treatments:
        raise DataError(
            f"assignment.column: column {assignment.column!r} holds only the control arm."
        )
    return eligible, arms, control, treatments


def _joined_outcomes(
    table: pd.DataFrame,
    frame: pd.DataFrame,
    id_column: str,
    metrics: Mapping[str, tuple[str, str]],
    path: Path | str,
) -> pd.DataFrame:
    joined = _joined(table, frame, id_column, path)
    return metric_frame(joined, metrics, f"outcome file {path}")


def _joined(
    table: pd.DataFrame, frame: pd.DataFrame, id_column: str, path: Path | str
) -> pd.DataFrame:
    """The outcome file's rows of the customers of ``frame``, in its order and index."""
    keyed = table.set_index(table[id_column].astype(str))
    ids = frame[id_column].astype(str)
    absent = ~ids.isin(keyed.index)
    if absent.any():
        raise DataError(
            f"outcomes.source.path: {int(absent.sum())} customers of the experiment have no "
            f"row in {path} (for example {shown(frame[id_column][absent].iloc[0])})."
        )
    return keyed.loc[ids.to_numpy()].set_axis(frame.index)


def _rfm_at_launch(
    spec: ExperimentSpec, frame: pd.DataFrame, rfm: pd.DataFrame | None
) -> tuple[pd.DataFrame, tuple[str, str, str]]:
    """Where R, F and M at launch are, and their columns: the spec's columns of ``frame``,
    or ``rfm`` from ``value.rfm.transactions`` (:func:`rfm_from_purchases`)."""
    setting = spec.value.rfm
    if setting.transactions is None:
        return frame, (setting.recency, setting.frequency, setting.monetary)
    if rfm is None:
        raise ValueError("value.rfm.transactions is set: pass its R, F and M (rfm_from_purchases)")
    return rfm, ("recency", "frequency", "monetary")


def segment_labels(
    spec: ExperimentSpec, frame: pd.DataFrame, rfm: pd.DataFrame | None = None
) -> pd.Series:
    """Each customer's segment: named RFM segments, or the values of a column.

    With ``value.rfm.transactions``, R, F and M are ``rfm`` (:func:`rfm_from_purchases`,
    rows as ``frame``), not columns of ``frame``.
    """
    from uplift.value.rfm import rfm_scores, rfm_segments

    if spec.value.segments == "rfm":
        setting = spec.value.rfm
        table, columns = _rfm_at_launch(spec, frame, rfm)
        scores = rfm_scores(table, *columns, setting.bins, bounds=setting.bounds)
        return rfm_segments(scores, setting.bins, rules=setting.rules, default=setting.default)
    column = spec.value.segments
    if column not in frame.columns:
        raise DataError(
            f"value.segments: {column!r} is neither 'rfm' nor a column of the population."
        )
    return frame[column].astype(str).fillna("(missing)").rename("segment")


def profit_model(spec: ExperimentSpec, treatments: list[str]) -> ProfitModel:
    """The value and cost parameters of the spec as a :class:`ProfitModel`."""
    from uplift.value.clv import clv_multiplier
    from uplift.value.costs import cost_model_for
    from uplift.value.profit import ProfitModel

    clv = spec.value.clv
    units = spec.value_units
    several = len(units) > 1
    return ProfitModel(
        value_metric=spec.value_metric,
        unit_value=1.0 if several else units[spec.value_metric],
        margin=clv.margin,
        clv_multiplier=clv_multiplier(
            spec.outcomes.window_days, clv.horizon_months, clv.annual_discount_rate, clv.persistence
        ),
        contact_cost=spec.economics.contact_cost,
        fixed_cost=spec.economics.fixed_cost,
        cost_models={
            arm: cost_model_for(spec.offer_for(arm), spec.value_metric) for arm in treatments
        },
        parts=units if several else None,
    )


def _digest(data: PreparedData) -> str:
    return _frame_digest(pd.concat([data.frame, data.outcomes.add_prefix("outcome:")], axis=1))


def _population_table(source: FileSource | SqlSource) -> pd.DataFrame:
    """The population source's rows as read (a file, a Parquet dataset or a SQL table)."""
    if isinstance(source, SqlSource):
        from uplift.data.sql_source import read_sql

        return read_sql(source.url, table=source.table, query=source.query)
    return read_table(source.kind, source.path, "population.source.path")


def _frame_digest(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def _inputs(spec: ExperimentSpec, data: PreparedData) -> list[tuple[str, pd.DataFrame, str]]:
    """The run's input datasets: name, the data as analysed, and where it came from."""
    population = spec.population.source
    if isinstance(population, SimulateSource):
        where = f"simulate:{spec.hypothesis.kind}?n={population.n}&seed={population.seed}"
    elif isinstance(population, SqlSource):
        from uplift.data.sql_source import masked_url

        where = f"{masked_url(population.url)} {population.table or population.query}"
    else:
        where = str(population.path)
    outcomes = spec.outcomes.source
    came_from = {
        "simulate": where,
        "population": where,
    }.get(outcomes.kind, str(outcomes.path))
    return [
        ("population", data.frame.assign(arm=data.arms.to_numpy()), where),
        ("outcomes", data.outcomes, came_from),
    ]


def _pre_period_covariates(spec: ExperimentSpec, data: PreparedData) -> dict[str, pd.DataFrame]:
    """Metric -> its pre-period column as frozen at launch, for the CUPED adjustment."""
    out = {}
    for name, metric in spec.outcomes.metrics.items():
        column = metric.pre_period
        if column is None:
            continue
        if column not in data.frame.columns:
            raise DataError(
                f"outcomes.metrics.{name}.pre_period: the experiment's customers have no "
                f"column {column!r}; its columns are {sorted(map(str, data.frame.columns))[:30]}."
            )
        values = data.frame[column]
        if not pd.api.types.is_numeric_dtype(values) or values.isna().any():
            raise DataError(
                f"outcomes.metrics.{name}.pre_period: column {column!r} must be numeric and "
                f"complete to adjust {name!r} for it; found {values.dtype} with "
                f"{int(values.isna().sum())} missing values. Fill or drop them, or remove "
                f"pre_period to analyse {name!r} unadjusted."
            )
        out[name] = data.frame[[column]]
    return out


def average_effects(
    spec: ExperimentSpec, data: PreparedData, report: Report = _quiet
) -> EffectResults:
    """Every treatment arm against the control on every metric (the effects stage).

    OLS with HC2 intervals; Lin-adjusted (CUPED) on a metric's pre-period column as it
    was frozen at launch, where the spec names one.
    """
    from uplift.analysis.effects import estimate_effects

    metrics = {name: spec.outcomes.columns(name) for name in spec.outcomes.metrics}
    covariates = _pre_period_covariates(spec, data)
    effects = estimate_effects(
        data.outcomes,
        data.arms,
        metrics,
        data.control,
        data.treatments,
        spec.decision.alpha,
        covariates,
        winsorize=_winsorized(spec),
        power=spec.effects.power,
    )
    report(
        "effects: OLS with HC2 intervals"
        + (f"; CUPED (Lin) on {sorted(covariates)}" if covariates else "")
    )
    return effects


def _winsorized(spec: ExperimentSpec) -> dict[str, float]:
    return {
        name: m.winsorize for name, m in spec.outcomes.metrics.items() if m.winsorize is not None
    }


def effects_by_segment(
    spec: ExperimentSpec,
    data: PreparedData,
    report: Report = _quiet,
    segments: pd.Series | None = None,
) -> SegmentEffects:
    """Every arm against the control on every metric within each segment.

    The segments are ``value.segments``'s (``segments``, when the caller has them
    already); the family of arms x metrics x segments is corrected by
    ``effects.correction``.
    """
    from uplift.analysis.effects import segment_effects

    metrics = {name: spec.outcomes.columns(name) for name in spec.outcomes.metrics}
    settings = spec.effects
    result = segment_effects(
        data.outcomes,
        data.arms,
        segment_labels(spec, data.frame, data.rfm) if segments is None else segments,
        metrics,
        data.control,
        data.treatments,
        spec.decision.alpha,
        _pre_period_covariates(spec, data),
        winsorize=_winsorized(spec),
        correction=settings.correction,
        min_segment_size=settings.min_segment_size,
        power=settings.power,
    )
    counts = result.counts()
    report(
        f"segment effects: {result.family_size} tests corrected by {settings.correction}; "
        + ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
    )
    return result


def analyze(spec: ExperimentSpec, data: PreparedData, report: Report = _quiet) -> Analysis:
    """Effects, uplift models, segment economics and the decision."""
    from uplift.analysis.effects import estimate_effects
    from uplift.value.decision import decide, segment_rule
    from uplift.value.profit import segment_profit

    alpha = spec.decision.alpha
    srm = None
    if data.srm_weights is not None:
        counts = data.arms.value_counts().to_dict()
        srm = srm_test({str(k): int(v) for k, v in counts.items()}, data.srm_weights)
    balance = covariate_balance(
        data.frame[spec.population.features], data.arms, data.control, data.treatments
    )
    metrics = {name: spec.outcomes.columns(name) for name in spec.outcomes.metrics}
    effects = average_effects(spec, data, report)
    segments_of = segment_labels(spec, data.frame, data.rfm)
    by_segment = effects_by_segment(spec, data, report, segments_of)
    programme = None
    if data.holdout_outcomes is not None:
        pooled = pd.concat([data.outcomes, data.holdout_outcomes], ignore_index=True)
        labels = pd.Series(
            [PROGRAMME] * len(data.outcomes) + [GLOBAL_HOLDOUT] * len(data.holdout_outcomes),
            name="arm",
        )
        programme = estimate_effects(
            pooled,
            labels,
            metrics,
            GLOBAL_HOLDOUT,
            [PROGRAMME],
            alpha,
            winsorize=_winsorized(spec),
            power=spec.effects.power,
        )

    model_data, model_rows = model_sample(spec, data)
    if model_rows is not None:
        report(
            f"uplift model: a sample of {len(model_rows):,} of the {len(data.arms):,} "
            f"customers, stratified by arm (models.sample_size)"
        )
    modelling = fit_models(spec, model_data, report)

    baseline = baseline_clv(spec, data, report)
    if baseline is not None:
        report(f"value: baseline CLV per customer ({baseline.method})")
    segments = segment_profit(
        data.outcomes,
        data.arms,
        segments_of,
        spec.outcomes.primary,
        profit_model(spec, data.treatments),
        data.control,
        data.treatments,
        alpha=alpha,
        min_segment_size=spec.value.min_segment_size,
        baseline_clv=None if baseline is None else baseline.values,
    )
    report("value: incremental CLV, costs and profit per segment")
    report("value: the targeting policy, valued out of fold")
    model_segments = segments_of if model_rows is None else _rows_of(segments_of, model_rows)
    targeting = evaluate_targeting(
        spec, model_data, modelling, model_segments, segment_rule(segments), len(data.arms)
    )
    decision = decide(
        segments, targeting, spec.economics.fixed_cost, _affordable(spec, model_data, modelling)
    )
    moved = segment_migration(spec, data)
    if moved is not None:
        report("value: RFM migration from launch to the end of the window, per arm")
    return Analysis(
        data,
        srm,
        balance,
        programme,
        effects,
        by_segment,
        modelling,
        segments,
        decision,
        targeting,
        _digest(data),
        moved,
        baseline,
        segments_of,
        model_rows,
    )


def model_sample(
    spec: ExperimentSpec, data: PreparedData
) -> tuple[PreparedData, np.ndarray | None]:
    """The customers the uplift models see: all, or ``models.sample_size`` of them.

    The sample is stratified by arm: each arm contributes its share of the sample
    (rounded), drawn without replacement with ``models.seed``; rows keep their order.
    Returns the data to model and the sampled rows' positions (``None``: every row).
    """
    size, n = spec.models.sample_size, len(data.arms)
    if size is None or size >= n:
        return data, None
    rng = np.random.default_rng(spec.models.seed)
    arms = data.arms.to_numpy()
    picked = []
    for arm in [data.control, *data.treatments]:
        rows = np.flatnonzero(arms == arm)
        take = round(size * len(rows) / n)
        picked.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    rows = np.sort(np.concatenate(picked))
    end = data.end_of_window
    return (
        replace(
            data,
            frame=_rows_of(data.frame, rows),
            arms=_rows_of(data.arms, rows),
            outcomes=_rows_of(data.outcomes, rows),
            end_of_window=None if end is None else _rows_of(end, rows),
        ),
        rows,
    )


def _rows_of(frame: Any, rows: np.ndarray) -> Any:
    """The rows at ``rows`` (positions) of a frame or series, with a fresh index."""
    return frame.iloc[rows].reset_index(drop=True)


def customer_output(spec: ExperimentSpec, analysis: Analysis, salt: bytes | None) -> pd.DataFrame:
    """Each modelled customer's arm, segment, out-of-fold uplift and net value per treatment,
    and the policy's arm: what ``tracking.per_customer`` logs.

    Customers are keyed by :func:`uplift.data.keys.customer_keys` under ``salt`` (column
    ``customer_key``), or by their id when ``salt`` is ``None`` (``key: id``; the column
    is named as ``population.id``). Rows are the customers the uplift models saw, in their
    order.
    """
    from uplift.data.keys import customer_keys

    data, rows = analysis.data, analysis.model_rows
    frame = data.frame if rows is None else _rows_of(data.frame, rows)
    ids = frame[spec.population.id]
    modelling = analysis.modelling
    chosen = next(r for r in modelling.results if r.name == modelling.chosen)
    net = modelling.net_uplift[modelling.chosen]
    choice = analysis.targeting.choice
    assert choice is not None  # evaluate_targeting values the policy's choice
    out = pd.DataFrame(
        {
            "customer_key" if salt is not None else spec.population.id: (
                customer_keys(ids, salt).to_numpy() if salt is not None else ids.to_numpy()
            ),
            "arm": (data.arms if rows is None else _rows_of(data.arms, rows)).to_numpy(),
        }
    )
    if analysis.segments_of is not None:
        segments = analysis.segments_of
        out["segment"] = (segments if rows is None else _rows_of(segments, rows)).to_numpy()
    for arm in data.treatments:
        out[f"uplift_{arm}"] = chosen.predictions[arm].to_numpy()
    for arm in data.treatments:
        out[f"net_value_{arm}"] = net[arm].to_numpy()
    out["policy_arm"] = choice.to_numpy()
    return out


def baseline_clv(
    spec: ExperimentSpec, data: PreparedData, report: Report = _quiet
) -> BaselineCLV | None:
    """Each customer's CLV without the campaign (``None`` without ``value.baseline_clv``).

    From a purchases table, the history ends on ``value.baseline_clv.observation_end``, by
    default the day before launch (the ledger's launch, or ``assignment.launched``: the spec
    requires one of them); later purchases are left out, and ``report`` counts them.
    """
    from uplift.value.baseline import run_rate_clv, transactions_clv

    setting, clv = spec.value.baseline_clv, spec.value.clv
    if setting is None:
        return None
    if setting.column is not None:
        column = setting.column
        values = data.frame[column] if column in data.frame.columns else None
        if values is None or not pd.api.types.is_numeric_dtype(values) or values.isna().any():
            found = (
                f"its columns are {sorted(map(str, data.frame.columns))[:30]}"
                if values is None
                else f"found {values.dtype} with {int(values.isna().sum())} missing values"
            )
            raise DataError(
                f"value.baseline_clv.column: the experiment's customers need a complete numeric "
                f"pre-period column {column!r}; {found}."
            )
        assert setting.period_days is not None  # the spec validator ties the two together
        return run_rate_clv(
            values,
            period_days=setting.period_days,
            horizon_months=clv.horizon_months,
            annual_discount_rate=clv.annual_discount_rate,
            margin=clv.margin,
            # the column is in units of the value metric (money, when that is a sum)
            unit_value=profit_model(spec, data.treatments).unit_value,
        )
    source = setting.transactions
    assert source is not None
    table = read_table(source.kind, source.path, "value.baseline_clv.transactions.path")
    id_column = source.id or spec.population.id
    end = _history_end(spec, data)
    if end is not None and source.date in table.columns:
        from uplift.value.lifetime import purchase_dates

        try:
            dates = purchase_dates(table[source.date], source.date)
        except DataError as exc:
            raise DataError(
                f"value.baseline_clv.transactions: transactions file {source.path}: {exc}"
            ) from None
        # parsed once: transactions_clv passes datetimes through as they are
        table = table.assign(**{source.date: dates})
        later = (dates.dt.normalize() > pd.Timestamp(end)).to_numpy()
        if later.any():
            # the window's purchases are the campaign's outcome, not the customer's history
            report(
                f"value: baseline CLV from the purchases to {end}; the {int(later.sum()):,} "
                f"after it left out"
            )
            table = table[~later]
    return transactions_clv(
        table,
        data.frame[spec.population.id],
        id_column=id_column,
        date_column=source.date,
        amount_column=source.amount,
        observation_end=end,
        horizon_months=clv.horizon_months,
        annual_discount_rate=clv.annual_discount_rate,
        margin=clv.margin,
        source=f"transactions file {source.path}",
    )


def _history_end(spec: ExperimentSpec, data: PreparedData) -> dt.date | None:
    """The last day of the baseline CLV's purchase history (see :func:`baseline_clv`)."""
    setting = spec.value.baseline_clv
    assert setting is not None
    if data.launch is not None:
        launched: dt.date | None = data.launch.launched_at.date()
    else:
        observed = spec.assignment
        launched = _day_of(observed.launched) if isinstance(observed, ObservedAssignment) else None
    return history_end("value.baseline_clv.observation_end", setting.observation_end, launched)


def segment_migration(spec: ExperimentSpec, data: PreparedData) -> SegmentMigration | None:
    """RFM transitions and the effect on moving up, per arm (``None`` without
    ``value.migration``)."""
    from uplift.value.migration import migration

    setting = spec.value.migration
    if setting is None or data.end_of_window is None:
        return None
    rfm = spec.value.rfm
    launch, columns = _rfm_at_launch(spec, data.frame, data.rfm)
    return migration(
        launch,
        data.end_of_window,
        data.arms,
        data.control,
        data.treatments,
        recency=columns[0],
        frequency=columns[1],
        monetary=columns[2],
        bins=rfm.bins,
        bounds=rfm.bounds,
        rules=rfm.rules,
        default=rfm.default,
        dimensions=setting.dimensions,
        alpha=spec.decision.alpha,
        method=setting.interval,
        by_level=setting.by_level,
    )


def evaluate_targeting(
    spec: ExperimentSpec,
    data: PreparedData,
    modelling: Modelling,
    segments_of: pd.Series,
    rule: SegmentPolicy,
    n_customers: int | None = None,
) -> PolicyEvaluation:
    """The per-customer targeting policy's incremental profit, honestly estimated.

    ``data`` are the customers the models saw; when they are a sample of
    ``n_customers`` (``models.sample_size``), the per-customer values estimated on the
    sample stand for the experiment's customers: the fixed cost is shared over
    ``n_customers`` and the counts of each rule are scaled to them.

    Every customer's expected net value per arm is built as ``uplift score`` builds it
    (value per unit x uplift on the value metric - contact cost - the offer's cost on the
    arm's predicted outcomes, on the same base models), but from models that never saw the
    customer: the chosen learner's out-of-fold uplift (cross-fitted again on the value
    metric when that is another metric, on the same folds), and out-of-fold regressions of
    the metrics the offer costs read among each arm's customers (:func:`targeting_inputs`).
    The policy (best positive arm, or none, within the budget), treating everyone with each
    arm, treating no one and the segment rule are valued on the doubly robust scores
    (:mod:`uplift.value.policy`) the learners were compared on: their control model is an
    out-of-fold regression of the control customers' net value, their arm models add the
    learners' mean predicted net value.
    """
    from uplift.value.policy import NO_ARM, evaluate_policies, profit_curve

    inputs, scores = modelling.targeting, modelling.scores
    assert inputs is not None and scores is not None  # fit_models builds them
    net = modelling.net_uplift[modelling.chosen]
    by_segment = {str(t["segment"]): str(t["arm"]) for t in rule.treated}
    # every customer's arm under the segment rule; with no segment treated, none at all
    segment_rule = pd.Series(
        [by_segment.get(label, NO_ARM) for label in segments_of.astype(str)],
        index=segments_of.index,
        dtype=object,
    )
    evaluation = evaluate_policies(
        _choose(spec, data, net, inputs.spend[modelling.chosen]),
        scores,
        alpha=spec.decision.alpha,
        others={"segments": segment_rule.set_axis(net.index)},
    )
    assert evaluation.choice is not None
    n = len(net)
    total = n if n_customers is None else max(n_customers, n)
    curve = profit_curve(
        net,
        scores,
        treated=int((evaluation.choice != NO_ARM).sum()),
        # shared over every customer of the experiment, the sample's share of it
        fixed_cost=spec.economics.fixed_cost * n / total,
        alpha=spec.decision.alpha,
    )
    if total != n:
        evaluation = replace(
            evaluation, values=tuple(_scaled(value, total) for value in evaluation.values)
        )
    return replace(evaluation, curve=curve)


def _scaled(value: PolicyValue, n: int) -> PolicyValue:
    """A rule valued on a sample, stated for ``n`` customers: its counts scaled to them."""
    factor = n / value.n if value.n else 0.0
    arms = {arm: round(count * factor) for arm, count in value.arms.items()}
    return replace(value, arms=arms, n=n)


def _propensity(data: PreparedData) -> dict[str, float] | None:
    """Each treatment arm's known probability given arm or control (hash assignment)."""
    if data.weights is None:
        return None
    w = data.weights
    return {arm: w[arm] / (w[arm] + w[data.control]) for arm in data.treatments}


def fit_models(spec: ExperimentSpec, data: PreparedData, report: Report = _quiet) -> Modelling:
    """Cross-fit every learner, compare them, and refit the chosen one for scoring."""
    from uplift.analysis.calibration import calibration_by_decile
    from uplift.analysis.features import FeatureEncoder
    from uplift.analysis.fit_cache import FitCache
    from uplift.analysis.importance import permutation_importance
    from uplift.analysis.learners import cross_fit_uplift
    from uplift.analysis.metrics import metric_intervals, qini_curve
    from uplift.analysis.selection import compare_metrics
    from uplift.value.policy import compare_policies

    alpha, seed = spec.decision.alpha, spec.models.seed
    encoder = FeatureEncoder(spec.population.features).fit(data.frame)
    X = encoder.transform(data.frame)
    primary = spec.outcomes.primary
    y = data.outcomes[primary]
    propensity = _propensity(data)
    results, rows, curves = [], [], {}
    quality_of: dict[str, dict[str, UpliftMetrics]] = {}
    learners = spec.models.configured()
    # the T-, X- and DR-learners fit the same outcome models on the same folds: once each
    shared_fits = FitCache()
    for step, learner in enumerate(learners, start=1):
        name = learner.label
        report(
            f"uplift model: {name}, {spec.models.folds}-fold cross-fitting on {primary!r} "
            f"[{step}/{len(learners)}]"
        )
        fitted = cross_fit_uplift(
            learner.learner,
            X,
            data.arms,
            y,
            data.control,
            data.treatments,
            folds=spec.models.folds,
            seed=seed,
            propensity=propensity,
            base=str(learner.base),
            base_params=learner.params,
            label=name,
            keep_fold_models=True,
            binary=_binary(spec, primary),
            fit_cache=shared_fits,
        )
        results.append(fitted)
        for arm in data.treatments:
            yy, tt, score = _pair(data, y, fitted.predictions[arm], arm)
            quality = metric_intervals(yy, tt, score, k=UPLIFT_AT_K, alpha=alpha, seed=seed)
            quality_of.setdefault(name, {})[arm] = quality
            rows.append(
                {
                    "name": name,
                    "learner": learner.learner,
                    "base": None if learner.learner == "uplift_forest" else learner.base,
                    "arm": arm,
                    "metric": primary,
                    **quality.to_dict(),
                }
            )
            curves[f"{name} / {arm}"] = qini_curve(yy, tt, score)
    comparison = compare_metrics(quality_of, alpha=alpha)
    report("uplift model: each learner's targeting policy, valued out of fold")
    fold = results[0].fold
    assert fold is not None  # every learner is cross-fitted on the same stratified folds
    inputs = targeting_inputs(spec, data, X, fold)
    nets = {
        r.name: _net_uplift(inputs, r.name, _value_uplift(spec, data, X, r, entry))
        for r, entry in zip(results, spec.models.configured(), strict=True)
    }
    scores = _common_scores(data, inputs, nets)
    policies = None
    if len(results) > 1:
        choices = {
            label: _choose(spec, data, net, inputs.spend[label]) for label, net in nets.items()
        }
        policies = compare_policies(choices, scores, net_values=nets, alpha=alpha)
    name = policies.chosen if policies is not None else comparison.chosen
    chosen = next(r for r in results if r.name == name)
    table = pd.DataFrame(rows)
    table["chosen"] = table["name"] == name
    calibration = {}
    for arm in data.treatments:
        yy, tt, score = _pair(data, y, chosen.predictions[arm], arm)
        calibration[arm] = calibration_by_decile(yy, tt, score, alpha=alpha, seed=seed)
    report(f"uplift model: permutation importance of {name}'s features")
    importance = permutation_importance(chosen, X, data.arms, y, data.control, seed=seed)
    entry = next(e for e in spec.models.configured() if e.label == name)
    report(f"uplift model: refitting {name} on every customer")
    scoring = scoring_model(spec, data, encoder, X, entry)
    return Modelling(
        results,
        table,
        curves,
        comparison,
        calibration,
        importance,
        scoring,
        inputs,
        nets,
        policies,
        scores,
    )


def targeting_inputs(
    spec: ExperimentSpec, data: PreparedData, X: pd.DataFrame, fold: np.ndarray
) -> TargetingInputs:
    """The out-of-fold pieces every learner's policy is valued with."""
    from uplift.analysis.learners import cross_fit_outcome
    from uplift.value.profit import net_value

    arms = data.arms.astype(str).to_numpy()
    economics = profit_model(spec, data.treatments)
    seed = spec.models.seed
    by_base: dict[str, pd.DataFrame] = {}
    spend: dict[str, pd.DataFrame] = {}
    for entry in spec.models.configured():
        base, params = _cost_base(spec, entry)
        key = json.dumps([base, params], sort_keys=True, default=str)
        if key not in by_base:
            columns = {}
            for arm in data.treatments:
                model = economics.cost_models[arm]
                predicted = pd.DataFrame(
                    {
                        metric: cross_fit_outcome(
                            X,
                            data.outcomes[metric].to_numpy(dtype=float),
                            arms == arm,
                            fold,
                            base=base,
                            seed=seed,
                            base_params=params,
                            binary=_binary(spec, metric),
                        )
                        for metric in model.outcome_metrics()
                    },
                    index=pd.RangeIndex(len(arms)),
                )
                cost = np.asarray(model.cost(predicted), dtype=float)
                columns[arm] = economics.contact_cost + cost
            by_base[key] = pd.DataFrame(columns, index=data.frame.index)
        spend[entry.label] = by_base[key]
    realised = net_value(data.outcomes, data.arms, economics).to_numpy()
    baseline = cross_fit_outcome(
        X,
        realised,
        arms == data.control,
        fold,
        base=str(spec.models.base),
        seed=seed,
        base_params=spec.models.base_params,
    )
    shares = data.arms.value_counts(normalize=True)
    if data.weights is not None:
        total = sum(data.weights[a] for a in [data.control, *data.treatments])
        shares = pd.Series({a: data.weights[a] / total for a in [data.control, *data.treatments]})
    return TargetingInputs(
        spend,
        realised,
        baseline,
        {str(a): float(p) for a, p in shares.items()},
        economics.value_per_unit,
    )


def _value_uplift(
    spec: ExperimentSpec,
    data: PreparedData,
    X: pd.DataFrame,
    result: CrossFitResult,
    entry: LearnerSpec,
) -> pd.DataFrame:
    """A learner's out-of-fold uplift on the value metric (cross-fitted again, on the same
    folds, when the value metric is not the primary one)."""
    from uplift.analysis.learners import cross_fit_uplift

    if spec.value_metric == spec.outcomes.primary:
        return result.predictions
    forest = entry.learner == "uplift_forest"
    return cross_fit_uplift(
        "t_learner" if forest else entry.learner,
        X,
        data.arms,
        pd.Series(_outcome(spec, data, spec.value_metric), index=data.outcomes.index),
        data.control,
        data.treatments,
        folds=spec.models.folds,
        seed=spec.models.seed,
        propensity=_propensity(data),
        base="lightgbm" if forest else str(entry.base or spec.models.base),
        base_params=None if forest else entry.params,
        binary=_binary(spec, spec.value_metric),
    ).predictions


def _binary(spec: ExperimentSpec, metric: str) -> bool:
    """Whether the metric is 0/1, so that its models fit the log loss (never the sum of
    several priced metrics)."""
    known = spec.outcomes.per_customer.get(metric)
    return known is not None and known.kind == "binary"


def _outcome(spec: ExperimentSpec, data: PreparedData, metric: str) -> np.ndarray:
    """Every customer's value of an outcome metric, or of the value metric when that is
    the sum of several priced metrics."""
    if metric in data.outcomes:
        return data.outcomes[metric].to_numpy(dtype=float)
    return profit_model(spec, data.treatments).value_of(data.outcomes)


def _cost_base(spec: ExperimentSpec, entry: LearnerSpec) -> tuple[str, dict[str, Any] | None]:
    """The base model (and parameters) of a learner's offer-cost regressions: its own, or
    LightGBM's defaults for the uplift forest, whose parameters are not a regressor's."""
    if entry.learner == "uplift_forest":
        return "lightgbm", None
    return str(entry.base or spec.models.base), entry.params


def _net_uplift(inputs: TargetingInputs, label: str, value_uplift: pd.DataFrame) -> pd.DataFrame:
    """Expected net value of every arm per customer: value of the uplift less the spend."""
    spend = inputs.spend[label]
    net = {
        arm: inputs.value_per_unit * value_uplift[arm].to_numpy() - spend[arm].to_numpy()
        for arm in spend.columns
    }
    return pd.DataFrame(net, index=spend.index)


def _choose(
    spec: ExperimentSpec, data: PreparedData, net: pd.DataFrame, spend: pd.DataFrame
) -> pd.Series:
    """The policy's arm per customer, within the spec's budget (pro rata to the experiment's
    share of the eligible base, for which the budget is stated)."""
    from uplift.value.policy import choose_arms

    max_treated, max_spend = _experiment_budget(spec, data)
    return choose_arms(net, max_treated=max_treated, max_spend=max_spend, spend=spend)


def _experiment_budget(
    spec: ExperimentSpec, data: PreparedData
) -> tuple[float | None, float | None]:
    """``decision.budget`` (stated for the eligible base) scaled to the experiment's share."""
    budget, n = spec.decision.budget, len(data.arms)
    scale = n / max(data.n_eligible, n)
    return (
        None if budget.max_treated is None else budget.max_treated * scale,
        None if budget.max_spend is None else budget.max_spend * scale,
    )


def _affordable(spec: ExperimentSpec, data: PreparedData, modelling: Modelling) -> list[str]:
    """The arms with which treating everyone stays within ``decision.budget`` (pro rata)."""
    max_treated, max_spend = _experiment_budget(spec, data)
    inputs, n = modelling.targeting, len(data.arms)
    out = []
    for arm in data.treatments:
        if max_treated is not None and max_treated < n:
            continue
        if (
            max_spend is not None
            and inputs is not None
            and inputs.spend[modelling.chosen][arm].sum() > max_spend
        ):
            continue
        out.append(arm)
    return out


def _common_scores(
    data: PreparedData, inputs: TargetingInputs, nets: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """Doubly robust scores whose outcome model averages the learners' predicted net values,
    so that every learner's policy is valued on the same scores and none by its own model."""
    from uplift.value.policy import doubly_robust_scores

    mean_net = sum(nets.values()) / len(nets)
    assert isinstance(mean_net, pd.DataFrame)
    return doubly_robust_scores(
        inputs.realised,
        data.arms.astype(str).to_numpy(),
        data.control,
        data.treatments,
        inputs.shares,
        inputs.baseline,
        mean_net,
    )


def _pair(
    data: PreparedData, y: pd.Series, score: pd.Series, arm: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome, treatment indicator and score of the arm's and the control's customers."""
    keep = data.arms.isin([arm, data.control]).to_numpy()
    treated = (data.arms.to_numpy()[keep] == arm).astype(int)
    return y.to_numpy(dtype=float)[keep], treated, score.to_numpy(dtype=float)[keep]


def scoring_model(
    spec: ExperimentSpec,
    data: PreparedData,
    encoder: FeatureEncoder,
    X: pd.DataFrame,
    learner: LearnerSpec,
) -> ScoringModel:
    """Refit ``learner`` on every customer, with what scoring a new base needs.

    The primary metric's uplift model; the value metric's, when the value metric is
    another one (by a T-learner on LightGBM when the chosen learner is the uplift forest,
    which needs a binary outcome); and, for each arm whose offer cost depends on what the
    customer does, a regressor of each metric the cost reads among the arm's customers, on
    the learner's base model (a T-learner's own treated-arm model when it already predicts
    that metric), as the targeting policy was valued.
    """
    from uplift.analysis.learners import fit_uplift, make_base
    from uplift.scoring import ScoringModel

    x = X.to_numpy(dtype=float)
    arms = data.arms.astype(str).to_numpy()
    primary, value_metric = spec.outcomes.primary, spec.value_metric
    options: dict[str, Any] = {
        "seed": spec.models.seed,
        "propensity": _propensity(data),
        "base": str(learner.base or spec.models.base),
        "base_params": learner.params,
    }
    forest = learner.learner == "uplift_forest"
    # the forest's parameters are not a base regressor's: its other models use LightGBM
    other = {**options, "base": "lightgbm", "base_params": None} if forest else options

    def fit(name: str, metric: str) -> Any:
        target = _outcome(spec, data, metric)
        settings = other if name != learner.learner else options
        return fit_uplift(
            name,
            x,
            arms,
            target,
            data.control,
            data.treatments,
            binary=_binary(spec, metric),
            **settings,
        )

    uplift = fit(learner.learner, primary)
    value_uplift = None
    if value_metric != primary:
        value_uplift = fit("t_learner" if forest else learner.learner, value_metric)
    economics = profit_model(spec, data.treatments)
    # the metrics the offer costs read are regressed as the targeting policy was valued
    # (targeting_inputs), so the rule applied is the rule valued
    base, params = _cost_base(spec, learner)
    arm_outcomes: dict[str, dict[str, Any]] = {}
    for arm in data.treatments:
        arm_outcomes[arm] = {}
        in_arm = arms == arm
        for metric in economics.cost_models[arm].outcome_metrics():
            for model, modelled in ((uplift, primary), (value_uplift, value_metric)):
                if model is not None and model.name == "t_learner" and modelled == metric:
                    arm_outcomes[arm][metric] = model.learner.models_t[arm]
                    break
            else:
                regressor = make_base(base, spec.models.seed, params, binary=_binary(spec, metric))
                target = data.outcomes[metric].to_numpy(dtype=float)
                arm_outcomes[arm][metric] = regressor.fit(x[in_arm], target[in_arm])
    return ScoringModel(
        id_column=spec.population.id,
        encoder=encoder,
        uplift=uplift,
        metric=primary,
        value_per_unit=economics.value_per_unit,
        contact_cost=economics.contact_cost,
        cost_models=economics.cost_models,
        value_uplift=value_uplift,
        arm_outcomes=arm_outcomes,
        learner=learner.label,
    )


def build_summary(
    spec: ExperimentSpec, analysis: Analysis, run_id: str | None, tracking_uri: str | None
) -> dict[str, Any]:
    """The summary document (DESIGN.md section 4), validated against its model."""
    from uplift.summary import Summary
    from uplift.value.policy import RISK_SCREEN, VALUE_MARGIN

    data, srm, decision = analysis.data, analysis.srm, analysis.decision
    segments_of = (
        analysis.segments_of
        if analysis.segments_of is not None
        else segment_labels(spec, data.frame, data.rfm)
    )
    counts = {str(k): int(v) for k, v in data.arms.value_counts().items()}
    policies = analysis.modelling.policies
    # one learner is chosen without a comparison, so without a screen or a margin
    screen = policies.screen if policies is not None else None
    margin = policies.margin if policies is not None else None
    summary = Summary.model_validate(
        {
            "experiment": spec.name,
            "hypothesis_kind": spec.hypothesis.kind,
            "spec_digest": spec.digest(),
            "uplift_version": __version__,
            "mlflow_run_id": run_id,
            "tracking_uri": tracking_uri,
            "n_population": data.n_population,
            "n_eligible": data.n_eligible,
            "primary_metric": spec.outcomes.primary,
            "alpha": spec.decision.alpha,
            "assignment": {
                "method": "hash" if data.weights is not None else "observed",
                "control": data.control,
                "counts": counts,
                "expected_shares": srm.expected_shares if srm else None,
                "srm_p_value": srm.p_value if srm else None,
                "srm_alert": srm.alert if srm else None,
                "global_holdout": data.n_global_holdout,
                "version": data.launch.version if data.launch else None,
                "launched_at": data.launch.launched_at.isoformat() if data.launch else None,
                "balance_max_abs_smd": analysis.balance.max_abs_smd,
                "balance_flagged": [
                    {"arm": row.arm, "feature": row.feature, "smd": row.smd}
                    for row in analysis.balance.flagged.itertuples()
                ],
            },
            "effects": analysis.effects.to_records(),
            "programme": analysis.programme.to_records() if analysis.programme else [],
            "segment_effects": {
                "correction": analysis.segment_effects.correction,
                "family_size": analysis.segment_effects.family_size,
                "min_segment_size": analysis.segment_effects.min_segment_size,
                "power": analysis.segment_effects.power,
                "rows": analysis.segment_effects.to_records(),
            },
            "segments": _records(analysis.segments.table),
            "models": _records(analysis.modelling.table),
            "model_selection": {
                "criterion": "the learner whose predicted net values have the smallest "
                "squared error against common doubly robust scores, unless another "
                "learner's targeting policy (out-of-fold predictions, best positive arm per "
                "customer) earns more incremental profit on those scores than its policy by "
                f"more than {margin if margin is not None else VALUE_MARGIN:g} times the "
                "paired difference's standard error; then the most profitable such policy. "
                "Learners whose squared error exceeds the smallest by more than "
                f"{screen if screen is not None else RISK_SCREEN:g} times the difference's "
                "standard error are not candidates. With one learner, that learner",
                "screen": screen,
                "margin": margin,
                "chosen": analysis.modelling.chosen,
                "qini_leader": analysis.modelling.comparison.chosen,
                "policies": _records(analysis.modelling.policies.to_frame())
                if analysis.modelling.policies is not None
                else [],
                "alpha": analysis.modelling.comparison.alpha,
                "n_boot": analysis.modelling.comparison.n_boot,
                "learners": _records(analysis.modelling.comparison.to_frame()),
                "importance": _records(analysis.modelling.importance.to_frame()),
                "n_customers": len(data.arms)
                if analysis.model_rows is None
                else len(analysis.model_rows),
            },
            "policy": _policy_section(
                decision,
                analysis.targeting,
                segments_of
                if analysis.model_rows is None
                else _rows_of(segments_of, analysis.model_rows),
            ),
            "targeting": {
                "rule": "treat each customer with the arm of highest expected net value "
                "(out-of-fold predictions of the chosen model) when it is above zero",
                "estimator": "doubly robust (augmented inverse-propensity) scores with the "
                "known arm shares; normal interval of their mean",
                "rows": [v.to_dict() for v in analysis.targeting.values],
                "best_treat_all": analysis.targeting.best_treat_all,
                "gain_over_treat_all": analysis.targeting.gain_over_treat_all,
                "gain_ci_low": analysis.targeting.gain_ci_low,
                "gain_ci_high": analysis.targeting.gain_ci_high,
            },
            "migration": analysis.migration.to_dict() if analysis.migration else None,
            "baseline_clv": analysis.baseline.to_dict() if analysis.baseline else None,
            "rfm_from_purchases": data.rfm_source,
            "decision": {
                "verdict": decision.verdict,
                "reason": decision.reason,
                "best_arm": decision.best_arm,
            },
        }
    )
    return summary.model_dump(mode="json")


def _policy_section(
    decision: CampaignDecision, targeting: PolicyEvaluation, segments_of: pd.Series
) -> dict[str, Any]:
    """The per-customer policy the verdict rests on, with whom it treats per segment."""
    from uplift.value.policy import NO_ARM

    policy, rule = decision.policy, decision.segment_rule
    by_segment = []
    if targeting.choice is not None:
        choice = targeting.choice.to_numpy()
        labels = segments_of.astype(str).to_numpy()
        for label in pd.unique(labels):
            picked = pd.Series(choice[labels == label]).value_counts()
            customers = int(picked.sum())
            by_segment.append(
                {
                    "segment": str(label),
                    "customers": customers,
                    "treated_share": 1.0 - int(picked.get(NO_ARM, 0)) / customers,
                    "arms": {str(a): int(n) for a, n in picked.items()},
                }
            )
    n = policy.n if policy is not None else 0
    return {
        "rule": "treat each customer with the arm of highest expected net value when it is "
        "above zero (what uplift score applies)",
        "arms": dict(policy.arms) if policy is not None else {},
        "treat_share": policy.treated_share if policy is not None else 0.0,
        "per_customer": decision.per_customer,
        "ci_low": decision.ci_low,
        "ci_high": decision.ci_high,
        "expected_incremental_profit": decision.expected_incremental_profit,
        "total_ci_low": decision.ci_low * n,
        "total_ci_high": decision.ci_high * n,
        "by_segment": by_segment,
        "curve": targeting.curve.to_records() if targeting.curve is not None else [],
        "segment_rule": {
            "rule": "treat segments whose incremental profit interval is above zero, each "
            "with its most profitable arm (chosen and valued in sample)",
            "treated": rule.treated,
            "treat_share": rule.treat_share,
            "expected_incremental_profit": rule.expected_incremental_profit,
            "ci_low": rule.ci_low,
            "ci_high": rule.ci_high,
        },
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return out


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run` did: the analysis, the summary and where it was logged."""

    analysis: Analysis
    summary: dict[str, Any]
    run_id: str
    tracking_uri: str
    experiment: str
    experiment_id: str = ""


def run(
    spec: ExperimentSpec,
    spec_path: Path,
    *,
    tracking_uri: str | None = None,
    summary_path: Path | None = None,
    ledger_url: str | None = None,
    report: Report = _quiet,
) -> RunOutcome:
    """Prepare, analyze and log one experiment to MLflow; optionally write the summary JSON."""
    from uplift.memo import render_memo
    from uplift.tracking.mlflow_log import check_store, flatten, open_run

    uri = tracking_uri or spec.tracking.uri
    per_customer = spec.tracking.per_customer
    salt = None
    if per_customer is not None and per_customer.key == "hashed":
        from uplift.data.keys import salt_from_env

        salt = salt_from_env(per_customer.salt_env)
    # a store that cannot be reached is found before minutes of work, not after them
    experiment_id = check_store(uri, spec.tracking.experiment)
    ledger = open_ledger(spec, ledger_url) if isinstance(spec.assignment, HashAssignment) else None
    data = prepare(spec, report, ledger)
    analysis = analyze(spec, data, report)
    with open_run(
        uri,
        spec.tracking.experiment,
        spec.name,
        keep=kept_run_folder(spec),
        experiment_id=experiment_id,
    ) as log:
        summary = build_summary(spec, analysis, log.run_id or None, log.tracking_uri)
        decision = analysis.decision
        log.tags(
            {
                "hypothesis_kind": spec.hypothesis.kind,
                "owner": spec.hypothesis.owner or "",
                "spec_digest": summary["spec_digest"],
                "data_digest": analysis.data_digest,
                "uplift_version": __version__,
                "verdict": decision.verdict,
                "mlflow.note.content": _note(spec, summary),
            }
        )
        spec_json, spec_text = _loggable_spec(spec, spec_path)
        log.params(flatten(spec_json))
        for name, frame, source in _inputs(spec, data):
            columns = {str(c): str(t) for c, t in frame.dtypes.items()}
            log.dataset(name, columns, _frame_digest(frame), source, rows=len(frame))
        log.metrics(_metrics(summary))
        log.text(spec_text, f"spec/{spec_path.name}")
        log.json(spec_json, "spec.json")
        log.json(summary, "summary.json")
        log.json(summary["assignment"], "assignment/srm.json")
        log.table(analysis.segments.to_frame(), "segments.csv")
        log.table(analysis.effects.to_frame(), "effects.csv")
        log.table(analysis.segment_effects.to_frame(), "segment_effects.csv")
        log.table(analysis.balance.to_frame(), "assignment/balance.csv")
        if analysis.migration is not None:
            log.table(analysis.migration.transitions.to_frame(), "migration/transitions.csv")
            log.table(analysis.migration.moves.to_frame(), "migration/move_up.csv")
        _log_models(log, spec, analysis)
        if per_customer is not None:
            log.parquet(customer_output(spec, analysis, salt), "customers/scores.parquet")
        report("report: figures and the decision memo")
        pngs = _figures(spec, summary, analysis)
        for path, png in pngs.items():
            log.binary(png, path)
        log.text(render_memo(summary, spec_json, pngs), "memo.html")
        if summary_path is not None:
            # inside the run: written even when the server is lost before the run ends
            summary_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = summary_path.with_suffix(summary_path.suffix + ".tmp")
            tmp.write_text(json.dumps(summary, indent=2, allow_nan=False), encoding="utf-8")
            tmp.replace(summary_path)
        if log.link.lost is None:
            report(f"logged MLflow run {log.run_id}")
    return RunOutcome(
        analysis,
        summary,
        log.run_id,
        log.tracking_uri,
        spec.tracking.experiment,
        log.experiment_id,
    )


def kept_run_folder(spec: ExperimentSpec) -> Path:
    """Where a run's results are kept if the tracking server is lost while it logs."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return (Path("experiments") / spec.name / "runs" / stamp).absolute()


def upload(folder: Path, tracking_uri: str | None = None) -> tuple[str, str]:
    """Log a run kept by :func:`run` (the server was lost) as a new MLflow run.

    The new run records where it came from: tags ``uplift.uploaded_from`` (the folder)
    and ``uplift.original_run_id`` (the run that could not be finished). The folder then
    holds ``uploaded.json`` naming the new run, and a second upload is refused.

    Returns
    -------
    (run_id, tracking_uri)

    Raises
    ------
    TrackingError
        When the folder is not a kept run, was uploaded already, or the store cannot be
        reached.
    """
    from uplift.tracking.journal import UPLOADED, read_meta, replay
    from uplift.tracking.mlflow_log import check_store, open_run
    from uplift.tracking.store import first_line

    if not (folder / "run.json").is_file():
        raise TrackingError(
            f"{folder}: not a kept run (no run.json); `uplift run` keeps one under "
            f"experiments/<experiment>/runs/ when the tracking server is lost mid-run."
        )
    done = folder / UPLOADED
    if done.is_file():
        earlier = json.loads(done.read_text(encoding="utf-8"))
        raise TrackingError(
            f"{folder} was uploaded already, as run {earlier['run_id']} at "
            f"{earlier['tracking_uri']} on {earlier['uploaded_at']}."
        )
    meta = read_meta(folder)
    uri = tracking_uri or str(meta["tracking_uri"])
    experiment = str(meta["experiment"])
    experiment_id = check_store(uri, experiment)
    try:
        with open_run(uri, experiment, str(meta["run_name"]), experiment_id=experiment_id) as log:
            replay(folder, log)
            log.tags(
                {
                    "uplift.uploaded_from": str(folder.resolve()),
                    "uplift.original_run_id": str(meta.get("run_id") or ""),
                }
            )
    except TrackingError:
        raise
    except Exception as exc:  # MLflow raises many types when its server goes away
        raise TrackingError(
            f"tracking.uri {uri!r}: the upload of {folder} failed part way "
            f"({type(exc).__name__}: {first_line(exc)}); that run is marked FAILED where the "
            f"server can be told, and the folder is unchanged: run `uplift upload` again."
        ) from None
    done.write_text(
        json.dumps(
            {
                "run_id": log.run_id,
                "tracking_uri": log.tracking_uri,
                "uploaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        ),
        encoding="utf-8",
    )
    return log.run_id, log.tracking_uri


def _loggable_spec(spec: ExperimentSpec, spec_path: Path) -> tuple[dict[str, Any], str]:
    """The spec as logged: its values, defaults included, and its file's text, with any
    password in ``ledger.url`` or a SQL population's ``url`` masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    document = spec.model_dump(mode="json", exclude_none=True)
    text = spec_path.read_text(encoding="utf-8")
    urls = [(document["ledger"], spec.ledger.url)]
    if isinstance(spec.population.source, SqlSource):
        urls.append((document["population"]["source"], spec.population.source.url))
    for holder, url in urls:
        try:
            password = make_url(url).password
        except ArgumentError:
            continue
        if password:
            holder["url"] = make_url(url).render_as_string(hide_password=True)
            text = text.replace(str(password), "***")
    return document, text


def _log_models(log: RunLogger, spec: ExperimentSpec, analysis: Analysis) -> None:
    """The model comparison, the chosen model and one nested run per learner."""
    from uplift.tracking.figures import qini_figure
    from uplift.tracking.mlflow_log import metric_name

    modelling, primary = analysis.modelling, spec.outcomes.primary
    log.table(modelling.table, "models.csv")
    log.table(modelling.comparison.to_frame(), "models/comparison.csv")
    log.table(modelling.importance.to_frame(), "models/importance.csv")
    for arm, calibration in modelling.calibration.items():
        log.table(calibration.to_frame(), f"models/calibration/{arm}.csv")
    log.metrics(
        {
            metric_name("model", "chosen", arm, "calibration_slope"): c.slope
            for arm, c in modelling.calibration.items()
        }
    )
    # tags the run with the model's URI and learner
    log.model(modelling.scoring_model, analysis.data.frame)
    configured = {entry.label: entry for entry in spec.models.configured()}
    for result in modelling.results:
        entry = configured[result.name]
        rows = modelling.table[modelling.table["name"] == result.name]
        curves = {k: v for k, v in modelling.curves.items() if k.startswith(result.name + " / ")}
        with log.child(result.name) as child:
            child.tags(
                {
                    "learner": entry.learner,
                    "chosen": str(result.name == modelling.chosen).lower(),
                }
            )
            child.params(
                {
                    "learner": entry.learner,
                    "base": "" if entry.learner == "uplift_forest" else str(entry.base),
                    "params": json.dumps(entry.params or {}, sort_keys=True),
                    "folds": str(spec.models.folds),
                    "seed": str(spec.models.seed),
                    "metric": primary,
                }
            )
            metrics = {}
            for row in rows.to_dict(orient="records"):
                for key in _MODEL_METRICS:
                    metrics[metric_name(row["arm"], key)] = row[key]
            child.metrics(metrics)
            child.table(rows, "models.csv")
            child.figure(qini_figure(curves, primary), "figures/qini.png")


def _figures(spec: ExperimentSpec, summary: dict[str, Any], analysis: Analysis) -> dict[str, bytes]:
    """The run's figures as PNG bytes, by artifact path, in the memo's order."""
    from uplift.tracking.figures import (
        calibration_figure,
        migration_figure,
        png_bytes,
        profit_curve_figure,
        qini_figure,
        segment_forest_figure,
    )

    primary, modelling = spec.outcomes.primary, analysis.modelling
    treat_all = [r for r in summary["targeting"]["rows"] if r["rule"].startswith("treat_all:")]
    figures = {
        "figures/segment_forest.png": segment_forest_figure(
            summary["segment_effects"]["rows"], primary
        ),
        "figures/profit_curve.png": profit_curve_figure(
            summary["policy"]["curve"],
            summary["policy"],
            treat_all,
            fixed_cost=spec.economics.fixed_cost,
            level=1 - spec.decision.alpha,
        ),
        "figures/qini.png": qini_figure(modelling.curves, primary),
        "figures/calibration.png": calibration_figure(modelling.calibration, primary),
    }
    if summary.get("migration"):
        figures["figures/migration.png"] = migration_figure(summary["migration"]["transitions"])
    return {path: png_bytes(figure) for path, figure in figures.items()}


def _metrics(summary: dict[str, Any]) -> dict[str, float]:
    from uplift.analysis.effects import SEGMENT_STATUSES
    from uplift.tracking.mlflow_log import metric_name

    out: dict[str, float] = {
        "n_population": summary["n_population"],
        "n_eligible": summary["n_eligible"],
    }
    for key in ("treat_share", "per_customer", "ci_low", "ci_high", "expected_incremental_profit"):
        if summary["policy"][key] is not None:
            out[f"policy.{key}"] = summary["policy"][key]
    if summary["assignment"]["srm_p_value"] is not None:
        out["assignment.srm_p_value"] = summary["assignment"]["srm_p_value"]
    if summary["assignment"]["balance_max_abs_smd"] is not None:
        out["assignment.balance.max_abs_smd"] = summary["assignment"]["balance_max_abs_smd"]
    out["assignment.global_holdout"] = summary["assignment"]["global_holdout"]
    for row in summary["effects"]:
        for key in (
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
            "lift",
            "lift_ci_low",
            "lift_ci_high",
            "variance_reduction",
            "detectable_effect",
            "unwinsorized_estimate",
        ):
            if row.get(key) is not None:
                out[metric_name("effect", row["arm"], row["metric"], key)] = row[key]
    by_segment = summary["segment_effects"]
    out["segment_effects.family_size"] = by_segment["family_size"]
    for status in SEGMENT_STATUSES:
        out[metric_name("segment_effects", status)] = sum(
            row["status"] == status for row in by_segment["rows"]
        )
    for row in summary["programme"]:
        for key in ("estimate", "ci_low", "ci_high", "p_value"):
            out[metric_name("programme", row["metric"], key)] = row[key]
    for row in summary["models"]:
        for key in _MODEL_METRICS:
            out[metric_name("model", row["name"], row["arm"], key)] = row[key]
    for row in summary["segments"]:
        for key in (
            "incremental_clv",
            "incremental_profit",
            "profit_ci_low",
            "profit_ci_high",
            "roi",
        ):
            out[metric_name("segment", row["segment"], row["arm"], key)] = row[key]
    moves = (summary.get("migration") or {}).get("moves", {}).get("rows", [])
    for row in moves:
        if row["launch_level"] == "all":
            for key in ("estimate", "ci_low", "ci_high"):
                if row[key] is not None:
                    name = metric_name("migration", row["dimension"], row["arm"], "up", key)
                    out[name] = row[key]
    targeting = summary["targeting"]
    for row in targeting["rows"]:
        for key in ("per_customer", "ci_low", "ci_high", "treated_share", "total"):
            out[metric_name("targeting", row["rule"], key)] = row[key]
    for key in ("gain_over_treat_all", "gain_ci_low", "gain_ci_high"):
        out[metric_name("targeting", key)] = targeting[key]
    return {k: v for k, v in out.items() if v is not None}


def _segment_effects_line(by_segment: dict[str, Any]) -> str:
    from uplift.analysis.effects import SEGMENT_STATUSES

    counts = {
        status: sum(row["status"] == status for row in by_segment["rows"])
        for status in SEGMENT_STATUSES
    }
    shown = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)
    correction = by_segment["correction"]
    return (
        f"**Segment effects** ({by_segment['family_size']} tests over segments x arms x "
        f"metrics, {'no correction' if correction == 'none' else correction + ' corrected'}): "
        f"{shown or 'none'}."
    )


def _targeting_line(targeting: dict[str, Any]) -> str:
    policy = targeting["rows"][0]
    if policy["per_customer"] is None:
        return "**Targeting policy:** no estimate."
    return (
        f"**Targeting policy** (best arm per customer when its expected net value is "
        f"positive; {policy['treated_share']:.0%} treated): {policy['per_customer']:.2f} per "
        f"customer against treating no one ({policy['ci_low']:.2f} to {policy['ci_high']:.2f}, "
        f"doubly robust, out of fold); {targeting['gain_over_treat_all']:.2f} "
        f"({targeting['gain_ci_low']:.2f} to {targeting['gain_ci_high']:.2f}) more than "
        f"treating everyone with '{targeting['best_treat_all']}'."
    )


def _migration_lines(migration: dict[str, Any] | None) -> list[str]:
    if not migration:
        return []
    parts = []
    for row in migration["moves"]["rows"]:
        if row["launch_level"] != "all" or row["estimate"] is None:
            continue
        parts.append(
            f"{row['arm']} {row['estimate']:+.1%} in {row['dimension']} "
            f"({row['ci_low']:+.1%} to {row['ci_high']:+.1%})"
        )
    return [
        "**RFM migration** (share of customers who moved up a level from launch to the end "
        "of the window, against the control): " + "; ".join(parts) + ".",
        "",
    ]


def _note(spec: ExperimentSpec, summary: dict[str, Any]) -> str:
    decision = summary["decision"]
    lines = [
        f"# {spec.name}",
        "",
        f"**Hypothesis ({spec.hypothesis.kind}):** {spec.hypothesis.statement}",
        "",
        f"**Verdict: {decision['verdict']}.** {decision['reason']}",
        "",
        _segment_effects_line(summary["segment_effects"]),
        "",
        _targeting_line(summary["targeting"]),
        "",
        *_migration_lines(summary.get("migration")),
        "| segment | arm | n | incremental profit per customer | CI | decision |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["segments"]:
        profit = row["incremental_profit"]
        ci = (
            f"{row['profit_ci_low']:.2f} to {row['profit_ci_high']:.2f}"
            if profit is not None
            else ""
        )
        shown = f"{profit:.2f}" if profit is not None else ""
        lines.append(
            f"| {row['segment']} | {row['arm']} | {row['n']} | {shown} | {ci} | {row['decision']} |"
        )
    return "\n".join(lines)
