"""A cap on dead letters per topic: a device that floods the tower with junk cannot fill the store.

Within each window, the first `per_topic` dead letters of a topic are kept; the rest are counted.
When the window ends, each topic that went over leaves one dead letter saying how many were not
kept, and counting starts again. Pure: the writer thread calls it with the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tower.contract import DeadLetter


@dataclass
class DeadLetterCap:
    per_topic: int
    window_ms: int
    over_cap: int = 0  # dead letters counted but not kept, since start (the stats line shows it)
    _window_start_ms: int | None = None
    _kept: dict[str, int] = field(default_factory=dict)
    _dropped: dict[str, int] = field(default_factory=dict)

    def admit(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        """The letters to keep; the others are counted against their topic."""
        kept = []
        for letter in letters:
            count = self._kept.get(letter.topic, 0)
            if count < self.per_topic:
                self._kept[letter.topic] = count + 1
                kept.append(letter)
            else:
                self._dropped[letter.topic] = self._dropped.get(letter.topic, 0) + 1
                self.over_cap += 1
        return kept

    def roll(self, now_ms: int) -> list[DeadLetter]:
        """At the end of a window, one summary dead letter per topic that went over the cap."""
        if self._window_start_ms is None:
            self._window_start_ms = now_ms
        if now_ms < self._window_start_ms + self.window_ms:
            return []
        seconds = self.window_ms / 1000
        summaries = [
            DeadLetter(
                now_ms,
                topic,
                "",
                f"{dropped} more dead letters from this topic in the last {seconds:g} s were counted, not kept "
                f"(at most {self.per_topic} per topic per window: TOWER_DEAD_LETTER_CAP)",
            )
            for topic, dropped in self._dropped.items()
        ]
        self._window_start_ms = now_ms
        self._kept.clear()
        self._dropped.clear()
        return summaries
