"""Settings for the whole test run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def compiled_tree_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled scoring libraries go to the run's temporary folder, not the user's cache.

    Set in the environment, so the ``uplift`` subprocesses the CLI tests start use it too.
    """
    before = os.environ.get("UPLIFT_CACHE_DIR")
    os.environ["UPLIFT_CACHE_DIR"] = str(tmp_path_factory.mktemp("uplift-cache"))
    yield
    if before is None:
        del os.environ["UPLIFT_CACHE_DIR"]
    else:
        os.environ["UPLIFT_CACHE_DIR"] = before
