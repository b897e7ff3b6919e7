"""Figures drawn from sections of the run's summary: content checked through matplotlib."""

from __future__ import annotations

import math
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D

from uplift.analysis.metrics import UpliftCurve, qini_curve
from uplift.tracking.figures import (
    _CURVE_POINTS,
    migration_figure,
    png_bytes,
    profit_curve_figure,
    qini_figure,
    segment_forest_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SEGMENT_ROWS: list[dict[str, Any]] = [
    {
        "segment": "Champions",
        "arm": "email",
        "metric": "revenue",
        "estimate": 2.0,
        "ci_low": 1.0,
        "ci_high": 3.0,
        "corrected_ci_low": 0.5,
        "corrected_ci_high": 3.5,
        "status": "positive",
    },
    {
        "segment": "At Risk",
        "arm": "email",
        "metric": "revenue",
        "estimate": -0.5,
        "ci_low": -1.5,
        "ci_high": 0.5,
        "corrected_ci_low": -2.0,
        "corrected_ci_high": 1.0,
        "status": "inconclusive",
    },
    {
        "segment": "Champions",
        "arm": "sms",
        "metric": "revenue",
        "estimate": -1.0,
        "ci_low": -1.6,
        "ci_high": -0.4,
        "corrected_ci_low": -1.9,
        "corrected_ci_high": -0.1,
        "status": "negative",
    },
    {
        # Too small to test: no corrected interval.
        "segment": "At Risk",
        "arm": "sms",
        "metric": "revenue",
        "estimate": 0.8,
        "ci_low": -0.4,
        "ci_high": 2.0,
        "corrected_ci_low": None,
        "corrected_ci_high": None,
        "status": "too_small",
    },
    {
        # No variance: nothing to draw.
        "segment": "New",
        "arm": "sms",
        "metric": "revenue",
        "estimate": math.nan,
        "ci_low": None,
        "ci_high": None,
        "corrected_ci_low": None,
        "corrected_ci_high": None,
        "status": "not_tested",
    },
    {
        "segment": "Champions",
        "arm": "email",
        "metric": "bought",
        "estimate": 0.05,
        "ci_low": 0.01,
        "ci_high": 0.09,
        "corrected_ci_low": 0.0,
        "corrected_ci_high": 0.1,
        "status": "positive",
    },
]

CURVE = [
    {"share": 0.0, "per_customer": 0.0, "ci_low": 0.0, "ci_high": 0.0},
    {"share": 0.25, "per_customer": 0.9, "ci_low": 0.5, "ci_high": 1.3},
    {"share": 0.5, "per_customer": 1.4, "ci_low": 0.8, "ci_high": 2.0},
    {"share": 0.75, "per_customer": 1.2, "ci_low": 0.4, "ci_high": 2.0},
    {"share": 1.0, "per_customer": 0.6, "ci_low": -0.3, "ci_high": 1.5},
]
POLICY = {"treat_share": 0.62, "per_customer": 1.45, "ci_low": 0.9, "ci_high": 2.0}
TREAT_ALL = [
    {"rule": "treat_all:email", "per_customer": 0.6, "ci_low": -0.3, "ci_high": 1.5},
    {"rule": "treat_all:sms", "per_customer": -0.4, "ci_low": -1.2, "ci_high": 0.4},
]

TRANSITIONS: dict[str, Any] = {
    "arms": ["control", "email"],
    "dimensions": {
        "M": {
            "levels": [1, 2, 3],
            "counts": {
                "control": [[74, 20, 6], [10, 80, 10], [0, 0, 0]],
                "email": [[60, 30, 10], [5, 85, 10], [2, 8, 90]],
            },
            "shares": {
                "control": [[0.74, 0.2, 0.06], [0.1, 0.8, 0.1], [0.0, 0.0, 0.0]],
                "email": [[0.6, 0.3, 0.1], [0.05, 0.85, 0.1], [0.02, 0.08, 0.9]],
            },
        },
        "R": {
            "levels": [1, 2],
            "counts": {"control": [[5, 5], [0, 10]], "email": [[10, 0], [5, 5]]},
            "shares": {"control": [[0.5, 0.5], [0.0, 1.0]], "email": [[1.0, 0.0], [0.5, 0.5]]},
        },
    },
}


@pytest.fixture
def close_figures() -> Iterator[list[Figure]]:
    """Figures appended to the list are closed after the test, even when it fails."""
    figures: list[Figure] = []
    yield figures
    for fig in figures:
        plt.close(fig)


def _png(fig: Figure) -> bytes:
    buffer = BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _figure_texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.texts]


def _point_lines(ax: Any) -> list[Line2D]:
    """The marker-only lines of an axes (the forest plot's point estimates)."""
    return [ln for ln in ax.get_lines() if ln.get_linestyle() == "None" and ln.get_marker() == "o"]


# ---------------------------------------------------------------- segment forest


def test_forest_one_panel_per_arm_with_segments_as_rows(close_figures: list[Figure]) -> None:
    fig = segment_forest_figure(SEGMENT_ROWS, "revenue")
    close_figures.append(fig)

    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["email", "sms"]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["Champions", "At Risk", "New"]
    # Shared y axis: the second panel has the same rows.
    assert fig.axes[1].get_ylim() == fig.axes[0].get_ylim()
    # First segment at the top.
    bottom, top = fig.axes[0].get_ylim()
    assert bottom > top
    assert "revenue" in fig.get_suptitle()
    assert fig.axes[0].get_xlabel() == "effect on revenue (treated \N{MINUS SIGN} control)"
    assert _png(fig).startswith(PNG_MAGIC)


def test_forest_points_are_estimates_coloured_by_status(close_figures: list[Figure]) -> None:
    fig = segment_forest_figure(SEGMENT_ROWS, "revenue")
    close_figures.append(fig)
    email, sms = fig.axes

    email_points = {(float(x), float(y)) for ln in _point_lines(email) for x, y in ln.get_xydata()}
    assert email_points == {(2.0, 0.0), (-0.5, 1.0)}
    # The NaN estimate of "New" is left out, not drawn.
    sms_points = {(float(x), float(y)) for ln in _point_lines(sms) for x, y in ln.get_xydata()}
    assert sms_points == {(-1.0, 0.0), (0.8, 1.0)}

    colours = {ln.get_color() for ln in _point_lines(sms)}
    assert len(colours) == 2  # negative and too_small differ
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    for status in ("positive", "negative", "inconclusive"):
        assert status in legend_labels


def test_forest_intervals_skip_missing_values(close_figures: list[Figure]) -> None:
    fig = segment_forest_figure(SEGMENT_ROWS, "revenue")
    close_figures.append(fig)
    sms = fig.axes[1]

    segments = [
        seg
        for collection in sms.collections
        if isinstance(collection, LineCollection)
        for seg in collection.get_segments()
    ]
    spans = sorted((round(float(s[0][0]), 6), round(float(s[1][0]), 6)) for s in segments)
    # Champions: nominal and corrected; At Risk: nominal only; New: nothing.
    assert spans == [(-1.9, -0.1), (-1.6, -0.4), (-0.4, 2.0)]
    # The vertical line at zero.
    assert any(
        list(ln.get_xdata()) == [0, 0] and ln.get_linestyle() == "--" for ln in sms.get_lines()
    )


def test_forest_without_rows_for_the_metric_says_so(close_figures: list[Figure]) -> None:
    fig = segment_forest_figure(SEGMENT_ROWS, "took_trial")
    close_figures.append(fig)

    assert fig.axes == []
    assert _figure_texts(fig) == ["no segment effects for took_trial"]
    assert _png(fig).startswith(PNG_MAGIC)


# ---------------------------------------------------------------- profit curve


def test_profit_curve_line_band_and_markers(close_figures: list[Figure]) -> None:
    fig = profit_curve_figure(CURVE, POLICY, TREAT_ALL)
    close_figures.append(fig)
    assert len(fig.axes) == 1
    ax = fig.axes[0]

    curve_line = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) == len(CURVE))
    np.testing.assert_allclose(curve_line.get_xdata(), [p["share"] for p in CURVE])
    np.testing.assert_allclose(curve_line.get_ydata(), [p["per_customer"] for p in CURVE])

    by_label = {h.get_label(): h for h in ax.get_legend_handles_labels()[0]}
    policy = by_label["policy (treat 62%)"]
    policy_marker = policy.lines[0]
    np.testing.assert_allclose(policy_marker.get_xydata(), [[0.62, 1.45]])
    for arm, value in (("email", 0.6), ("sms", -0.4)):
        marker = by_label[f"treat all: {arm}"].lines[0]
        np.testing.assert_allclose(marker.get_xydata(), [[1.0, value]])

    # The band spans the curve's interval, and the axis includes every interval.
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(-0.3)
    assert band[:, 1].max() == pytest.approx(2.0)
    low, high = ax.get_ylim()
    assert low <= -1.2 and high >= 2.0

    assert any(list(ln.get_ydata()) == [0, 0] for ln in ax.get_lines())
    assert ax.get_xlabel() == "share of customers treated (ranked by predicted net value)"
    assert ax.get_ylabel() == "incremental profit per customer, net of costs"
    assert ax.xaxis.get_major_formatter().format_pct(0.5, 1) == "50%"
    assert _png(fig).startswith(PNG_MAGIC)


def test_profit_curve_tolerates_a_policy_without_values(close_figures: list[Figure]) -> None:
    policy = {"treat_share": None, "per_customer": None, "ci_low": None, "ci_high": None}
    fig = profit_curve_figure(CURVE, policy, [])
    close_figures.append(fig)

    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert not any(label.startswith("policy") for label in labels)
    assert _png(fig).startswith(PNG_MAGIC)


def test_profit_curve_empty(close_figures: list[Figure]) -> None:
    fig = profit_curve_figure([], POLICY, TREAT_ALL)
    close_figures.append(fig)

    assert fig.axes == []
    assert _figure_texts(fig) == ["no policy curve"]
    assert _png(fig).startswith(PNG_MAGIC)


# ---------------------------------------------------------------- migration


def _images(fig: Figure) -> list[AxesImage]:
    return [im for ax in fig.axes for im in ax.get_images()]


def test_migration_grid_of_dimensions_by_arms(close_figures: list[Figure]) -> None:
    # "F" is not in the data and is skipped.
    fig = migration_figure(TRANSITIONS, ("M", "F", "R"))
    close_figures.append(fig)

    images = _images(fig)
    assert len(images) == 4  # M and R, by two arms
    assert len(fig.axes) == 5  # and one colour bar
    panels = [im.axes for im in images]
    assert [ax.get_title() for ax in panels] == ["control", "email", "control", "email"]
    assert panels[0].get_ylabel() == "M at launch"
    assert panels[0].get_xlabel() == "M at end of window"
    assert panels[2].get_ylabel() == "R at launch"
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["1", "2", "3"]
    for im in images:
        assert im.get_clim() == (0.0, 1.0)
    assert _png(fig).startswith(PNG_MAGIC)


def test_migration_heatmap_shares_and_annotations(close_figures: list[Figure]) -> None:
    fig = migration_figure(TRANSITIONS)
    close_figures.append(fig)

    control, email = _images(fig)
    shares = TRANSITIONS["dimensions"]["M"]["shares"]
    expected = np.array(shares["control"], dtype=float)
    expected[2, :] = np.nan  # no customers at launch level 3
    np.testing.assert_allclose(np.ma.filled(control.get_array(), np.nan), expected)
    np.testing.assert_allclose(np.ma.filled(email.get_array(), np.nan), shares["email"])

    texts = {(t.get_position(), t.get_text()) for t in control.axes.texts}
    assert ((0, 0), "74%") in texts
    assert ((2, 1), "10%") in texts
    assert len(control.axes.texts) == 6  # the empty row is not annotated
    assert len(email.axes.texts) == 9
    # Readable on the cell: light text on dark cells, dark on light ones.
    colour = {t.get_text(): t.get_color() for t in control.axes.texts}
    assert colour["80%"] != colour["20%"]


def test_migration_without_requested_dimensions(close_figures: list[Figure]) -> None:
    fig = migration_figure(TRANSITIONS, ("F",))
    close_figures.append(fig)

    assert fig.axes == []
    assert len(fig.texts) == 1
    assert "F" in fig.texts[0].get_text()
    assert _png(fig).startswith(PNG_MAGIC)


def test_figures_keep_the_default_style_whatever_the_process_set() -> None:
    # causalml runs plt.style.use("fivethirtyeight") when imported: grey backgrounds and
    # oversized text leaked into every figure the run logged
    from PIL import Image

    plain = profit_curve_figure(CURVE, POLICY, TREAT_ALL)
    with plt.style.context("fivethirtyeight"):
        fig = profit_curve_figure(CURVE, POLICY, TREAT_ALL)
        assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)
        assert fig.axes[0].get_facecolor()[:3] == (1.0, 1.0, 1.0)
        assert fig.axes[0].title.get_fontsize() == plain.axes[0].title.get_fontsize() == 12.0
        data = png_bytes(fig)
    corner = Image.open(BytesIO(data)).convert("RGB").getpixel((2, 2))
    assert corner == (255, 255, 255)  # saved on white, not fivethirtyeight's #f0f0f0


def test_treat_all_markers_are_drawn_net_of_the_fixed_cost_like_the_curve() -> None:
    # the curve and the policy are net of the fixed cost's share (summary["policy"]);
    # the targeting rows are before it: 300 over 1,000 customers moves them down 0.3
    rows = [
        {
            "rule": "treat_all:email",
            "per_customer": 0.5,
            "ci_low": 0.1,
            "ci_high": 0.9,
            "arms": {"email": 1_000, "none": 0},
        }
    ]
    fig = profit_curve_figure(CURVE, POLICY, rows, fixed_cost=300.0, level=0.9)
    ax = fig.axes[0]
    bars = next(c for c in ax.containers if c.get_label() == "treat all: email")
    np.testing.assert_allclose(bars.lines[0].get_xydata(), [[1.0, 0.2]])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "90% interval" in labels


# ---------------------------------------------------------------- Qini curves


def test_a_long_qini_curve_is_drawn_through_fewer_points_and_looks_the_same(
    close_figures: list[Figure],
) -> None:
    from PIL import Image, ImageChops

    # a Qini curve of 60,000 simulated customers whose uplift rises with the score
    rng = np.random.default_rng(3)
    n = 60_000
    score = rng.normal(size=n)
    treated = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.1 + 0.05 * treated * (score > 0)).astype(float)
    curve = qini_curve(y, treated, score)
    short = UpliftCurve(curve.fraction[:: n // 500], curve.gain[:: n // 500], "qini")

    fig = qini_figure({"s_learner / email": curve, "t_learner / email": short}, "bought")
    close_figures.append(fig)
    drawn, _, whole, _, _ = fig.axes[0].get_lines()  # each curve, then its random line
    x, g = drawn.get_xdata(), drawn.get_ydata()
    assert len(x) <= _CURVE_POINTS + 2 < len(curve.fraction)
    # every point drawn is a point of the curve: both ends, its peak and its low among them
    at = np.searchsorted(curve.fraction, x)
    np.testing.assert_array_equal(curve.fraction[at], x)
    np.testing.assert_array_equal(curve.gain[at], g)
    assert {0, n, int(np.argmax(curve.gain)), int(np.argmin(curve.gain))} <= set(at.tolist())
    # a curve of fewer points is drawn whole
    np.testing.assert_array_equal(whole.get_xdata(), short.fraction)

    # and the picture is the one the whole curve gives: the two images differ (in the
    # anti-aliasing along the line) by less than a fifth of what the whole curve's image
    # differs from itself moved one pixel sideways
    full = qini_figure({"s_learner / email": curve}, "bought")
    close_figures.append(full)
    full.axes[0].lines[0].set_data(curve.fraction, curve.gain)
    thin = qini_figure({"s_learner / email": curve}, "bought")
    close_figures.append(thin)
    images = [Image.open(BytesIO(png_bytes(f))).convert("L") for f in (full, thin)]
    assert images[0].size == images[1].size
    difference = np.asarray(ImageChops.difference(*images), dtype=float) / 255
    whole_image = np.asarray(images[0], dtype=float) / 255
    one_pixel = np.abs(whole_image[:, 1:] - whole_image[:, :-1]).mean()
    assert 0 < difference.mean() < one_pixel / 5
