"""The InfluxDB backend: readings in InfluxDB; dead letters and device statuses in a local SQLite
registry. Devices and their readings are found in InfluxDB itself (the device_id tag of each
measurement), so a dashboard on another host, or data that Telegraf or another collector wrote,
is visible without this process's registry.

Writes go through influxdb-client's batching write API (its background writer retries a failed
batch with exponential back-off and jitter). Each store batch is handed over as one record and the
write options keep it one HTTP request, so the library's success or error callback tells exactly
whether *this* batch is stored; write() waits for that answer, which is what lets the collector
acknowledge only what InfluxDB has (and spool what it could not take).

Reads are InfluxQL over the v1-compatible /query endpoint: InfluxDB 1.8+, 2.x (through each
bucket's virtual DBRP mapping, db = bucket name) and 3.x answer it; Flux, the only language of the
client's query API, is absent from InfluxDB 3. Schema: measurement = device kind, tag device_id,
one field per reading field (numbers as floats, so a site's extra field never changes type), seq
as an integer field, event time in milliseconds.
"""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import urllib3
from influxdb_client import InfluxDBClient, Point, WriteOptions
from influxdb_client.client.write_api import WritePrecision
from influxdb_client.rest import ApiException

from tower.config import redact_url
from tower.contract import DeadLetter, DeviceKind, Reading, is_plain_number
from tower.store.base import Batch, DeviceInfo, RetentionResult, Store, StoreRejected, StoreUnavailable
from tower.store.sqlite import SqliteStore

if TYPE_CHECKING:
    import pandas as pd

_OPEN_END_MS = 4_102_444_800_000  # 2100-01-01: InfluxQL needs an explicit upper bound for time buckets
# Answers that refuse the body itself (a line the server cannot parse, a field whose type conflicts
# with the stored one, a request too large): the same batch fails again, split it. Any other error
# (down, 5xx, auth, unknown bucket) is the server's state: retry, spool, acknowledge nothing.
_REFUSED_STATUS = (400, 413, 422)


def line_protocol(reading: Reading) -> str:
    """One line; ValueError for a value line protocol cannot carry (Point would silently drop it)."""
    point = Point(reading.kind.value).tag("device_id", reading.device_id).time(reading.ts_ms, WritePrecision.MS)
    for name, value in reading.fields.items():
        if is_plain_number(value):
            value = float(value)  # OverflowError for ints beyond a float: a ValueError for the caller
            if not math.isfinite(value):
                raise ValueError(f"field {name} of {reading.device_id} is {value}, which InfluxDB cannot store")
        point.field(name, value)
    if reading.seq is not None:
        point.field("seq", reading.seq)
    return point.to_line_protocol()


class InfluxStore(Store):
    def __init__(
        self, url: str, org: str, bucket: str, token: str | None, registry: SqliteStore, max_retry_time_s: float
    ) -> None:
        self.url, self.org, self.bucket = url.rstrip("/"), org, bucket
        self.registry = registry
        self._answer_timeout_s = max_retry_time_s + 15  # the library gives up first, so we hear its verdict
        self._headers = {"Authorization": f"Token {token}"} if token else {}
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=60), retries=False)
        self._client = InfluxDBClient(url=self.url, token=token or "", org=org, timeout=10_000)
        self._waiting: dict[bytes, list[Future]] = {}
        self._waiting_lock = threading.Lock()
        self._write_api = self._client.write_api(
            write_options=WriteOptions(
                batch_size=1,  # one record = one store batch = one request: the callbacks name our batch
                flush_interval=10,
                max_retries=10_000,
                max_retry_time=int(max_retry_time_s * 1000),
                retry_interval=500,
                max_retry_delay=5_000,
                exponential_base=2,
            ),
            success_callback=lambda conf, data: self._answer(data, None),
            error_callback=lambda conf, data, error: self._answer(data, error),
        )

    # -- writes -------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        if batch.readings:
            try:
                body = "\n".join(line_protocol(r) for r in batch.readings)
            except (ValueError, OverflowError) as error:
                raise StoreRejected(f"InfluxDB {self.url}: {error}") from None
            key, answer = body.encode(), Future()
            with self._waiting_lock:
                self._waiting.setdefault(key, []).append(answer)
            self._write_api.write(self.bucket, self.org, record=body, write_precision=WritePrecision.MS)
            try:
                answer.result(timeout=self._answer_timeout_s)
            except Exception as error:
                with self._waiting_lock:
                    if answer in self._waiting.get(key, []):
                        self._waiting[key].remove(answer)
                if isinstance(error, ApiException) and error.status in _REFUSED_STATUS:
                    raise StoreRejected(f"InfluxDB {redact_url(self.url)} refused the batch: {error}") from error
                raise StoreUnavailable(f"InfluxDB {redact_url(self.url)} did not take the batch: {error}") from error
        self.registry.write_registry(batch)  # after the readings: a replay repeats nothing harmful

    def _answer(self, data: bytes, error: BaseException | None) -> None:
        with self._waiting_lock:
            waiting = self._waiting.get(data, [])
            answer = waiting.pop(0) if waiting else None
            if not waiting:
                self._waiting.pop(data, None)
        if answer is None:
            return
        if error is None:
            answer.set_result(None)
        else:
            answer.set_exception(error)

    def apply_retention(
        self, now_ms: int, raw_days: float, rollup_days: float, dead_letter_days: float
    ) -> RetentionResult:
        """InfluxDB keeps readings for the bucket's retention period, set where the bucket is made;
        the registry's dead letters expire here."""
        return RetentionResult(0, 0, 0, self.registry.expire_dead_letters(now_ms, dead_letter_days))

    # -- reads --------------------------------------------------------------------------------

    def query(self, influxql: str) -> list[dict]:
        """The series of one InfluxQL statement; ValueError with the server's message if it fails."""
        params = urlencode({"db": self.bucket, "epoch": "ms", "q": influxql})
        response = self._http.request("GET", f"{self.url}/query?{params}", headers=self._headers)
        if response.status >= 400:
            raise ValueError(f"InfluxDB query failed ({response.status}): {response.data[:200]!r}")
        result = json.loads(response.data)["results"][0]
        if "error" in result:
            raise ValueError(f"InfluxDB query failed: {result['error']}")
        return result.get("series", [])

    def _series_frame(self, series: list[dict], strip: str = "") -> pd.DataFrame:
        """Series of fields (and time) as one frame; `strip`: the prefix an aggregate gave field names."""
        import pandas as pd

        from tower.store.frames import field_column, utc

        frames = []
        for item in series:
            names = [c.removeprefix(strip) for c in item["columns"]]
            columns = [c if c in ("time", "seq") else field_column(c) for c in names]  # seq is a field here
            frame = pd.DataFrame(item["values"], columns=columns)
            for tag, value in item.get("tags", {}).items():
                frame[tag] = value
            frame["kind"] = item["name"]
            frames.append(frame)
        if not frames:
            return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ms, UTC]"), "device_id": [], "kind": []})
        frame = pd.concat(frames, ignore_index=True)
        frame.insert(0, "ts", utc(frame.pop("time")))
        return frame

    def latest(self, kind: DeviceKind | None = None) -> pd.DataFrame:
        from tower.store.frames import tidy_readings

        kinds = [kind] if kind else list(DeviceKind)
        series = []
        for each in kinds:
            series += self.query(f'SELECT *::field FROM "{each.value}" GROUP BY "device_id" ORDER BY time DESC LIMIT 1')
        return tidy_readings(self._series_frame(series), ["device_id", "ts", "kind"])

    def readings(
        self,
        device_id: str,
        fields: list[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        every_ms: int | None = None,
    ) -> pd.DataFrame:
        from tower.store.frames import tidy_readings

        device = device_id.replace("\\", "\\\\").replace("'", "\\'")
        # ::tag and ::field: a store may hold a field named device_id too (from before such names were refused)
        where = (
            f"\"device_id\"::tag = '{device}' AND time >= {since_ms or 0}ms "
            f"AND time < {until_ms if until_ms is not None else _OPEN_END_MS}ms"
        )
        kinds = ", ".join(f'"{kind.value}"' for kind in DeviceKind)  # whichever holds the device: no registry
        if every_ms:
            statement = f"SELECT mean(*) FROM {kinds} WHERE {where} GROUP BY time({every_ms}ms) fill(none)"
        else:
            statement = f"SELECT *::field FROM {kinds} WHERE {where}"
        series = self.query(statement)
        frame = self._series_frame(series, strip="mean_" if every_ms else "").drop(columns=["kind"])
        frame["device_id"] = device_id
        return tidy_readings(frame, ["ts", "device_id"], fields)

    def reading_count(self, since_ms: int, until_ms: int) -> int:
        # count(*) counts each field; a point's count is that of its most frequent field.
        measurements = ", ".join(f'"{kind.value}"' for kind in DeviceKind)
        series = self.query(f"SELECT count(*) FROM {measurements} WHERE time >= {since_ms}ms AND time < {until_ms}ms")
        return sum(max(value or 0 for value in item["values"][0][1:]) for item in series)

    def devices(self) -> list[DeviceInfo]:
        """Every device InfluxDB holds readings of, with its newest event time there, and the statuses
        (MQTT last wills) this collector's registry saw."""
        known = {device.device_id: device for device in self.registry.devices()}
        newest = self.latest()
        for device_id, kind, ts in newest[["device_id", "kind", "ts"]].itertuples(index=False):
            seen = known.get(device_id)
            last = int(ts.value // 1_000_000)
            if seen is None:
                known[device_id] = DeviceInfo(device_id, DeviceKind(kind), last)
            elif seen.last_seen_ms is None or seen.last_seen_ms < last:
                known[device_id] = DeviceInfo(device_id, seen.kind, last, seen.status, seen.status_ms)
        return sorted(known.values(), key=lambda device: device.device_id)

    def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        return self.registry.dead_letters(limit)

    def close(self) -> None:
        self._write_api.close()  # flushes what the batching writer still holds
        self._client.close()
        self._http.clear()
        self.registry.close()
