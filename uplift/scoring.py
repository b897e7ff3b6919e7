"""Scoring a customer base: predicted uplift, expected net value and the recommended arm.

A :class:`ScoringModel` holds what the experiment learned, refitted on all its customers:
the feature encoding, the chosen uplift learner on the primary metric, the same learner on
the value metric when that is another metric, the arm outcome models that the offer
costs need, and the economics of the spec. For every customer and treatment arm it gives

* the predicted uplift on the primary metric;
* the expected net value of treating with that arm rather than not at all::

      value_per_unit * uplift on the value metric - contact cost - E[offer cost | arm, x]

  Every cost model is linear in the outcomes it reads, so the expected offer cost is the
  cost of the arm's predicted outcomes (the predicted trial uptake, the predicted gross
  revenue on which the discount is paid). The campaign's fixed cost is not spread over
  customers: it does not change with whom is treated;
* the recommended arm: the arm with the highest expected net value when that is above
  zero, else none.

:func:`score_file` applies a model to a customer base in a CSV or Parquet file, chunk by
chunk, and writes one row per customer to a CSV or Parquet file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from uplift.analysis.features import FeatureEncoder
from uplift.analysis.learners import UpliftModel
from uplift.data.chunks import ChunkWriter, file_format, iter_chunks
from uplift.errors import DataError
from uplift.value.costs import CostModel
from uplift.value.policy import NO_ARM, within_budget

__all__ = [
    "NO_ARM",
    "ScoreReport",
    "ScoringModel",
    "net_value_column",
    "score_file",
    "uplift_column",
]


def uplift_column(arm: str) -> str:
    """Output column of an arm's predicted uplift on the primary metric."""
    return f"uplift_{arm}"


def net_value_column(arm: str) -> str:
    """Output column of an arm's expected net value per customer."""
    return f"net_value_{arm}"


@dataclass(frozen=True)
class ScoringModel:
    """The chosen uplift model with the economics that turn its predictions into decisions."""

    id_column: str
    encoder: FeatureEncoder
    uplift: UpliftModel
    """The chosen learner on the primary metric, refitted on every customer."""
    metric: str
    """The primary metric."""
    value_per_unit: float
    """Lifetime profit of one unit of the value metric (CLV multiplier x margin x unit value)."""
    contact_cost: float
    cost_models: Mapping[str, CostModel]
    """Offer cost model of each treatment arm."""
    value_uplift: UpliftModel | None = None
    """The same learner on the value metric; ``None`` when the value metric is the primary."""
    arm_outcomes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Arm -> metric -> a fitted regressor of that metric among the arm's customers, for
    the metrics the arm's cost model reads."""
    learner: str = ""
    """The chosen learner's label."""

    @property
    def treatments(self) -> tuple[str, ...]:
        """The treatment arms, in output order."""
        return self.uplift.treatments

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns a population must hold."""
        return tuple(self.encoder.features)

    def output_columns(self) -> list[str]:
        """Columns of :meth:`predict`'s frame, in order."""
        return (
            [self.id_column]
            + [uplift_column(a) for a in self.treatments]
            + [net_value_column(a) for a in self.treatments]
            + ["recommended_arm"]
        )

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score the customers of ``frame`` (it needs the id column and the features).

        Returns
        -------
        pd.DataFrame
            One row per customer, in the order of ``frame``: the id, ``uplift_<arm>`` and
            ``net_value_<arm>`` per treatment arm, and ``recommended_arm`` (an arm or
            ``"none"``).
        """
        x = self.encoder.transform(frame).to_numpy(dtype=float)
        uplift, net, _ = self._economics(x)
        ids = frame[self.id_column]
        # the id column's own array: Arrow-backed text is passed on without a copy
        out: dict[str, Any] = {
            self.id_column: ids.to_numpy()
            if isinstance(ids.dtype, pd.CategoricalDtype)
            else ids.array
        }
        for arm in self.treatments:
            out[uplift_column(arm)] = uplift[arm].to_numpy()
        for i, arm in enumerate(self.treatments):
            out[net_value_column(arm)] = net[:, i]
        # position of the recommended arm among (*treatments, NO_ARM)
        choice = np.full(len(frame), len(self.treatments))
        if len(self.treatments):
            best = np.argmax(net, axis=1)
            choice = np.where(net[np.arange(len(frame)), best] > 0, best, choice)
        # labels taken by position in Arrow: the same text column as an object array of
        # Python strings gives, without the 0.2 s per 500,000 customers of converting it
        labels = pa.array([*self.treatments, NO_ARM], type=pa.large_string())
        out["recommended_arm"] = labels.take(pa.array(choice)).to_pandas().array
        return pd.DataFrame(out, index=frame.index)

    def best_arm_value(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each customer's expected net value of their best arm, and its expected spend.

        What a budget ranks customers by (:func:`uplift.value.policy.within_budget`).
        """
        x = self.encoder.transform(frame).to_numpy(dtype=float)
        _, net, spend = self._economics(x)
        if not len(self.treatments):
            return np.zeros(len(frame)), np.zeros(len(frame))
        best = np.argmax(net, axis=1)
        rows = np.arange(len(frame))
        return net[rows, best], spend[rows, best]

    def _economics(self, x: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Uplift on the primary metric, and net value and spend per arm (columns)."""
        uplift = self.uplift.predict(x)
        value = uplift if self.value_uplift is None else self.value_uplift.predict(x)
        net = np.empty((len(x), len(self.treatments)))
        spend = np.empty_like(net)
        for i, arm in enumerate(self.treatments):
            spend[:, i] = self.contact_cost + self._expected_cost(arm, x)
            net[:, i] = self.value_per_unit * value[arm].to_numpy() - spend[:, i]
        return uplift, net, spend

    def _expected_cost(self, arm: str, x: np.ndarray) -> np.ndarray:
        model = self.cost_models[arm]
        metrics = model.outcome_metrics()
        predicted = pd.DataFrame(
            {m: np.asarray(self.arm_outcomes[arm][m].predict(x), dtype=float) for m in metrics},
            index=pd.RangeIndex(len(x)),
        )
        return np.asarray(model.cost(predicted), dtype=float)


@dataclass(frozen=True)
class ScoreReport:
    """What :func:`score_file` wrote."""

    rows: int
    """Customers scored (rows written)."""
    seconds: float
    """Wall-clock time from opening the population to the published output."""
    path: Path
    """The output file."""
    arms: Mapping[str, int]
    """Customers per recommended arm: every treatment arm, then ``"none"``, zeros kept."""

    @property
    def customers_per_second(self) -> float:
        """Throughput of the whole call (``nan`` when it took no measurable time)."""
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return {
            "rows": self.rows,
            "seconds": self.seconds,
            "customers_per_second": self.customers_per_second,
            "path": str(self.path),
            "arms": dict(self.arms),
        }


def score_file(
    model: ScoringModel,
    population: Path,
    out: Path,
    *,
    chunk_size: int = 500_000,
    report: Callable[[str], None] | None = None,
    max_treated: int | None = None,
    max_spend: float | None = None,
) -> ScoreReport:
    """Score every customer of a CSV or Parquet file and write the scores, chunk by chunk.

    Only the model's id column and features are read, ``chunk_size`` rows at a time, so
    memory follows the chunk size and not the file. Each chunk goes through
    :meth:`ScoringModel.predict` and is appended to a temporary file beside ``out``,
    which replaces ``out`` only once every customer is scored: on any failure ``out`` is
    left as it was and the temporary file is removed.

    Parameters
    ----------
    model : ScoringModel
        The model to apply.
    population : Path
        The customer base, ``.csv`` or ``.parquet``; it needs the model's id column and
        features (other columns are ignored). CSV ids and text features are read as text.
    out : Path
        Where to write :meth:`ScoringModel.output_columns`, one row per customer in the
        order of the file; ``.csv`` or ``.parquet`` (the extension sets the format).
    chunk_size : int
        Customers per chunk.
    report : callable, optional
        Called with a line of progress after each chunk.
    max_treated : int, optional
        Recommend an arm to at most this many customers of the whole file: those of
        highest expected net value.
    max_spend : float, optional
        Recommend arms, in order of expected net value, while the customers' expected
        spend (contact and offer cost) adds up to at most this much.

    Returns
    -------
    ScoreReport
        Rows, seconds, the output path and the count of each recommended arm.

    Raises
    ------
    DataError
        Before anything is written: when ``out`` or ``population`` has another extension,
        the population does not exist, cannot be read, or lacks the id column or a
        feature (the message names the file, the missing columns and the columns it has).
        While scoring: when a later part of the file cannot be parsed, an id is missing
        or a feature has the wrong type; nothing is published then.

    Notes
    -----
    Repeated ids are not detected: each chunk is scored on its own, so an id that
    appears twice (within or across chunks) is scored, and written, twice.
    """
    start = time.perf_counter()
    file_format(out, "--out")
    keep = None
    if max_treated is not None or max_spend is not None:
        keep = _budget_mask(model, population, chunk_size, max_treated, max_spend, report)
    counts = dict.fromkeys([*model.treatments, NO_ARM], 0)
    chunks = _checked_chunks(model, population, chunk_size)
    with closing(chunks), ChunkWriter(out, key="--out") as writer:
        for chunk in chunks:
            try:
                scores = model.predict(chunk)
            except DataError as exc:
                raise DataError(f"--population: {population}: {exc}") from None
            if keep is not None:
                if writer.rows + len(chunk) > len(keep):
                    raise DataError(
                        f"--population: {population} had {len(keep):,} customers when the "
                        f"budget was filled and has more now; it changed while being scored."
                    )
                within = keep[writer.rows : writer.rows + len(chunk)]
                if not within.all():
                    arm = scores["recommended_arm"].to_numpy(dtype=object)
                    arm[~within] = NO_ARM
                    scores["recommended_arm"] = pd.array(arm, dtype=scores["recommended_arm"].dtype)
            writer.write(scores)
            for arm, n in scores["recommended_arm"].value_counts(sort=False).items():
                counts[str(arm)] = counts.get(str(arm), 0) + int(n)
            if report is not None:
                report(f"scored {writer.rows:,} customers")
        if keep is not None and writer.rows != len(keep):
            raise DataError(
                f"--population: {population} had {len(keep):,} customers when the budget was "
                f"filled and {writer.rows:,} now; it changed while being scored."
            )
        if writer.rows == 0:
            writer.write(_empty_scores(model))
    return ScoreReport(writer.rows, time.perf_counter() - start, out, counts)


def _checked_chunks(
    model: ScoringModel, population: Path, chunk_size: int
) -> Generator[pd.DataFrame, None, None]:
    """The population's id and feature columns, chunk by chunk, every id present."""
    id_column = model.id_column
    text = [id_column, *getattr(model.encoder, "categories_", {})]
    chunks = iter_chunks(
        population,
        [id_column, *model.features],
        chunk_size,
        key="--population",
        text_columns=text,
    )
    rows = 0
    with closing(chunks):
        for chunk in chunks:
            missing = chunk[id_column].isna().to_numpy()
            if missing.any():
                row = rows + int(np.argmax(missing)) + 1
                raise DataError(
                    f"--population: {population} has a missing id in column {id_column!r} "
                    f"(data row {row:,}); every customer needs an id."
                )
            rows += len(chunk)
            yield chunk


def _budget_mask(
    model: ScoringModel,
    population: Path,
    chunk_size: int,
    max_treated: int | None,
    max_spend: float | None,
    report: Callable[[str], None] | None,
) -> np.ndarray:
    """A first pass over the file: which customers the budget lets the policy treat.

    Only each customer's best net value and its spend are kept (16 bytes a customer), so
    the budget is filled over the whole file, not chunk by chunk.
    """
    gains, spends = [], []
    chunks = _checked_chunks(model, population, chunk_size)
    with closing(chunks):
        for chunk in chunks:
            try:
                gain, spend = model.best_arm_value(chunk)
            except DataError as exc:
                raise DataError(f"--population: {population}: {exc}") from None
            gains.append(gain)
            spends.append(spend)
            if report is not None:
                report(f"budget: ranked {sum(map(len, gains)):,} customers")
    gain = np.concatenate(gains) if gains else np.zeros(0)
    spend = np.concatenate(spends) if spends else np.zeros(0)
    return within_budget(gain, spend, max_treated=max_treated, max_spend=max_spend)


def _empty_scores(model: ScoringModel) -> pd.DataFrame:
    columns = model.output_columns()
    frame = pd.DataFrame({c: pd.Series([], dtype=float) for c in columns})
    for name in (model.id_column, "recommended_arm"):
        frame[name] = pd.Series([], dtype="string")
    return frame[columns]
