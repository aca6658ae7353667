"""Every kind and every format, through real mosquitto into the store, at the right event time."""

from __future__ import annotations

from tests.conftest import wait_until
from tower.contract import DeviceKind, DeviceStatus
from tower.timeutil import now_ms, rfc3339

HOUR = 3_600_000


def test_every_kind_is_stored_with_its_event_time_and_values(start_collector, publisher, store):
    start_collector()
    t0 = now_ms() // 1000 * 1000 - HOUR
    publisher.send(
        "tower/v1/shipment/trk-1/telemetry",
        {
            "ts": rfc3339(t0).replace("Z", "+00:00"),
            "seq": 1,
            "lat": 51.92,
            "lon": 4.48,
            "speed_kmh": 82.5,
            "heading_deg": 90,
            "temp_c": 3.5,
            "humidity_pct": 60,
            "door_open": False,
            "shock_g": 0.2,
            "battery_pct": 88,
        },
    )
    publisher.send(
        "tower/v1/warehouse/dc1-cold/telemetry",
        {"ts": t0 // 1000, "temp_c": -18.2, "humidity_pct": 40, "dock_door_open": True, "occupancy_pct": 71},
    )
    publisher.send(
        "tower/v1/equipment/conv-7/telemetry",
        {
            "ts": t0 + 500,
            "vibration_rms_mm_s": 2.8,
            "bearing_temp_c": 51,
            "motor_current_a": 13.1,
            "rpm": 1480,
            "state": "running",
            "oil_pressure_bar": 2.2,
        },
    )
    wait_until(lambda: len(store.devices()) == 3, what="three devices")

    ship = store.readings("trk-1").iloc[0]
    assert ship["ts"].value // 1_000_000 == t0
    assert (ship["lat"], ship["speed_kmh"], ship["door_open"], ship["seq"]) == (51.92, 82.5, False, 1)
    house = store.readings("dc1-cold").iloc[0]
    assert house["ts"].value // 1_000_000 == t0  # epoch seconds
    assert (house["temp_c"], house["dock_door_open"]) == (-18.2, True)
    machine = store.readings("conv-7").iloc[0]
    assert machine["ts"].value // 1_000_000 == t0 + 500  # epoch milliseconds
    assert (machine["state"], machine["oil_pressure_bar"]) == ("running", 2.2)  # unknown numeric field kept
    kinds = {d.device_id: d.kind for d in store.devices()}
    assert kinds == {"trk-1": DeviceKind.SHIPMENT, "dc1-cold": DeviceKind.WAREHOUSE, "conv-7": DeviceKind.EQUIPMENT}


def test_owntracks_location_becomes_a_shipment_reading(start_collector, publisher, store):
    start_collector()
    tst = now_ms() // 1000 - 60
    publisher.send(
        "owntracks/driver7/phone",
        {"_type": "location", "lat": 52.37, "lon": 4.89, "tst": tst, "vel": 63, "cog": 270, "batt": 54, "acc": 8},
    )
    publisher.send("owntracks/driver7/phone", {"_type": "lwt", "tst": tst})
    wait_until(lambda: store.devices() and store.devices()[0].status, what="owntracks device and status")
    row = store.readings("driver7.phone").iloc[0]  # owntracks/<user>/<device> -> <user>.<device>
    assert row["ts"].value // 1_000_000 == tst * 1000
    assert (row["lat"], row["lon"], row["speed_kmh"], row["heading_deg"], row["battery_pct"]) == (
        52.37,
        4.89,
        63,
        270,
        54,
    )
    device = store.devices()[0]
    assert (device.kind, device.status) == (DeviceKind.SHIPMENT, DeviceStatus.OFFLINE)


def test_line_protocol_from_telegraf(start_collector, publisher, store):
    start_collector()
    ts_ns = (now_ms() - 5_000) * 1_000_000
    publisher.send(  # each device on its own topic: a device publishes only its own readings
        "tower/v1/lp/press-2",
        f'equipment,device_id=press-2,host=edge-gw-1 vibration_rms_mm_s=4.5,rpm=900i,state="idle" {ts_ns}\n',
    )
    publisher.send("tower/v1/lp/dc2-dry", f"warehouse,device_id=dc2-dry temp_c=21.5,humidity_pct=48 {ts_ns}\n")
    wait_until(lambda: len(store.devices()) == 2, what="two line-protocol devices")
    press = store.readings("press-2").iloc[0]
    assert press["ts"].value == ts_ns // 1_000_000 * 1_000_000
    assert (press["vibration_rms_mm_s"], press["rpm"], press["state"]) == (4.5, 900, "idle")
    assert store.readings("dc2-dry").iloc[0]["temp_c"] == 21.5


def test_status_messages_mark_devices_online_and_offline(start_collector, publisher, store):
    start_collector()
    publisher.send("tower/v1/equipment/fork-3/status", "online")
    wait_until(lambda: store.devices() and store.devices()[0].status == DeviceStatus.ONLINE, what="online")
    publisher.send("tower/v1/equipment/fork-3/status", "offline")
    wait_until(lambda: store.devices()[0].status == DeviceStatus.OFFLINE, what="offline")


def test_array_batch_is_stored_in_event_time_and_late_readings_are_placed_in_time(start_collector, publisher, store):
    start_collector()
    now = now_ms() // 1000 * 1000
    publisher.send("tower/v1/shipment/trk-2/telemetry", {"ts": now, "seq": 100, "lat": 50.0, "lon": 5.0})
    # The offline buffer arrives afterwards, out of order, with its original timestamps.
    backlog = [{"ts": now - (10 - i) * 60_000, "seq": 90 + i, "lat": 50.0 - i * 0.01, "lon": 5.0} for i in range(10)]
    publisher.send("tower/v1/shipment/trk-2/telemetry", list(reversed(backlog)))
    wait_until(lambda: len(store.readings("trk-2")) == 11, what="11 readings")
    frame = store.readings("trk-2")
    assert list(frame["seq"]) == list(range(90, 101))  # ordered by event time, not arrival
    assert frame["ts"].is_monotonic_increasing
    assert store.devices()[0].last_seen_ms == now  # the late batch does not move last-seen back
