"""LightGBM models compiled to native code, for scoring large customer bases.

LightGBM's own ``predict`` bounds how fast a base is scored: it evaluates every tree
through a generic interpreter, row by row. TL2cgen (from the Treelite project) writes a
fitted model out as C, with every split a plain comparison, and the machine's C compiler
turns that into a shared library. On the package's default models the trees alone
predict three times as fast, and scoring a base takes about two thirds of the time
(``tests/benchmarks/bench_score.py``).

Compiling is an optimisation, never a change of result. Each compiled model is checked
against LightGBM's own ``predict`` before it is used, on rows built from the model's own
split thresholds (every threshold, the doubles either side of it, and missing values, so
that every branch is taken both ways), and a model whose predictions differ by more than
1e-9 is kept as it was. The rare rows holding a value that LightGBM or the generated code
read specially (see :func:`_special_rows`) are predicted by LightGBM itself. Where TL2cgen
or a C compiler is missing, or compiling fails, the model is kept as it was and
:func:`compile_scoring_model` says why.

Compiled libraries are cached by the model's content (``$UPLIFT_CACHE_DIR``, else
``$XDG_CACHE_HOME/uplift`` or ``~/.cache/uplift``, in ``compiled-trees/``), so a model is
compiled once per machine; a cache that cannot be written falls back to a temporary folder
for the life of the process.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from uplift.analysis.learners import UpliftModel, omp_threads
from uplift.scoring import ScoringModel

__all__ = ["CompileReport", "CompiledTrees", "compile_lightgbm", "compile_scoring_model"]

#: Largest difference from LightGBM's own prediction a compiled model may show, relative
#: to the prediction's size where that is above 1.
TOLERANCE = 1e-9
_PROBE_ROWS = 2_000
_LOW_BITS = np.uint64(0xFFFFFFFF)
_SIGN_BIT = np.uint64(1 << 63)
# LightGBM's kZeroThreshold (1e-35 as a C float), as the bits of a positive double
_ZERO_BITS = np.array(float(np.float32(1e-35))).view(np.uint64)[()]
_TEMPORARY: list[tempfile.TemporaryDirectory[str]] = []


class CompiledTrees:
    """A fitted LightGBM regressor's trees as a compiled library, with its ``predict``.

    Build one with :func:`compile_lightgbm`. ``predict`` takes what the regressor's does (a
    numeric matrix with the features in training order) and returns the same values.
    """

    def __init__(self, original: Any, predictor: Any, library: Path) -> None:
        self.original = original
        """The LightGBM regressor compiled (kept: it is what the library must agree with)."""
        self.library = library
        """The compiled shared library."""
        self.n_features_in_ = int(original.n_features_in_)
        self._predictor = predictor

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for the rows of ``X``, as LightGBM's ``predict`` gives them."""
        import tl2cgen

        x = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"expected a matrix of {self.n_features_in_} features, found shape {x.shape}"
            )
        if len(x) == 0:
            return np.empty(0)
        predicted = np.asarray(self._predictor.predict(tl2cgen.DMatrix(x)), dtype=float)
        predicted = predicted.reshape(-1)
        special = _special_rows(x)
        if special.any():
            predicted[special] = self.original.predict(x[special])
        return predicted

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        # a loaded library cannot be pickled: a pickled copy is the LightGBM model itself
        return copy.copy, (self.original,)


@dataclass(frozen=True)
class CompileReport:
    """What :func:`compile_scoring_model` compiled, and why anything was left as it was."""

    compiled: int
    """LightGBM models replaced by compiled ones."""
    kept: int
    """LightGBM models left to LightGBM's own ``predict``."""
    reasons: tuple[str, ...] = ()
    """Why each kept model was kept (repeats removed)."""
    seconds: float = 0.0
    """Time spent compiling and checking (cached libraries cost only the check)."""

    def describe(self) -> str:
        """One line for the user."""
        if self.compiled == 0 and self.kept == 0:
            return "no LightGBM model to compile: scoring with the models as fitted"
        done = f"compiled {self.compiled} of {self.compiled + self.kept} LightGBM models"
        if self.kept:
            done += f"; the rest use LightGBM's own predict ({'; '.join(self.reasons)})"
        return f"{done} in {self.seconds:.1f} s"


def compile_lightgbm(model: Any, *, cache_dir: Path | None = None) -> CompiledTrees:
    """Compile a fitted ``lightgbm.LGBMRegressor`` and check it against the original.

    Parameters
    ----------
    model : lightgbm.LGBMRegressor
        A fitted regressor.
    cache_dir : Path, optional
        Where compiled libraries are kept; the default is described in the module.

    Returns
    -------
    CompiledTrees
        The compiled model; its ``predict`` equals ``model.predict`` to 1e-9 on the probe
        rows (every split threshold, the floats either side, missing values).

    Raises
    ------
    RuntimeError
        When the model has linear trees, TL2cgen or a C compiler is missing, compiling
        fails, or the compiled model disagrees with the original; the message says which.
    """
    try:
        import tl2cgen
        import treelite
    except ImportError as exc:  # pragma: no cover - both are dependencies of the package
        raise RuntimeError(f"TL2cgen is not installed ({exc})") from None
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler (gcc or cc) on the PATH")
    booster = model.booster_
    text = booster.model_to_string()
    if "is_linear=1" in text:
        # Treelite reads a linear leaf's constant and drops its coefficients: refused here
        # rather than compiled and caught by the check below
        raise RuntimeError("linear trees (linear_tree): TL2cgen compiles constant leaves only")
    # a library is only valid for the machine's architecture and the TL2cgen that wrote it
    where = f"{tl2cgen.__version__}\n{platform.machine()}\n{platform.system()}\n{compiler}"
    key = hashlib.sha256(f"{where}\n{text}".encode()).hexdigest()
    library = _cache_folder(cache_dir) / f"{key[:32]}.so"
    # TL2cgen prints its native log on stdout and warns through Python: neither is for
    # the user, and a failure's output goes into the error
    log = io.StringIO()
    with contextlib.redirect_stdout(log), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if not library.exists():
                _build(treelite.frontend.from_lightgbm(booster), library, Path(compiler).name)
            predictor = tl2cgen.Predictor(library, nthread=_threads())
        except Exception as exc:  # any failure means: keep LightGBM
            detail = " ".join(log.getvalue().split())[-300:]
            raise RuntimeError(
                f"compiling failed ({type(exc).__name__}: {exc}){' ' + detail if detail else ''}"
            ) from None
    compiled = CompiledTrees(model, predictor, library)
    probe = _probe(booster)
    expected = np.asarray(model.predict(probe), dtype=float)
    found = compiled.predict(probe)
    gap = np.abs(found - expected) / np.maximum(1.0, np.abs(expected))
    if not np.all(gap <= TOLERANCE):
        raise RuntimeError(
            f"the compiled model differs from LightGBM's predict by up to {np.nanmax(gap):.3g}"
        )
    return compiled


def compile_scoring_model(
    model: ScoringModel, *, cache_dir: Path | None = None
) -> tuple[ScoringModel, CompileReport]:
    """A copy of ``model`` whose LightGBM regressors are compiled, where they can be.

    Every fitted ``LGBMRegressor`` held by the uplift learners (a T-learner's per-arm
    models, an X-learner's outcome and effect models, ...) and by the arm outcome models is
    compiled with :func:`compile_lightgbm`; one that cannot be is kept, and the report says
    why. ``model`` itself is not changed. Other models (XGBoost, random forests, ridge) are
    kept as they are.

    Returns
    -------
    tuple of (ScoringModel, CompileReport)
        The model to score with, and what was compiled.
    """
    from lightgbm import LGBMRegressor

    began = time.perf_counter()
    counts = {"compiled": 0, "kept": 0}
    reasons: dict[str, None] = {}
    done: dict[int, Any] = {}  # one compiled copy per model object shared between slots

    def swap(value: Any) -> Any:
        if isinstance(value, LGBMRegressor) and getattr(value, "fitted_", False):
            if id(value) not in done:
                try:
                    done[id(value)] = compile_lightgbm(value, cache_dir=cache_dir)
                    counts["compiled"] += 1
                except RuntimeError as exc:
                    done[id(value)] = value
                    counts["kept"] += 1
                    reasons[str(exc)] = None
            return done[id(value)]
        # causalml keeps per-arm models in dicts, the DR-learner's per-fold ones in lists
        if isinstance(value, dict):
            items = {k: swap(v) for k, v in value.items()}
            changed = any(items[k] is not v for k, v in value.items())
            return items if changed else value
        if isinstance(value, list | tuple):
            swapped = [swap(v) for v in value]
            changed = any(a is not b for a, b in zip(swapped, value, strict=True))
            return type(value)(swapped) if changed else value
        return value

    def learner_copy(uplift: UpliftModel | None) -> UpliftModel | None:
        if uplift is None:
            return None
        learner = copy.copy(uplift.learner)
        for name, value in vars(uplift.learner).items():
            swapped = swap(value)
            if swapped is not value:
                setattr(learner, name, swapped)
        return replace(uplift, learner=learner)

    uplift = learner_copy(model.uplift)
    assert uplift is not None
    result = replace(
        model,
        uplift=uplift,
        value_uplift=learner_copy(model.value_uplift),
        arm_outcomes={
            arm: {metric: swap(m) for metric, m in metrics.items()}
            for arm, metrics in model.arm_outcomes.items()
        },
    )
    report = CompileReport(
        counts["compiled"], counts["kept"], tuple(reasons), time.perf_counter() - began
    )
    return result, report


def _threads() -> int:
    # every core, or what OMP_NUM_THREADS allows: TL2cgen refuses more threads than that
    return omp_threads() or os.cpu_count() or 1


def _build(model: Any, library: Path, toolchain: str) -> None:
    """Compile ``model`` into ``library`` atomically (another process may race us)."""
    import tl2cgen

    with tempfile.TemporaryDirectory(dir=library.parent) as work:
        built = Path(work) / library.name
        tl2cgen.export_lib(
            model,
            toolchain=toolchain,
            libpath=built,
            params={"parallel_comp": _threads()},
            nthread=_threads(),
        )
        os.replace(built, library)


def _cache_folder(cache_dir: Path | None) -> Path:
    if cache_dir is None:
        root = os.environ.get("UPLIFT_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "uplift"
        )
        cache_dir = Path(root)
    folder = cache_dir / "compiled-trees"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        return folder
    except OSError:
        if not _TEMPORARY:
            _TEMPORARY.append(tempfile.TemporaryDirectory(prefix="uplift-trees-"))
        return Path(_TEMPORARY[0].name)


def _probe(booster: Any) -> np.ndarray:
    """Rows that take every split of the model both ways, and its missing-value branches.

    Each feature's column draws from its split thresholds, the floats just below and above
    them (which include doubles that TL2cgen would read as missing), NaN and 0; a feature
    the model never splits on is 0.
    """
    thresholds: dict[int, list[float]] = {}

    def walk(node: Mapping[str, Any]) -> None:
        if "split_feature" in node:
            threshold = node["threshold"]
            if isinstance(threshold, int | float):
                thresholds.setdefault(int(node["split_feature"]), []).append(float(threshold))
            walk(node["left_child"])
            walk(node["right_child"])

    dump = booster.dump_model()
    for tree in dump["tree_info"]:
        walk(tree["tree_structure"])
    rng = np.random.default_rng(0)
    probe = np.zeros((_PROBE_ROWS, booster.num_feature()))
    for feature, values in thresholds.items():
        t = np.asarray(values)
        pool = np.concatenate([t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf), [np.nan, 0.0]])
        probe[:, feature] = rng.choice(pool, _PROBE_ROWS)
    return probe


def _special_rows(x: np.ndarray) -> np.ndarray:
    """Rows that the compiled library would read differently from LightGBM.

    Two kinds of value, each about one double in 2**32 and neither seen in ordinary data:

    * a nonzero value within 1e-35 of zero, which LightGBM reads as zero;
    * a value whose low 32 bits are all ones, which TL2cgen's generated code would read
      as missing (its input union flags a missing value by setting those bits), such as
      the double just above -0.5625.
    """
    bits = x.view(np.uint64)
    magnitude = bits & ~_SIGN_BIT
    # magnitude - 1 wraps around for zero, so this is 0 < |x| <= 1e-35
    special = (magnitude - np.uint64(1)) < _ZERO_BITS
    special |= (bits & _LOW_BITS) == _LOW_BITS
    return np.asarray(special.any(axis=1))
