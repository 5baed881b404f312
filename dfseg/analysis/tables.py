"""CSV files of the analysis commands: fixed columns, one row per record, floats written plainly."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

Cell = str | int | float | bool | None


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Cell]]) -> Path:
    """Write `rows` under the header `columns` (the same header even with no rows).

    Missing or non-finite values are written as empty cells; floats with 6 significant digits.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in columns])
    return path


def _cell(value: Cell) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
