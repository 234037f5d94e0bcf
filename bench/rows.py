"""The rows a bench writes with ``--json PATH`` for bench/run_all.py's one table."""

from __future__ import annotations

import json
from pathlib import Path


def row(figure: str, value: float, unit: str, target: str = "", met: bool | None = None) -> dict:
    """One figure; `target` in words ("< 10 ms", ">= 0.3"), `met` None where there is none."""
    return {"figure": figure, "value": float(value), "unit": unit, "target": target, "met": met}


def rows_write(path: str | None, rows: list[dict]) -> None:
    """Write the rows to `path` as ``{"rows": [...]}``; nothing when no path was given."""
    if path:
        Path(path).write_text(json.dumps({"rows": rows}, indent=2))
