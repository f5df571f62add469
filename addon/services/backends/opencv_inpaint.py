"""inpaint/telea, inpaint/ns — the embedded defaults, OpenCV's cv2.inpaint."""
from __future__ import annotations

import numpy as np

RADIUS = 5  # neighbourhood considered for each filled pixel, in pixels


class OpenCVInpainter:
    takes_prompt = False

    def __init__(self, method: str = "telea") -> None:
        if method not in ("telea", "ns"):
            raise ValueError(f"OpenCV inpainting method must be 'telea' or 'ns', not {method!r}")
        self.name = method

    def inpaint(self, image: np.ndarray, region: np.ndarray, prompt: str | None = None) -> np.ndarray:
        import cv2

        flag = cv2.INPAINT_TELEA if self.name == "telea" else cv2.INPAINT_NS
        bgr = np.ascontiguousarray(image[..., ::-1])
        out = cv2.inpaint(bgr, region.astype(np.uint8) * 255, RADIUS, flag)
        return np.ascontiguousarray(out[..., ::-1])
