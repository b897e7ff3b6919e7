"""A self-contained HTML decision memo for one experiment run.

:func:`render_memo` turns a run's summary document, its spec and its figures into one
HTML page that a reviewer who has never seen the spec can read: the verdict first, then
whether the campaign raised value, for which segments, whether it paid for itself, whom
to treat next, and the caveats. The page carries its own style and images (PNG data
URIs); it has no script and names no external resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uplift.memo._caveats import _caveats
from uplift.memo._context import MEMO_FIGURES, _Memo
from uplift.memo._economics import _economics
from uplift.memo._header import _header
from uplift.memo._markup import _CSS, _e
from uplift.memo._segments import _segments
from uplift.memo._targeting import _targeting
from uplift.memo._value import _value

__all__ = ["MEMO_FIGURES", "render_memo"]


def render_memo(
    summary: Mapping[str, Any], spec: Mapping[str, Any], figures: Mapping[str, bytes]
) -> str:
    """A self-contained HTML decision memo for one experiment run.

    Parameters
    ----------
    summary : mapping
        The run's summary document (``summary.json``, schema
        ``uplift/schemas/summary.schema.json``). Sections may be missing or ``None``: the
        memo says what was not estimated instead.
    spec : mapping
        The experiment spec, ``ExperimentSpec.model_dump(mode="json", exclude_none=True)``.
    figures : mapping
        PNG bytes by artifact path (:data:`MEMO_FIGURES`); any may be absent, and other
        paths are ignored.

    Returns
    -------
    str
        One HTML document with inline style and images: no script, no external resource.
    """
    m = _Memo(summary, spec, figures)
    sections = [_value(m), _segments(m), _economics(m), _targeting(m), _caveats(m)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>Decision memo: {_e(summary.get('experiment', ''))}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n{_header(m)}\n<main>\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )
