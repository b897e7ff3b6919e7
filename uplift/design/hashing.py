"""Deterministic salted-hash assignment of customers to arms.

A customer's bucket is the SHA-256 digest of ``"{salt}:{customer_id}"``, its first eight
bytes read as a big-endian unsigned integer, modulo :data:`~uplift.spec.BUCKETS`
(10,000). Arms own fixed, consecutive bucket ranges in the order the spec lists them:
with ``{control: 0.2, a: 0.4, b: 0.4}`` control owns buckets 0-1999, ``a`` 2000-5999
and ``b`` 6000-9999. A customer's arm therefore depends only on the salt, the id and
the weights: never on row order, on who else is in the base, or on the run.

The global holdout is carved out first under its own salt
(:data:`GLOBAL_HOLDOUT_SALT`), independently of any experiment's salt, so the same
customers are held out of every campaign.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from uplift.spec import BUCKETS

__all__ = ["GLOBAL_HOLDOUT", "GLOBAL_HOLDOUT_SALT", "assign_arms", "bucket_of", "buckets"]

#: Salt of the programme-wide holdout, shared by every experiment.
GLOBAL_HOLDOUT_SALT = "uplift:global-holdout"
#: Arm label of customers in the global holdout.
GLOBAL_HOLDOUT = "global_holdout"


def bucket_of(customer_id: object, salt: str) -> int:
    """The bucket (0 to BUCKETS - 1) of one customer under a salt."""
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def buckets(ids: pd.Series, salt: str) -> np.ndarray:
    """Buckets of many customers (see :func:`bucket_of`)."""
    prefix = f"{salt}:".encode()
    out = np.empty(len(ids), dtype=np.int64)
    for i, customer in enumerate(ids.astype(str)):
        digest = hashlib.sha256(prefix + customer.encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") % BUCKETS
    return out


def assign_arms(
    ids: pd.Series, salt: str, arms: Mapping[str, float], global_holdout: float = 0.0
) -> pd.Series:
    """Each customer's arm, indexed like ``ids``.

    Parameters
    ----------
    ids : pd.Series
        Customer ids (compared as text).
    salt : str
        The experiment's salt.
    arms : mapping
        Arm -> weight, in the order that fixes the bucket ranges; weights sum to 1.
    global_holdout : float
        Share of all customers held out of every campaign (labelled
        :data:`GLOBAL_HOLDOUT`), drawn under :data:`GLOBAL_HOLDOUT_SALT`.
    """
    bounds = np.cumsum([round(w * BUCKETS) for w in arms.values()])
    index = np.searchsorted(bounds, buckets(ids, salt), side="right")
    labels = np.asarray(list(arms), dtype=object)[index]
    if global_holdout > 0:
        held = buckets(ids, GLOBAL_HOLDOUT_SALT) < round(global_holdout * BUCKETS)
        labels[held] = GLOBAL_HOLDOUT
    return pd.Series(labels, index=ids.index, name="arm")
