"""A small, safe expression language for eligibility filters.

The experiment spec filters its population with expressions such as::

    applied_premium == 1 and bought_premium_before == 0
    plan in ["basic", "pro"] and not (recency_days > 365)
    `days since signup` >= 30 or is_active

User text is never handed to ``eval``, ``compile``, ``ast`` or ``DataFrame.query``: a
regular-expression tokenizer and a recursive-descent parser turn it into an immutable tree,
which is then evaluated column-wise over a :class:`pandas.DataFrame`. The grammar is::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [ (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)
                          | (["not"] "in" list) ]
    operand    := NAME | NUMBER | STRING | "true" | "false" | "(" expr ")"
    list       := "[" literal ("," literal)* [","] "]"

Names are column names; a name that is not a plain identifier, or that is a Python keyword,
is written in backticks: ```my col```. A column on its own is a condition (booleans as they
are, numbers are true when non-zero).

Missing values (NaN, None, NA) never satisfy a comparison: ``x == 1``, ``x != 1``,
``x < 1``, ``x in [1]`` and ``x not in [1]`` are all false where ``x`` is missing, and so is
a bare boolean column. ``not`` applies afterwards, so ``not (x == 1)`` is true there.
"""

from __future__ import annotations

import keyword
import operator
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeAlias

import numpy as np
import pandas as pd

from uplift.errors import DataError, SpecError

__all__ = ["Expression", "ExpressionError", "parse"]

_ALLOWED = (
    "allowed are column names, numbers, strings, comparisons (== != < <= > >=), "
    "in [...] lists, and/or/not and parentheses"
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
_MAX_DEPTH = 32  # far beyond any real filter


class ExpressionError(SpecError):
    """An expression does not follow the grammar of :mod:`uplift.expressions`.

    Parameters
    ----------
    expression : str
        The whole expression as written.
    token : str
        The offending token, verbatim.
    position : int
        The 0-based character offset of ``token`` in ``expression``.
    problem : str
        What is wrong, e.g. ``"function calls are not allowed"``.
    hint : str, optional
        What would have been accepted instead.
    """

    def __init__(
        self, expression: str, token: str, position: int, problem: str, hint: str = _ALLOWED
    ) -> None:
        self.expression = expression
        self.token = token
        self.position = position
        super().__init__(
            f"eligibility expression {expression!r}: {problem} "
            f"(found {token!r} at position {position}); {hint}"
        )


# --- tokens ---------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<number>-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<quoted>`[^`]*`)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|<=|>=|<|>)
    | (?P<punct>[()\[\],])
    """,
    re.VERBOSE | re.DOTALL,
)
_ATTRIBUTE_RE = re.compile(r"\.[A-Za-z0-9_]*")

# Characters that are not part of the language, with what the author probably meant.
_BAD_CHARACTERS = {
    "&&": ("'&&' is not an operator here", "use 'and' to require both conditions"),
    "||": ("'||' is not an operator here", "use 'or' to accept either condition"),
    "&": ("'&' is not an operator here", "use 'and' to require both conditions"),
    "|": ("'|' is not an operator here", "use 'or' to accept either condition"),
    "!": ("'!' is not an operator here", "use 'not' to negate a condition"),
    "~": ("'~' is not an operator here", "use 'not' to negate a condition"),
    "=": ("'=' is assignment, not comparison", "use '==' to test equality"),
    **{c: ("arithmetic is not allowed", _ALLOWED) for c in "+-*/%^"},
}

_PYTHON_HINTS = {
    "is": "use == or != to compare values",
    "True": "use lowercase true",
    "False": "use lowercase false",
    "None": "missing values never satisfy a comparison, so no test for None is needed",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, quoted, name, keyword, op, punct, bad, end
    text: str
    position: int
    value: Any = None


def _tokenize(text: str) -> Iterator[_Token]:
    """Split ``text`` into tokens; a piece outside the language becomes a ``bad`` token.

    The parser raises on a ``bad`` token only when it reaches it, so errors are reported
    left to right: ``len(x); y`` complains about the call, not the semicolon.
    """
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            bad = _bad_token(text, position)
            yield bad
            position += len(bad.text)
            continue
        kind, piece = match.lastgroup or "", match.group()
        position = match.end()
        if kind == "space":
            continue
        start = match.start()
        if kind == "number":
            yield _Token(kind, piece, start, _number(piece))
        elif kind == "string":
            yield _Token(kind, piece, start, re.sub(r"\\(['\"\\])", r"\1", piece[1:-1]))
        elif kind == "quoted":
            if piece == "``":
                yield _Token("bad", piece, start, ("a column name cannot be empty", _ALLOWED))
            else:
                yield _Token(kind, piece, start, piece[1:-1])
        elif kind == "name" and piece in _KEYWORDS:
            yield _Token("keyword", piece, start, {"true": True, "false": False}.get(piece))
        else:
            yield _Token(kind, piece, start, piece)
    yield _Token("end", "", len(text))


def _bad_token(text: str, position: int) -> _Token:
    char = text[position]
    if char in "'\"":
        return _Token("bad", text[position:], position, ("unterminated string", _ALLOWED))
    if char == "`":
        hint = "close the column name with a backtick"
        return _Token("bad", text[position:], position, ("unterminated column name", hint))
    if char == ".":
        attribute = _ATTRIBUTE_RE.match(text, position)
        piece = attribute.group() if attribute else char
        return _Token("bad", piece, position, ("attribute access is not allowed", _ALLOWED))
    for piece, reason in _BAD_CHARACTERS.items():
        if text.startswith(piece, position):
            return _Token("bad", piece, position, reason)
    return _Token("bad", char, position, ("unknown character", _ALLOWED))


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    value = int(text)
    # Beyond int64, pandas compares inconsistently; a float compares sensibly.
    return value if abs(value) < 2**63 else float(value)


# --- syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str


@dataclass(frozen=True)
class _Constant:
    value: bool | int | float | str


@dataclass(frozen=True)
class _Compare:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _IsIn:
    operand: _Node
    values: tuple[bool | int | float | str, ...]
    negated: bool


@dataclass(frozen=True)
class _Not:
    operand: _Node


@dataclass(frozen=True)
class _And:
    operands: tuple[_Node, ...]


@dataclass(frozen=True)
class _Or:
    operands: tuple[_Node, ...]


_Node: TypeAlias = _Column | _Constant | _Compare | _IsIn | _Not | _And | _Or


def _columns(node: _Node) -> Iterator[str]:
    match node:
        case _Column(name):
            yield name
        case _Compare(_, left, right):
            yield from _columns(left)
            yield from _columns(right)
        case _IsIn(operand, _, _) | _Not(operand):
            yield from _columns(operand)
        case _And(operands) | _Or(operands):
            for operand in operands:
                yield from _columns(operand)


# --- parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens = _tokenize(text)
        self._current = next(self._tokens)
        self._depth = 0

    def parse(self) -> _Node:
        node = self._or()
        if self._peek().kind != "end":
            self._unexpected("'and', 'or' or the end of the expression")
        return node

    # Grammar rules, one method each.

    def _or(self) -> _Node:
        operands = [self._and()]
        while self._accept("keyword", "or"):
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else _Or(tuple(operands))

    def _and(self) -> _Node:
        operands = [self._not()]
        while self._accept("keyword", "and"):
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else _And(tuple(operands))

    def _not(self) -> _Node:
        token = self._peek()
        if not self._accept("keyword", "not"):
            return self._comparison()
        with self._nested(token):
            return _Not(self._not())

    def _comparison(self) -> _Node:
        first = self._peek()
        left = self._operand()
        token = self._peek()
        if token.kind == "op":
            self._advance()
            return _Compare(token.text, left, self._operand())
        negated = self._accept("keyword", "not")
        if negated and not self._peek_is("keyword", "in"):
            self._unexpected("'in' after 'not'")
        if self._accept("keyword", "in"):
            return _IsIn(left, self._list(), negated)
        if isinstance(left, _Constant) and not isinstance(left.value, bool):
            self._fail(
                first,
                "a number or string on its own is not a condition",
                "compare it with a column, e.g. plan == 'pro'",
            )
        return left

    def _operand(self) -> _Node:
        token = self._peek()
        if token.kind in ("number", "string"):
            self._advance()
            return _Constant(token.value)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self._advance()
            return _Constant(token.value)
        if token.kind == "quoted":
            self._advance()
            return _Column(token.value)
        if token.kind == "name" and token.text not in _PYTHON_HINTS:
            return self._name(token)
        if self._accept("punct", "("):
            with self._nested(token):
                node = self._or()
            if not self._accept("punct", ")"):
                if self._peek().kind == "end":
                    self._fail(
                        token, "unbalanced parentheses: '(' is never closed", "add the missing ')'"
                    )
                self._unexpected("')'")
            return node
        self._unexpected("a column name, number, string, true/false, 'not' or '('")

    def _name(self, token: _Token) -> _Column:
        if keyword.iskeyword(token.text):
            self._fail(token, f"the Python keyword {token.text!r} is not allowed", _ALLOWED)
        self._advance()
        following = self._peek()
        span = self.text[token.position : following.position + 1]
        if following.text == "(":
            self._fail(token, "function calls are not allowed", _ALLOWED, span)
        if following.text == "[":
            self._fail(token, "subscripts are not allowed", _ALLOWED, span)
        if token.text.startswith("__"):
            self._fail(
                token,
                "names starting with '__' are not allowed",
                "write a column named like this in backticks",
            )
        return _Column(token.text)

    def _list(self) -> tuple[bool | int | float | str, ...]:
        if not self._accept("punct", "["):
            self._unexpected("a list such as [1, 2] or ['a', 'b'] after 'in'")
        values = [self._literal()]
        while self._accept("punct", ",") and not self._peek_is("punct", "]"):
            values.append(self._literal())
        if not self._accept("punct", "]"):
            self._unexpected("',' or ']' in the list")
        return tuple(values)

    def _literal(self) -> bool | int | float | str:
        token = self._peek()
        if token.kind in ("name", "quoted"):
            self._fail(
                token,
                "lists hold numbers, strings, true or false, not columns",
                "compare columns with ==",
            )
        if token.kind not in ("number", "string") and token.text not in ("true", "false"):
            self._unexpected("a number, string, true or false in the list")
        self._advance()
        return token.value

    # Token helpers.

    def _peek(self) -> _Token:
        token = self._current
        if token.kind == "bad":
            problem, hint = token.value
            self._fail(token, problem, hint)
        return token

    def _peek_is(self, kind: str, text: str) -> bool:
        token = self._peek()
        return token.kind == kind and token.text == text

    def _advance(self) -> None:
        self._current = next(self._tokens)

    def _accept(self, kind: str, text: str) -> bool:
        if self._peek_is(kind, text):
            self._advance()
            return True
        return False

    @contextmanager
    def _nested(self, token: _Token) -> Iterator[None]:
        # Bounded, so that "((((..." fails cleanly instead of exhausting the stack.
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            self._fail(token, f"nesting deeper than {_MAX_DEPTH} levels", "simplify it")
        yield
        self._depth -= 1

    def _unexpected(self, expected: str) -> NoReturn:
        token = self._peek()
        if token.kind == "end":
            if not self.text.strip():
                self._fail(token, "the expression is empty", _ALLOWED)
            self._fail(token, f"the expression ends too early; expected {expected}", _ALLOWED)
        if token.text == ")":
            self._fail(
                token,
                "unbalanced parentheses: ')' has no matching '('",
                "remove it or add the missing '('",
            )
        if token.text in _PYTHON_HINTS:
            self._fail(
                token, f"{token.text!r} is not part of the language", _PYTHON_HINTS[token.text]
            )
        if keyword.iskeyword(token.text):
            self._fail(token, f"the Python keyword {token.text!r} is not allowed", _ALLOWED)
        if token.text.lower() in _KEYWORDS and token.kind == "name":
            self._fail(
                token,
                f"expected {expected}",
                f"keywords are lowercase: write {token.text.lower()!r}",
            )
        self._fail(token, f"expected {expected}", _ALLOWED)

    def _fail(self, token: _Token, problem: str, hint: str, text: str | None = None) -> NoReturn:
        raise ExpressionError(
            self.text, token.text if text is None else text, token.position, problem, hint
        )


def parse(text: str) -> Expression:
    """Parse an eligibility expression.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"plan in ['basic', 'pro'] and recency_days <= 365"``.

    Returns
    -------
    Expression
        The parsed expression, ready to :meth:`~Expression.evaluate`.

    Raises
    ------
    ExpressionError
        If ``text`` does not follow the grammar; the message names the offending token,
        its position and what was expected.
    """
    return Expression(text, _Parser(text).parse())


# --- evaluation -----------------------------------------------------------------------------

_Value: TypeAlias = "pd.Series | bool | int | float | str"

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_INFERRED_KINDS = {
    "string": "string",
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
}
_COMPATIBLE = ({"number", "boolean"}, {"datetime", "string"})


@dataclass(frozen=True)
class Expression:
    """A parsed eligibility expression; build one with :func:`parse`.

    Attributes
    ----------
    text : str
        The expression as written.
    """

    text: str
    _root: _Node = field(repr=False)

    def __str__(self) -> str:
        return self.text

    @property
    def columns(self) -> frozenset[str]:
        """The names of the columns the expression reads."""
        return frozenset(_columns(self._root))

    def evaluate(self, frame: pd.DataFrame, source: str = "population") -> pd.Series:
        """Evaluate the expression row by row.

        Parameters
        ----------
        frame : pandas.DataFrame
            The data; it must hold every column in :attr:`columns`.
        source : str, default "population"
            What ``frame`` is, for error messages.

        Returns
        -------
        pandas.Series
            A boolean mask aligned to ``frame.index``. Rows where a compared value is missing
            are ``False`` (before any ``not`` is applied).

        Raises
        ------
        DataError
            If a column is missing, or its type cannot be compared as written, e.g. a column
            of strings compared with a number.
        """
        missing = sorted(self.columns - set(frame.columns))
        if missing:
            available = [str(column) for column in frame.columns]
            shown = ", ".join(available[:20]) or "none"
            if len(available) > 20:
                shown += f", ... ({len(available) - 20} more)"
            raise DataError(
                f"{source} has no column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))}, which the eligibility expression "
                f"{self.text!r} uses; available columns: {shown}"
            )
        mask = _Evaluator(self.text, source, frame).condition(self._root)
        return pd.Series(mask, index=frame.index, dtype=bool)


class _Evaluator:
    def __init__(self, text: str, source: str, frame: pd.DataFrame) -> None:
        self.text, self.source, self.frame = text, source, frame
        self.size = len(frame)

    def condition(self, node: _Node) -> np.ndarray:
        """Evaluate ``node`` where a condition is required: one boolean per row."""
        match node:
            case _Column(name):
                return self._truthy(name, self._column(name))
            case _Constant(value):
                return np.full(self.size, bool(value))
            case _Not(operand):
                return ~self.condition(operand)
            case _And(operands):
                return np.logical_and.reduce([self.condition(item) for item in operands])
            case _Or(operands):
                return np.logical_or.reduce([self.condition(item) for item in operands])
            case _Compare(op, left, right):
                return self._compare(op, left, right)
            case _IsIn(operand, values, negated):
                return self._isin(operand, values, negated)
        raise AssertionError(f"unknown node {node!r}")

    def _value(self, node: _Node) -> _Value:
        # Positional index, so that duplicate labels in the frame never trigger alignment.
        if isinstance(node, _Column):
            return self._column(node.name)
        if isinstance(node, _Constant):
            return node.value
        return pd.Series(self.condition(node))

    def _column(self, name: str) -> pd.Series:
        column = self.frame[name]
        if isinstance(column, pd.DataFrame):
            raise DataError(
                f"{self.source} has more than one column named {name!r}, which "
                f"the eligibility expression {self.text!r} uses"
            )
        return column.reset_index(drop=True)

    def _truthy(self, name: str, column: pd.Series) -> np.ndarray:
        present = column.notna().to_numpy(dtype=bool)
        kind = _kind(column)
        mask = np.zeros(self.size, dtype=bool)
        if kind in ("boolean", "number"):
            mask[present] = column[present].to_numpy() != 0
        elif present.any():
            holds = f"{kind}s" if kind else "mixed values"
            raise DataError(
                f"column {name!r} of {self.source} holds {holds} and cannot be a condition on "
                f"its own in the eligibility expression {self.text!r}; compare it, "
                f"e.g. {name} == ..."
            )
        return mask

    def _compare(self, op: str, left_node: _Node, right_node: _Node) -> np.ndarray:
        left, right = self._value(left_node), self._value(right_node)
        self._check_kinds(op, left_node, left, right_node, right)
        present = _present(left, self.size) & _present(right, self.size)
        mask = np.zeros(self.size, dtype=bool)
        try:
            result = _COMPARISONS[op](_take(left, present), _take(right, present))
        except TypeError as error:
            raise DataError(
                f"cannot compare {self._describe(left_node, left)} with "
                f"{self._describe(right_node, right)} using {op!r} in the eligibility "
                f"expression {self.text!r} on {self.source}: {error}"
            ) from error
        mask[present] = np.asarray(result, dtype=bool)
        return mask

    def _isin(
        self, node: _Node, values: tuple[bool | int | float | str, ...], negated: bool
    ) -> np.ndarray:
        operand = self._value(node)
        for value in values:
            self._check_kinds("in", node, operand, _Constant(value), value)
        series = operand if isinstance(operand, pd.Series) else pd.Series([operand] * self.size)
        found = series.isin(list(values)).to_numpy(dtype=bool)
        return (~found if negated else found) & series.notna().to_numpy(dtype=bool)

    def _check_kinds(
        self, op: str, left_node: _Node, left: _Value, right_node: _Node, right: _Value
    ) -> None:
        kinds = {_kind(left), _kind(right)}
        if None in kinds or len(kinds) == 1 or kinds in _COMPATIBLE:
            return
        raise DataError(
            f"the eligibility expression {self.text!r} compares "
            f"{self._describe(left_node, left)} with {self._describe(right_node, right)} "
            f"using {op!r} on {self.source}; compare values of the same type, or fix the "
            f"column's type in the data"
        )

    @staticmethod
    def _describe(node: _Node, value: _Value) -> str:
        kind = _kind(value) or "mixed value"
        if isinstance(node, _Column):
            return f"column {node.name!r}, which holds {kind}s,"
        if isinstance(node, _Constant):
            return f"{node.value!r}, a {kind},"
        return "a condition (booleans)"


def _kind(value: _Value) -> str | None:
    """Classify a value as number, string, boolean or datetime; None when unclear."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    data = value.cat.categories if isinstance(value.dtype, pd.CategoricalDtype) else value
    if pd.api.types.is_bool_dtype(data.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(data.dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(data.dtype):
        return "datetime"
    return _INFERRED_KINDS.get(pd.api.types.infer_dtype(data, skipna=True))


def _present(value: _Value, size: int) -> np.ndarray:
    if isinstance(value, pd.Series):
        return value.notna().to_numpy(dtype=bool)
    return np.ones(size, dtype=bool)


def _take(value: _Value, rows: np.ndarray) -> _Value:
    return value[rows].reset_index(drop=True) if isinstance(value, pd.Series) else value
