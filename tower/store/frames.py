"""The one shape every backend gives its reading frames, so callers never care which store answered.

Columns: the leading ones (ts, device_id, ...), seq, then fields in contract order, then fields
sites added (sorted); field columns that are empty throughout are dropped; booleans are booleans.
"""

from __future__ import annotations

import pandas as pd

from tower.contract import RESERVED_FIELD_NAMES, storage_columns

_COLUMNS = storage_columns()
_CONTRACT_ORDER = {name: index for index, name in enumerate(_COLUMNS)}


def tidy_readings(frame: pd.DataFrame, leading: list[str], fields: list[str] | None = None) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame({column: frame.get(column, []) for column in leading})
    others = [c for c in frame.columns if c not in leading and frame[c].notna().any()]
    others.sort(key=lambda c: (c != "seq", _CONTRACT_ORDER.get(c, len(_CONTRACT_ORDER)), c))
    if fields is not None:
        others = [c for c in fields if c in others]
    frame = frame[leading + others].sort_values(leading[:1], kind="stable").reset_index(drop=True)
    for name in others:
        spec = _COLUMNS.get(name)
        if spec is not None and spec.type is bool:
            frame[name] = frame[name].astype("boolean")
    return frame


def field_column(name: str) -> str:
    """The column of a stored field. A field named like a leading column (which stores written before
    such names were rejected may hold) is shown as extra.<name> rather than shadow or collide with it."""
    return f"{EXTRA_PREFIX}{name}" if name in RESERVED_FIELD_NAMES else name


EXTRA_PREFIX = "extra."


def plain_value(value: object) -> object:
    """numpy scalars (from frames) to Python ones, so json and the rules can use them."""
    return value.item() if hasattr(value, "item") else value


def utc(epoch_ms: pd.Series) -> pd.Series:
    return pd.to_datetime(epoch_ms, unit="ms", utc=True)
