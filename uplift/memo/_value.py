"""Section 1: did the campaign raise value (effects, the programme, RFM migration)."""

from __future__ import annotations

from collections.abc import Mapping

from uplift.memo._context import _KEYS, _METHODS, _Memo
from uplift.memo._markup import (
    _NA,
    _c,
    _e,
    _f,
    _get,
    _int,
    _num,
    _ok,
    _p,
    _para,
    _pct,
    _pp,
    _Row,
    _rows,
    _section,
    _table,
)


def _method(m: _Memo, r: _Row) -> str:
    text = _e(_METHODS.get(str(r.get("method")), r.get("method") or _NA))
    if r.get("adjusted_for"):
        text += f" on {_c(r['adjusted_for'])}"
        if _ok(r.get("variance_reduction")):
            text += f", variance {_pct(r['variance_reduction'])} lower"
    if _ok(r.get("winsorized_at")):
        raw = m.ci(r, "raw", m.fmt(r.get("metric")))
        text += f"; capped at {_num(r['winsorized_at'])}, uncapped {raw}"
    return text


def _effects_table(m: _Memo, rows: list[_Row], ident: str) -> str:
    def mean(r: _Row, key: str) -> str:
        return (_pct if m.fmt(r.get("metric")) is _pp else _num)(r.get(key))

    return _table(
        rows,
        ("Arm", _f("arm", _c)),
        ("Metric", _f("metric", _c)),
        ("Control → arm mean", lambda r: f"{mean(r, 'mean_control')} → {mean(r, 'mean_treated')}"),
        (f"Effect ({m.level} CI)", lambda r: m.ci(r, "estimate", m.fmt(r.get("metric")), True)),
        ("Relative lift", lambda r: m.ci(r, "lift", _pct, True)),
        ("p-value", _f("p_value", _p)),
        (
            "Customers (arm / control)",
            lambda r: f"{_int(r.get('n_treated'))} / {_int(r.get('n_control'))}",
        ),
        ("Method", lambda r: _method(m, r)),
        ident=ident,
    )


def _value(m: _Memo) -> str:
    s, metric, window = m.summary, m.primary, _get(m.spec, "outcomes", "window_days")
    effects, programme = _rows(s.get("effects")), _rows(s.get("programme"))
    readings = []
    for r in (r for r in effects if r.get("metric") == metric):
        est, lo, hi = (r.get(k) for k in _KEYS["estimate"])
        sure = (
            "the interval excludes zero, so this is unlikely to be chance"
            if _ok(lo) and _ok(hi) and (lo > 0 or hi < 0)
            else "the interval includes zero, so the data cannot tell it from no effect"
        )
        lift = f" (a relative lift of {_pct(r.get('lift'))})" if _ok(r.get("lift")) else ""
        verb = "raised" if _ok(est) and est >= 0 else "changed"
        readings.append(
            f"Offering {_c(r.get('arm'))} {verb} {_c(metric)} by "
            f"{m.ci(r, 'estimate', m.fmt(metric))} per customer over the {_e(window)}-day "
            f"window{lift}; {sure}."
        )
    parts = [
        _para(" ".join(readings) or f"The effect on {_c(metric)} is {_NA}."),
        "<h3>Every arm on every metric</h3>",
        _para(
            "Each treatment arm against the control. Effects on binary (0/1) metrics are in "
            "percentage points (pp), the others in the metric's unit per customer. Intervals "
            "use robust (HC2) standard errors (the delta method for a ratio of two metrics); "
            "a regression-adjusted effect uses each customer's value before launch to remove "
            "noise without biasing the effect (Lin's estimator, akin to CUPED)."
        ),
        _effects_table(m, effects, "effects-table") if effects else _para(f"Effects {_NA}."),
        "<h3>The CRM programme as a whole</h3>",
        _para(
            "Everyone in the experiment, whatever their arm, against the global holdout "
            "(eligible customers kept out of every campaign)."
        )
        + _effects_table(m, programme, "programme-table")
        if programme
        else _para(f"Programme effect {_NA}: the run has no global holdout."),
        "<h3>Did customers move up RFM levels?</h3>",
        _migration(m),
    ]
    return _section("value", "1. Did the campaign raise value?", parts)


def _migration(m: _Memo) -> str:
    moves = _get(m.summary, "migration", "moves")
    if not isinstance(moves, Mapping):
        return _para(
            f"RFM migration {_NA}: the spec names no end-of-window recency, frequency and "
            "monetary columns (value.migration)."
        )
    names = {"R": "recency", "F": "frequency", "M": "monetary value"}
    return (
        _para(
            "Levels run from 1 (lowest) up. Each row is the share of customers who ended the "
            "window at least one level above their level at launch, in the arm and in the "
            f"control, and the difference ({_e(moves.get('method', ''))} interval); launch "
            "level 'all' pools every level."
        )
        + _table(
            _rows(moves.get("rows")),
            (
                "Dimension",
                lambda r: (
                    f"{_e(r.get('dimension'))} ({_e(names.get(str(r.get('dimension')), ''))})"
                ),
            ),
            ("Launch level", _f("launch_level")),
            ("Arm", _f("arm", _c)),
            (
                "Moved up: arm vs control",
                lambda r: f"{_pct(r.get('share_treated'))} vs {_pct(r.get('share_control'))}",
            ),
            (f"Difference ({m.level} CI)", lambda r: m.ci(r, "estimate", _pp, True)),
            ("p-value", _f("p_value", _p)),
        )
        + m.figure("figures/migration.png")
    )
