"""Settings for the whole test run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one OpenMP thread per test worker (and the uplift processes it starts): LightGBM's
    # threads spin while they wait, and two workers' threads sharing the cores slowed a
    # fit about tenfold
    os.environ.setdefault("OMP_NUM_THREADS", "1")

#: Session fixtures that are costly to build, and the test group that shares one of each.
SHARED = {"spark": "spark", "server": "mlflow-server"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests for pytest-xdist (``--dist loadgroup``, set in pyproject.toml).

    A test module's tests run on one worker, so its module fixtures are built once; the
    tests that use the Spark session or the MLflow server run on one worker, so the JVM
    and the server (and the run logged to it) start once.
    """
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        used = set(getattr(item, "fixturenames", ()))
        group = next((g for name, g in SHARED.items() if name in used), None)
        item.add_marker(pytest.mark.xdist_group(group or item.nodeid.split("::")[0]))


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
