"""Base-model fits shared between learners, so that each distinct model is fitted once.

The T- and X-learners of one cross-fitting fold fit the same outcome models: the
control's outcome and each treatment arm's, with the same base model on the same rows.
:class:`CachedRegressor` asks a :class:`FitCache` before it fits, and the cache answers
with the model fitted earlier on the same parameters and the same data. The base models
are deterministic given their parameters (an integer seed among them) and data, so a
shared fit predicts exactly what a fit of its own would. A model seeded by a random
generator object is fitted afresh every time: its parameters do not say its state.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["CachedRegressor", "FitCache"]


class FitCache:
    """Fitted base models, by their parameters and the data they were fitted on.

    A cache is shared, never copied: ``copy.deepcopy`` (which causalml applies to its
    base learners, and scikit-learn's ``clone`` to parameters that are not estimators)
    returns the cache itself, and a pickled cache comes back empty, so a model saved
    with one does not carry every other model along.

    Attributes
    ----------
    hits : int
        Fits answered from the cache.
    misses : int
        Fits made (and remembered).
    """

    def __init__(self) -> None:
        self._fitted: dict[str, Any] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._fitted)

    def __deepcopy__(self, memo: dict[int, Any]) -> FitCache:
        return self

    def __copy__(self) -> FitCache:
        return self

    def __reduce__(self) -> tuple[type[FitCache], tuple[()]]:
        return (FitCache, ())

    def fit(self, estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
        """A clone of ``estimator`` fitted on ``X`` and ``y``: the one fitted before on
        the same parameters and data, or a new fit, remembered."""
        params = estimator.get_params(deep=False)
        if any(isinstance(v, np.random.RandomState | np.random.Generator) for v in params.values()):
            return clone(estimator).fit(X, y)
        key = _key(estimator, params, X, y)
        fitted = self._fitted.get(key)
        if fitted is None:
            fitted = clone(estimator).fit(X, y)
            self._fitted[key] = fitted
            self.misses += 1
        else:
            self.hits += 1
        return fitted


class CachedRegressor(RegressorMixin, BaseEstimator):
    """A regressor whose fits go through a :class:`FitCache`.

    Parameters
    ----------
    estimator : regressor
        The unfitted base regressor; a clone of it is fitted.
    cache : FitCache
        Where fits are looked up and remembered.

    Attributes
    ----------
    estimator_ : regressor
        The fitted clone; other :class:`CachedRegressor` instances may hold the same one.
    """

    def __init__(self, estimator: Any, cache: FitCache) -> None:
        self.estimator = estimator
        self.cache = cache

    def fit(self, X: Any, y: Any) -> CachedRegressor:
        """Fit (or fetch) the base regressor on ``X`` and ``y``."""
        self.estimator_ = self.cache.fit(self.estimator, np.asarray(X), np.asarray(y))
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The fitted base regressor's predictions."""
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict(X))


def _key(estimator: Any, params: dict[str, Any], X: np.ndarray, y: np.ndarray) -> str:
    """A digest of the estimator's class and parameters, and of the data's shape, type and
    bytes."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{type(estimator).__qualname__}{sorted(params.items())!r}".encode())
    for array in (X, y):
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.shape}{contiguous.dtype.str}".encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()
