"""Fuzzing (hypothesis, bounded examples) of every input path: decode -> validate -> write into SQLite
and into the InfluxDB line-protocol path (VictoriaMetrics, read back through its export API), and the
store's readers (`latest`, `readings`, `tower query readings`) on rows mixing extra fields, some named
like a column. Whatever the decoder accepts, every store holds exactly as decoded; nothing raises."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import Decoder
from tests.servers import VictoriaMetrics
from tower.cli import main as tower_main
from tower.cli.output import print_frame
from tower.contract import FIELD_NAME_PATTERN, KIND_FIELDS, DeviceKind, FieldSpec, Reading, storage_columns
from tower.store import Batch, Store, open_store
from tower.store.sqlite import SqliteStore
from tower.timeutil import now_ms

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NOW = now_ms()
DECODER = Decoder(max_payload_bytes=256 * 1024, max_future_skew_ms=300_000, dead_letter_payload_bytes=1024)
COLUMNS = storage_columns()
_devices = itertools.count()

# -- hostile messages ----------------------------------------------------------------------------

NAMES = [*COLUMNS, "pallet_count", "oil_bar", "x", "", " ", "device_id", "ts", "kind", "seq", "extra", "time",
         "mean_x", "Ünïcode", "a,b=c", "_private", "x" * 70]  # fmt: skip
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e3, max_value=1e3),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=100),
)
values = st.one_of(numbers, st.booleans(), st.text(max_size=6), st.none(), st.lists(st.integers(), max_size=2),
                   st.sampled_from(["running", "idle", "fault"]))  # fmt: skip
event_times = st.one_of(
    st.integers(min_value=NOW - 30 * 86_400_000, max_value=NOW + 600_000),  # epoch ms, some in the future
    st.integers(min_value=(NOW - 86_400_000) // 1000, max_value=NOW // 1000),  # epoch s
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.just("2026-11-22T08:15:00.250+01:00"),
)
objects = st.builds(
    lambda fields, ts, seq: {**fields, "ts": ts, **({} if seq is None else {"seq": seq})},
    st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=8)), values, max_size=6),
    event_times,
    st.one_of(st.none(), st.integers(min_value=-5, max_value=2**70), st.text(max_size=3)),
)


def _valid(spec: FieldSpec) -> st.SearchStrategy:
    if spec.choices:
        return st.sampled_from(spec.choices)
    if spec.type is bool:
        return st.booleans()
    return st.floats(min_value=spec.min, max_value=spec.max) | st.integers(
        min_value=int(spec.min), max_value=int(spec.max)
    )


def readings_of(kind: str) -> st.SearchStrategy:
    """Readings that keep the contract (with extra numeric fields a site might add), near its limits."""
    return st.builds(
        lambda fields, extra, ts, seq: {"ts": ts, "seq": seq, **extra, **fields},
        st.fixed_dictionaries({}, optional={spec.name: _valid(spec) for spec in KIND_FIELDS[DeviceKind(kind)]}),
        st.dictionaries(
            st.from_regex(FIELD_NAME_PATTERN, fullmatch=True).filter(lambda n: n not in NAMES),
            st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1),
            max_size=2,
        ),  # fmt: skip
        st.integers(min_value=NOW - 30 * 86_400_000, max_value=NOW),
        st.integers(min_value=0, max_value=2**63 - 1),
    )


def _json(value: object) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity as JavaScript writes them: not JSON, but sent


def _line(kind: str, device: str, fields: dict, ts_ns: int) -> bytes:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return f"{v}i"
        if isinstance(v, float):
            return repr(v)
        return json.dumps(str(v))

    body = ",".join(f"{name.replace(' ', '_') or 'x'}={value(v)}" for name, v in fields.items()) or "x=1"
    return f"{kind},device_id={device} {body} {ts_ns}".encode()


@st.composite
def messages(draw) -> tuple[str, bytes]:
    """(topic, payload) of every format, valid, broken and hostile; device ids unique per example."""
    device = f"fz{next(_devices)}"
    kind = draw(st.sampled_from([k.value for k in DeviceKind]))
    native = f"tower/v1/{kind}/{device}/telemetry"
    form = draw(st.sampled_from(["reading"] * 4 + ["buffer"] * 2 + ["object", "array", "bytes", "nested", "lp",
                                                                  "owntracks", "status", "topic"]))  # fmt: skip
    if form == "reading":
        return native, _json(draw(readings_of(kind)))
    if form == "buffer":
        return native, _json(draw(st.lists(readings_of(kind) | objects, min_size=1, max_size=8)))
    if form == "object":
        return native, _json(draw(objects))
    if form == "array":
        return native, _json(draw(st.lists(st.one_of(objects, values), max_size=8)))
    if form == "bytes":
        return native, draw(st.binary(max_size=300))
    if form == "nested":
        depth = draw(st.integers(min_value=1, max_value=20_000))
        return draw(st.sampled_from([native, f"owntracks/fz/{device}"])), draw(
            st.sampled_from([b"[" * depth, b'{"a":' * depth, b"[" * depth + b"]" * depth])
        )
    if form == "lp":
        fields = draw(
            st.dictionaries(st.sampled_from(NAMES), numbers | st.booleans() | st.text(max_size=4), max_size=4)
        )
        ts_ns = draw(st.one_of(st.integers(min_value=NOW - 86_400_000, max_value=NOW).map(lambda ms: ms * 10**6),
                               st.integers(min_value=-(2**63), max_value=2**63 - 1)))  # fmt: skip
        lines = [_line(kind, device, fields, ts_ns), draw(st.binary(max_size=40))]
        return f"tower/v1/lp/{device}", b"\n".join(lines[: draw(st.integers(min_value=1, max_value=2))])
    if form == "owntracks":
        message = {"_type": draw(st.sampled_from(["location", "lwt", "waypoint", 5])), "tst": draw(event_times)}
        message |= draw(st.dictionaries(st.sampled_from(["lat", "lon", "vel", "cog", "batt", "acc"]), values))
        return f"owntracks/fz/{device}", _json(message)
    if form == "status":
        return f"tower/v1/{kind}/{device}/status", draw(st.sampled_from([b"online", b'"offline"', b"", b"\xff"]))
    return draw(st.text(max_size=40)), draw(st.binary(max_size=40))


def _expected(readings: list[Reading]) -> dict[tuple[str, int], dict]:
    """What the store should hold per identity: later fields of the same (device, ts) win."""
    merged: dict[tuple[str, int], dict] = {}
    for r in readings:
        merged.setdefault((r.device_id, r.ts_ms), {}).update(r.fields, **({"seq": r.seq} if r.seq is not None else {}))
    return merged


def _same(stored: object, sent: object) -> bool:
    if isinstance(sent, str):
        return stored == sent
    return float(stored) == float(sent)  # booleans as 1/0, integers as the store's numbers


# -- decode -> validate -> SQLite -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite(tmp_path_factory) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path_factory.mktemp("fuzz") / "tower.db")
    yield store
    store.close()


@settings(FUZZ, max_examples=300)
@given(message=messages())
def test_any_message_decodes_without_raising_and_sqlite_holds_what_was_accepted(sqlite, message):
    topic, payload = message
    batch = DECODER.decode(topic, payload, NOW)
    assert len(batch.dead_letters) <= 1  # one per message at most, whatever it holds
    sqlite.write(batch)  # neither refused nor failing: validation let through only what a store holds
    for (device, ts), fields in _expected(batch.readings).items():
        (row,) = sqlite.readings(device, since_ms=ts, until_ms=ts + 1).to_dict(orient="records")
        assert row["device_id"] == device and row["ts"].value // 1_000_000 == ts
        assert all(_same(row[name], value) for name, value in fields.items()), (fields, row)


# -- decode -> validate -> InfluxDB line protocol (VictoriaMetrics) ------------------------------


@pytest.fixture(scope="module")
def victoria(tmp_path_factory) -> Iterator[tuple[VictoriaMetrics, Store]]:
    if VictoriaMetrics.binary is None:
        if os.environ.get("CI"):
            pytest.fail("victoria-metrics is not installed; .ci/run installs it")
        pytest.skip("victoria-metrics not installed")
    folder = tmp_path_factory.mktemp("fuzz-vm")
    server = VictoriaMetrics(folder / "vm").start()
    from tower.config import load_settings

    store = open_store(f"influxdb://127.0.0.1:{server.port}?org=fuzz&bucket=tower",
                       load_settings(data_dir=folder, influx_max_retry_time_s=2))  # fmt: skip
    yield server, store
    store.close()
    server.stop()


@settings(FUZZ, max_examples=15)  # each waits for the server's answer and export: ~0.7 s
@given(message=messages())
def test_what_was_accepted_reaches_victoria_metrics_as_decoded(victoria, message):
    server, store = victoria
    batch = DECODER.decode(*message, NOW)
    if not batch.readings:
        return
    store.write(batch)
    device = batch.readings[0].device_id
    exported: dict[tuple[str, int], list[float]] = {}
    for series in server.export(f'{{device_id="{device}"}}'):
        field = series["metric"]["__name__"].partition("_")[2]
        for ts, value in zip(series["timestamps"], series["values"], strict=True):
            exported.setdefault((field, ts), []).append(value)
    for (_, ts), fields in _expected(batch.readings).items():
        for name, value in fields.items():
            if isinstance(value, str):
                continue  # VictoriaMetrics keeps numbers only; InfluxDB keeps strings (the store contract suite)
            assert any(_close(float(value), got) for got in exported.get((name, ts), [])), (name, ts, value, exported)


def _close(sent: float, stored: float) -> bool:
    # VictoriaMetrics keeps ~12 significant digits and rounds magnitudes below ~1e-20 to 0 (seen: 1.4e-45)
    return math.isclose(sent, stored, rel_tol=1e-9, abs_tol=1e-20)


# -- the store's readers on rows mixing extra fields ---------------------------------------------

EXTRA_NAMES = ["pallet_count", "oil_bar", "device_id", "ts", "kind", "seq", "extra", "temp_c"]
rows = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3_600_000),  # ts offset
        st.dictionaries(
            st.sampled_from(EXTRA_NAMES),
            st.integers(min_value=-(2**53), max_value=2**53) | st.floats(allow_nan=False, allow_infinity=False),
            max_size=3,
        ),  # fmt: skip
        st.sampled_from([None, '{"x": Infinity}', "not json", '{"y": NaN}', "[1, 2]"]),  # legacy extra text
    ),
    min_size=1,
    max_size=12,
)


@settings(FUZZ, max_examples=40)
@given(devices=st.lists(rows, min_size=1, max_size=3))
def test_readers_and_tower_query_work_on_mixed_and_colliding_extra_fields(tmp_path_factory, devices):
    folder = tmp_path_factory.mktemp("reads")
    url = f"sqlite:///{folder}/tower.db"
    store = open_store(url)
    t0 = NOW - 7_200_000
    names = [f"mix-{index}" for index in range(len(devices))]
    for device, device_rows in zip(names, devices, strict=True):
        store.write(Batch(readings=[Reading(DeviceKind.EQUIPMENT, device, t0 + offset, {"rpm": 1.0, **extra})
                                    for offset, extra, _ in device_rows]))  # fmt: skip
        for offset, _, legacy in device_rows:  # rows written before extras were checked
            if legacy is not None:
                store._db.execute("UPDATE readings SET extra = ? WHERE device_id = ? AND ts = ?",
                                  (legacy, device, t0 + offset))  # fmt: skip
    latest = store.latest()
    assert sorted(latest["device_id"]) == sorted(names)
    for device, device_rows in zip(names, devices, strict=True):
        frame = store.readings(device)
        assert list(frame["device_id"]) == [device] * len({offset for offset, _, _ in device_rows})
        assert frame["ts"].is_monotonic_increasing
        store.readings(device, every_ms=300_000)
        for output in ("json", "csv", "table"):
            print_frame(frame, output, "none")
        for extra_args in ([], ["--every", "5m"]):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                code = tower_main(["query", "readings", "--device", device, "--store", url, "--format", "json",
                                   *extra_args])  # fmt: skip
            assert code == 0
            assert all(
                math.isfinite(v) for row in json.loads(printed.getvalue()) for v in row.values() if isinstance(v, float)
            )
    store.close()
