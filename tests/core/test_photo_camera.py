"""Camera from a photo: EXIF focal lengths, the default field of view, orientation."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from uplift.core.camera import DEFAULT_HORIZONTAL_FOV_DEG, PHOTO_WORLD_TO_CAMERA
from uplift.core.errors import ImageFormatError
from uplift.core.image_io import load_image
from uplift.core.photo import camera_from_photo, photo_camera


def jpeg(size=(400, 300), **tags) -> bytes:
    """A JPEG with the given EXIF tags (names as in PIL.ExifTags: Orientation, FocalLength, ...)."""
    from PIL.ExifTags import IFD, Base

    exif = Image.Exif()
    sub = exif.get_ifd(IFD.Exif)
    for name, value in tags.items():
        tag = Base[name].value
        if name == "Orientation":
            exif[tag] = value
        else:
            sub[tag] = value
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def test_35mm_equivalent_is_preferred():
    pc = photo_camera(jpeg((400, 300), FocalLengthIn35mmFilm=24, FocalLength=4.2, FocalPlaneXResolution=1000.0))
    assert pc.focal_source == "exif_35mm"
    assert math.isclose(pc.camera.K[0, 0], 24 / 36 * 400)
    assert math.isclose(pc.focal_length_35mm, 24)
    assert "EXIF" in pc.description


@pytest.mark.parametrize("container", ["JPEG", "PNG"])
def test_35mm_tag_in_ifd0_or_a_png_is_read(container):
    """Some writers put FocalLengthIn35mmFilm in IFD0 instead of the Exif sub-IFD (a held-out set's photos
    lost their lens that way); PNG photos carry EXIF in an eXIf chunk."""
    exif = Image.Exif()
    exif[0xA405] = 35  # FocalLengthIn35mmFilm, in IFD0
    buf = io.BytesIO()
    Image.new("RGB", (480, 360), (120, 80, 40)).save(buf, format=container, exif=exif)
    pc = photo_camera(buf.getvalue())
    assert pc.focal_source == "exif_35mm"
    assert math.isclose(pc.camera.K[0, 0], 35 / 36 * 480)


def test_focal_length_with_focal_plane_resolution():
    # 5 mm lens, 800 px per cm on the sensor, photo stored at half the sensor width
    data = jpeg((400, 300), FocalLength=5.0, FocalPlaneXResolution=800.0, FocalPlaneResolutionUnit=3,
                ExifImageWidth=800)
    pc = photo_camera(data)
    assert pc.focal_source == "exif_focal_plane"
    assert math.isclose(pc.camera.K[0, 0], 5.0 * 80.0 * 400 / 800)


def test_focal_length_alone_is_not_enough():
    pc = photo_camera(jpeg((400, 300), FocalLength=5.0))
    assert pc.focal_source == "default"


def test_no_exif_uses_the_default_field_of_view():
    pc = photo_camera(jpeg((400, 300)))
    assert pc.focal_source == "default"
    fov = 2 * math.degrees(math.atan(200 / pc.camera.K[0, 0]))
    assert math.isclose(fov, DEFAULT_HORIZONTAL_FOV_DEG)
    assert np.allclose(pc.camera.K[:2, 2], [200, 150])
    assert np.array_equal(pc.camera.world_to_camera, PHOTO_WORLD_TO_CAMERA)
    assert "assumed" in pc.description


def test_absurd_tags_fall_back_to_the_default():
    assert photo_camera(jpeg(FocalLengthIn35mmFilm=0)).focal_source == "default"
    assert photo_camera(jpeg(FocalLength=5.0, FocalPlaneXResolution=1e-9)).focal_source == "default"


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_orientation_matches_load_image(orientation):
    data = jpeg((400, 300), Orientation=orientation, FocalLengthIn35mmFilm=28)
    cam = camera_from_photo(data)
    h, w = load_image(data).shape[:2]
    assert (cam.width, cam.height) == (w, h)
    assert math.isclose(cam.K[0, 0], 28 / 36 * 400)  # long side either way
    assert np.allclose(cam.K[:2, 2], [w / 2, h / 2])


def test_real_photo(shared_data):
    path = shared_data / "photos" / "truck.jpg"
    cam = camera_from_photo(path)
    assert (cam.width, cam.height) == load_image(path).shape[1::-1]
    assert cam.K[0, 0] > 0


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(ImageFormatError):
        camera_from_photo(b"not an image")
    with pytest.raises(ImageFormatError, match="does not exist"):
        camera_from_photo(tmp_path / "missing.jpg")
    with pytest.raises(ImageFormatError, match="truncated"):
        camera_from_photo(jpeg()[:-400])
