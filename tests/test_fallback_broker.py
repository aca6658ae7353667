"""Without mosquitto the demo falls back to amqtt (pure Python, MQTT 3.1.1); ingest works there too."""

from __future__ import annotations

import json

from ingest.collector import Collector
from tests.conftest import wait_until
from tower.broker import LocalBroker
from tower.config import load_settings
from tower.mqtt import connect, make_client
from tower.store import open_store
from tower.timeutil import now_ms


def test_collector_stores_readings_through_the_pure_python_broker(tmp_path):
    with LocalBroker(tmp_path / "amqtt", use_mosquitto=False) as broker:
        assert broker.protocol == "3.1.1"
        settings = load_settings(
            broker=broker.url,
            mqtt_protocol=broker.protocol,
            store=f"sqlite:///{tmp_path}/t.db",
            data_dir=tmp_path / "var",
            ingest_client_id="fallback-ingest",
        )
        store = open_store(settings.store)
        collector = Collector(settings, store)
        collector.start()
        wait_until(collector.subscribed.is_set, what="subscription on amqtt")
        publisher, address, properties = make_client(settings, "fallback-pub")
        connect(publisher, address, properties, persistent=False)
        publisher.loop_start()
        t0 = now_ms() - 60_000
        for seq in range(20):
            body = json.dumps({"ts": t0 + seq, "seq": seq, "rpm": 1000.0 + seq})
            publisher.publish("tower/v1/equipment/m-1/telemetry", body, qos=1).wait_for_publish(10)
        try:
            wait_until(lambda: len(store.readings("m-1")) == 20, what="20 readings via amqtt")
        finally:
            publisher.disconnect()
            publisher.loop_stop()
            collector.stop()
            store.close()
