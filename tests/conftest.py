"""Settings for the whole test run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one OpenMP thread per test worker (and the uplift processes it starts): LightGBM's
    # threads spin while they wait, and two runs of two threads each on the two cores took
    # 330 s each where one alone took 21 s
    os.environ.setdefault("OMP_NUM_THREADS", "1")

#: Test modules that share a costly session fixture, and the group that runs them on one
#: pytest-xdist worker so that the fixture is built once: the Spark session (a JVM) and
#: the MLflow server with the example run logged to it. Any other module is a group of its
#: own, so its module fixtures are built once too.
GROUPS = {
    "tests/test_cli_effects.py": "spark",
    "tests/test_spark_assign.py": "spark",
    "tests/test_spark_score.py": "spark",
    "tests/tracking/test_memo_browser.py": "mlflow-server",
    "tests/tracking/test_mlflow_server.py": "mlflow-server",
    "tests/tracking/test_privacy.py": "mlflow-server",
}
SHARED = {"spark": "spark", "server": "mlflow-server"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send the tests to the workers a group at a time (see :data:`GROUPS`)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return GROUPS.get(module, module)

    return ByGroup(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep :data:`GROUPS` true: a module that uses a shared fixture must be in its group."""
    for item in items:
        module = item.nodeid.split("::")[0]
        for fixture, group in SHARED.items():
            if fixture in getattr(item, "fixturenames", ()) and GROUPS.get(module) != group:
                raise pytest.UsageError(
                    f"{module} uses the {fixture!r} fixture: add it to GROUPS in "
                    f"tests/conftest.py as {group!r}, so that one worker runs all its users"
                )


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
