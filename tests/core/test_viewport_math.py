"""Region pixels ↔ photo pixels for the Select Object modal (pure maths, no bpy)."""
import numpy as np
import pytest

from uplift.core.errors import ControlError
from uplift.core.viewport_math import FrameMapping, is_drag

W, H = 800, 534


def axis_aligned(x0=100.0, y0=50.0, scale=0.5):
    """The frame as Blender draws a camera view: region y up, image v down."""
    x1, y1 = x0 + W * scale, y0 + H * scale
    # CORNER_ORDER: image top-left, top-right, bottom-right, bottom-left
    corners = np.array([[x0, y1], [x1, y1], [x1, y0], [x0, y0]])
    return FrameMapping.from_corners(corners, W, H), (x0, y0, scale)


def test_axis_aligned_frame_matches_the_obvious_formula():
    mapping, (x0, y0, s) = axis_aligned()
    region = np.array([[x0 + 10, y0 + 20], [x0 + 200, y0 + 150]])
    expected = np.stack([(region[:, 0] - x0) / s, H - (region[:, 1] - y0) / s], axis=1)
    np.testing.assert_allclose(mapping.to_image(region), expected, atol=1e-6)


def test_corners_map_to_image_corners_and_back():
    rng = np.random.default_rng(3)
    corners = np.array([[120, 400], [610, 430], [590, 90], [100, 60]], dtype=float) + rng.normal(0, 3, (4, 2))
    mapping = FrameMapping.from_corners(corners, W, H)
    np.testing.assert_allclose(mapping.to_image(corners), [[0, 0], [W, 0], [W, H], [0, H]], atol=1e-6)
    uv = rng.uniform([0, 0], [W, H], (50, 2))
    np.testing.assert_allclose(mapping.to_image(mapping.to_region(uv)), uv, atol=1e-6)


def test_point_inside_and_outside():
    mapping, (x0, y0, s) = axis_aligned()
    u, v = mapping.point((x0 + 1.0, y0 + H * s - 1.0))
    assert u == pytest.approx(2.0) and v == pytest.approx(2.0)
    with pytest.raises(ControlError, match="outside"):
        mapping.point((x0 - 5, y0 + 5))


def test_box_is_sorted_clipped_and_integer():
    mapping, (x0, y0, s) = axis_aligned()
    # Dragged from bottom-right to beyond the top-left corner: sorted and clipped to the photo.
    box = mapping.box((x0 + 300, y0 + 10), (x0 - 40, y0 + H * s + 40))
    # u: (-40 .. 300) / s -> clipped 0 .. 600; v: H - 10 / s = 514 .. H - (H s + 40) / s < 0 -> 0
    assert box == (0, 0, 600, 514)
    with pytest.raises(ControlError, match="too small"):
        mapping.box((x0 + 5, y0 + 5), (x0 + 5.4, y0 + 5.4))


def test_degenerate_frame_is_refused():
    with pytest.raises(ControlError):
        FrameMapping.from_corners(np.zeros((4, 2)), W, H)
    with pytest.raises(ControlError):
        FrameMapping.from_corners(np.full((4, 2), np.nan), W, H)


def test_drag_threshold():
    assert not is_drag((10, 10), (12, 13))
    assert is_drag((10, 10), (20, 10))
