"""One publisher's RTP packets rewritten for one subscriber, packet by packet.

Pure: no sockets, no asyncio, no aiortc objects. The forwarder hands every packet it
receives to a ``PacketRewriter`` per subscriber, which

* starts (and restarts, after the publisher's stream changed or the subscriber fell
  behind) only at a packet that begins a keyframe, so a subscriber never gets a frame
  whose references it lacks;
* maps the publisher's sequence numbers and timestamps onto one continuous stream per
  subscriber (a restart continues where the last run ended, so the subscriber's
  jitter buffer sees no jump), keeping the publisher's own gaps as gaps so the
  subscriber asks for them;
* writes the subscriber's RTP header: its payload type, SSRC and the header extensions
  it negotiated (mid, abs-send-time for its bandwidth estimate, the audio level);
* keeps the last packets it wrote, so a NACK is answered from them (as RTX when
  negotiated, RFC 4588);
* closes the holes of packets the forwarder leaves out on purpose (``skip``: a
  temporal layer this subscriber does not get), so the subscriber sees no loss and
  sends no NACK for them.

Packets are written as they arrive, never held: the time a packet spends in the server
is the time to rewrite, encrypt and send it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .assembler import seq_delta

_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32
HISTORY_SIZE = 512
# After a restart, packets older than its first one belong to the previous run; once
# this many newer ones have gone out the boundary no longer matters.
_RESTART_GUARD = 1000
# Anything this far behind the newest packet is stale (a late duplicate, or a wrapped
# sequence number from a stream that stalled).
_STALE = 3000

_HEADER = struct.Struct("!BBHII")
_ONE_BYTE_PROFILE = 0xBEDE
# Skipped runs remembered, for a late packet from before them (reordering).
_SKIP_HISTORY = 64
# Seconds between 1900 (NTP) and 1970 (Unix).
NTP_EPOCH_OFFSET = 2_208_988_800


def ntp_time(unix_time: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) of a Unix time."""
    return int((unix_time + NTP_EPOCH_OFFSET) * (1 << 32))


@dataclass(frozen=True, slots=True)
class OutboundFormat:
    """What a subscriber negotiated for one forwarded track."""

    payload_type: int
    ssrc: int
    clock_rate: int
    rtx_payload_type: int | None = None
    rtx_ssrc: int = 0
    mid: str | None = None
    mid_id: int | None = None
    abs_send_time_id: int | None = None
    audio_level_id: int | None = None


class HeaderWriter:
    """Builds RTP packets in one subscriber's format from a precomputed template."""

    def __init__(self, fmt: OutboundFormat) -> None:
        self._fmt = fmt
        self._plain = self._template(with_level=False)
        self._leveled = self._template(with_level=True) if fmt.audio_level_id else self._plain

    def _template(self, *, with_level: bool) -> tuple[bytes, int | None, int | None]:
        fmt = self._fmt
        elements = bytearray()
        abs_at = level_at = None
        if fmt.mid_id and fmt.mid:
            mid = fmt.mid.encode()[:16]
            elements += bytes([(fmt.mid_id << 4) | (len(mid) - 1)]) + mid
        if fmt.abs_send_time_id:
            abs_at = len(elements) + 1
            elements += bytes([(fmt.abs_send_time_id << 4) | 2, 0, 0, 0])
        if with_level and fmt.audio_level_id:
            level_at = len(elements) + 1
            elements += bytes([fmt.audio_level_id << 4, 0])
        if not elements:
            return _HEADER.pack(0x80, 0, 0, 0, fmt.ssrc), None, None
        elements += b"\x00" * (-len(elements) % 4)
        head = _HEADER.pack(0x90, 0, 0, 0, fmt.ssrc) + struct.pack(
            "!HH", _ONE_BYTE_PROFILE, len(elements) // 4)
        base = len(head)
        return (head + bytes(elements),
                None if abs_at is None else base + abs_at,
                None if level_at is None else base + level_at)

    def write(self, marker: bool, seq: int, timestamp: int, abs_send_time: int,
              audio_level: tuple[bool, int] | None, payload: bytes) -> bytes:
        """One packet: header for the subscriber, then the publisher's payload as is.

        ``abs_send_time`` is the 24-bit 6.18 fixed-point NTP time of sending;
        ``audio_level`` is the publisher's (voice activity, -dBov) if it sent one."""
        template, abs_at, level_at = self._plain if audio_level is None else self._leveled
        header = bytearray(template)
        header[1] = (0x80 if marker else 0) | self._fmt.payload_type
        struct.pack_into("!HI", header, 2, seq, timestamp)
        if abs_at is not None:
            header[abs_at:abs_at + 3] = (abs_send_time & 0xFFFFFF).to_bytes(3, "big")
        if level_at is not None and audio_level is not None:
            header[level_at] = (0x80 if audio_level[0] else 0) | (audio_level[1] & 0x7F)
        return bytes(header) + payload

    def rtx(self, packet: bytes, rtx_seq: int) -> bytes | None:
        """``packet`` (one this writer wrote) as a retransmission (RFC 4588): the RTX
        payload type, sequence number and SSRC, the original sequence number first in
        the payload. None when the subscriber negotiated no RTX."""
        fmt = self._fmt
        if fmt.rtx_payload_type is None:
            return None
        header_len = 12
        if packet[0] & 0x10:
            words = struct.unpack_from("!H", packet, 14)[0]
            header_len = 16 + 4 * words
        header = bytearray(packet[:header_len])
        header[1] = (packet[1] & 0x80) | fmt.rtx_payload_type
        struct.pack_into("!H", header, 2, rtx_seq)
        struct.pack_into("!I", header, 8, fmt.rtx_ssrc)
        return bytes(header) + packet[2:4] + packet[header_len:]


class PacketRewriter:
    """Sequence numbers and timestamps of one subscriber's stream, and its history."""

    def __init__(self, fmt: OutboundFormat, *, first_seq: int, timestamp_origin: int) -> None:
        self._fmt = fmt
        self._writer = HeaderWriter(fmt)
        self._next_out = first_seq % _SEQ_MOD
        self._timestamp_origin = timestamp_origin % _TS_MOD
        self._seq_offset = 0
        self._ts_offset = 0
        self._restart_in: int | None = None
        self._highest_in: int | None = None
        self._running = False
        self._last_out_ts: int | None = None
        self._last_out_at = 0.0
        self._rtx_seq = (first_seq + _SEQ_MOD // 2) % _SEQ_MOD
        self._history: list[bytes | None] = [None] * HISTORY_SIZE
        self._history_seq: list[int] = [-1] * HISTORY_SIZE
        # (first skipped input seq, how many in a row) of the latest skipped runs.
        self._skips: list[list[int]] = []
        self.packets = 0
        self.payload_bytes = 0
        self.last_timestamp = 0

    @property
    def format(self) -> OutboundFormat:
        return self._fmt

    @property
    def running(self) -> bool:
        return self._running

    def stop(self) -> None:
        """Send nothing until the next ``start`` (a keyframe, or the next audio packet)."""
        self._running = False

    def reformat(self, fmt: OutboundFormat) -> None:
        """Write later packets in ``fmt`` (the publisher switched codec: another payload
        type of the same stream), keeping the sequence numbers continuous. Stops: the
        new codec starts at its first keyframe. The history is dropped, so a NACK is
        never answered with the old codec's packet under the new payload type."""
        self._fmt = fmt
        self._writer = HeaderWriter(fmt)
        self._history = [None] * HISTORY_SIZE
        self._history_seq = [-1] * HISTORY_SIZE
        self.stop()

    def start(self, seq: int, timestamp: int, now: float) -> None:
        """Begin a run at the publisher's packet ``seq``, continuing the subscriber's
        stream: the next sequence number, and a timestamp as far after the last one
        as wall time has passed."""
        self._seq_offset = (self._next_out - seq) % _SEQ_MOD
        if self._last_out_ts is None:
            target = self._timestamp_origin
        else:
            elapsed = max(1, round((now - self._last_out_at) * self._fmt.clock_rate))
            target = self._last_out_ts + elapsed
        self._ts_offset = (target - timestamp) % _TS_MOD
        self._restart_in = seq
        self._highest_in = seq
        self._skips = []
        self._running = True

    def skip(self, seq: int) -> None:
        """The publisher's packet ``seq`` is left out on purpose: later packets move
        down one sequence number, so the subscriber sees no hole. A packet arriving
        after later ones were written (reordered) cannot be taken back: it stays a
        hole, as if lost."""
        if not self._running:
            return
        highest = self._highest_in
        assert highest is not None
        if seq_delta(seq, highest) <= 0:
            return
        self._highest_in = seq
        self._seq_offset = (self._seq_offset - 1) % _SEQ_MOD
        skips = self._skips
        if skips and (skips[-1][0] + skips[-1][1]) % _SEQ_MOD == seq:
            skips[-1][1] += 1
        else:
            skips.append([seq, 1])
            if len(skips) > _SKIP_HISTORY:
                del skips[0]

    def write(self, seq: int, timestamp: int, marker: bool, payload: bytes,
              abs_send_time: int, audio_level: tuple[bool, int] | None, now: float) -> bytes | None:
        """The subscriber's packet for the publisher's packet ``seq``, or None if it
        must not be sent (not running, or from before this run or stale)."""
        if not self._running:
            return None
        highest = self._highest_in
        assert highest is not None
        ahead = seq_delta(seq, highest)
        if ahead > 0:
            self._highest_in = highest = seq
        elif ahead < -_STALE:
            return None
        if self._restart_in is not None:
            if seq_delta(seq, self._restart_in) < 0:
                return None
            if seq_delta(highest, self._restart_in) > _RESTART_GUARD:
                self._restart_in = None
        offset = self._seq_offset
        if ahead < 0 and self._skips:
            # A late packet: the runs skipped after it had not moved it down.
            for first, count in reversed(self._skips):
                if seq_delta(first, seq) <= 0:
                    break
                offset += count
        out_seq = (seq + offset) % _SEQ_MOD
        out_ts = (timestamp + self._ts_offset) % _TS_MOD
        if seq_delta(out_seq, self._next_out) >= 0:
            self._next_out = (out_seq + 1) % _SEQ_MOD
            self._last_out_ts = out_ts
            self._last_out_at = now
        packet = self._writer.write(marker, out_seq, out_ts, abs_send_time, audio_level, payload)
        slot = out_seq % HISTORY_SIZE
        self._history[slot] = packet
        self._history_seq[slot] = out_seq
        self.packets += 1
        self.payload_bytes += len(payload)
        self.last_timestamp = out_ts
        return packet

    def retransmission(self, seq: int) -> bytes | None:
        """What to send for the subscriber's NACK of ``seq``: the packet again (as RTX
        when negotiated), or None if it is no longer in the history."""
        slot = seq % HISTORY_SIZE
        packet = self._history[slot]
        if packet is None or self._history_seq[slot] != seq:
            return None
        if self._fmt.rtx_payload_type is None:
            return packet
        rtx = self._writer.rtx(packet, self._rtx_seq)
        self._rtx_seq = (self._rtx_seq + 1) % _SEQ_MOD
        return rtx
