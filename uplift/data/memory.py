"""Handing memory that Arrow has cached back to the operating system between stages.

Arrow's allocator keeps freed blocks for reuse. After reading a ten-million-row Parquet
file it held 1.5 GB of resident memory for 0.7 GB of live data; releasing the cache
brought it to 0.9 GB. The stages that read or write large tables call
:func:`release_arrow_memory` when they are done, so peak memory tracks live data.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["release_arrow_memory"]


def release_arrow_memory() -> None:
    """Return the memory Arrow's default pool holds unused to the operating system."""
    pa.default_memory_pool().release_unused()
