"""Segmentation and inpainting of the test photos through a live server."""
from __future__ import annotations

import numpy as np
import pytest

from uplift.core.compositing import dilate
from uplift.core.image_io import load_image
from uplift.services.api import HttpServices
from uplift.services.client import UpliftClient
from uplift.services.config import ServerConfig

from live_server import running

# The pickup truck in truck.jpg (1800x1200), outlined by hand on a half-size copy:
# canopy, cab, bonnet, front bumper, front wheel, sill, rear wheel, tow hitch, tailgate.
TRUCK_OUTLINE_HALF = [
    (100, 152), (440, 141), (458, 145), (545, 147), (580, 158), (645, 202), (700, 210), (770, 218),
    (815, 228), (835, 252), (850, 258), (856, 290), (852, 325), (815, 332), (808, 360), (785, 383),
    (745, 390), (705, 375), (690, 362), (625, 365), (345, 372), (335, 392), (305, 422), (265, 427),
    (225, 410), (205, 378), (85, 368), (42, 366), (40, 346), (68, 342), (64, 300), (62, 240),
    (72, 200), (85, 175)]
TRUCK_BOX = [110, 270, 1726, 860]  # x0, y0, x1, y1 around the truck, full resolution


def polygon_mask(points, shape) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(points) * 2).astype(np.int32)], 1)
    return mask.astype(bool)


@pytest.fixture(scope="module")
def truck(shared_data):
    image = load_image(shared_data / "photos" / "truck.jpg")
    assert image.shape == (1200, 1800, 3)
    return image, polygon_mask(TRUCK_OUTLINE_HALF, image.shape[:2])


@pytest.fixture(scope="module")
def server():
    with running(ServerConfig()) as url:
        yield url


def test_box_around_the_truck_segments_it(server, truck):
    image, truth = truck
    result = HttpServices(UpliftClient(server)).segment(image, box=TRUCK_BOX)
    iou = (result.mask & truth).sum() / (result.mask | truth).sum()
    assert iou >= 0.8, iou


@pytest.mark.parametrize("backend", ["telea", "ns"])
def test_inpaint_changes_nothing_outside_the_dilated_mask(shared_data, backend):
    image = load_image(shared_data / "photos" / "groceries.jpg")
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[h // 3: h // 2, w // 3: w // 2] = True
    with running(ServerConfig(inpaint=backend, segment="none", lift="none")) as url:
        plate = HttpServices(UpliftClient(url)).inpaint(image, mask, dilate=6)
    region = dilate(mask, 6)
    changed = (plate != image).any(-1)
    assert not (changed & ~region).any()
    assert changed[mask].mean() > 0.5  # and the hole really is repainted


def test_seam_mode_on_the_truck_touches_only_the_ring(server, truck):
    from uplift.core.compositing import seam_ring

    image, truth = truck
    plate = HttpServices(UpliftClient(server)).inpaint(image, truth, mode="seam", dilate=5)
    changed = (plate != image).any(-1)
    assert changed.any() and not (changed & ~seam_ring(truth, 5)).any()
