"""HTML building blocks and number formats of the decision memo."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard

_NA = "not estimated"

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2329;
 max-width:1040px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h3{font-size:16px;margin:22px 0 6px}
h2{font-size:21px;margin:36px 0 8px;border-bottom:2px solid #d8dee4;padding-bottom:4px}
.kicker{color:#57606a;text-transform:uppercase;letter-spacing:.06em;font-size:12px}
blockquote{margin:8px 0 12px;padding:6px 14px;border-left:4px solid #8c959f;background:#f6f8fa}
dl{display:grid;grid-template-columns:170px 1fr;gap:3px 14px;margin:10px 0}
dt{color:#57606a}dd{margin:0}
#verdict{margin:18px 0;padding:14px 18px;border-radius:8px;border:2px solid}
#verdict .word{font-size:22px;font-weight:700;margin-bottom:6px}
#verdict.go,#verdict.go_targeted{background:#e8f6ec;border-color:#2da44e}
#verdict.no_go{background:#fdecea;border-color:#cf222e}
#verdict.inconclusive,#verdict.unknown{background:#fff8e1;border-color:#bf8700}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13.5px;width:100%;
 font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid #d8dee4;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td code{white-space:nowrap}
.ci{color:#57606a;font-size:12px;white-space:nowrap}
span.go{color:#1a7f37;font-weight:600}span.no_go{color:#cf222e;font-weight:600}
span.inconclusive{color:#9a6700;font-weight:600}.small,figcaption{color:#57606a;font-size:13px}
figure{margin:14px 0;padding:10px;border:1px solid #d8dee4;border-radius:6px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
code{background:#f6f8fa;padding:1px 4px;border-radius:3px;font-size:13px}
.digest{overflow-wrap:anywhere}li{margin-bottom:6px}
"""


_Row = Mapping[str, Any]
_Column = tuple[str, Callable[[_Row], str]]


# --- formatting: every helper returns HTML-safe text --------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _c(value: Any) -> str:
    """A name from the spec or the data (arm, metric, column), escaped, in code style."""
    return f"<code>{_e(value)}</code>"


def _ok(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any, digits: int = 2) -> str:
    """A number with thousands separators, or 'not estimated'."""
    return f"{value:,.{digits}f}" if _ok(value) else _NA


def _int(value: Any) -> str:
    return _num(value, 0)


def _pct(value: Any, digits: int = 1) -> str:
    return f"{value * 100:,.{digits}f}%" if _ok(value) else _NA


def _pp(value: Any) -> str:
    """A difference of two shares, in percentage points."""
    return f"{value * 100:,.{2 if abs(value) < 0.01 else 1}f} pp" if _ok(value) else _NA


def _p(value: Any) -> str:
    if not _ok(value):
        return "not computed"
    return "&lt; 0.001" if value < 0.001 else f"{value:.3f}"


def _about(value: Any) -> str:
    """A count to two significant figures: '~13,000'."""
    if not _ok(value) or value <= 0:
        return _NA
    return f"~{round(value, -max(math.floor(math.log10(value)) - 1, 0)):,.0f}"


def _get(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where a level is missing or not a mapping."""
    for key in keys:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _rows(data: Any) -> list[_Row]:
    return [r for r in data if isinstance(r, Mapping)] if isinstance(data, list) else []


def _neg(value: Any) -> float | None:
    return -value if _ok(value) else None


# --- HTML builders ------------------------------------------------------------------------------


def _f(key: str, fmt: Callable[[Any], str] = _e) -> Callable[[_Row], str]:
    """The cell of a column showing one key of the row."""
    return lambda r: fmt(r.get(key))


def _table(rows: Iterable[_Row], *columns: _Column, ident: str = "") -> str:
    """A table of one row per mapping; a column is its plain-text title and its HTML cell."""
    attr = f' id="{_e(ident)}"' if ident else ""
    head = "".join(f"<th>{_e(title)}</th>" for title, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r)}</td>" for _, cell in columns) + "</tr>\n" for r in rows
    )
    return f"<table{attr}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"


def _section(ident: str, title: str, parts: Iterable[str]) -> str:
    body = "\n".join(p for p in parts if p)
    return f'<section id="{ident}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


def _para(text: str) -> str:
    return f"<p>{text}</p>" if text else ""


def _ul(items: Iterable[str]) -> str:
    return "<ul>\n" + "".join(f"<li>{i}</li>\n" for i in items if i) + "</ul>"
