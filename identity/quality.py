"""Picture quality measures on a face crop: brightness, sharpness, glare.

Pure numpy/OpenCV on grayscale arrays. Sharpness is the variance of the
Laplacian on the crop scaled to a fixed size, so a small document photo and a
large live face are measured alike (issue 5: 575-646 on sharp faces, 9-13 after
a Gaussian blur of sigma 2).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from .verdict import Box

Image = npt.NDArray[np.uint8]
SHARPNESS_SIZE = 96
SATURATED = 250


def gray(image: Image) -> Image:
    """Luma of an RGB frame."""
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def crop(image: Image, box: Box) -> Image:
    return image[box.top:box.bottom, box.left:box.right]


def brightness(luma: Image) -> float:
    """Mean brightness, 0-255."""
    return float(luma.mean()) if luma.size else 0.0


def sharpness(luma: Image) -> float:
    """Variance of the Laplacian after scaling to SHARPNESS_SIZE square."""
    if luma.size == 0:
        return 0.0
    scaled = cv2.resize(luma, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_AREA
                        if min(luma.shape) >= SHARPNESS_SIZE else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(scaled, cv2.CV_64F).var())


def glare(luma: Image) -> float:
    """Share of saturated pixels (>= 250)."""
    if luma.size == 0:
        return 0.0
    return float(np.count_nonzero(luma >= SATURATED)) / luma.size


def frame_sharpness(luma: Image, width: int = 320) -> float:
    """Variance of the Laplacian of the whole frame scaled to `width`; ranks the
    frames of a burst (the same scene, so only their order matters)."""
    height = max(1, round(luma.shape[0] * width / luma.shape[1]))
    scaled = cv2.resize(luma, (width, height), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(scaled, cv2.CV_64F).var())
