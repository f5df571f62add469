"""GrabCut gives the same mask for the same prompt (its colour models start from OpenCV's RNG)."""
import numpy as np

from uplift.core.image_io import load_image
from uplift.services.backends.grabcut import GrabCutSegmenter


def test_same_prompt_same_mask(shared_data):
    image = load_image(shared_data / "photos" / "dog.jpg")
    segmenter = GrabCutSegmenter()
    no_points = (np.zeros((0, 2)), np.zeros(0, int))
    box = np.array([100.0, 50.0, 600.0, 500.0])
    first = segmenter.segment(image, *no_points, box).mask
    import cv2

    cv2.randu(np.empty((64, 64), np.float32), 0, 1)  # move the RNG between the calls
    second = segmenter.segment(image, *no_points, box).mask
    assert first.any() and np.array_equal(first, second)
