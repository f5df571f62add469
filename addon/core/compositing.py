"""Mask morphology and alpha compositing on numpy images.

Alpha is straight (not premultiplied) everywhere in Uplift; `alpha_over`
premultiplies internally.
"""
from __future__ import annotations

import numpy as np

from .errors import MaskError


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= r * r).astype(np.uint8)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:  # bool [H, W] -> bool [H, W]
    """Grow by a disk of `radius` pixels (0 returns a copy)."""
    if radius <= 0:
        return mask.copy()
    import cv2

    return cv2.dilate(mask.astype(np.uint8), _disk(radius)) > 0


def erode(mask: np.ndarray, radius: int) -> np.ndarray:  # bool [H, W] -> bool [H, W]
    if radius <= 0:
        return mask.copy()
    import cv2

    return cv2.erode(mask.astype(np.uint8), _disk(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


SEAM_WIDTH = 4  # default seam-ring half-width in pixels (a seam pass asked for width 0)


def seam_ring(mask: np.ndarray, width: int) -> np.ndarray:  # bool [H, W] -> bool [H, W]
    """The band of `width` pixels on each side of the mask's boundary."""
    return dilate(mask, width) & ~erode(mask, width)


def alpha_over(foreground_rgba: np.ndarray, background_rgb: np.ndarray) -> np.ndarray:
    """foreground: float [H, W, 4] straight alpha in [0, 1]; background: float [H, W, 3]
    -> float [H, W, 3] = fg.rgb * a + bg * (1 - a)."""
    if foreground_rgba.shape[:2] != background_rgb.shape[:2]:
        raise MaskError(
            f"cannot composite a {foreground_rgba.shape[1]}x{foreground_rgba.shape[0]} render over a "
            f"{background_rgb.shape[1]}x{background_rgb.shape[0]} plate"
        )
    alpha = foreground_rgba[..., 3:4]
    return foreground_rgba[..., :3] * alpha + background_rgb * (1.0 - alpha)
