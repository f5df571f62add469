"""`uplift edit` end to end: the truck photo at full size, --keep files, a live server,
and clear one-line errors."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from uplift.cli.main import main
from uplift.core.compositing import dilate
from uplift.core.image_io import load_image, load_mask, save_png
from uplift.pipeline.edit import EditConfig
from uplift.pipeline.keep import KEPT_FILES

TRUCK_BOX = "75,275,1725,855"
MAX_SIZE = 512  # working resolution for the test: keeps the CPU run short; the output stays 1800x1200


@pytest.fixture(scope="module")
def truck_edit(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("truck")
    photo = shared_data / "photos" / "truck.jpg"
    before = photo.read_bytes()
    rc = main(["edit", str(photo), "--box", TRUCK_BOX, "--rotate", "20,0,0", "-o", str(out / "final.png"),
               "--keep", str(out / "keep"), "--max-size", str(MAX_SIZE), "-q"])
    assert rc == 0
    assert photo.read_bytes() == before  # the input is never modified
    return photo, out


def test_truck_yaw_output_has_the_photo_size(truck_edit):
    photo, out = truck_edit
    final = load_image(out / "final.png")
    assert final.shape == (1200, 1800, 3)
    assert np.array_equal(final, load_image(out / "keep" / "final.png"))


def test_truck_yaw_changes_nothing_outside_the_old_and_new_dilated_masks(truck_edit):
    photo, out = truck_edit
    image, final = load_image(photo), load_image(out / "final.png")
    old = load_mask(out / "keep" / "mask.png", shape=image.shape[:2])
    new = load_mask(out / "keep" / "new_mask.png", shape=image.shape[:2])
    config = EditConfig()
    scale = MAX_SIZE / 1800  # the radii are in working pixels
    union = (dilate(old, math.ceil(config.hole_dilate / scale))
             | dilate(new, math.ceil(config.silhouette_dilate / scale)))
    assert np.array_equal(final[~union], image[~union])
    assert union.mean() < 0.6  # the union is the truck's neighbourhood, not the whole picture
    changed = np.abs(final.astype(int) - image.astype(int)).sum(-1) > 30
    assert changed[old].mean() > 0.2, "the 20° yaw left the truck's pixels nearly unchanged"


def test_keep_folder_has_every_documented_file(truck_edit):
    _, out = truck_edit
    keep = out / "keep"
    readme = (keep / "README.txt").read_text()
    for name in KEPT_FILES:
        assert (keep / name).is_file(), name
        assert name in readme
    plate = load_image(keep / "plate.png")
    assert plate.shape == (1200, 1800, 3)
    obj = load_image(keep / "object.png")
    assert obj.shape == (1200, 1800, 3)


def small_png(shared_data, tmp_path):
    image = cv2.resize(load_image(shared_data / "photos" / "truck.jpg"), (300, 200), interpolation=cv2.INTER_AREA)
    path = tmp_path / "small_truck.png"
    save_png(path, image)
    return path


def test_server_and_embedded_backends_give_the_same_result(shared_data, tmp_path):
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices
    from uplift.services.server import create_app, start_background

    photo = small_png(shared_data, tmp_path)
    # Segment once and reuse the mask: OpenCV's GrabCut draws from a global RNG, so two
    # segmentations of one box can differ by a few hundred pixels.
    assert main(["edit", str(photo), "--box", "12,45,288,143", "-o", str(tmp_path / "first.png"),
                 "--keep", str(tmp_path / "keep"), "-q"]) == 0
    args = [str(photo), "--mask", str(tmp_path / "keep" / "mask.png"), "--rotate=-15,5,0", "--scale", "0.9", "-q"]
    assert main(["edit", *args, "-o", str(tmp_path / "embedded.png")]) == 0
    config = ServerConfig()
    server = start_background(create_app(config, LocalServices(config)))
    try:
        assert main(["edit", *args, "-o", str(tmp_path / "served.png"), "--server", server.url]) == 0
    finally:
        server.stop()
    embedded, served = load_image(tmp_path / "embedded.png"), load_image(tmp_path / "served.png")
    assert np.array_equal(embedded, served)
    assert not np.array_equal(embedded, load_image(photo))


def test_a_drag_in_the_negative_form_runs(shared_data, tmp_path):
    photo = small_png(shared_data, tmp_path)
    rc = main(["edit", str(photo), "--box", "12,45,288,143", "--drag=0.4,-0.1,0:0.4,-0.3,0",
               "-o", str(tmp_path / "dragged.png"), "-q"])
    assert rc == 0
    assert not np.array_equal(load_image(tmp_path / "dragged.png"), load_image(photo))


def test_no_reproject_renders_the_lifted_colours(shared_data, tmp_path):
    """Without an edit, reprojection gives the photo back (but for the filled hole around the
    object); --no-reproject shows the lifted colours, several times further from it."""
    photo = small_png(shared_data, tmp_path)
    for flag, name in (([], "on.png"), (["--no-reproject"], "off.png")):
        assert main(["edit", str(photo), "--box", "12,45,288,143", "-o", str(tmp_path / name), "-q", *flag]) == 0
    original = load_image(photo).astype(float)
    on, off = (np.abs(load_image(tmp_path / n).astype(float) - original).mean() for n in ("on.png", "off.png"))
    assert on < off / 3, (on, off)


@pytest.mark.parametrize("argv, message", [
    (["--rotate", "20,0,0"], "select the object"),
    (["--box", "10,10,5,5"], "x0 < x1"),
    (["--box", "5000,10,6000,20"], "outside"),
    (["--box", "10,10,100,100", "--scale", "0"], "scale"),
    (["--box", "12,45,288,143", "--drag=9,9,9:9,8,9"], "object size"),
    (["--box", "10,10,100,100", "--server", "http://127.0.0.1:9"], "uplift serve"),
])
def test_errors_are_one_clear_line(shared_data, tmp_path, capsys, argv, message):
    photo = small_png(shared_data, tmp_path)
    rc = main(["edit", str(photo), *argv, "-o", str(tmp_path / "out.png"), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("uplift edit: error:") and message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_refuses_to_overwrite_the_photo_and_bad_photos(tmp_path, capsys, shared_data):
    photo = small_png(shared_data, tmp_path)
    before = photo.read_bytes()
    assert main(["edit", str(photo), "--box", "12,45,288,143", "-o", str(photo), "-q"]) == 2
    assert photo.read_bytes() == before
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not a jpeg at all")
    assert main(["edit", str(garbage), "--box", "1,1,5,5", "-o", str(tmp_path / "o.png"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "garbage.jpg" in err and "Traceback" not in err


def test_background_points_reach_the_segmenter_as_background(shared_data, tmp_path):
    """Clicking 'not the object' all over the cab leaves the cab out of the mask."""
    photo = small_png(shared_data, tmp_path)
    cab = [(x, y) for x in (200, 225, 250, 270) for y in (65, 90, 115)]
    base = ["edit", str(photo), "--box", "12,45,288,143", "--point", "80,90", "-q"]
    clicks = [arg for x, y in cab for arg in ("--background-point", f"{x},{y}")]
    assert main([*base, "-o", str(tmp_path / "a.png"), "--keep", str(tmp_path / "plain")]) == 0
    assert main([*base, *clicks, "-o", str(tmp_path / "b.png"), "--keep", str(tmp_path / "clicked")]) == 0
    plain, clicked = load_mask(tmp_path / "plain" / "mask.png"), load_mask(tmp_path / "clicked" / "mask.png")
    assert plain[65:116, 200:271].mean() > 0.8
    assert clicked[65:116, 200:271].mean() < plain[65:116, 200:271].mean() - 0.2
    assert clicked[60:120, 40:120].mean() > 0.8  # the rest of the truck stays selected


def test_deform_and_edit_give_the_same_pose_for_the_same_drag(shared_data, tmp_path):
    """One drag rule: `uplift edit --drag` (object frame) and `uplift deform` (the same drag
    in world units on the lifted object.ply) pose the object identically."""
    import torch

    from uplift.core.camera import Camera
    from uplift.core.ply import read_ply
    from uplift.core.transforms import object_frame

    photo = small_png(shared_data, tmp_path)
    source, target = np.array([0.4, -0.1, 0.0]), np.array([0.4, -0.3, 0.1])
    drag = ",".join(map(repr, source.tolist())) + ":" + ",".join(map(repr, target.tolist()))
    assert main(["edit", str(photo), "--box", "12,45,288,143", f"--drag={drag}", "-o", str(tmp_path / "e.png"),
                 "--keep", str(tmp_path / "keep"), "-q"]) == 0
    lifted = read_ply(tmp_path / "keep" / "object.ply")
    camera = Camera.load(tmp_path / "keep" / "camera.json")  # the photo is below --max-size: the working camera
    frame = object_frame(lifted, camera)
    to_world = camera.world_to_camera[:3, :3].T
    ends = [frame.center + to_world @ (end * frame.size) for end in (source, target)]
    world_drag = ":".join(",".join(map(repr, end.tolist())) for end in ends)
    assert main(["deform", str(tmp_path / "keep" / "object.ply"), "-o", str(tmp_path / "deformed.ply"),
                 f"--drag={world_drag}", "-q"]) == 0
    by_edit, by_deform = read_ply(tmp_path / "keep" / "edited.ply"), read_ply(tmp_path / "deformed.ply")
    assert (by_edit.means - lifted.means).norm(dim=1).max() > 0.05 * frame.size  # the drag did something
    # Same controls, handles and solver; only float32 rounding of the drag's ends differs.
    assert torch.allclose(by_deform.means, by_edit.means, atol=1e-4 * frame.size)
    assert torch.allclose(by_deform.quats.abs(), by_edit.quats.abs(), atol=1e-3)
