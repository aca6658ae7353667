"""`tower simulate`: play a scenario onto MQTT at a chosen speed, and write its ground truth.

Simulated time runs `speed` times faster than the wall clock (`max`: as fast as the broker takes
messages). Event timestamps are simulated time, which never runs ahead of the present: by
default the run is placed so that it ends now, so a fast run is history arriving quickly and a
1x run is live.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from simulators.engine import Message, Simulation
from simulators.faults import write_truth
from tower.config import Settings
from tower.mqtt import QosPublisher, make_client, start_and_wait
from tower.timeutil import now_ms, rfc3339

log = logging.getLogger("tower.simulate")
_QUANTUM_S = 0.02


def default_start_ms(duration_ms: int, speed: float | None, now: int) -> int:
    """The start that makes the run end at the present (whole seconds)."""
    real_ms = 0 if speed is None else duration_ms / speed
    return int(now + real_ms - duration_ms) // 1000 * 1000


@dataclass
class RunStats:
    messages: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def play(
    simulation: Simulation,
    send: Callable[[Message], None],
    speed: float | None,
    stop: threading.Event,
    progress_every_s: float = 10.0,
) -> RunStats:
    """Hand every message to `send` at its simulated moment, paced by speed (None = no pacing)."""
    stats = RunStats()
    real0, sim0 = time.monotonic(), simulation.start_ms
    next_progress = real0 + progress_every_s
    for message in simulation.messages():
        if stop.is_set():
            break
        # Sleep in quanta, not per message: thousands of sub-millisecond sleeps a second would cost
        # more than the publishing itself.
        wait = 0.0 if speed is None else real0 + (message.publish_ms - sim0) / 1000 / speed - time.monotonic()
        wait = max(wait, (message.publish_ms - now_ms()) / 1000)  # event time never ahead of the present
        if wait > 0 and stop.wait(wait + _QUANTUM_S):
            break
        send(message)
        stats.messages += 1
        if time.monotonic() >= next_progress:
            next_progress += progress_every_s
            log.info("simulated up to %s: %d messages", rfc3339(message.publish_ms), stats.messages)
    stats.seconds = time.monotonic() - real0
    return stats


def run(
    settings: Settings, simulation: Simulation, speed: float | None, truth_path: str | None, stop: threading.Event
) -> RunStats:
    """Publish the simulation to the configured broker (QoS 1); ground truth first, as it is known up front."""
    if truth_path:
        write_truth(simulation.truth(), truth_path)
        log.info("ground truth: %d injected faults in %s", len(simulation.truth()), truth_path)
    client, address, properties = make_client(settings, f"tower-simulator-{simulation.seed}")
    start_and_wait(client, address, properties)
    publisher = QosPublisher(client)
    try:
        stats = play(simulation, lambda m: publisher.publish(m.topic, m.payload, retain=m.retain), speed, stop)
        publisher.flush()
    finally:
        client.disconnect()
        client.loop_stop()
    log.info("published %d messages in %.1f s (%.0f/s)", stats.messages, stats.seconds, stats.rate)
    return stats
