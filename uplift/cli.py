"""The ``uplift`` command line.

Exit codes: 0 success; 2 bad input (spec, data, arguments), with a one-paragraph message
and no traceback; 1 an unexpected failure. ``--verbose`` shows tracebacks.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from uplift.errors import UpliftError

if TYPE_CHECKING:
    from uplift.design.launch import LaunchResult

__all__ = ["app", "main"]

app = typer.Typer(
    name="uplift",
    help="Prove, or disprove, that a CRM campaign raises customer value and pays for itself.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SpecArg = Annotated[Path, typer.Argument(help="The experiment YAML file.", show_default=False)]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")]

#: The Spark master of the commands that take --engine spark.
SparkMaster = Annotated[str, typer.Option(help="The Spark master with --engine spark.")]


def _check_engine(engine: str) -> None:
    if engine not in ("pandas", "spark"):
        raise typer.BadParameter(
            f"expected pandas or spark, found {engine!r}.", param_hint="--engine"
        )


@app.command()
def validate(spec: SpecArg, verbose: Verbose = False) -> None:
    """Check an experiment spec without reading any data."""
    from uplift.spec import HashAssignment, load_spec

    loaded = load_spec(spec)
    arms = (
        ", ".join(f"{a} {w:g}" for a, w in loaded.assignment.arms.items())
        if isinstance(loaded.assignment, HashAssignment)
        else f"observed in column {loaded.assignment.column!r}"
    )
    typer.echo(
        f"{spec}: valid. Experiment {loaded.name!r} ({loaded.hypothesis.kind}); arms: {arms}; "
        f"primary metric: {loaded.outcomes.primary}."
    )


@app.command()
def run(
    spec: SpecArg,
    summary: Annotated[
        Path | None, typer.Option(help="Also write the summary JSON to this file.")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI, overriding tracking.uri of the spec.")
    ] = None,
    ledger: Annotated[
        str | None, typer.Option(help="Ledger SQLAlchemy URL, overriding ledger.url of the spec.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Run an experiment end to end and log it to MLflow."""
    from uplift.spec import load_spec

    loaded = load_spec(spec)  # before the heavy imports, so a bad spec fails fast
    from uplift import pipeline

    with _reporter() as report:
        outcome = pipeline.run(
            loaded,
            spec,
            tracking_uri=tracking_uri,
            summary_path=summary,
            ledger_url=ledger,
            report=report,
        )
    _print_outcome(outcome)


@app.command()
def assign(
    spec: SpecArg,
    out: Annotated[
        Path,
        typer.Option(
            help="Where to write customer_id, arm for the CRM tool (.csv or .parquet).",
            show_default=False,
        ),
    ],
    ledger: Annotated[
        str | None, typer.Option(help="Ledger SQLAlchemy URL, overriding ledger.url of the spec.")
    ] = None,
    new_version: Annotated[
        bool,
        typer.Option(
            "--new-version",
            help="Launch a new version when the spec would move customers of the launched one.",
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="pandas (this process, a Parquet or SQL base chunk by chunk) or spark (Spark's "
            "workers select and hash a Parquet base; this process records the launch; needs "
            "the 'spark' extra and Java). Every customer gets the same arm with either."
        ),
    ] = "pandas",
    spark_master: SparkMaster = "local[2]",
    verbose: Verbose = False,
) -> None:
    """Launch an experiment: assign arms, freeze the snapshot, record both in the ledger.

    Re-running is safe: nobody already assigned moves, newly eligible customers are appended.
    """
    from uplift.errors import SpecError
    from uplift.spec import HashAssignment, load_spec

    _check_engine(engine)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise typer.BadParameter(
            f"{out} must end in .csv or .parquet (the export's format follows the "
            f"extension), found {suffix or 'no extension'!r}.",
            param_hint="--out",
        )
    loaded = load_spec(spec)
    if not isinstance(loaded.assignment, HashAssignment):
        raise SpecError(
            f"{spec}: assignment is observed (column {loaded.assignment.column!r}); only an "
            f"experiment assigned by salt and arms is launched with `uplift assign`."
        )
    from uplift import pipeline
    from uplift.data.export import stage_assignments
    from uplift.design.hashing import GLOBAL_HOLDOUT
    from uplift.errors import DataError

    with _reporter() as report:
        ledger_ = pipeline.open_ledger(loaded, ledger)
        done: dict[str, Any] = {}

        def check_and_export(result: LaunchResult) -> None:
            # runs while the ledger writes; the export is renamed into place once it committed
            done["checks"] = pipeline.diagnostics(loaded, ledger_, result)
            arms = result.assignments["arm"]
            done["rows"] = len(arms) - int((arms == GLOBAL_HOLDOUT).sum())
            done["staged"] = stage_assignments(
                result.assignments, loaded.population.id, out, leave_out=GLOBAL_HOLDOUT
            )

        try:
            result = pipeline.assign(
                loaded,
                ledger_,
                new_version=new_version,
                report=report,
                alongside=check_and_export,
                engine=engine,
                spark_master=spark_master,
            )
            try:
                done["staged"].replace(out)
            except OSError as exc:
                raise DataError(
                    f"--out: cannot write the assignment export {out}: {exc}. The launch is "
                    f"recorded in the ledger; run `uplift assign` again to write the export."
                ) from None
        finally:
            if "staged" in done:
                done["staged"].unlink(missing_ok=True)
    _print_launch(result, done["checks"], out, done["rows"])


@app.command()
def score(
    spec: SpecArg,
    population: Annotated[
        Path,
        typer.Option(
            help="The customer base to score (.csv or .parquet, or a folder holding a Parquet "
            "dataset) with the id column and the model's features.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Where to write one row per customer: id, uplift and net value per arm, "
            "recommended arm (.csv or .parquet).",
            show_default=False,
        ),
    ],
    run_id: Annotated[
        str | None,
        typer.Option(
            help="Score with this MLflow run's model (default: the latest finished run of "
            "the spec that logged one)."
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI, overriding tracking.uri of the spec.")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Customers scored at a time; memory follows it.")
    ] = 500_000,
    compile_trees: Annotated[
        bool,
        typer.Option(
            help="Compile the LightGBM models to native code first (the same predictions, "
            "checked, in about two thirds of the time; needs a C compiler, else LightGBM's "
            "own predict is used)."
        ),
    ] = True,
    max_treated: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Recommend an arm to at most this many customers, those of highest expected "
            "net value (default: decision.budget.max_treated of the spec).",
        ),
    ] = None,
    max_spend: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Recommend arms while the expected contact and offer spend stays within this "
            "(default: decision.budget.max_spend of the spec).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="pandas (this process, chunk by chunk) or spark (a Parquet base scored by "
            "Spark's workers; --out is then a folder of Parquet parts; needs the 'spark' "
            "extra and Java)."
        ),
    ] = "pandas",
    spark_master: SparkMaster = "local[2]",
    verbose: Verbose = False,
) -> None:
    """Apply the experiment's chosen model and policy to a customer base, chunk by chunk.

    With a budget the file is read twice: once to rank every customer by expected net
    value, once to score and write.

    The output is written to a temporary file beside --out and renamed into place once
    every customer is scored.
    """
    from uplift.spec import load_spec

    _check_engine(engine)
    suffix = out.suffix.lower()
    if engine == "pandas" and suffix not in (".csv", ".parquet"):
        raise typer.BadParameter(
            f"{out} must end in .csv or .parquet (the output's format follows the "
            f"extension), found {suffix or 'no extension'!r}.",
            param_hint="--out",
        )
    loaded = load_spec(spec)
    _check_population(population)  # before the model loads, which takes seconds
    budget = loaded.decision.budget
    limits = (
        budget.max_treated if max_treated is None else max_treated,
        budget.max_spend if max_spend is None else max_spend,
    )
    if engine == "spark" and limits != (None, None):
        raise typer.BadParameter(
            "a budget (--max-treated, --max-spend or decision.budget of the spec) needs a "
            "ranking of the whole base, which --engine spark does not do yet; score with "
            "--engine pandas.",
            param_hint="--engine",
        )
    from uplift.scoring import score_file
    from uplift.tracking.model_log import find_scoring_model, load_scoring_model

    with _reporter() as report:
        digest = loaded.digest()
        found = find_scoring_model(
            tracking_uri or loaded.tracking.uri,
            loaded.tracking.experiment,
            digest,
            run_id=run_id,
            rerun=f"uplift run {spec}",
        )
        if found.spec_digest != digest:
            report(
                f"note: run {found.run_id} was logged for another version of {spec} (its "
                f"spec_digest differs); scoring with its model as asked"
            )
        report(f"loading model {found.model_uri} of run {found.run_id}")
        model = load_scoring_model(found.model_uri, tracking_uri=found.tracking_uri)
        if engine == "spark":
            from uplift.engines.spark import score_with_spark

            result = score_with_spark(model, population, out, master=spark_master, report=report)
        else:
            if compile_trees:
                from uplift.compiled_trees import compile_scoring_model

                model, compiled = compile_scoring_model(model)
                report(compiled.describe())
            result = score_file(
                model,
                population,
                out,
                chunk_size=chunk_size,
                report=report,
                max_treated=limits[0],
                max_spend=limits[1],
            )
    _print_scores(result, found)


StoreUri = Annotated[
    str,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the example configs' "
        "store).",
    ),
]


@app.command()
def effects(
    spec: SpecArg,
    outcomes: Annotated[
        Path | None,
        typer.Option(
            help="The outcomes (.csv or .parquet, or a folder holding a Parquet dataset) with "
            "the id column and the metrics' columns (default: outcomes.source of the spec).",
        ),
    ] = None,
    ledger: Annotated[
        str | None, typer.Option(help="Ledger SQLAlchemy URL, overriding ledger.url of the spec.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write the table to this file (.csv or .json).", show_default=False),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="pandas (this process, the outcomes chunk by chunk) or spark (Spark joins a "
            "Parquet outcomes base with the assignments and aggregates)."
        ),
    ] = "pandas",
    spark_master: SparkMaster = "local[2]",
    verbose: Verbose = False,
) -> None:
    """Average effect of every arm over the whole launched base, from per-arm aggregates.

    For a base too large for `uplift run`: only each arm's count, mean and sum of squares
    of every per-customer metric are kept, so memory follows the assignments and one chunk.
    Plain differences in means with Welch intervals (no CUPED, no ratio metrics, no models).
    """
    from uplift.spec import load_spec

    _check_engine(engine)
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise typer.BadParameter(
            f"{out} must end in .csv or .json, found {out.suffix or 'no extension'!r}.",
            param_hint="--out",
        )
    loaded = load_spec(spec)
    from uplift import pipeline

    with _reporter() as report:
        result = pipeline.aggregate_effects(
            loaded,
            pipeline.open_ledger(loaded, ledger),
            outcomes=outcomes,
            engine=engine,
            spark_master=spark_master,
            report=report,
        )
    if out is not None:
        from uplift.data.export import write_table

        write_table(result.table, out)
    _print_aggregate_effects(result, out)


@app.command()
def upload(
    folder: Annotated[
        Path,
        typer.Argument(
            help="A run kept under experiments/<experiment>/runs/ when the tracking server "
            "was lost.",
            show_default=False,
        ),
    ],
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="Upload to this store (default: the one the run was logging to)."),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Log a run kept locally (the tracking server was lost mid-run) as a new MLflow run."""
    from uplift import pipeline

    run_id, uri = pipeline.upload(folder, tracking_uri)
    Console(highlight=False).print(
        f"Uploaded {folder} as MLflow run {run_id} at {uri} (tagged uplift.uploaded_from).",
        soft_wrap=True,
        markup=False,
    )


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="The analysis' MLflow run id.", show_default=False)],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the memo (default: memo-<run id>.html here)."),
    ] = None,
    tracking_uri: StoreUri = "sqlite:///experiments/mlflow.db",
    screenshot: Annotated[
        Path | None,
        typer.Option(
            help="Also render the memo to this PNG in headless Chromium (needs the "
            "'browser' extra and a Chromium).",
        ),
    ] = None,
    screenshot_height: Annotated[
        int | None,
        typer.Option(min=100, help="Keep only the top of the page, in pixels (default: all)."),
    ] = None,
    browser: Annotated[
        str | None, typer.Option(help="The Chromium executable (default: found on PATH).")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Rebuild a run's decision memo (self-contained HTML) from what the run logged."""
    from uplift.errors import DataError
    from uplift.memo import render_memo
    from uplift.tracking.runs import fetch_run

    record = fetch_run(tracking_uri, run_id)
    if record.status != "FINISHED":
        typer.echo(
            f"uplift: warning: run {run_id} is {record.status}, not FINISHED: its results may "
            f"be partial; the memo says which figures are missing.",
            err=True,
        )
    target = out if out is not None else Path(f"memo-{run_id}.html")
    html = render_memo(record.summary, record.spec, record.figures)
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise DataError(
            f"--out {str(target)!r}: cannot write the memo there ({exc.strerror or exc}); "
            f"expected a writable file path ending in .html."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(f"Wrote the memo of run {run_id} to {target}.")
    if screenshot is not None:
        from uplift.browser import render_page

        rendered = render_page(target, screenshot, height=screenshot_height, browser=browser)
        typer.echo(f"Wrote a screenshot of it to {rendered.path}.")
        for message in rendered.console_errors:
            typer.echo(f"uplift: warning: the page logged an error: {message}", err=True)


@app.command()
def runs(
    tracking_uri: StoreUri = "sqlite:///experiments/mlflow.db",
    experiment: Annotated[
        str | None, typer.Option(help="Only this MLflow experiment (default: all).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many runs.")] = 50,
    verbose: Verbose = False,
) -> None:
    """List the logged analyses, newest first, with their verdicts."""
    from uplift.tracking.runs import list_runs

    rows = list_runs(tracking_uri, experiment=experiment, limit=limit)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    if not rows:
        out.print(f"No analyses logged at {tracking_uri}.", markup=False)
        return
    table = Table(title=f"Analyses at {tracking_uri}, newest first", title_justify="left")
    for column in ("run id", "started (UTC)", "experiment", "name", "kind", "owner"):
        table.add_column(column)
    table.add_column("verdict")
    table.add_column("policy profit per customer", justify="right")
    table.add_column("status")
    for row in rows:
        style = {"go": "green", "go_targeted": "green", "no_go": "red"}.get(row.verdict, "yellow")
        table.add_row(
            row.run_id,
            row.started,
            escape(row.experiment),
            escape(row.name),
            row.hypothesis_kind,
            escape(row.owner),
            f"[{style}]{row.verdict or '-'}[/{style}]",
            _fmt(row.per_customer),
            row.status,
        )
    out.print(table)


@app.command()
def power(
    spec: SpecArg,
    effect: Annotated[
        float | None,
        typer.Option(help="Target absolute effect: also report the sample size it needs."),
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Metric to plan for (default: the primary metric).")
    ] = None,
    target_power: Annotated[float, typer.Option("--power", help="Target power.")] = 0.8,
    sd: Annotated[
        float | None,
        typer.Option(help="Standard deviation of a continuous metric (default: pre-period)."),
    ] = None,
    baseline: Annotated[
        float | None,
        typer.Option(help="Control rate of a binary metric (default: pre-period mean)."),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Minimum detectable effect per arm at the spec's size, and the size a target effect needs."""
    from uplift.spec import load_spec

    loaded = load_spec(spec)
    from uplift import pipeline

    with _reporter() as report:
        plan = pipeline.power_plan(
            loaded,
            metric=metric,
            effect=effect,
            power=target_power,
            sd=sd,
            baseline=baseline,
            report=report,
        )
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    any_result = next(iter(plan.arms.values()))
    table = Table(
        title=f"{loaded.name}: power for {plan.metric!r} ({plan.kind}), two-sided alpha "
        f"{any_result.alpha:g}, power {any_result.power:g}",
        title_justify="left",
    )
    columns = ["arm", "n treatment", "n control", "MDE", "relative MDE"]
    if plan.needed:
        columns += [f"n treatment for {effect:g}", f"n control for {effect:g}"]
    for column in columns:
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, result in plan.arms.items():
        relative = "-" if result.relative_mde is None else f"{result.relative_mde:.2%}"
        row = [
            arm,
            f"{result.n_treatment:,}",
            f"{result.n_control:,}",
            f"{result.mde:.6g}",
            relative,
        ]
        if arm in plan.needed:
            row += [f"{plan.needed[arm].n_treatment:,}", f"{plan.needed[arm].n_control:,}"]
        table.add_row(*row)
    out.print(table)
    out.print(f"Spread: {any_result.sd:.6g} ({plan.source}).", soft_wrap=True)


@app.command()
def schema(
    which: Annotated[str, typer.Argument(help="'spec' or 'summary'.")] = "spec",
    verbose: Verbose = False,
) -> None:
    """Print the JSON Schema of the experiment spec or of the summary document."""
    from uplift.spec import spec_json_schema
    from uplift.summary import summary_json_schema

    if which not in ("spec", "summary"):
        raise typer.BadParameter(f"expected 'spec' or 'summary', found {which!r}")
    document = spec_json_schema() if which == "spec" else summary_json_schema()
    typer.echo(json.dumps(document, indent=2))


class _Reporter:
    """Stage lines on standard error: a live progress display on a terminal, plain lines
    otherwise (a log file or a pipe gets no control characters).

    A line ending ``[i/n]`` is step ``i`` of ``n``: on a terminal, steps of one stage share
    a progress bar.
    """

    _STEP = re.compile(r"^(?P<text>.*?)\s*\[(?P<done>\d+)/(?P<total>\d+)\]$")

    def __init__(self) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.total: int | None = None

    def __call__(self, line: str) -> None:
        if _STOP.is_set():  # a SIGTERM whose exception was swallowed on its way
            raise _Terminated
        if not self.console.is_terminal:
            self.console.print(f"[dim]· {escape(line)}[/dim]", markup=True, soft_wrap=True)
            return
        if self.progress is None:
            self.progress = Progress(
                SpinnerColumn(finished_text="·"),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.progress.start()
        step = self._STEP.match(line)
        text = escape(step["text"] if step else line)
        total = int(step["total"]) if step else None
        done = int(step["done"]) - 1 if step else 0
        if self.task is not None and step and total == self.total and done > 0:
            self.progress.update(self.task, description=text, completed=done)
            return
        self._finish()
        self.task = self.progress.add_task(text, total=total, completed=done)
        self.total = total

    def _finish(self) -> None:
        if self.progress is not None and self.task is not None:
            task = self.progress.tasks[-1]
            self.progress.update(self.task, total=task.total or 1, completed=task.total or 1)

    def __enter__(self) -> _Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()
        if self.progress is not None:
            self.progress.stop()


def _reporter() -> _Reporter:
    return _Reporter()


def _print_launch(result: object, checks: object, out_path: Path, n_exported: int) -> None:
    from uplift.design.launch import LaunchResult
    from uplift.pipeline import Diagnostics

    assert isinstance(result, LaunchResult) and isinstance(checks, Diagnostics)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    record = result.experiment
    srm = checks.srm
    table = Table(
        title=f"{record.name} version {record.version}, launched "
        f"{record.launched_at:%Y-%m-%d %H:%M} UTC",
        title_justify="left",
    )
    for column in ("arm", "buckets", "customers", "share", "expected share", "added now"):
        table.add_column(column, justify="left" if column in ("arm", "buckets") else "right")
    total = sum(srm.counts.values())
    for arm, (start, end) in result.definition.arms.items():
        n = result.counts.get(arm, 0)
        expected = srm.expected_shares.get(arm)
        table.add_row(
            arm,
            f"{start}-{end - 1}",
            f"{n:,}",
            f"{n / total:.2%}" if total else "-",
            "-" if expected is None else f"{expected:.2%}",
            f"{result.new_counts.get(arm, 0):,}",
        )
    held = result.counts.get("global_holdout", 0)
    if held:
        table.add_row("global_holdout", "-", f"{held:,}", "-", "-", "-")
    out.print(table)
    verdict = "[red]ALERT[/red]" if srm.alert else "ok"
    out.print(
        f"Sample ratio: chi-square {srm.statistic:.2f}, p = {srm.p_value:.4g} ({verdict}; "
        f"alert below 0.001).",
        soft_wrap=True,
    )
    flagged = checks.balance.flagged
    out.print(
        f"Covariate balance: max |SMD| {checks.balance.max_abs_smd:.3f} over "
        f"{len(checks.balance.table):,} feature rows; "
        + (
            "flagged above 0.1: "
            + ", ".join(f"{r.arm}/{r.feature} {r.smd:+.3f}" for r in flagged.itertuples())
            if len(flagged)
            else "none above 0.1."
        ),
        soft_wrap=True,
    )
    news = (
        f"launched with {result.n_new:,} customers"
        if result.created
        else f"appended {result.n_new:,} newly eligible customers as batch {result.batch}"
        if result.batch is not None
        else "nobody new; the ledger is unchanged"
    )
    out.print(
        f"Ledger {result.ledger_url}: {news}.\n"
        + (f"Launch snapshot: {result.snapshot_path}\n" if result.snapshot_path else "")
        + f"Exported {n_exported:,} customers (customer id, arm) to {out_path}.",
        soft_wrap=True,
        markup=False,
    )


def _check_population(path: Path) -> None:
    from uplift.data.chunks import file_format
    from uplift.errors import DataError

    kind = file_format(path, "--population")
    if not path.exists():
        raise DataError(
            f"--population: the {kind} file {path} does not exist (paths are relative to the "
            f"directory the command runs in, here {Path.cwd()})."
        )


def _print_aggregate_effects(result: object, out: Path | None) -> None:
    from uplift.pipeline import AggregateEffects

    assert isinstance(result, AggregateEffects)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    level = f"{1 - result.alpha:.0%}"
    record = result.experiment
    table = Table(
        title=f"{record.name} version {record.version}: average effects over "
        f"{result.n_matched:,} customers",
        title_justify="left",
    )
    for column in (
        "metric",
        "arm",
        "customers",
        "control",
        "mean",
        "control mean",
        "effect",
        f"{level} CI",
        "p",
    ):
        table.add_column(column, justify="left" if column in ("metric", "arm") else "right")
    for row in result.table.itertuples(index=False):
        table.add_row(
            str(row.metric),
            str(row.arm),
            f"{row.n_treated:,}",
            f"{row.n_control:,}",
            f"{row.mean_treated:.4g}",
            f"{row.mean_control:.4g}",
            f"{row.estimate:+.4g}",
            f"{row.ci_low:.4g} to {row.ci_high:.4g}",
            f"{row.p_value:.3g}",
        )
    console.print(table)
    console.print(
        f"Welch intervals of the plain differences in means, from per-arm aggregates "
        f"({result.engine} engine, {result.seconds:.1f} s); {result.n_rows:,} rows read from "
        f"the {result.source}, the global holdout left out."
        + (f"\nWrote {out}." if out is not None else ""),
        soft_wrap=True,
        markup=False,
    )


def _print_scores(result: object, found: object) -> None:
    from uplift.scoring import NO_ARM, ScoreReport
    from uplift.tracking.model_log import FoundModel

    assert isinstance(result, ScoreReport) and isinstance(found, FoundModel)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    table = Table(title=f"Recommended arm, {result.rows:,} customers", title_justify="left")
    for column in ("arm", "customers", "share"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, n in result.arms.items():
        share = f"{n / result.rows:.2%}" if result.rows else "-"
        table.add_row(f"{arm} (treat with no arm)" if arm == NO_ARM else arm, f"{n:,}", share)
    out.print(table)
    speed = (
        f"{result.customers_per_second:,.0f} customers per second"
        if result.rows and result.seconds > 0
        else "no customers"
    )
    out.print(
        f"Scored {result.rows:,} customers in {result.seconds:.2f} s ({speed}) with model "
        f"{found.model_uri} of MLflow run {found.run_id} in experiment {found.experiment!r} "
        f"at {found.tracking_uri}.\nWrote {result.path}.",
        soft_wrap=True,
        markup=False,
    )


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def _print_outcome(outcome: object) -> None:
    from uplift.pipeline import RunOutcome

    assert isinstance(outcome, RunOutcome)
    summary = outcome.summary
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    level = f"{1 - summary['alpha']:.0%}"
    table = Table(
        title=f"{summary['experiment']}: incremental profit per customer by segment ({level} CI)",
        title_justify="left",
    )
    for column in (
        "segment",
        "arm",
        "n",
        f"effect on {summary['primary_metric']}",
        "incr. CLV",
        "cost",
        "profit",
        "profit CI",
        "ROI",
        "decision",
    ):
        table.add_column(column, justify="left" if column in ("segment", "arm") else "right")
    for row in summary["segments"]:
        ci = (
            f"{_fmt(row['profit_ci_low'])} to {_fmt(row['profit_ci_high'])}"
            if row["profit_ci_low"] is not None
            else "-"
        )
        style = {"go": "green", "no_go": "red"}.get(row["decision"], "yellow")
        table.add_row(
            row["segment"],
            row["arm"],
            f"{row['n']:,}",
            _fmt(row["estimate"], 4),
            _fmt(row["incremental_clv"]),
            _fmt(row["cost_per_customer"]),
            _fmt(row["incremental_profit"]),
            ci,
            _fmt(row["roi"]),
            f"[{style}]{row['decision']}[/{style}]",
        )
    out.print(table)
    decision = summary["decision"]
    out.print(
        f"\nVerdict: [bold]{decision['verdict']}[/bold]. {decision['reason']}", soft_wrap=True
    )
    where = outcome.tracking_uri
    how = (
        f"open it at: {where.rstrip('/')}/#/experiments/{outcome.experiment_id}/runs/"
        f"{outcome.run_id}"
        if where.startswith(("http://", "https://"))
        else f"open it with: mlflow ui --backend-store-uri {where}"
    )
    out.print(
        f"\nMLflow run {outcome.run_id} in experiment {outcome.experiment!r} at {where}\n"
        f"{how}\nthe decision memo: uplift report {outcome.run_id} --tracking-uri {where}",
        soft_wrap=True,
        markup=False,
    )


class _Terminated(BaseException):
    """Raised in the main thread by SIGTERM (a BaseException, as KeyboardInterrupt is)."""


#: Set by SIGTERM. The handler also raises :class:`_Terminated`, but third-party code can
#: swallow that exception where it lands (pydantic's serializer, calling the spec's
#: discriminator functions, turns it into a warning and goes on), so each stage line
#: checks the flag too: the command then stops at its next stage instead of finishing.
_STOP = threading.Event()


def _terminated(signum: int, frame: object) -> None:
    _STOP.set()
    raise _Terminated


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``uplift`` console script."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args or "-v" in args
    # SIGTERM (a scheduler stopping the job, `kill`) unwinds like Ctrl-C: an open MLflow run
    # is ended FAILED and a launch's transaction rolls back, where the default handler
    # would end the process on the spot and leave the run "running" for ever
    main_thread = threading.current_thread() is threading.main_thread()
    _STOP.clear()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        app(args=args, prog_name="uplift")
    except UpliftError as exc:
        if verbose:
            traceback.print_exc()
        typer.echo(f"uplift: error: {exc}", err=True)
        sys.exit(2)
    except _Terminated:
        typer.echo("uplift: terminated (SIGTERM).", err=True)
        sys.exit(143)
    except KeyboardInterrupt:
        typer.echo("uplift: interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        else:
            typer.echo(
                f"uplift: unexpected error ({type(exc).__name__}: {exc}). This is a bug; run "
                f"again with --verbose for the traceback and report it.",
                err=True,
            )
        sys.exit(1)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
