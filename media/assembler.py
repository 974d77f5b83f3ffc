"""Rebuilding encoded frames from RTP packets, released the moment they complete.

Theory of operation
-------------------
aiortc's jitter buffer hands a video frame on only when the first packet of the *next*
frame arrives, which holds every frame in the server for a whole frame interval. A
forwarder cannot afford that, so this module keeps its own small reorder buffer:

* Video packets are stored by sequence number. Starting from the sequence number that
  follows the last released frame, consecutive packets with one RTP timestamp are
  collected; the packet carrying the marker bit closes the frame and it is released at
  once, in the same call that added that packet.
* A hole (a lost packet) blocks release. NACKs sent by aiortc's receiver usually fill
  it within a round trip. If it stays open longer than ``max_wait`` while later packets
  keep arriving, or the buffer spans more than ``window`` sequence numbers, the
  incomplete frames are dropped and the assembler skips to the next frame start. From
  then on it releases nothing until a keyframe, so subscribers never receive a frame
  whose references are missing (corrupt video), and it asks for that keyframe.
* Audio (Opus) packets are frames of their own: they are released immediately unless
  older than the last released one (late or duplicate), which is dropped.

The classes are pure: no asyncio, no aiortc objects, and every call takes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .codecs import is_keyframe, starts_frame

_SEQ_MOD = 1 << 16


def seq_delta(a: int, b: int) -> int:
    """Signed distance from sequence number ``b`` to ``a`` (wraps at 2**16)."""
    d = (a - b) % _SEQ_MOD
    return d - _SEQ_MOD if d >= _SEQ_MOD // 2 else d


@dataclass(frozen=True, slots=True)
class RtpIn:
    """The fields of one received RTP packet the assembler needs."""

    sequence_number: int
    timestamp: int
    marker: bool
    payload: bytes  # with the codec's payload descriptor, to find frame starts
    data: bytes  # depayloaded bytes to concatenate into the frame
    arrived: float


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """A complete encoded frame, ready to be packetized again for subscribers."""

    data: bytes
    timestamp: int  # RTP timestamp of the publisher's stream
    keyframe: bool
    arrived: float  # when the packet that completed it arrived


@dataclass(frozen=True, slots=True)
class _Held:
    timestamp: int
    marker: bool
    data: bytes
    arrived: float


class VideoFrameAssembler:
    """Reassembles one video stream (one SSRC) into frames; see the module doc."""

    def __init__(self, codec: str, *, max_wait: float = 0.25, window: int = 1024) -> None:
        self._codec = codec
        self._max_wait = max_wait
        self._window = window
        self._held: dict[int, _Held] = {}
        self._next_seq: int | None = None
        self._blocked_since: float | None = None
        self._need_keyframe = True
        self._frames_released = 0
        self._frames_dropped = 0
        self._skips = 0

    @property
    def waiting_for_keyframe(self) -> bool:
        """True until a keyframe has been released after a start or a loss."""
        return self._need_keyframe

    @property
    def frames_released(self) -> int:
        return self._frames_released

    @property
    def frames_dropped(self) -> int:
        return self._frames_dropped

    @property
    def skips(self) -> int:
        return self._skips

    def add(self, packet: RtpIn) -> list[EncodedFrame]:
        """Store one packet; return the frames it completed, oldest first."""
        seq = packet.sequence_number
        if self._next_seq is not None and seq_delta(seq, self._next_seq) < 0:
            return []  # late duplicate or retransmission of something already passed on
        if seq in self._held:
            return []
        self._held[seq] = _Held(packet.timestamp, packet.marker, packet.data, packet.arrived)

        if self._next_seq is None:
            self._next_seq = self._find_start(seq, packet)
            if self._next_seq is None:
                return []

        frames = self._release(packet.arrived)
        if self._held and self._is_stuck(packet.arrived):
            self._skip()
            frames.extend(self._release(packet.arrived))
        return frames

    def _find_start(self, seq: int, packet: RtpIn) -> int | None:
        if starts_frame(self._codec, packet.payload):
            return self._start_at(seq)
        previous = self._held.get((seq - 1) % _SEQ_MOD)
        if previous is not None and previous.marker:
            return self._start_at(seq)
        if packet.marker:
            # The end of a frame whose start we missed: the next packet starts one.
            return self._start_at((seq + 1) % _SEQ_MOD)
        return None

    def _start_at(self, seq: int) -> int:
        for held_seq in list(self._held):
            if seq_delta(held_seq, seq) < 0:
                del self._held[held_seq]
        return seq

    def _release(self, now: float) -> list[EncodedFrame]:
        frames: list[EncodedFrame] = []
        while self._next_seq is not None:
            frame_end = self._complete_frame_end(self._next_seq)
            if frame_end is None:
                break
            parts = []
            seq = self._next_seq
            first = self._held[seq]
            while True:
                held = self._held.pop(seq)
                parts.append(held.data)
                if seq == frame_end:
                    break
                seq = (seq + 1) % _SEQ_MOD
            self._next_seq = (frame_end + 1) % _SEQ_MOD
            self._blocked_since = None
            data = b"".join(parts)
            keyframe = is_keyframe(self._codec, data)
            if self._need_keyframe and not keyframe:
                self._frames_dropped += 1
                continue
            self._need_keyframe = False
            self._frames_released += 1
            frames.append(EncodedFrame(data, first.timestamp, keyframe, now))
        # Only a missing packet starts the clock: a frame still arriving (or a busy
        # event loop between its packets) is not a loss.
        if self._has_hole():
            if self._blocked_since is None:
                self._blocked_since = now
        else:
            self._blocked_since = None
        return frames

    def _has_hole(self) -> bool:
        # Everything held is at or after next_seq, so a hole means fewer packets than
        # the span from next_seq to the newest one.
        newest = self._newest_offset()
        return newest is not None and len(self._held) < newest + 1

    def _newest_offset(self) -> int | None:
        if not self._held or self._next_seq is None:
            return None
        base = self._next_seq
        return max(seq_delta(s, base) for s in self._held)

    def _complete_frame_end(self, start: int) -> int | None:
        first = self._held.get(start)
        if first is None:
            return None
        seq = start
        for _ in range(self._window):
            held = self._held.get(seq)
            if held is None or held.timestamp != first.timestamp:
                return None
            if held.marker:
                return seq
            seq = (seq + 1) % _SEQ_MOD
        return None

    def _is_stuck(self, now: float) -> bool:
        newest = self._newest_offset()
        if newest is None:
            return False
        waited = self._blocked_since is not None and now - self._blocked_since > self._max_wait
        return newest >= self._window or (waited and newest > 0)

    def _skip(self) -> None:
        """Give up on the incomplete frame(s) and restart at the next frame start."""
        assert self._next_seq is not None
        self._skips += 1
        self._need_keyframe = True
        self._blocked_since = None
        ordered = sorted(self._held, key=lambda s: seq_delta(s, self._next_seq or 0))
        start = None
        for seq in ordered:
            previous = self._held.get((seq - 1) % _SEQ_MOD)
            if previous is not None and previous.marker and seq_delta(seq, self._next_seq) > 0:
                start = seq
                break
        dropped_until = start if start is not None else None
        for seq in ordered:
            if dropped_until is not None and seq == dropped_until:
                break
            del self._held[seq]
        self._frames_dropped += 1
        if start is None:
            # No frame start held yet: begin after the next marker we see.
            self._next_seq = None
        else:
            self._next_seq = start


class AudioSequencer:
    """Passes Opus packets straight through, dropping late and duplicate ones."""

    def __init__(self) -> None:
        self._last_seq: int | None = None
        self._dropped = 0

    @property
    def dropped(self) -> int:
        return self._dropped

    def add(self, packet: RtpIn) -> list[EncodedFrame]:
        if self._last_seq is not None and seq_delta(packet.sequence_number, self._last_seq) <= 0:
            self._dropped += 1
            return []
        self._last_seq = packet.sequence_number
        return [EncodedFrame(packet.data, packet.timestamp, True, packet.arrived)]
