"""Strict JSON records, written atomically.

Kept free of jax so that ``experiments.bench_speed``'s PyOD worker can write its results without
importing (and paying for) the library it is measured against.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers, tuples as lists, keys as strings and
    non-finite floats as None (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_text_atomic(text: str, path: Path) -> Path:
    """Write ``text`` to a temporary sibling and rename it over ``path``, so a killed run never
    leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(record: Any, path: Path, indent: int | None = 2) -> Path:
    """``record`` as strict JSON (NaN as null), written atomically."""
    return write_text_atomic(json.dumps(jsonable(record), indent=indent), path)
