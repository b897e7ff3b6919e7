"""Salted keys for customers: per-customer output a reviewer can join, without the ids.

A key is HMAC-SHA256 (RFC 2104) of the id's text (:func:`uplift.data.ids.ids_as_text`,
the text the arms are hashed from) under a secret salt, written as its first 32 hex
digits (128 bits). Whoever holds the salt computes the same key from their CRM's ids;
without it, a key cannot be turned back into an id, even where ids are few and guessable.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import pandas as pd

from uplift.data.ids import ids_as_text
from uplift.errors import SpecError

__all__ = ["MIN_SALT_CHARS", "customer_keys", "salt_from_env"]

#: The shortest salt accepted: a short one could be found by trying them all.
MIN_SALT_CHARS = 16
_KEY_HEX = 32


def salt_from_env(variable: str) -> bytes:
    """The salt held by the environment variable ``variable``.

    Raises
    ------
    SpecError
        When the variable is unset or shorter than :data:`MIN_SALT_CHARS` characters.
    """
    value = os.environ.get(variable, "")
    if len(value) < MIN_SALT_CHARS:
        found = "it is not set" if not value else f"it holds {len(value)} characters"
        raise SpecError(
            f"tracking.per_customer: customers are logged under keys salted by the "
            f"environment variable {variable} (salt_env), which must hold a secret of at "
            f"least {MIN_SALT_CHARS} characters, but {found}. Set it (the same secret each "
            f"run, kept out of the spec and the store), or remove tracking.per_customer."
        )
    return value.encode("utf-8")


def customer_keys(ids: pd.Series, salt: bytes) -> pd.Series:
    """Each id's key: the first 32 hex digits of HMAC-SHA256(salt, id text).

    Parameters
    ----------
    ids : pd.Series
        Customer ids, of any type (their text is keyed).
    salt : bytes
        The secret salt.

    Returns
    -------
    pd.Series
        The keys, indexed like ``ids``.
    """
    digest = hashlib.sha256
    keys = [
        hmac.new(salt, text.encode("utf-8"), digest).hexdigest()[:_KEY_HEX]
        for text in ids_as_text(ids).tolist()
    ]
    return pd.Series(keys, index=ids.index, dtype=object, name="customer_key")
