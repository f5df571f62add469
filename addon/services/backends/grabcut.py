"""segment/grabcut — the embedded default: OpenCV GrabCut seeded from a box, or from a
box grown around the clicked points; clicks are hard labels; morphological clean-up."""
from __future__ import annotations

import numpy as np

from .base import SegmentResult

WORK_SIDE = 640       # GrabCut runs on a copy whose longer side is at most this (cost ~ pixels x iterations)
ITERATIONS = 5
CLICK_RADIUS = 0.016  # hard-label disk radius, as a fraction of the working image's longer side
MORPH_RADIUS = 0.004  # clean-up disk radius, same unit: removes specks, keeps the outline
GROW = 0.35           # points-only box: the points' bounding box grown by this fraction of the image side
PART_FRACTION = 0.1   # with no foreground click, every component at least this fraction of the largest stays:
                      # a lamp's shade and base, cut apart where GrabCut misses the thin stem, are one object


class GrabCutSegmenter:
    name = "grabcut"

    def segment(self, image: np.ndarray,            # uint8 [H, W, 3]
                points: np.ndarray,                  # float [P, 2] pixels
                labels: np.ndarray,                  # int [P]
                box: np.ndarray | None) -> SegmentResult:  # float [4] or None
        import cv2

        h, w = image.shape[:2]
        scale = min(1.0, WORK_SIDE / max(h, w))
        small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                      interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) * [sw / w, sh / h]
        labels = np.asarray(labels).reshape(-1)
        if box is not None:
            x0, y0, x1, y1 = np.asarray(box, dtype=np.float64) * [sw / w, sh / h, sw / w, sh / h]
        else:
            fg = pts[labels == 1] if (labels == 1).any() else pts
            margin = GROW * max(sw, sh) / 2
            x0, y0 = fg.min(0) - margin
            x1, y1 = fg.max(0) + margin
        x0, y0 = int(np.clip(np.floor(x0), 0, sw - 1)), int(np.clip(np.floor(y0), 0, sh - 1))
        x1, y1 = int(np.clip(np.ceil(x1), x0 + 1, sw)), int(np.clip(np.ceil(y1), y0 + 1, sh))

        gc = np.full((sh, sw), cv2.GC_BGD, np.uint8)
        gc[y0:y1, x0:x1] = cv2.GC_PR_FGD
        radius = max(1, round(CLICK_RADIUS * max(sw, sh)))
        for (x, y), label in zip(pts, labels):
            cv2.circle(gc, (int(x), int(y)), radius, int(cv2.GC_FGD if label == 1 else cv2.GC_BGD), -1)
        if not (gc == cv2.GC_BGD).any():
            # GrabCut needs background samples: a box covering the whole image lends its 1-px border.
            gc[[0, -1], :] = cv2.GC_PR_BGD
            gc[:, [0, -1]] = cv2.GC_PR_BGD
            gc[0, 0] = gc[-1, -1] = cv2.GC_BGD
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = np.ascontiguousarray(small[..., ::-1])
        try:
            # GrabCut seeds its colour models from OpenCV's (thread-local) RNG: fix it so
            # the same prompt always gives the same mask, in-process or through a server.
            cv2.setRNGSeed(0)
            cv2.grabCut(bgr, gc, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            # Degenerate colour models (e.g. a flat image): fall back to the seed itself.
            pass
        raw = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        clean = _clean(raw, pts[labels == 1], pts[labels != 1], max(1, round(MORPH_RADIUS * max(sw, sh))))
        score = _agreement(raw, clean)
        if scale != 1.0:
            clean = cv2.resize(clean.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
        return SegmentResult(clean, score)


def _clean(mask: np.ndarray,       # bool [h, w]
           fg_points: np.ndarray,  # float [F, 2] foreground clicks (x, y)
           bg_points: np.ndarray,  # float [B, 2] background clicks (x, y)
           radius: int) -> np.ndarray:  # -> bool [h, w]
    """Open then close with a small disk, keep the components holding a foreground click (else the
    largest one and those at least PART_FRACTION of its size), and fill holes, except holes the
    artist marked as background."""
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, k)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k)
    count, comp, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if count <= 1:
        return mask.copy() if mask.any() else m.astype(bool)
    keep = {int(comp[int(np.clip(y, 0, m.shape[0] - 1)), int(np.clip(x, 0, m.shape[1] - 1))]) for x, y in fg_points}
    keep.discard(0)
    if not keep:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = set((1 + np.flatnonzero(areas >= PART_FRACTION * areas.max())).tolist())
    m = np.isin(comp, list(keep)).astype(np.uint8)
    # Fill holes: background not connected to the border becomes foreground.
    flood = np.pad(1 - m, 1, constant_values=1)
    cv2.floodFill(flood, None, (0, 0), 2)
    for x, y in bg_points:  # a background click inside a hole keeps that hole open
        seed = (int(np.clip(x, 0, m.shape[1] - 1)) + 1, int(np.clip(y, 0, m.shape[0] - 1)) + 1)
        if flood[seed[1], seed[0]] == 1:
            cv2.floodFill(flood, None, seed, 2)
    return (flood[1:-1, 1:-1] != 2)


def _agreement(raw: np.ndarray, clean: np.ndarray) -> float:
    """IoU of GrabCut's raw labelling and the cleaned mask: near 1 for a crisp segmentation."""
    union = (raw | clean).sum()
    return float((raw & clean).sum() / union) if union else 0.0
