"""Deterministic salted-hash assignment of customers to arms.

A customer's bucket is the XXH64 hash (seed 0) of the UTF-8 text ``"{salt}:{customer_id}"``
modulo :data:`~uplift.spec.BUCKETS` (10,000). Arms own fixed, consecutive bucket ranges
in the order the spec lists them: with ``{control: 0.2, a: 0.4, b: 0.4}`` control owns
buckets 0-1999, ``a`` 2000-5999 and ``b`` 6000-9999. A customer's arm therefore depends
only on the salt, the id and the weights: never on row order, on who else is in the
base, or on the run.

Weights may sum to less than one. The buckets after the last arm are then unallocated:
customers there are not in the experiment, and an arm added later at the end of the
list takes its range from them, so adding an arm moves nobody already assigned.
Changing a weight moves the boundaries after it, and so moves customers; the ledger
(:mod:`uplift.design.ledger`) refuses that for a launched experiment.

Three independent hashes are applied, in this order:

1. the programme's global holdout, under :data:`GLOBAL_HOLDOUT_SALT`: a customer whose
   bucket is below ``share * BUCKETS`` is held out of every campaign;
2. the layer, under ``"uplift:layer:{name}"``: experiments of one layer own disjoint
   ranges of the layer's buckets, so they never share a customer;
3. the experiment's own salt, which picks the arm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xxhash

from uplift.data.ids import ids_as_arrow
from uplift.design.xxh64 import xxh64
from uplift.spec import BUCKETS

__all__ = [
    "GLOBAL_HOLDOUT",
    "GLOBAL_HOLDOUT_SALT",
    "HASH_SEED",
    "arm_ranges",
    "assign_arms",
    "bucket_matrix",
    "bucket_of",
    "buckets",
    "layer_salt",
]

#: Salt of the programme-wide holdout, shared by every experiment.
GLOBAL_HOLDOUT_SALT = "uplift:global-holdout"
#: Arm label of customers in the global holdout.
GLOBAL_HOLDOUT = "global_holdout"
#: Seed of XXH64; fixed forever, since changing it would move every customer.
HASH_SEED = 0


def layer_salt(layer: str) -> str:
    """The salt that spreads a layer's customers over its buckets."""
    return f"uplift:layer:{layer}"


def bucket_of(customer_id: object, salt: str) -> int:
    """The bucket (0 to BUCKETS - 1) of one customer under a salt."""
    return xxhash.xxh64_intdigest(f"{salt}:{customer_id}".encode(), HASH_SEED) % BUCKETS


def bucket_matrix(ids: pd.Series, salts: Sequence[str]) -> np.ndarray:
    """Buckets of many customers under several salts, shape ``(len(salts), len(ids))``.

    Equal to :func:`bucket_of` for every id and salt (ids are compared as text); the
    hashing is vectorised (:func:`uplift.design.xxh64.xxh64`).
    """
    prefixes = [f"{salt}:".encode() for salt in salts]
    digests = xxh64(ids_as_arrow(ids), prefixes, HASH_SEED)
    # in place, and read back as int64 (buckets are far below 2**63): on 30,000,000
    # digests this halves the time of `(digests % BUCKETS).astype(np.int64)`
    np.remainder(digests, np.uint64(BUCKETS), out=digests)
    return digests.view(np.int64)


def buckets(ids: pd.Series, salt: str) -> np.ndarray:
    """Buckets of many customers under one salt (see :func:`bucket_of`)."""
    return bucket_matrix(ids, [salt])[0]


def arm_ranges(arms: Mapping[str, float]) -> dict[str, tuple[int, int]]:
    """Each arm's half-open bucket range ``[start, end)``, consecutive in the given order."""
    out, start = {}, 0
    for arm, weight in arms.items():
        end = start + round(weight * BUCKETS)
        out[arm] = (start, end)
        start = end
    return out


def assign_arms(
    ids: pd.Series,
    salt: str,
    arms: Mapping[str, float],
    global_holdout: float = 0.0,
    layer: tuple[str, int, int] | None = None,
) -> pd.Series:
    """Each customer's arm, indexed like ``ids``.

    Parameters
    ----------
    ids : pd.Series
        Customer ids (compared as text).
    salt : str
        The experiment's salt.
    arms : mapping
        Arm -> weight, in the order that fixes the bucket ranges; weights sum to at most 1.
    global_holdout : float
        Share of all customers held out of every campaign (labelled
        :data:`GLOBAL_HOLDOUT`), drawn under :data:`GLOBAL_HOLDOUT_SALT`.
    layer : (name, start, end), optional
        The layer and the half-open range of its buckets this experiment owns; customers
        outside it belong to other experiments of the layer.

    Returns
    -------
    pd.Series
        Categorical, with the arms in order then :data:`GLOBAL_HOLDOUT` as categories:
        the arm, :data:`GLOBAL_HOLDOUT`, or missing for customers not in the experiment
        (outside its layer range or in unallocated buckets).
    """
    ends = [end for _, end in arm_ranges(arms).values()]
    salts = [salt]
    if layer is not None:
        salts.append(layer_salt(layer[0]))
    if global_holdout > 0:
        salts.append(GLOBAL_HOLDOUT_SALT)
    hashed = bucket_matrix(ids, salts)
    # code k < len(arms) is an arm, len(arms) no arm, len(arms) + 1 the global holdout
    codes = np.searchsorted(ends, hashed[0], side="right").astype(np.int16)
    outside, held = len(arms), len(arms) + 1
    if layer is not None:
        _, start, end = layer
        codes[(hashed[1] < start) | (hashed[1] >= end)] = outside
    if global_holdout > 0:
        codes[hashed[-1] < round(global_holdout * BUCKETS)] = held
    codes[codes == outside] = -1
    codes[codes == held] = outside
    labels = pd.Categorical.from_codes(codes, categories=[*arms, GLOBAL_HOLDOUT])
    return pd.Series(labels, index=ids.index, name="arm")
