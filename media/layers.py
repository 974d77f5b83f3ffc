"""Which VP8 temporal layers one subscriber gets, and the payload rewrite that keeps
its stream decodable. Pure: bytes and numbers in, decisions and bytes out.

Why temporal layers and not simulcast: the server makes every offer, and a browser
sends simulcast only when the offer's receiving m-line carries ``a=rid`` and
``a=simulcast:recv`` lines. aiortc's SDP model has neither (it reads the RTP
stream-id header extension, nothing more) and its receiver keys one stream per
m-line by SSRC, so simulcast would need the publishing direction negotiated around
aiortc (SDP munging and a receiver per RID). A VP8 temporal
scalability mode needs nothing in SDP: the page asks its encoder for ``L1T3``
(``RTCRtpSender.setParameters``) and every packet's VP8 payload descriptor (RFC 7741
4.2) then carries its layer (TID), a layer-sync flag (Y), a picture ID and TL0PICIDX.
L1T3 frames go 0, 2, 1, 2, ...: the base layer alone is a quarter of the frame rate,
layers 0-1 half of it. One stream still goes up; dropping layers lowers what one
subscriber receives without touching the publisher or anyone else, and the recorder
(which rebuilds frames from everything) always has the top layer.

Switching: down at once, at the next frame (nothing below depends on a higher layer);
up one layer at a time, at a frame of the next layer with the layer-sync flag (it
references only the base layer, which the subscriber has), or at a keyframe.
Chromium marks few layer-2 frames as sync points, so the forwarder asks for a
keyframe when a subscriber has waited a second for one. Dropped frames leave holes in the picture IDs; ``PictureIdRewriter`` closes them (and
continues both numbers across a restart at a keyframe), so the subscriber's decoder
does not wait for pictures that will never come. Sequence numbers are closed by
``rtp_out.PacketRewriter.skip``.
"""

from __future__ import annotations

#: The highest layer an L1T3 stream has.
TOP_LAYER = 2
#: A tile narrower than this (device pixels) gets the base layer only, unless it is
#: the largest on its page (what the viewer looks at, however small the window): a
#: quarter of the frame rate is enough for a thumbnail beside the speaker.
SMALL_TILE_PX = 320
#: An estimate below this share of the rate a subscriber gets says its link is
#: congested (a receiver's AIMD control drops to 0.85 of what it receives); nearer
#: than that it is only the estimate not running ahead.
CONGESTED_BELOW = 0.9
#: A subscriber held below the top by its estimate tries the next layer after its
#: estimate has covered what it gets for this long; a try that fails (the estimate
#: falls below the new rate soon after) doubles the wait, up to the maximum.
PROBE_AFTER_S = 4.0
PROBE_MAX_S = 64.0
#: A raised layer that holds this long was no failed try: the wait starts over.
PROBE_HELD_S = 10.0
#: After a raise the receiver's estimate needs a while to grow with what it gets:
#: until then only a falling estimate lowers the layer again.
PROBE_GRACE_S = 3.0
#: ... falling by this much from where it was at the raise.
PROBE_FALL = 0.85

_PICTURE_ID_HISTORY = 16


class Vp8Layering:
    """The layer fields of one VP8 packet's payload descriptor (only for packets that
    carry a TID: a stream sent with temporal layers)."""

    __slots__ = ("tid", "sync", "begins_frame", "picture_id", "picture_id_at",
                 "picture_id_bits", "tl0_pic_idx", "tl0_at")

    def __init__(self, tid: int, sync: bool, begins_frame: bool, picture_id: int,
                 picture_id_at: int, picture_id_bits: int, tl0_pic_idx: int,
                 tl0_at: int) -> None:
        self.tid = tid
        self.sync = sync
        self.begins_frame = begins_frame
        self.picture_id = picture_id
        self.picture_id_at = picture_id_at  # 0: no picture ID
        self.picture_id_bits = picture_id_bits  # 7 or 15 (0 when absent)
        self.tl0_pic_idx = tl0_pic_idx
        self.tl0_at = tl0_at  # 0: no TL0PICIDX

    def __repr__(self) -> str:
        return (f"Vp8Layering(tid={self.tid}, sync={self.sync}, begins={self.begins_frame}, "
                f"pid={self.picture_id}, tl0={self.tl0_pic_idx})")


def parse_vp8_layering(payload: bytes) -> Vp8Layering | None:
    """The layer fields of a VP8 RTP payload (RFC 7741 4.2), or None when it carries
    no TID (no temporal layers) or the descriptor is truncated."""
    if len(payload) < 2 or not payload[0] & 0x80:
        return None  # no extension octet: no TID
    ext = payload[1]
    if not ext & 0x20:
        return None
    pos = 2
    pid = pid_at = pid_bits = 0
    if ext & 0x80:
        if len(payload) <= pos:
            return None
        if payload[pos] & 0x80:
            if len(payload) <= pos + 1:
                return None
            pid = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
            pid_at, pid_bits = pos, 15
            pos += 2
        else:
            pid = payload[pos]
            pid_at, pid_bits = pos, 7
            pos += 1
    tl0 = tl0_at = 0
    if ext & 0x40:
        if len(payload) <= pos:
            return None
        tl0, tl0_at = payload[pos], pos
        pos += 1
    if len(payload) <= pos:
        return None
    tk = payload[pos]
    first = payload[0]
    return Vp8Layering(tk >> 6, bool(tk & 0x20), bool(first & 0x10) and not first & 0x07,
                       pid, pid_at, pid_bits, tl0, tl0_at)


def layer_for_width(width: int, *, largest: bool = False) -> int:
    """The highest layer worth sending to a tile ``width`` device pixels wide;
    ``largest``: no other tile on the page is wider."""
    return 0 if width < SMALL_TILE_PX and not largest else TOP_LAYER


def layer_for_bitrate(bitrate: int, rates: list[float]) -> int:
    """The highest layer whose cumulative rate (``rates[i]``: bit/s of layers 0..i)
    the subscriber's estimate carries without congestion; the base layer when none
    does: it is the least there is."""
    best = 0
    for layer in range(1, len(rates)):
        if rates[layer] * CONGESTED_BELOW > bitrate:
            break
        best = layer
    return best


class BandwidthLayers:
    """The highest layer one subscriber's link carries, from its estimates.

    A receiver's estimate (REMB) only grows a little above what it receives, so it
    can say that the layers it gets are too much, never that more would fit. Down
    therefore at once, to what the estimate carries; up one layer at a time, as a
    try, once the estimate has covered what it gets for ``PROBE_AFTER_S`` (longer
    after each failed try); a try fails when, given ``PROBE_GRACE_S`` to grow, the
    estimate does not cover the new layer."""

    __slots__ = ("_layer", "_fine_since", "_raised_at", "_raised_from", "_wait")

    def __init__(self) -> None:
        self._layer = TOP_LAYER
        self._fine_since: float | None = None
        self._raised_at: float | None = None
        self._raised_from = 0
        self._wait = PROBE_AFTER_S

    @property
    def layer(self) -> int:
        return self._layer

    def update(self, estimate: int | None, rates: list[float], now: float) -> int:
        """The layer for the latest fresh ``estimate`` (None: none) and layer rates."""
        if estimate is None or len(rates) <= self._layer:
            self._layer, self._fine_since, self._raised_at = TOP_LAYER, None, None
            return self._layer
        fits = layer_for_bitrate(estimate, rates)
        settling = (self._raised_at is not None and now - self._raised_at < PROBE_GRACE_S
                    and estimate >= self._raised_from * PROBE_FALL)
        if fits < self._layer and not settling:
            if self._raised_at is not None and now - self._raised_at < PROBE_HELD_S:
                self._wait = min(PROBE_MAX_S, self._wait * 2)
            self._layer, self._fine_since, self._raised_at = fits, now, None
            return self._layer
        if self._raised_at is not None and now - self._raised_at >= PROBE_HELD_S:
            self._wait, self._raised_at = PROBE_AFTER_S, None
        if settling:
            pass
        elif self._layer >= TOP_LAYER:
            self._fine_since = None
        elif self._fine_since is None:
            self._fine_since = now
        elif now - self._fine_since >= self._wait:
            self._layer += 1
            self._fine_since = self._raised_at = now
            self._raised_from = estimate
        return self._layer


class LayerSelector:
    """The temporal layer one subscriber receives now, and the one it should get."""

    __slots__ = ("_layer", "_target")

    def __init__(self) -> None:
        self._layer = TOP_LAYER
        self._target = TOP_LAYER

    @property
    def layer(self) -> int:
        """The highest layer being forwarded now."""
        return self._layer

    @property
    def target(self) -> int:
        return self._target

    def set_target(self, layer: int) -> None:
        self._target = max(0, min(TOP_LAYER, layer))

    def restart(self) -> None:
        """The stream starts over at a keyframe: every layer from there on is safe."""
        self._layer = self._target

    def forward(self, info: Vp8Layering, keyframe_start: bool) -> bool:
        """Whether this packet goes to the subscriber (switching at a frame start
        where that is safe)."""
        if info.begins_frame:
            target = self._target
            layer = self._layer
            if target < layer:
                self._layer = target
            elif target > layer and (keyframe_start or (info.sync and info.tid == layer + 1)):
                self._layer = target if keyframe_start else layer + 1
        return info.tid <= self._layer


class PictureIdRewriter:
    """One subscriber's VP8 picture IDs and TL0PICIDX: continuous across the frames it
    does not get and across restarts. Values pass unchanged until the first dropped
    frame or restart, so a subscriber that gets everything costs no copy."""

    __slots__ = ("_pid_offset", "_tl0_offset", "_last_in", "_last_in_out", "_last_out",
                 "_last_tl0_out", "_history", "_restart_pending", "_started")

    def __init__(self) -> None:
        self._pid_offset = 0
        self._tl0_offset = 0
        self._last_in: int | None = None  # the newest picture seen (sent or dropped)
        self._last_in_out = 0  # ... and its ID as sent
        self._last_out: int | None = None
        self._last_tl0_out: int | None = None
        # Recent pictures' IDs as sent, for a late packet of one of them.
        self._history: dict[int, int] = {}
        self._restart_pending = False
        self._started = False

    @classmethod
    def after(cls, last_sent: Vp8Layering) -> PictureIdRewriter:
        """A rewriter taking over a stream sent unchanged so far, up to ``last_sent``
        (the forwarder needs none until a first dropped frame or restart)."""
        rewriter = cls()
        rewriter._started = True
        rewriter._last_in = rewriter._last_in_out = rewriter._last_out = last_sent.picture_id
        if last_sent.tl0_at:
            rewriter._last_tl0_out = last_sent.tl0_pic_idx
        return rewriter

    def restart(self) -> None:
        """The next forwarded packet begins a keyframe: continue the numbers from the
        last ones sent."""
        self._restart_pending = self._started

    def dropped(self, info: Vp8Layering) -> None:
        """A frame not forwarded (told at its first packet): later IDs move down."""
        if not info.begins_frame or not info.picture_id_bits:
            return
        if self._last_in is None or _pid_ahead(info.picture_id, self._last_in, info.picture_id_bits):
            self._last_in = info.picture_id
            self._pid_offset += 1
            self._last_in_out = -1

    def rewrite(self, payload: bytes, info: Vp8Layering) -> bytes:
        """``payload`` with the subscriber's picture ID and TL0PICIDX."""
        bits = info.picture_id_bits
        if not bits:
            return payload
        pid = info.picture_id
        if self._restart_pending and info.begins_frame:
            self._restart_pending = False
            assert self._last_out is not None
            self._pid_offset = (pid - self._last_out - 1) % (1 << bits)
            if self._last_tl0_out is not None:
                self._tl0_offset = (info.tl0_pic_idx - self._last_tl0_out - 1) % 256
            self._history.clear()
            self._last_in = None
        self._started = True
        if pid == self._last_in and self._last_in_out >= 0:
            out = self._last_in_out  # the common case: the next packet of this picture
        else:
            out = self._new_picture(pid, bits)
        self._last_out = out
        tl0 = (info.tl0_pic_idx - self._tl0_offset) % 256
        if info.tl0_at:
            self._last_tl0_out = tl0
        if out == pid and tl0 == info.tl0_pic_idx:
            return payload
        data = bytearray(payload)
        at = info.picture_id_at
        if bits == 15:
            data[at] = 0x80 | (out >> 8)
            data[at + 1] = out & 0xFF
        else:
            data[at] = out & 0x7F
        if info.tl0_at:
            data[info.tl0_at] = tl0
        return bytes(data)

    def _new_picture(self, pid: int, bits: int) -> int:
        known = self._history.get(pid)
        if known is not None:
            return known  # a late packet of a recent picture
        out = (pid - self._pid_offset) % (1 << bits)
        if self._last_in is None or pid == self._last_in or _pid_ahead(pid, self._last_in, bits):
            self._last_in, self._last_in_out = pid, out
            if len(self._history) >= _PICTURE_ID_HISTORY:
                self._history.clear()
            self._history[pid] = out
        return out


def _pid_ahead(pid: int, than: int, bits: int) -> bool:
    mod = 1 << bits
    diff = (pid - than) % mod
    return 0 < diff < mod // 2
