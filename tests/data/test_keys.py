"""Tests of uplift.data.keys: salted customer keys.

The reference is Python's ``hmac`` module (RFC 2104 HMAC with SHA-256) applied to the
id's text one customer at a time; the published RFC 4231 test case 2 checks that the
module is used the way the RFC defines it.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest

from uplift.data.keys import customer_keys, salt_from_env
from uplift.errors import SpecError


def test_the_key_of_rfc_4231_case_2_is_its_published_hmac() -> None:
    # RFC 4231 section 4.3: key "Jefe", data "what do ya want for nothing?"
    keys = customer_keys(pd.Series(["what do ya want for nothing?"]), b"Jefe")
    assert keys.iloc[0] == "5bdcc146bf60754e6a042426089575c7"


def test_numeric_ids_are_keyed_by_their_text_as_the_arms_are_hashed() -> None:
    ids = pd.Series([10_001, 10_002, 7], index=[5, 6, 7])
    keys = customer_keys(ids, b"0123456789abcdef")
    expected = [
        hmac.new(b"0123456789abcdef", str(i).encode(), hashlib.sha256).hexdigest()[:32]
        for i in (10_001, 10_002, 7)
    ]
    assert keys.tolist() == expected and list(keys.index) == [5, 6, 7]
    assert customer_keys(ids, b"another salt here").iloc[0] != expected[0]


def test_the_salt_comes_from_the_environment_and_must_be_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_SALT", "x" * 16)
    assert salt_from_env("CRM_SALT") == b"x" * 16
    monkeypatch.setenv("CRM_SALT", "x" * 15)
    with pytest.raises(SpecError, match=r"CRM_SALT .* at least 16 characters, but it holds 15"):
        salt_from_env("CRM_SALT")
    monkeypatch.delenv("CRM_SALT")
    with pytest.raises(SpecError, match="but it is not set"):
        salt_from_env("CRM_SALT")
