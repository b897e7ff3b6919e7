"""Settings for the whole test run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

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


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session on 127.0.0.1 for every Spark test (the JVM takes 10-25 s).

    Skips where pyspark or Java is missing, except where ``UPLIFT_TEST_SPARK`` is set
    (``.ci/run`` sets it), which makes a missing one fail the tests.
    """
    if not os.environ.get("UPLIFT_TEST_SPARK"):
        try:
            import pyspark  # noqa: F401
        except ImportError:
            pytest.skip("pyspark is not installed (pip install -e '.[dev]' installs it)")
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            pytest.skip("no Java runtime for Spark (java on PATH or JAVA_HOME)")
    from uplift.engines.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()
