"""Built "passport beside the face" frames, for tests, calibration and the bench.

`passport_frame` puts a head-and-shoulders crop of one photo into a plain room
and, beside the face, an open passport page whose photo is a second picture
scaled down, slightly blurred and made to look printed (less contrast and
colour, a paper tint, fine grain). Options spoil it the ways a phone camera does:
glare on the photo, a blur of the whole frame, darkness, a third person.

Everything is deterministic (a seeded generator) so a test sees the same pixels
on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .quality import Image
from .verdict import Box

PAPER = np.array([236, 229, 214], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Portrait:
    """A source photo (RGB) and the box of its face."""

    image: Image
    box: Box


def find_portrait(image: Image, *, min_score: float = 0.5) -> Portrait | None:
    """The photo with its largest face (HOG, upsample 1), or None if it has none."""
    from .faces import detect

    rgb = np.ascontiguousarray(image[..., :3])
    found = detect(rgb, scale=1.0, upsample=1, min_score=min_score)
    if not found:
        return None
    return Portrait(rgb, max(found, key=lambda f: f.box.area).box)


def _cut(portrait: Portrait, face_px: int, left: float, right: float, top: float,
         bottom: float) -> tuple[Image, tuple[int, int]]:
    """The region around the face (margins in face widths/heights), scaled so the
    face is `face_px` wide; also the face's centre in the cut."""
    box = portrait.box
    src_h, src_w = portrait.image.shape[:2]
    factor = face_px / box.width
    x0 = round(box.left - left * box.width)
    x1 = round(box.right + right * box.width)
    y0 = round(box.top - top * box.height)
    y1 = round(box.bottom + bottom * box.height)
    padded = cv2.copyMakeBorder(portrait.image, max(0, -y0), max(0, y1 - src_h),
                                max(0, -x0), max(0, x1 - src_w), cv2.BORDER_REPLICATE)
    region = padded[y0 + max(0, -y0):y1 + max(0, -y0), x0 + max(0, -x0):x1 + max(0, -x0)]
    size = (max(1, round(region.shape[1] * factor)), max(1, round(region.shape[0] * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(region, size, interpolation=interpolation)
    centre = (round((box.left - x0 + box.width / 2) * factor),
              round((box.top - y0 + box.height / 2) * factor))
    return np.asarray(scaled, dtype=np.uint8), centre


def _paste(canvas: Image, picture: Image, x: int, y: int) -> None:
    """Paste with its top-left corner at (x, y), clipped to the canvas."""
    height, width = canvas.shape[:2]
    ph, pw = picture.shape[:2]
    cx0, cy0 = max(0, x), max(0, y)
    cx1, cy1 = min(width, x + pw), min(height, y + ph)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = picture[cy0 - y:cy1 - y, cx0 - x:cx1 - x]


def printed(photo: Image, *, blur_sigma: float, rng: np.random.Generator) -> Image:
    """A photo as printed in a passport: softer, paler, tinted, grainy."""
    work = photo.astype(np.float32)
    grey = work.mean(axis=2, keepdims=True)
    work = 0.6 * work + 0.4 * grey  # less colour
    work = 0.8 * work + 0.12 * PAPER  # less contrast; paper white is not saturated
    if blur_sigma > 0:
        work = np.asarray(cv2.GaussianBlur(work, (0, 0), blur_sigma), dtype=np.float32)
    noisy = work + rng.normal(0.0, 3.0, work.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _room(width: int, height: int, rng: np.random.Generator) -> Image:
    """A plain wall with a soft vertical gradient and a little noise."""
    ramp = np.linspace(0.85, 1.1, height, dtype=np.float32)[:, None, None]
    wall = np.array([150, 160, 170], dtype=np.float32) * ramp
    canvas = np.broadcast_to(wall, (height, width, 3)) + rng.normal(0.0, 2.0, (height, width, 3))
    return np.clip(canvas, 0, 255).astype(np.uint8)


def passport_frame(
    live: Portrait,
    document: Portrait | None,
    *,
    size: tuple[int, int] = (1280, 720),
    live_face_px: int | None = None,
    document_face_px: int = 64,
    document_blur: float = 0.8,
    glare: bool = False,
    frame_blur: float = 0.0,
    light: float = 1.0,
    third: Portrait | None = None,
    seed: int = 0,
) -> Image:
    """A `size` (width, height) RGB frame; see the module doc."""
    rng = np.random.default_rng(seed)
    width, height = size
    canvas = _room(width, height, rng)
    face_px = live_face_px or round(height * 0.3)
    person, (px, py) = _cut(live, face_px, 0.6, 0.6, 0.7, 2.2)
    live_x, live_y = round(width * 0.42), round(height * 0.42)
    _paste(canvas, person, live_x - px, live_y - py)
    if third is not None:  # someone standing behind, to the left
        other, (ox, oy) = _cut(third, round(face_px * 0.7), 0.5, 0.5, 0.6, 1.8)
        _paste(canvas, other, round(width * 0.13) - ox, round(height * 0.4) - oy)
    if document is not None:
        photo, _ = _cut(document, document_face_px, 0.3, 0.3, 0.45, 0.4)
        photo = printed(photo, blur_sigma=document_blur, rng=rng)
        ph, pw = photo.shape[:2]
        page_h, page_w = round(ph * 1.5), round(pw * 2.6)
        page = np.broadcast_to(PAPER, (page_h, page_w, 3)).astype(np.uint8).copy()
        pad = (page_h - ph) // 2
        page[pad:pad + ph, pad:pad + pw] = photo
        for line in range(4):  # lines of print beside the photo
            y = pad + round(ph * (0.15 + 0.2 * line))
            page[y:y + max(2, ph // 25), pad * 2 + pw:page_w - pad] = (90, 90, 100)
        if glare:  # a lamp's reflection on the forehead
            spot = np.zeros((ph, pw), dtype=np.float32)
            cv2.ellipse(spot, (pw // 2, ph * 3 // 10), (pw // 4, ph // 9), 0, 0, 360, 1.0, -1)
            soft = np.asarray(cv2.GaussianBlur(spot, (0, 0), max(1.0, pw / 30)),
                              dtype=np.float32)[..., None]
            region = page[pad:pad + ph, pad:pad + pw].astype(np.float32)
            page[pad:pad + ph, pad:pad + pw] = np.clip(
                region * (1 - soft) + 255 * soft, 0, 255).astype(np.uint8)
        page_x = live_x + round(face_px * 0.95)
        _paste(canvas, page, page_x, live_y - page_h // 2)
    if frame_blur > 0:
        canvas = np.asarray(cv2.GaussianBlur(canvas, (0, 0), frame_blur), dtype=np.uint8)
    if light != 1.0:
        canvas = np.clip(canvas.astype(np.float32) * light, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(canvas)


def sample_portraits() -> tuple[Portrait, Portrait]:
    """Eileen Collins (scikit-image's astronaut) and Grace Hopper (matplotlib's
    sample), both public domain and shipped by installed packages."""
    import matplotlib
    import skimage.data
    from PIL import Image as PILImage

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with PILImage.open(path) as picture:
        hopper = np.asarray(picture.convert("RGB"), dtype=np.uint8)
    astronaut = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    portraits = [find_portrait(np.asarray(astronaut, dtype=np.uint8)),
                 find_portrait(hopper)]
    if portraits[0] is None or portraits[1] is None:
        raise RuntimeError("no face found in the sample portraits")
    return portraits[0], portraits[1]


def encode_burst(images: list[Image], *, codec: str = "vp8", fps: int = 15,
                 bit_rate: int = 1_500_000) -> list[bytes]:
    """Encode RGB frames as a phone would send them (VP8 or H.264, first frame a
    keyframe); one bytes object per frame, as the forwarder's sink receives it."""
    import fractions

    import av

    encoder = av.CodecContext.create({"vp8": "libvpx", "h264": "libx264"}[codec], "w")
    assert isinstance(encoder, av.VideoCodecContext)
    height, width = images[0].shape[:2]
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, fps)
    encoder.framerate = fractions.Fraction(fps, 1)
    encoder.bit_rate = bit_rate
    encoder.options = ({"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
                       if codec == "vp8" else {"preset": "ultrafast", "tune": "zerolatency"})
    frames: list[bytes] = []
    for n, image in enumerate([*images, None]):
        frame = None
        if image is not None:
            yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = n, encoder.time_base
        frames.extend(bytes(packet) for packet in encoder.encode(frame))
    return frames
