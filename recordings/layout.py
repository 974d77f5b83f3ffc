"""What one picture of the composite looks like: tiles, the speaker, burned-in text.

The picture is a bar on top (the phase on the left, the local clock on the right)
above a tile area. With a speaker, the speaker's tile takes the left two thirds of
the area and the others share the right third; without one, all tiles share the
area in an even grid. Each video keeps its aspect ratio inside its tile (`fit`), so
a test can cut the speaker's picture back out of a composite frame.

The speaker is whoever is loudest, decided with some inertia (`SpeakerDetector`) so
that a cough does not throw the layout around.

Text is drawn with Pillow in a TrueType font that has Cyrillic (DejaVu or Liberation,
found in the usual system folders) and falls back to Pillow's built-in font, which
has only Latin letters. Rendered strings are cached: the clock changes once a second.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BAR_HEIGHT = 36
SPEAKER_SHARE = 2 / 3

_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


def fit(cell: Rect, width: int, height: int) -> Rect:
    """The largest rectangle of ``width:height`` centred in ``cell`` (even sizes)."""
    if width <= 0 or height <= 0:
        return cell
    scale = min(cell.w / width, cell.h / height)
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return Rect(cell.x + (cell.w - w) // 2, cell.y + (cell.h - h) // 2, w, h)


def _grid(area: Rect, count: int) -> list[Rect]:
    cols = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / cols))
    w, h = area.w // cols, area.h // rows
    return [Rect(area.x + (i % cols) * w, area.y + (i // cols) * h, w, h) for i in range(count)]


def tile_rects(count: int, speaker: int | None, area: Rect) -> list[Rect]:
    """One cell per tile; the cell of tile ``speaker`` is the large one."""
    if count <= 0:
        return []
    if count == 1:
        return [area]
    if speaker is None:
        return _grid(area, count)
    big_w = int(area.w * SPEAKER_SHARE)
    big = Rect(area.x, area.y, big_w, area.h)
    others = count - 1
    cols = 1 if others <= 3 else 2
    rows = math.ceil(others / cols)
    side = Rect(area.x + big_w, area.y, area.w - big_w, area.h)
    w, h = side.w // cols, side.h // rows
    small = [Rect(side.x + (i % cols) * w, side.y + (i // cols) * h, w, h) for i in range(others)]
    return small[:speaker] + [big] + small[speaker:]


def tile_area(width: int, height: int) -> Rect:
    return Rect(0, BAR_HEIGHT, width, height - BAR_HEIGHT)


class SpeakerDetector:
    """The current speaker from per-tick audio levels (RMS, 0..1).

    Levels are smoothed over about ``smoothing_s``. Someone else becomes the
    speaker once their smoothed level has been above ``threshold`` and clearly
    above the current speaker's for ``switch_after_s``; a speaker who leaves is
    replaced at once. Before anyone speaks, ``default`` is the speaker.
    """

    def __init__(self, default: str | None, tick_s: float, *, threshold: float = 0.01,
                 switch_after_s: float = 0.8, smoothing_s: float = 0.3) -> None:
        self._current = default
        self._tick_s = tick_s
        self._threshold = threshold
        self._switch_after_s = switch_after_s
        self._alpha = math.exp(-tick_s / smoothing_s)
        self._smoothed: dict[str, float] = {}
        self._candidate: str | None = None
        self._candidate_s = 0.0

    @property
    def current(self) -> str | None:
        return self._current

    def update(self, levels: dict[str, float], present: list[str]) -> str | None:
        for person in present:
            old = self._smoothed.get(person, 0.0)
            self._smoothed[person] = old * self._alpha + levels.get(person, 0.0) * (1 - self._alpha)
        if not present:
            return self._current
        loudest = max(present, key=lambda p: self._smoothed.get(p, 0.0))
        loud = self._smoothed.get(loudest, 0.0)
        if self._current not in present:
            self._current = loudest if loud >= self._threshold else present[0]
            self._candidate, self._candidate_s = None, 0.0
            return self._current
        now_level = self._smoothed.get(self._current or "", 0.0)
        if loudest != self._current and loud >= self._threshold and loud > 1.5 * now_level:
            if self._candidate == loudest:
                self._candidate_s += self._tick_s
            else:
                self._candidate, self._candidate_s = loudest, self._tick_s
            if self._candidate_s >= self._switch_after_s:
                self._current = loudest
                self._candidate, self._candidate_s = None, 0.0
        else:
            self._candidate, self._candidate_s = None, 0.0
        return self._current


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in _FONT_CANDIDATES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


@functools.lru_cache(maxsize=256)
def text_image(text: str, size: int, background: tuple[int, int, int] | None) -> np.ndarray:
    """``text`` in white as a BGR image; on ``background`` or black (for masking)."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text or " ")
    pad = max(2, size // 5)
    width, height = int(right - left) + 2 * pad, int(bottom - top) + 2 * pad
    image = Image.new("RGB", (max(width, 1), max(height, 1)), background or (0, 0, 0))
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255))
    array = np.asarray(image)[:, :, ::-1]  # RGB -> BGR
    return np.ascontiguousarray(array)


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    """Copy ``image`` onto ``canvas`` at (x, y), clipped to the canvas."""
    height, width = canvas.shape[:2]
    h = min(image.shape[0], height - y)
    w = min(image.shape[1], width - x)
    if h > 0 and w > 0 and x >= 0 and y >= 0:
        canvas[y:y + h, x:x + w] = image[:h, :w]


def draw_bar(canvas: np.ndarray, left: str, right: str) -> None:
    """The top bar: ``left`` (phase) and ``right`` (clock) on a dark strip."""
    canvas[:BAR_HEIGHT] = (40, 40, 40)
    size = BAR_HEIGHT * 3 // 5
    left_image = text_image(left, size, (40, 40, 40))
    right_image = text_image(right, size, (40, 40, 40))
    y = max(0, (BAR_HEIGHT - left_image.shape[0]) // 2)
    paste(canvas, left_image, 8, y)
    paste(canvas, right_image, canvas.shape[1] - right_image.shape[1] - 8, y)


def draw_label(canvas: np.ndarray, rect: Rect, text: str) -> None:
    """A name tag in the upper left corner of a tile (over the top of the picture,
    where a face rarely is)."""
    image = text_image(text, 14 if rect.w < 400 else 18, (24, 24, 24))
    paste(canvas, image, rect.x + 4, rect.y + 4)


def draw_border(canvas: np.ndarray, rect: Rect, colour: tuple[int, int, int],
                width: int = 3) -> None:
    x0, y0, x1, y1 = rect.x, rect.y, rect.x + rect.w, rect.y + rect.h
    canvas[y0:y0 + width, x0:x1] = colour
    canvas[y1 - width:y1, x0:x1] = colour
    canvas[y0:y1, x0:x0 + width] = colour
    canvas[y0:y1, x1 - width:x1] = colour
