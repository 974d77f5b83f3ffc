"""Counters and latency samples of the forwarder, for logs and benchmarks."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass
class ForwardingMetrics:
    """Owned by a Room; every forwarded track adds to it from the event loop."""

    max_samples: int = 100_000
    frames_in: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    frames_out: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    # Frames a subscriber could not use yet: it waits for a keyframe (just joined).
    frames_before_keyframe: int = 0
    # Frames thrown away because a subscriber's sender fell behind.
    frames_dropped: int = 0
    # Frames of a temporal layer a subscriber does not get (layer selection).
    frames_skipped: int = 0
    keyframe_requests: int = 0
    _latency: dict[str, deque[float]] = field(default_factory=dict)

    def record_latency(self, kind: str, seconds: float) -> None:
        samples = self._latency.get(kind)
        if samples is None:
            samples = self._latency[kind] = deque(maxlen=self.max_samples)
        samples.append(seconds)

    def latencies(self, kind: str | None = None) -> list[float]:
        if kind is not None:
            return list(self._latency.get(kind, ()))
        return [s for samples in self._latency.values() for s in samples]

    def reset_latency(self) -> None:
        self._latency.clear()

    def snapshot(self) -> dict[str, object]:
        result: dict[str, object] = {
            "frames_in": dict(self.frames_in),
            "frames_out": dict(self.frames_out),
            "frames_before_keyframe": self.frames_before_keyframe,
            "frames_dropped": self.frames_dropped,
            "frames_skipped": self.frames_skipped,
            "keyframe_requests": self.keyframe_requests,
        }
        for kind in ("audio", "video"):
            samples = self.latencies(kind)
            result[f"{kind}_p50_ms"] = percentile(samples, 50) * 1000
            result[f"{kind}_p95_ms"] = percentile(samples, 95) * 1000
        return result
