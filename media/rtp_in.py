"""Reading a publisher's RTP packet: only what the forwarder uses, nothing more.

aiortc's ``RtpPacket.parse`` decodes every header extension it knows through a
generic map; the forwarder needs the fixed header, the payload and two extensions
(abs-send-time for the bandwidth estimate, the audio level to pass on). Pure; the
payload is depayloaded later, and only if a frame consumer needs it.
"""

from __future__ import annotations

import struct

from aiortc.rtp import RtpPacket

_HEADER = struct.Struct("!BBHII")
_ONE_BYTE_PROFILE = 0xBEDE


class ReceivedRtp:
    """One publisher packet as the forwarder reads it (aiortc's ``RtpPacket`` carries
    more, and costs more to build)."""

    __slots__ = ("payload_type", "marker", "sequence_number", "timestamp", "ssrc", "payload",
                 "padding", "abs_send_time", "audio_level", "arrived", "data")

    def __init__(self, payload_type: int, marker: bool, sequence_number: int, timestamp: int,
                 ssrc: int, payload: bytes, *, padding: int = 0, abs_send_time: int | None = None,
                 audio_level: tuple[bool, int] | None = None, arrived: float | None = None,
                 data: bytes | None = None) -> None:
        self.payload_type = payload_type
        self.marker = marker
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload
        self.padding = padding
        self.abs_send_time = abs_send_time
        self.audio_level = audio_level
        self.arrived = arrived  # perf_counter() when the datagram was taken, if known
        self.data = data  # depayloaded, when someone already did it

    @classmethod
    def from_aiortc(cls, packet: RtpPacket) -> ReceivedRtp:
        """A packet aiortc parsed and depayloaded (its ``_data``) itself."""
        return cls(packet.payload_type, bool(packet.marker), packet.sequence_number,
                   packet.timestamp, packet.ssrc, packet.payload,
                   padding=packet.padding_size, abs_send_time=packet.extensions.abs_send_time,
                   audio_level=packet.extensions.audio_level, data=getattr(packet, "_data", None))

    def __repr__(self) -> str:
        return (f"ReceivedRtp(ssrc={self.ssrc}, seq={self.sequence_number}, "
                f"ts={self.timestamp}, marker={self.marker}, {len(self.payload)} bytes)")


def parse_rtp(data: bytes, *, abs_send_time_id: int | None, audio_level_id: int | None,
              arrived: float | None = None) -> ReceivedRtp | None:
    """The packet, or None if ``data`` is not a well-formed RTP packet (RFC 3550 5.1;
    one-byte header extensions, RFC 8285 4.2)."""
    if len(data) < 12:
        return None
    first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        return None
    pos = 12 + 4 * (first & 0x0F)
    abs_send_time = audio_level = None
    if first & 0x10:
        if len(data) < pos + 4:
            return None
        profile, words = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + 4 * words
        if len(data) < end:
            return None
        if profile == _ONE_BYTE_PROFILE:
            i = pos + 4
            while i < end:
                byte = data[i]
                if byte == 0:  # padding between elements
                    i += 1
                    continue
                ext_id, length = byte >> 4, (byte & 0x0F) + 1
                if ext_id == 15:
                    break
                if ext_id == abs_send_time_id and length == 3:
                    abs_send_time = int.from_bytes(data[i + 1:i + 4], "big")
                elif ext_id == audio_level_id and length >= 1:
                    level = data[i + 1]
                    audio_level = (bool(level & 0x80), level & 0x7F)
                i += 1 + length
        pos = end
    stop = len(data)
    padding = 0
    if first & 0x20:
        padding = data[-1]
        stop -= padding
        if padding == 0 or stop < pos:
            return None
    return ReceivedRtp(second & 0x7F, bool(second >> 7), seq, timestamp, ssrc, data[pos:stop],
                       padding=padding, abs_send_time=abs_send_time, audio_level=audio_level,
                       arrived=arrived)
