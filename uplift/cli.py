"""The ``uplift`` command line.

Exit codes: 0 success; 2 bad input (spec, data, arguments), with a one-paragraph message
and no traceback; 1 an unexpected failure. ``--verbose`` shows tracebacks.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from uplift.errors import UpliftError

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
    verbose: Verbose = False,
) -> None:
    """Run an experiment end to end and log it to MLflow."""
    from uplift.spec import load_spec

    loaded = load_spec(spec)  # before the heavy imports, so a bad spec fails fast
    from uplift import pipeline

    err = Console(stderr=True, highlight=False)

    def report(line: str) -> None:
        err.print(f"[dim]· {line}[/dim]", markup=True, soft_wrap=True)

    outcome = pipeline.run(
        loaded, spec, tracking_uri=tracking_uri, summary_path=summary, report=report
    )
    _print_outcome(outcome)


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
    out.print(
        f"\nMLflow run {outcome.run_id} in experiment {outcome.experiment!r} at "
        f"{outcome.tracking_uri}\n"
        f"open it with: mlflow ui --backend-store-uri {outcome.tracking_uri}",
        soft_wrap=True,
        markup=False,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``uplift`` console script."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args or "-v" in args
    try:
        app(args=args, prog_name="uplift")
    except UpliftError as exc:
        if verbose:
            traceback.print_exc()
        typer.echo(f"uplift: error: {exc}", err=True)
        sys.exit(2)
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
