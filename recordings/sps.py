"""Picture size of an H.264 stream, read from its sequence parameter set (no decoding).

Matroska needs the width and height in the track header; a forwarded keyframe carries
an SPS NAL unit (ITU-T H.264 section 7.3.2.1.1) from which they follow.
"""

from __future__ import annotations

_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class _Bits:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self._data[self._pos >> 3]  # IndexError past the end
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _nal_units(annexb: bytes) -> list[bytes]:
    return [unit.lstrip(b"\x00") for unit in annexb.split(b"\x00\x00\x01") if unit.strip(b"\x00")]


def _unescape(rbsp: bytes) -> bytes:
    return rbsp.replace(b"\x00\x00\x03", b"\x00\x00")


def h264_dimensions(annexb: bytes) -> tuple[int, int] | None:
    """Width and height from the first SPS in an Annex-B access unit, or None."""
    for unit in _nal_units(annexb):
        if unit and unit[0] & 0x1F == 7:
            try:
                return _sps_dimensions(_unescape(unit[1:]))
            except (IndexError, ValueError):
                return None
    return None


def _sps_dimensions(sps: bytes) -> tuple[int, int]:
    bits = _Bits(sps)
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma_format = 1
    if profile in _HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3:
            bits.u(1)  # separate_colour_plane_flag
        bits.ue()
        bits.ue()  # bit depths
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if bits.u(1):
                    last = next_scale = 8
                    for _ in range(16 if i < 6 else 64):
                        if next_scale:
                            next_scale = (last + bits.se()) % 256
                        last = next_scale or last
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)
    bits.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if bits.u(1):  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        crop_x = 1 if chroma_format in (0, 3) else 2
        crop_y = (1 if chroma_format in (0, 2, 3) else 2) * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    return width, height
