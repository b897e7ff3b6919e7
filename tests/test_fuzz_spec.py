"""Property-based fuzzing of the spec loader: any YAML gives a spec or a clear error.

Hypothesis generates ``UPLIFT_FUZZ_SPECS`` documents (10,000 in the default run, about
50 s on the 2-core machine): the example spec with one to three keys deleted, replaced by
an arbitrary value (nested lists and mappings of text, numbers, booleans, nulls) or joined
by an unknown key, plus arbitrary text.
``load_spec`` must return a validated spec or raise :class:`~uplift.errors.SpecError`,
whose one-paragraph message names the file; any other exception is a traceback a user
would see.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from cli_support import EXAMPLE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uplift.errors import SpecError
from uplift.spec import ExperimentSpec, load_spec

RAW = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _paths(node: Any, trail: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [trail] if trail else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*trail, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*trail, index))
    return out


PATHS = _paths(RAW)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
MUTATION = st.tuples(st.sampled_from(PATHS), st.sampled_from(["delete", "replace", "add"]), VALUES)


def _mutated(mutations: list[tuple[tuple[Any, ...], str, Any]]) -> Any:
    data = copy.deepcopy(RAW)
    for path, how, value in mutations:
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            last = path[-1]
            if how == "delete":
                del parent[last]
            elif how == "replace":
                parent[last] = value
            elif isinstance(parent, dict):
                parent[f"unknown_{len(parent)}"] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the path
    return data


DOCUMENTS = st.one_of(
    st.lists(MUTATION, min_size=1, max_size=3).map(
        lambda m: yaml.dump(_mutated(m), Dumper=DUMPER, sort_keys=False, allow_unicode=True)
    ),
    st.text(max_size=200),
)


@settings(
    max_examples=int(os.environ.get("UPLIFT_FUZZ_SPECS", "10000")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(DOCUMENTS)
def test_any_document_gives_a_spec_or_a_spec_error(tmp_path: Path, document: str) -> None:
    path = tmp_path / "fuzzed.yaml"
    path.write_text(document, encoding="utf-8")
    try:
        spec = load_spec(path)
    except SpecError as exc:
        message = str(exc)
        assert str(path) in message and "\n\n" not in message and "Traceback" not in message
    else:
        assert isinstance(spec, ExperimentSpec)
