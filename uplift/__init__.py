"""uplift: prove, or disprove, that a CRM campaign raises customer value and pays for itself.

The public API: load a spec, prepare its data, analyze it, and run the whole path into
MLflow. Each stage's module can also be used alone.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("uplift")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from uplift.errors import (
    AssignmentError,
    DataError,
    SpecError,
    TrackingError,
    UpliftError,
    UpliftWarning,
)
from uplift.spec import ExperimentSpec, load_spec

__all__ = [
    "AssignmentError",
    "DataError",
    "ExperimentSpec",
    "SpecError",
    "TrackingError",
    "UpliftError",
    "UpliftWarning",
    "__version__",
    "load_spec",
]
