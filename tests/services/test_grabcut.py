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


def test_clean_up_keeps_the_parts_of_an_object_but_not_specks():
    """A lamp whose thin stem GrabCut missed comes out as a shade and a base: both stay. A blob under
    PART_FRACTION of the largest part goes, and so does everything but a clicked part."""
    from uplift.services.backends.grabcut import PART_FRACTION, _clean

    mask = np.zeros((120, 100), bool)
    mask[10:50, 20:80] = True                     # the shade: 2400 px
    mask[90:110, 35:65] = True                    # the base: 600 px, a quarter of it
    speck_side = int(np.sqrt(PART_FRACTION * 2400)) - 3
    mask[60:60 + speck_side, 2:2 + speck_side] = True  # under PART_FRACTION of the shade
    none = np.zeros((0, 2))
    kept = _clean(mask, none, none, radius=1)
    assert kept[11:49, 21:79].all() and kept[91:109, 36:64].all()  # (opening rounds the corners)
    assert not kept[60:60 + speck_side, 2:2 + speck_side].any()
    clicked = _clean(mask, np.array([[50.0, 100.0]]), none, radius=1)  # a click on the base: the base alone
    assert clicked[91:109, 36:64].all() and not clicked[10:50, 20:80].any()
