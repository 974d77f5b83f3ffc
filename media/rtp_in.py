"""Reading a publisher's RTP packet: only what the forwarder uses, nothing more.

aiortc's ``RtpPacket.parse`` decodes every header extension it knows through a
generic map; the forwarder needs the fixed header, the payload and two extensions
(abs-send-time for the bandwidth estimate, the audio level to pass on). Pure.
"""

from __future__ import annotations

import struct

from aiortc.rtp import RtpPacket

_HEADER = struct.Struct("!BBHII")
_ONE_BYTE_PROFILE = 0xBEDE


def parse_rtp(data: bytes, *, abs_send_time_id: int | None,
              audio_level_id: int | None) -> tuple[RtpPacket, int] | None:
    """The packet and its padding length, or None if ``data`` is not a well-formed
    RTP packet (RFC 3550 5.1; one-byte header extensions, RFC 8285 4.2)."""
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
    packet = RtpPacket(payload_type=second & 0x7F, marker=second >> 7, sequence_number=seq,
                       timestamp=timestamp, ssrc=ssrc, payload=data[pos:stop])
    packet.padding_size = padding
    packet.extensions.abs_send_time = abs_send_time
    packet.extensions.audio_level = audio_level
    return packet, padding
