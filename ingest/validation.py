"""Turning one decoded object into a Reading, or a Rejected with the reason a person can act on.

The pydantic models are generated from tower.contract.KIND_FIELDS, so a field's type and range
are written once. Every adapter (native JSON, OwnTracks, line protocol) ends here.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, create_model

from tower.contract import (
    DEVICE_ID_PATTERN,
    EARLIEST_TS_MS,
    FIELD_NAME_PATTERN,
    INT64_MAX,
    KIND_FIELDS,
    RESERVED_FIELD_NAMES,
    DeviceKind,
    FieldSpec,
    Reading,
    is_plain_number,
    storage_columns,
)
from tower.timeutil import rfc3339


class Rejected(Exception):
    """The message or item breaks the contract; str(self) is the dead-letter reason."""


def _annotation(spec: FieldSpec) -> Any:
    if spec.choices:
        return Literal[spec.choices]
    if spec.type is bool:
        return bool
    return Annotated[spec.type, Field(ge=spec.min, le=spec.max, allow_inf_nan=False)]


def _model(kind: DeviceKind) -> type[BaseModel]:
    fields: dict[str, Any] = {spec.name: (_annotation(spec) | None, None) for spec in KIND_FIELDS[kind]}
    return create_model(
        f"{kind.value.title()}Reading",
        __config__=ConfigDict(extra="allow", strict=True),
        ts=(Annotated[AwareDatetime, Field(strict=False)], ...),
        seq=(Annotated[int, Field(ge=0, le=INT64_MAX)] | None, None),
        **fields,
    )


MODELS: dict[DeviceKind, type[BaseModel]] = {kind: _model(kind) for kind in DeviceKind}
_COLUMNS = storage_columns()


def check_device_id(device_id: str) -> str:
    if not DEVICE_ID_PATTERN.match(device_id):
        raise Rejected(
            f"invalid device id '{device_id[:80]}': use 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    return device_id


def reading_from_json(
    kind: DeviceKind, device_id: str, raw: bytes, received_ms: int, max_future_skew_ms: int
) -> Reading:
    """Fast path for one JSON object: parsing and validation in one pass of pydantic-core."""
    try:
        model = MODELS[kind].model_validate_json(raw)
    except ValidationError as error:
        raise Rejected(describe(error)) from None
    return _reading(kind, device_id, model, received_ms, max_future_skew_ms)


def reading_from_object(
    kind: DeviceKind, device_id: str, obj: Any, received_ms: int, max_future_skew_ms: int
) -> Reading:
    if not isinstance(obj, dict):
        raise Rejected(f"expected a JSON object, got {type(obj).__name__}")
    try:
        model = MODELS[kind].model_validate(obj)
    except ValidationError as error:
        raise Rejected(describe(error)) from None
    return _reading(kind, device_id, model, received_ms, max_future_skew_ms)


def _reading(kind: DeviceKind, device_id: str, model: BaseModel, received_ms: int, max_future_skew_ms: int) -> Reading:
    ts_ms = _event_time_ms(model.ts, received_ms, max_future_skew_ms)  # type: ignore[attr-defined]
    # model.__dict__ rather than iterating the model: same content, a fraction of the cost per message
    fields = {name: value for name, value in model.__dict__.items() if value is not None}
    del fields["ts"]
    fields.pop("seq", None)
    for name, value in (model.model_extra or {}).items():
        fields[name] = _extra_value(name, value)
    if not fields:
        raise Rejected("reading has no fields besides ts/seq")
    return Reading(kind, device_id, ts_ms, fields, model.seq)  # type: ignore[attr-defined]


def _extra_value(name: str, value: Any) -> float | int:
    """A field beyond the kind's contract: a number every store can hold, under a name no store column has."""
    if not FIELD_NAME_PATTERN.match(name):
        raise Rejected(
            f"field name '{name[:40]}' is not allowed: use 1-64 letters, digits or '_', starting with a letter"
        )
    if name.lower() in RESERVED_FIELD_NAMES:
        raise Rejected(f"field name '{name}' is reserved (every reading has a column of that name); rename the field")
    if not is_plain_number(value):
        raise Rejected(f"unknown field '{name}' is {type(value).__name__}; fields beyond the contract must be numbers")
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejected(f"field {name}: {value} is not a finite number")
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise Rejected(f"field {name}: integer outside the signed 64-bit range")
    spec = _COLUMNS.get(name)
    if spec is not None and not (spec.type is float and spec.min <= value <= spec.max):
        # Another kind's field: it shares that field's column, so it keeps that field's type and range.
        raise Rejected(f"field {name} is another kind's field, defined as {_spec_text(spec)}; got {value!r}"[:300])
    return value


def _spec_text(spec: FieldSpec) -> str:
    if spec.type is float:
        return f"a number in {spec.min:g} … {spec.max:g}"
    return {bool: "a boolean", str: f"one of {', '.join(spec.choices)}"}.get(spec.type, spec.type.__name__)


def _event_time_ms(ts: datetime, received_ms: int, max_future_skew_ms: int) -> int:
    ts_ms = int(ts.timestamp() * 1000)
    if ts_ms > received_ms + max_future_skew_ms:
        ahead = (ts_ms - received_ms) / 1000
        raise Rejected(
            f"ts {rfc3339(ts_ms)} is {ahead:.0f} s in the future (limit {max_future_skew_ms // 1000} s); "
            "check the device clock"
        )
    if ts_ms < EARLIEST_TS_MS:
        raise Rejected(f"ts {rfc3339(ts_ms)} is before 2000-01-01; the device clock is probably not set")
    return ts_ms


def describe(error: ValidationError) -> str:
    """'field lat: Input should be less than or equal to 90 (got 123.4)', one clause per problem."""
    clauses = []
    for item in error.errors(include_url=False):
        if item["type"] == "json_invalid":
            clauses.append(f"invalid JSON: {item['ctx'].get('error', item['msg'])}")
            continue
        where = ".".join(str(part) for part in item["loc"]) or "payload"
        got = "" if item["type"] == "missing" else f" (got {repr(item.get('input'))[:40]})"
        clauses.append(f"field {where}: {item['msg']}{got}")
    return "; ".join(clauses)
