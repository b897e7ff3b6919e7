"""Tests for uplift.expressions: parsing, evaluation and refusing anything outside the grammar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.errors import DataError, SpecError
from uplift.expressions import Expression, ExpressionError, parse


@pytest.fixture
def frame() -> pd.DataFrame:
    # A non-default index with a duplicate label: the mask must align to it as it is.
    return pd.DataFrame(
        {
            "a": [1, 0, 1, 0],
            "b": [1, 1, 0, 0],
            "c": [0, 1, 1, 0],
            "score": [0.5, -2.0, np.nan, 10.0],
            "plan": ["basic", "pro", None, "free"],
            "tier": [1, 2, 3, 2],
            "is_active": [True, False, True, False],
            "my col": [5, 6, 7, 8],
        },
        index=[10, 10, 11, 12],
    )


def mask(expression: str, frame: pd.DataFrame) -> list[bool]:
    result = parse(expression).evaluate(frame)
    assert result.dtype == bool
    assert result.index.equals(frame.index)
    return result.tolist()


# --- parsing and evaluation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # a or (b and c): rows (a, b, c) = (1,1,0) (0,1,1) (1,0,1) (0,0,0)
        ("a == 1 or b == 1 and c == 1", [True, True, True, False]),
        ("(a == 1 or b == 1) and c == 1", [False, True, True, False]),
        # (not a) and b
        ("not a == 1 and b == 1", [False, True, False, False]),
        ("not (a == 1 and b == 1)", [False, True, True, True]),
        ("not not a == 1", [True, False, True, False]),
        ("a or b and c", [True, True, True, False]),
        ("not a and b", [False, True, False, False]),
        ("((a))", [True, False, True, False]),
        ("a == 1 and b == 1 and c == 0", [True, False, False, False]),
        ("a == 0 or b == 0 or c == 1", [False, True, True, True]),
    ],
)
def test_precedence_and_parentheses(
    expression: str, expected: list[bool], frame: pd.DataFrame
) -> None:
    assert mask(expression, frame) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("tier == 2", [False, True, False, True]),
        ("tier != 2", [True, False, True, False]),
        ("tier < 2", [True, False, False, False]),
        ("tier <= 2", [True, True, False, True]),
        ("tier > 2", [False, False, True, False]),
        ("tier >= 2", [False, True, True, True]),
        ("2 < tier", [False, False, True, False]),
        ("a == b", [True, False, False, True]),
        ("a != c", [True, True, False, False]),
        ("(a == 1) == (b == 1)", [True, False, False, True]),
    ],
)
def test_comparisons(expression: str, expected: list[bool], frame: pd.DataFrame) -> None:
    assert mask(expression, frame) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("plan in ['basic', 'pro']", [True, True, False, False]),
        ('plan in ["free",]', [False, False, False, True]),
        ("plan not in ['basic']", [False, True, False, True]),
        ("tier in [1, 3]", [True, False, True, False]),
        ("tier not in [1, 3]", [False, True, False, True]),
        ("tier in [2.0]", [False, True, False, True]),
        ("is_active in [true]", [True, False, True, False]),
        ("not tier in [2]", [True, False, True, False]),
    ],
)
def test_in_lists(expression: str, expected: list[bool], frame: pd.DataFrame) -> None:
    assert mask(expression, frame) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("score > -1", [True, False, False, True]),
        ("score == -2", [False, True, False, False]),
        ("score < -1.5", [False, True, False, False]),
        ("score >= .5", [True, False, False, True]),
        ("score < 1e1", [True, True, False, False]),
        ("score <= 1E+1", [True, True, False, True]),
        ("score in [-2, 0.5]", [True, True, False, False]),
        ("tier > -1e3", [True, True, True, True]),
    ],
)
def test_numbers(expression: str, expected: list[bool], frame: pd.DataFrame) -> None:
    assert mask(expression, frame) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("plan == 'pro'", [False, True, False, False]),
        ('plan == "pro"', [False, True, False, False]),
        ("plan < 'c'", [True, False, False, False]),
    ],
)
def test_string_quotes(expression: str, expected: list[bool], frame: pd.DataFrame) -> None:
    assert mask(expression, frame) == expected


def test_escaped_quotes_inside_strings() -> None:
    frame = pd.DataFrame({"name": ["o'brien", 'say "hi"', "plain"]})
    assert mask(r"name == 'o\'brien'", frame) == [True, False, False]
    assert mask(r'name == "say \"hi\""', frame) == [False, True, False]
    assert mask('name == "o\'brien"', frame) == [True, False, False]


def test_backtick_names(frame: pd.DataFrame) -> None:
    assert mask("`my col` >= 7", frame) == [False, False, True, True]
    weird = pd.DataFrame({"days since signup": [1, 40], "lambda": [1, 0], "True": [0, 1]})
    assert mask("`days since signup` > 30", weird) == [False, True]
    # Backticks make Python keywords usable as column names.
    assert mask("`lambda` == 1 or `True` == 1", weird) == [True, True]


def test_bare_columns_and_boolean_literals(frame: pd.DataFrame) -> None:
    assert mask("is_active", frame) == [True, False, True, False]
    assert mask("not is_active", frame) == [False, True, False, True]
    assert mask("c", frame) == [False, True, True, False]  # numbers: true when non-zero
    assert mask("true", frame) == [True] * 4
    assert mask("false or a", frame) == [True, False, True, False]
    assert mask("is_active == false", frame) == [False, True, False, True]


def test_columns_lists_every_name_referenced() -> None:
    expression = parse("a == 1 and (`my col` > 2 or not plan in ['x']) and a != b and is_active")
    assert expression.columns == frozenset({"a", "b", "my col", "plan", "is_active"})
    assert parse("true").columns == frozenset()


def test_expression_keeps_its_text_and_is_immutable() -> None:
    text = "  tier  >=2 "
    expression = parse(text)
    assert isinstance(expression, Expression)
    assert expression.text == text
    assert str(expression) == text
    with pytest.raises(AttributeError):
        expression.text = "a"  # type: ignore[misc]
    assert parse(text) == expression


def test_evaluate_on_empty_frame() -> None:
    empty = pd.DataFrame({"a": pd.Series([], dtype="int64")})
    result = parse("a > 1").evaluate(empty)
    assert result.dtype == bool
    assert result.empty


# --- missing values ---------------------------------------------------------------------------


def test_missing_values_never_satisfy_a_comparison() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0],
            "s": ["a", None, "b"],
            "n": pd.array([1, None, 0], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
        }
    )
    assert mask("x == 1", frame) == [True, False, False]
    assert mask("x != 1", frame) == [False, False, True]
    assert mask("x < 10", frame) == [True, False, True]
    assert mask("x in [1, 3]", frame) == [True, False, True]
    assert mask("x not in [1]", frame) == [False, False, True]
    assert mask("s != 'a'", frame) == [False, False, True]
    assert mask("s < 'z'", frame) == [True, False, True]
    assert mask("s not in ['a']", frame) == [False, False, True]
    assert mask("n != 1", frame) == [False, False, True]
    assert mask("n", frame) == [True, False, False]
    assert mask("flag", frame) == [True, False, False]
    assert mask("x == x", frame) == [True, False, True]
    # `not` applies after the comparison: a missing value is "not equal to 1".
    assert mask("not (x == 1)", frame) == [False, True, True]


# --- data errors ------------------------------------------------------------------------------


def test_missing_column_names_it_the_source_and_the_alternatives(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError) as caught:
        parse("tier > 1 and recency_days < 30").evaluate(frame, source="population.csv")
    message = str(caught.value)
    assert "'recency_days'" in message
    assert "population.csv" in message
    assert "tier > 1 and recency_days < 30" in message
    assert "plan" in message and "my col" in message


def test_missing_column_list_is_truncated() -> None:
    wide = pd.DataFrame({f"col{i}": [0] for i in range(50)})
    with pytest.raises(DataError, match=r"col19, \.\.\. \(30 more\)") as caught:
        parse("nope == 1 or gone == 2").evaluate(wide)
    assert "col20" not in str(caught.value)
    assert "'gone', 'nope'" in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "fragments"),
    [
        ("plan > 1", ["'plan'", "strings", "1", "number", "'>'"]),
        ("tier <= 'b'", ["'tier'", "numbers", "'b'", "string"]),
        ("plan == 2", ["'plan'", "strings", "number"]),
        ("plan in [1, 2]", ["'plan'", "strings", "number"]),
        ("plan == tier", ["'plan'", "'tier'", "strings", "numbers"]),
    ],
)
def test_comparing_strings_with_numbers_is_a_data_error(
    expression: str, fragments: list[str], frame: pd.DataFrame
) -> None:
    with pytest.raises(DataError) as caught:
        parse(expression).evaluate(frame)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert expression in str(caught.value)


def test_a_string_column_on_its_own_is_not_a_condition(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"'plan'.*strings"):
        parse("plan").evaluate(frame)


def test_datetime_columns_compare_with_date_strings_only() -> None:
    frame = pd.DataFrame({"signup": pd.to_datetime(["2024-01-01", "2025-06-01", None])})
    assert mask("signup >= '2025-01-01'", frame) == [False, True, False]
    with pytest.raises(DataError, match="'signup'"):
        parse("signup > 5").evaluate(frame)


def test_unordered_categories_cannot_be_ordered() -> None:
    frame = pd.DataFrame({"plan": pd.Categorical(["basic", "pro"])})
    assert mask("plan == 'pro'", frame) == [False, True]
    with pytest.raises(DataError, match="'plan'"):
        parse("plan < 'pro'").evaluate(frame)


# --- syntax errors ----------------------------------------------------------------------------

HOSTILE = [
    # (expression, offending token, position)
    ("__import__('os').system('x')", "__import__(", 0),
    ("len(x) > 2", "len(", 0),
    ("len (x) > 2", "len (", 0),
    ("df.columns", ".columns", 2),
    ("x.__class__", ".__class__", 1),
    ("__class__", "__class__", 0),
    ("a; b", ";", 1),
    ("a && b", "&&", 2),
    ("a & b", "&", 2),
    ("a || b", "||", 2),
    ("!a", "!", 0),
    ("~a", "~", 0),
    ("a = 1", "=", 2),
    ("x[0] > 1", "x[", 0),
    ("lambda: 1", "lambda", 0),
    ("import os", "import", 0),
    ("a is None", "is", 2),
    ("a == None", "None", 5),
    ("a == True", "True", 5),
    ("a if b else c", "if", 2),
    ('"unterminated', '"unterminated', 0),
    ("plan == 'pro", "'pro", 8),
    ("`my col > 1", "`my col > 1", 0),
    ("`` > 1", "``", 0),
    ("(a > 1", "(", 0),
    ("a > 1)", ")", 5),
    ("(a > 1 b", "b", 7),
    ("", "", 0),
    ("   ", "", 3),
    ("a > > 1", ">", 4),
    ("a >", "", 3),
    ("a in 5", "5", 5),
    ("a in []", "]", 6),
    ("a in [b]", "b", 6),
    ("a in [1 2]", "2", 8),
    ("a not b", "b", 6),
    ("1 +  2 > 1", "+", 2),
    ("a - 1 > 0", "-", 2),
    ("a * 2", "*", 2),
    ("a @ b", "@", 2),
    ("$a", "$", 0),
    ("a < b < c", "<", 6),
    ("a AND b", "AND", 2),
    ("a b", "b", 2),
    ("5", "5", 0),
    ("'text' or a", "'text'", 0),
    ("a and", "", 5),
    ("not", "", 3),
    ("a == 1 or or b", "or", 10),
    ("a\n; b", ";", 2),
    ("{a}", "{", 0),
    ("a == 1:", ":", 6),
    ("(" * 40 + "a" + ")" * 40, "(", 32),
]


@pytest.mark.parametrize(("expression", "token", "position"), HOSTILE)
def test_hostile_and_malformed_input_is_refused(expression: str, token: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(expression)
    error = caught.value
    assert error.token == token
    assert error.position == position
    assert error.expression == expression
    message = str(error)
    assert repr(token) in message
    assert f"position {position}" in message
    assert repr(expression) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("expression", "advice"),
    [
        ("len(x) > 2", "function calls are not allowed"),
        ("df.columns", "attribute access is not allowed"),
        ("x[0] > 1", "subscripts are not allowed"),
        ("a && b", "use 'and'"),
        ("a || b", "use 'or'"),
        ("!a", "use 'not'"),
        ("a = 1", "use '=='"),
        ("a is None", "use == or !="),
        ("a == True", "lowercase true"),
        ("a AND b", "write 'and'"),
        ('"open', "unterminated string"),
        ("(a > 1", "never closed"),
        ("a > 1)", "no matching '('"),
        ("", "empty"),
        ("a * 2", "arithmetic"),
    ],
)
def test_errors_say_what_to_write_instead(expression: str, advice: str) -> None:
    with pytest.raises(ExpressionError, match=advice.replace("(", r"\(").replace("|", r"\|")):
        parse(expression)


def test_expression_error_is_a_spec_error_with_the_documented_message() -> None:
    with pytest.raises(SpecError) as caught:
        parse("len(x) > 2")
    assert str(caught.value) == (
        "eligibility expression 'len(x) > 2': function calls are not allowed "
        "(found 'len(' at position 0); allowed are column names, numbers, strings, "
        "comparisons (== != < <= > >=), in [...] lists, and/or/not and parentheses"
    )


def test_parsing_never_evaluates_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("user text reached eval/exec/compile")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    monkeypatch.setattr(pd.DataFrame, "query", forbidden)
    monkeypatch.setattr(pd.DataFrame, "eval", forbidden)
    frame = pd.DataFrame({"a": [1, 2]})
    assert parse("a > 1 and not a in [5]").evaluate(frame).tolist() == [False, True]


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_any_text_parses_or_raises_expression_error(text: str) -> None:
    try:
        expression = parse(text)
    except ExpressionError as error:
        assert error.expression == text
        assert 0 <= error.position <= len(text)
        assert text[error.position :].startswith(error.token)
    else:
        assert expression.text == text


_ATOMS = st.sampled_from(
    [
        "a",
        "b",
        "(",
        ")",
        "[",
        "]",
        ",",
        "==",
        "!=",
        "<",
        ">=",
        "and",
        "or",
        "not",
        "in",
        "true",
        "1",
        "-2.5",
        "'s'",
        "`c d`",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_ATOMS, max_size=12))
def test_token_soup_parses_or_raises_expression_error(atoms: list[str]) -> None:
    text = " ".join(atoms)
    try:
        expression = parse(text)
    except ExpressionError as error:
        assert text[error.position :].startswith(error.token)
    else:
        assert expression.columns <= {"a", "b", "c d"}
        frame = pd.DataFrame({"a": [1, 0, 2], "b": [np.nan, 1.0, -2.5], "c d": ["s", None, "t"]})
        try:
            result = expression.evaluate(frame)
        except DataError:
            return  # e.g. strings compared with numbers
        assert result.dtype == bool
        assert len(result) == 3
