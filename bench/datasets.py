"""Real purchase histories from ../shared/data as catalogue events, for benchmarks. The mapping is
`cohortline import online-retail`'s (infra.importers.online_retail), so the benchmarks send what an
import records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infra.importers.online_retail import COUNTRY_CODES, NAMESPACE, events, read_rows

__all__ = ["COUNTRY_CODES", "DEFAULT_DATA", "NAMESPACE", "data_file", "online_retail_events"]

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_file(relative: str) -> Path:
    """A file of the shared data sets: under COHORTLINE_DATA_DIR, or ../shared/data beside the checkout."""
    path = Path(os.environ.get("COHORTLINE_DATA_DIR", DEFAULT_DATA)) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the data sets live in ../shared/data beside the checkout, or set COHORTLINE_DATA_DIR"
        )
    return path


def online_retail_events() -> Iterator[dict[str, Any]]:
    """Per customer invoice (cancellations and rows without a customer left out): a session, a
    shopping-scene view per line, the order with its items, and its payment. Event ids are derived
    from the data, so a rerun sends the same ids."""
    for _, event in events(read_rows(data_file("online_retail/online_retail.csv.gz"))):
        yield event
