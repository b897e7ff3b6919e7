"""End-to-end tests of ``uplift assign``, ``uplift power`` and of ``uplift run`` on a launch.

Every command runs in a subprocess with its working directory in ``tmp_path``, as a user
would run it, on a copy of ``configs/edtech_trial_lessons.yaml`` made small and pointed
at a SQLite ledger there. Bad input must exit with code 2 and a one-paragraph message,
never a traceback (DESIGN.md section 4, as in tests/test_cli_errors.py).
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_support import EXAMPLE, error_paragraph, uplift
from scipy import stats

from uplift.design.hashing import GLOBAL_HOLDOUT
from uplift.design.ledger import Ledger

NAME = "edtech-trial-lessons"
ARMS = ["control", "two_lessons", "four_lessons"]


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def example(**edits: Any) -> dict[str, Any]:
    """The example spec with 4,000 simulated customers, 2 folds and a ledger in the cwd."""
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["population"]["source"]["n"] = 4000
    raw["models"]["folds"] = 2
    raw["ledger"] = {"url": "sqlite:///ledger.db"}
    raw["tracking"]["uri"] = "sqlite:///mlflow.db"
    for key, value in edits.items():
        raw["assignment"][key] = value
    return raw


def write_spec(directory: Path, raw: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class LedgerState:
    versions: list[int]
    assignments: dict[int, pd.DataFrame]
    """Version -> ``customer_id, arm, batch`` sorted by customer."""
    n_eligible: dict[int, list[int]]
    """Version -> n_eligible of each batch."""
    rows: int


def read_ledger(directory: Path, name: str = NAME) -> LedgerState:
    path = directory / "ledger.db"
    assert path.is_file(), "no ledger was written"
    ledger = Ledger(f"sqlite:///{path}")
    try:
        with ledger.engine.connect() as conn:
            records = ledger.experiments(conn, name)
            assignments = {
                r.version: ledger.assignments(conn, r.id).sort_values(
                    "customer_id", ignore_index=True
                )
                for r in records
            }
            n_eligible = {
                r.version: [b.n_eligible for b in ledger.batches(conn, r.id)] for r in records
            }
            rows = int(conn.exec_driver_sql("SELECT count(*) FROM uplift_assignments").scalar_one())
    finally:
        ledger.engine.dispose()
    return LedgerState([r.version for r in records], assignments, n_eligible, rows)


def exported(rows: pd.DataFrame) -> dict[str, str]:
    """Customer -> arm of the ledger rows the CRM export must hold (global holdout left out)."""
    kept = rows[rows["arm"] != GLOBAL_HOLDOUT]
    return dict(zip(kept["customer_id"], kept["arm"], strict=True))


def read_csv_export(path: Path) -> tuple[list[str], dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    mapping = dict((r[0], r[1]) for r in rows)
    assert len(mapping) == len(rows), "an id appears twice in the export"
    return header, mapping


# --- the population file of the analysis tests ------------------------------------------


def base(n: int, seed: int = 3) -> pd.DataFrame:
    """A customer base as the CRM holds it at launch: features and eligibility, no outcomes."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(10_001, 10_001 + n),
            "recency_days": rng.integers(1, 365, n),
            "frequency_180d": rng.poisson(3, n),
            "monetary_180d": rng.gamma(2.0, 50.0, n).round(2),
            "tenure_days": rng.integers(30, 2000, n),
            "plan": rng.choice(["free", "basic", "plus"], n),
            "applied_premium": (rng.random(n) < 0.6).astype(int),
            "bought_premium_before": (rng.random(n) < 0.1).astype(int),
            "revenue_pre_60d": rng.gamma(1.0, 20.0, n).round(2),
        }
    )


def after_campaign(launch_base: pd.DataFrame, seed: int = 4) -> pd.DataFrame:
    """The same base read after the campaign: eligibility changed for many, outcomes filled."""
    rng = np.random.default_rng(seed)
    n = len(launch_base)
    post = launch_base.copy()
    flip = rng.random(n) < 0.3
    post.loc[flip, "applied_premium"] = 1 - post.loc[flip, "applied_premium"]
    post["took_trial"] = (rng.random(n) < 0.3).astype(int)
    post["bought_course"] = (rng.random(n) < 0.2).astype(int)
    post["revenue_60d"] = (post["bought_course"] * 290.0 + rng.gamma(1.0, 10.0, n)).round(2)
    return post


def eligible_ids(population: pd.DataFrame) -> set[str]:
    mask = (population["applied_premium"] == 1) & (population["bought_premium_before"] == 0)
    return set(population.loc[mask, "customer_id"].astype(str))


def file_spec() -> dict[str, Any]:
    raw = example()
    raw["population"]["source"] = {"kind": "parquet", "path": "population.parquet"}
    raw["outcomes"]["source"] = {"kind": "population"}
    # the population files these tests write hold no end-of-window R, F and M
    raw["value"].pop("migration")
    return raw


# --- commands that run in the background -------------------------------------------------


class Background:
    """``uplift`` commands run one after the other in a thread, overlapping the other tests.

    Started when the module's first test starts: the launches and the MLflow run are the
    slowest commands here, and the machine has a second core for them.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._guarded, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        raise NotImplementedError

    def _guarded(self) -> None:
        try:
            self._work()
        except BaseException as exc:
            self.error = exc

    def _uplift(self, *args: str) -> subprocess.CompletedProcess[str]:
        with self._lock:
            if self._stopped:
                raise RuntimeError("stopped before it ran")
            self._process = subprocess.Popen(
                [sys.executable, "-m", "uplift", *args],
                cwd=self.directory,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        stdout, stderr = self._process.communicate(timeout=600)
        return subprocess.CompletedProcess(args, self._process.returncode, stdout, stderr)

    def wait(self) -> None:
        self._thread.join(timeout=600)
        assert not self._thread.is_alive(), f"{type(self).__name__} did not finish"
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            process = self._process
        if process is not None and process.poll() is None:
            process.kill()
        self._thread.join(timeout=120)


class Launched(Background):
    """``uplift assign`` of the small example, once, into a ledger the tests copy."""

    result: subprocess.CompletedProcess[str]

    def _work(self) -> None:
        write_spec(self.directory, example())
        self.result = self._uplift("assign", "spec.yaml", "--out", "arms.csv")

    def copy_to(self, target: Path) -> Path:
        """A copy of the launched directory (spec, ledger, snapshots, export) to work in."""
        destination = target / "work"
        shutil.copytree(self.directory, destination)
        return destination


class Analysed(Background):
    """Launch on a Parquet base, replace the file with post-campaign data, then analyse."""

    assign: subprocess.CompletedProcess[str]
    run: subprocess.CompletedProcess[str]

    def __init__(self, directory: Path) -> None:
        self.launch_base = base(4000)
        self.post = after_campaign(self.launch_base)
        self.summary: dict[str, Any] = {}
        super().__init__(directory)

    def _work(self) -> None:
        write_spec(self.directory, file_spec())
        self.launch_base.to_parquet(self.directory / "population.parquet", index=False)
        self.assign = self._uplift("assign", "spec.yaml", "--out", "arms.csv")
        if self.assign.returncode != 0:
            return
        self.post.to_parquet(self.directory / "population.parquet", index=False)
        self.run = self._uplift(
            "run",
            "spec.yaml",
            "--summary",
            "s.json",
            "--tracking-uri",
            f"sqlite:///{self.directory}/mlflow.db",
        )
        path = self.directory / "s.json"
        if path.is_file():
            self.summary = json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Chains:
    launched: Launched
    analysed: Analysed


@pytest.fixture(scope="module", autouse=True)
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chains]:
    started = Chains(
        Launched(tmp_path_factory.mktemp("launched")),
        Analysed(tmp_path_factory.mktemp("analysed")),
    )
    yield started
    started.launched.stop()
    started.analysed.stop()


@pytest.fixture
def launched(chains: Chains) -> Launched:
    chains.launched.wait()
    ok(chains.launched.result)
    return chains.launched


@pytest.fixture
def analysed(chains: Chains) -> Analysed:
    chains.analysed.wait()
    ok(chains.analysed.assign)
    assert hasattr(chains.analysed, "run"), "uplift run did not start"
    ok(chains.analysed.run)
    return chains.analysed


# --- refusals ----------------------------------------------------------------------------


def test_assign_refuses_an_unknown_export_extension(tmp_path: Path) -> None:
    write_spec(tmp_path, example())
    result = uplift("assign", "spec.yaml", "--out", "arms.txt", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    # the usage error is boxed and wrapped by the terminal width: read it as one text
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())
    assert "--out" in text
    assert "'.txt'" in text
    assert ".csv or .parquet" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_assign_refuses_an_observed_assignment(tmp_path: Path) -> None:
    raw = example()
    raw["population"]["source"] = {"kind": "parquet", "path": "population.parquet"}
    raw["outcomes"]["source"] = {"kind": "population"}
    raw["assignment"] = {"column": "arm", "control": "control"}
    write_spec(tmp_path, raw)
    message = error_paragraph(uplift("assign", "spec.yaml", "--out", "arms.csv", cwd=tmp_path))
    assert "observed" in message
    assert "'arm'" in message
    assert "uplift assign" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_power_refuses_an_unknown_metric(tmp_path: Path) -> None:
    write_spec(tmp_path, example())
    message = error_paragraph(uplift("power", "spec.yaml", "--metric", "nope", cwd=tmp_path))
    assert "--metric" in message
    assert "'nope'" in message
    assert "revenue" in message


def test_run_of_a_file_population_without_a_launch_asks_for_uplift_assign(
    tmp_path: Path,
) -> None:
    write_spec(tmp_path, file_spec())
    after_campaign(base(500)).to_parquet(tmp_path / "population.parquet", index=False)
    result = uplift(
        "run",
        "spec.yaml",
        "--summary",
        "s.json",
        "--tracking-uri",
        f"sqlite:///{tmp_path}/mlflow.db",
        cwd=tmp_path,
    )
    message = error_paragraph(result, progress=True)
    assert f"'{NAME}'" in message
    assert "no launch" in message
    assert "uplift assign" in message
    assert not (tmp_path / "s.json").exists()


# --- a launch ----------------------------------------------------------------------------


def test_assign_exports_the_ledger_and_prints_the_checks(launched: Launched) -> None:
    result = launched.result
    state = read_ledger(launched.directory)
    assert state.versions == [1]
    rows = state.assignments[1]
    assert set(rows["arm"]) == {*ARMS, GLOBAL_HOLDOUT}

    header, arms = read_csv_export(launched.directory / "arms.csv")
    assert header == ["customer_id", "arm"]
    assert arms == exported(rows)
    assert GLOBAL_HOLDOUT not in set(arms.values())
    assert f"Exported {len(arms):,} customers" in result.stdout

    counts = rows["arm"].value_counts()
    n = int(counts[list(ARMS)].sum())
    srm = stats.chisquare([counts[a] for a in ARMS], [n * s for s in (0.2, 0.4, 0.4)])
    line = next(x for x in result.stdout.splitlines() if x.startswith("Sample ratio:"))
    assert f"chi-square {srm.statistic:.2f}, p = {srm.pvalue:.4g}" in line
    assert re.search(
        r"^Covariate balance: max \|SMD\| \d\.\d{3} over \d+ feature rows", result.stdout, re.M
    )
    assert "launched with" in result.stdout
    assert "· launched 'edtech-trial-lessons' version 1" in result.stderr
    for arm in ARMS:
        assert re.search(rf"│ {arm} +│ \d+-\d+ +│ +{counts[arm]:,} │", result.stdout), arm


def test_assign_twice_adds_nobody_and_writes_the_same_file(
    launched: Launched, tmp_path: Path
) -> None:
    work = launched.copy_to(tmp_path)
    before = (work / "arms.csv").read_bytes()
    state = read_ledger(work)

    again = ok(uplift("assign", "spec.yaml", "--out", "arms.csv", cwd=work))
    assert "nobody new" in again.stdout
    assert "already launched, nobody new" in again.stderr
    assert (work / "arms.csv").read_bytes() == before
    after = read_ledger(work)
    assert after.rows == state.rows
    pd.testing.assert_frame_equal(after.assignments[1], state.assignments[1])
    assert not list(work.glob(".arms.csv.*"))  # no temporary file left beside it


def test_assign_writes_parquet_by_the_extension(launched: Launched, tmp_path: Path) -> None:
    work = launched.copy_to(tmp_path)
    ok(uplift("assign", "spec.yaml", "--out", "out/arms.parquet", cwd=work))
    table = pd.read_parquet(work / "out" / "arms.parquet")
    assert list(table.columns) == ["customer_id", "arm"]
    _, from_csv = read_csv_export(work / "arms.csv")
    assert dict(zip(table["customer_id"], table["arm"], strict=True)) == from_csv
    assert len(table) == len(from_csv)
    assert exported(read_ledger(work).assignments[1]) == from_csv


def test_assign_refuses_a_changed_salt_unless_a_new_version_is_asked_for(
    launched: Launched, tmp_path: Path
) -> None:
    work = launched.copy_to(tmp_path)
    before = read_ledger(work)
    write_spec(work, example(salt="edtech-trial-2026-12"))
    export = (work / "arms.csv").read_bytes()

    result = uplift("assign", "spec.yaml", "--out", "arms.csv", cwd=work)
    message = error_paragraph(result, progress=True)
    assert f"Experiment '{NAME}' version 1" in message
    assert "--new-version" in message
    assert "salt changed from 'edtech-trial-2026-11' to 'edtech-trial-2026-12'" in message
    assert read_ledger(work).rows == before.rows
    assert (work / "arms.csv").read_bytes() == export

    ok(uplift("assign", "spec.yaml", "--out", "arms.csv", "--new-version", cwd=work))
    after = read_ledger(work)
    assert after.versions == [1, 2]
    pd.testing.assert_frame_equal(after.assignments[1], before.assignments[1])
    assert after.rows == before.rows + len(after.assignments[2])
    _, arms = read_csv_export(work / "arms.csv")
    assert arms == exported(after.assignments[2])
    assert arms != exported(after.assignments[1])


def test_power_prints_an_mde_per_treatment_arm(launched: Launched, tmp_path: Path) -> None:
    write_spec(tmp_path, example())
    # the primary metric (bought) has no pre-period column: the revenue has one
    result = ok(uplift("power", "spec.yaml", "--metric", "revenue", cwd=tmp_path))
    spread = re.search(
        r"^Spread: ([\d.]+) \(pre-period column 'revenue_pre_60d'", result.stdout, re.M
    )
    assert spread, result.stdout
    sd = float(spread.group(1))
    # the arm sizes are those the launch gave on the same simulated base
    counts = read_ledger(launched.directory).assignments[1]["arm"].value_counts()
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    for arm in ("two_lessons", "four_lessons"):
        row = re.search(
            rf"│ {arm} +│ +([\d,]+) │ +([\d,]+) │ +([\d.]+) │ +([\d.]+)% │", result.stdout
        )
        assert row, (arm, result.stdout)
        n_t, n_c = (int(row.group(i).replace(",", "")) for i in (1, 2))
        assert (n_t, n_c) == (counts[arm], counts["control"])
        mde = float(row.group(3))
        assert mde == pytest.approx(z * sd * math.sqrt(1 / n_t + 1 / n_c), rel=0.01)
    assert "control │" not in result.stdout


# --- the analysis reads the launch snapshot -----------------------------------------------


def test_run_analyses_the_customers_frozen_at_launch(analysed: Analysed) -> None:
    # re-evaluating eligibility on today's file would pick other customers
    at_launch, today = eligible_ids(analysed.launch_base), eligible_ids(analysed.post)
    assert len(at_launch ^ today) > 500

    state = read_ledger(analysed.directory)
    rows = state.assignments[1]
    assert set(rows["customer_id"]) == at_launch
    ledger_counts = rows["arm"].value_counts().to_dict()
    held = ledger_counts.pop(GLOBAL_HOLDOUT)

    assignment = analysed.summary["assignment"]
    assert assignment["method"] == "hash"
    assert assignment["counts"] == ledger_counts
    assert assignment["global_holdout"] == held
    assert assignment["version"] == 1
    assert analysed.summary["n_eligible"] == state.n_eligible[1][0] == len(at_launch)
    assert analysed.summary["n_eligible"] != len(today)
    for row in analysed.summary["effects"]:
        assert (row["n_treated"], row["n_control"]) == (
            ledger_counts[row["arm"]],
            ledger_counts["control"],
        ), row
    assert "launch snapshot: version 1" in analysed.run.stderr
    assert f"in the experiment: {sum(ledger_counts.values()):,}" in analysed.run.stderr


def test_run_summary_gives_the_launch_time_in_utc(analysed: Analysed) -> None:
    # documented as ISO 8601 UTC; a SQLite ledger hands timestamps back without their zone
    launched_at = datetime.fromisoformat(analysed.summary["assignment"]["launched_at"])
    assert launched_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - launched_at) < timedelta(hours=1)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_assign_refuses_features_measured_after_the_launch_and_records_nothing(
    tmp_path: Path, kind: str
) -> None:
    # the Parquet base is launched in chunks, the CSV one whole; both check every row
    population = base(500)
    today = datetime.now(UTC)
    population["features_on"] = (today - timedelta(days=1)).date().isoformat()
    later = population.index[population["applied_premium"] == 1][[3, 40]]
    population.loc[later, "features_on"] = (today + timedelta(days=2)).isoformat()
    raw = file_spec()
    raw["population"]["source"] = {"kind": kind, "path": f"population.{kind}"}
    raw["population"]["features_as_of"] = "features_on"
    write_spec(tmp_path, raw)
    write = population.to_csv if kind == "csv" else population.to_parquet
    write(tmp_path / f"population.{kind}", index=False)
    message = error_paragraph(
        uplift("assign", "spec.yaml", "--out", "arms.csv", cwd=tmp_path), progress=True
    )
    assert re.search(
        r"population.features_as_of: 2 of the \d+ customers read from the population file", message
    )
    assert f"customer {population.loc[later[0], 'customer_id']}" in message
    ledger = tmp_path / "ledger.db"
    assert not ledger.exists() or read_ledger(tmp_path).versions == []
    assert not (tmp_path / "arms.csv").exists()
    population.loc[later, "features_on"] = today.date().isoformat()  # measured before launch
    write(tmp_path / f"population.{kind}", index=False)
    ok(uplift("assign", "spec.yaml", "--out", "arms.csv", cwd=tmp_path))
    assert read_ledger(tmp_path).versions == [1]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_assign_freezes_rfm_from_purchases_and_refuses_a_file_without_any_in_the_look_back(
    tmp_path: Path, kind: str
) -> None:
    # the Parquet base is launched in chunks, the CSV one whole: both freeze R, F and M
    population = base(500)
    population.to_csv(tmp_path / "population.csv", index=False)
    population.to_parquet(tmp_path / "population.parquet", index=False)
    raw = file_spec()
    raw["population"]["source"] = {"kind": kind, "path": f"population.{kind}"}
    raw["value"]["rfm"] = {"transactions": {"kind": "csv", "path": "purchases.csv"}}
    write_spec(tmp_path, raw)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    # every purchase older than the 180-day look-back
    old = (yesterday - timedelta(days=200)).isoformat()
    buyers = population["customer_id"].iloc[::3]
    pd.DataFrame({"customer_id": buyers, "date": old, "amount": 20.0}).to_csv(
        tmp_path / "purchases.csv", index=False
    )
    message = error_paragraph(
        uplift("assign", "spec.yaml", "--out", "arms.csv", cwd=tmp_path), progress=True
    )
    assert message.startswith("value.rfm.transactions: transactions file purchases.csv: ")
    assert f"no purchase falls in the 180 days to {yesterday}" in message
    assert f"(the purchases run from {old} to {old}); nothing was launched" in message
    assert not (tmp_path / "ledger.db").exists() or read_ledger(tmp_path).versions == []
    assert not (tmp_path / "arms.csv").exists()
    assert not list(tmp_path.rglob("*.parquet.tmp"))

    recent = (yesterday - timedelta(days=9)).isoformat()
    pd.DataFrame({"customer_id": buyers, "date": recent, "amount": 20.0}).to_csv(
        tmp_path / "purchases.csv", index=False
    )
    done = ok(uplift("assign", "spec.yaml", "--out", "arms.csv", cwd=tmp_path))
    n_new = len(read_ledger(tmp_path).assignments[1])
    assert (
        f"value.rfm: R, F and M of the {n_new:,} new customers frozen in the launch snapshot, "
        f"from purchases.csv over the 180 days to {yesterday}"
    ) in done.stderr
    (snapshot,) = (tmp_path / "snapshots").rglob("*.parquet")
    frozen = pd.read_parquet(snapshot)
    bought = frozen["customer_id"].isin(buyers)
    assert bought.any() and (~bought).any()
    # by hand: one purchase of 20, nine days before the day before launch; none for the rest
    assert (frozen.loc[bought, "uplift_rfm_recency"] == 9).all()
    assert (frozen.loc[bought, "uplift_rfm_frequency"] == 1).all()
    assert (frozen.loc[bought, "uplift_rfm_monetary"] == 20.0).all()
    assert (frozen.loc[~bought, "uplift_rfm_recency"] == 180).all()
    assert (frozen.loc[~bought, ["uplift_rfm_frequency", "uplift_rfm_monetary"]] == 0).all().all()
