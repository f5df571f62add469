"""The conventions stated in uplift.core's docstring, each checked once."""
import numpy as np
import pytest
import torch

from uplift.core import quaternion as Q
from uplift.core.camera import PHOTO_WORLD_TO_CAMERA, Camera
from uplift.core.errors import CameraError
from uplift.core.gaussians import SH_C0, Gaussians


def test_opencv_axes_x_right_y_down_z_forward():
    cam = Camera.from_fov(200, 100, 90.0, world_to_camera=np.eye(4))
    uv, z = cam.project(np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0], [0.0, 1.0, 2.0]]))
    assert np.allclose(uv[0], [100.0, 50.0])  # optical axis hits the image centre
    assert uv[1, 0] > uv[0, 0] and np.isclose(uv[1, 1], 50.0)  # +x is right
    assert uv[2, 1] > uv[0, 1] and np.isclose(uv[2, 0], 100.0)  # +y is down
    assert np.all(z == 2.0)  # +z is forward


def test_pixel_centres_at_half():
    cam = Camera.from_fov(4, 4, 90.0, world_to_camera=np.eye(4))
    # The ray through pixel (0, 0)'s centre is (0.5, 0.5) in pixel coordinates.
    p = cam.unproject(np.array([[0.5, 0.5]]), np.array([1.0]))
    uv, _ = cam.project(p)
    assert np.allclose(uv, [[0.5, 0.5]])
    assert p[0, 0] < 0 and p[0, 1] < 0  # top-left of the optical axis


def test_photo_camera_is_z_up_looking_along_plus_y():
    cam = Camera.from_fov(640, 480)
    assert np.array_equal(cam.world_to_camera, PHOTO_WORLD_TO_CAMERA)
    uv, z = cam.project(np.array([[0.0, 5.0, 0.0], [0.0, 5.0, 1.0], [1.0, 5.0, 0.0]]))
    assert z[0] == 5.0  # +Y is forward
    assert uv[1, 1] < uv[0, 1]  # world +Z appears higher in the image
    assert uv[2, 0] > uv[0, 0]  # world +X appears to the right


def test_project_unproject_inverse_for_a_posed_camera():
    rng = np.random.default_rng(0)
    R = torch.linalg.qr(torch.from_numpy(rng.normal(size=(3, 3))))[0].numpy()
    if np.linalg.det(R) < 0:
        R[:, 0] *= -1
    W = np.eye(4)
    W[:3, :3], W[:3, 3] = R, [0.3, -0.2, 4.0]
    cam = Camera(320, 240, np.array([[300.0, 0, 150], [0, 310.0, 125], [0, 0, 1]]), W)
    uv = rng.uniform(0, 300, size=(50, 2))
    depth = rng.uniform(1, 9, size=50)
    uv2, depth2 = cam.project(cam.unproject(uv, depth))
    assert np.allclose(uv2, uv, atol=1e-9) and np.allclose(depth2, depth, atol=1e-9)


def test_scaled_camera_keeps_the_view():
    cam = Camera.from_fov(640, 480, 50.0)
    half = cam.scaled(0.5)
    point = np.array([[0.3, 4.0, 0.2]])
    assert (half.width, half.height) == (320, 240)
    assert np.allclose(half.project(point)[0], cam.project(point)[0] * 0.5)


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"width": 10}', "lacks"),
        ("not json", "not valid JSON"),
        ('{"width": 10, "height": 10, "K": [[1,0,0],[0,1,0]], "world_to_camera": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}', "3x3"),
        ('{"width": 0, "height": 10, "K": [[1,0,0],[0,1,0],[0,0,1]], "world_to_camera": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}', "positive"),
        ('{"width": 10, "height": 10, "K": [[1,0,0],[0,1,0],[0,0,1]], "world_to_camera": [[2,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}', "rigid"),
        ('{"width": 10.5, "height": 10, "K": [[1,0,0],[0,1,0],[0,0,1]], "world_to_camera": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}', "integers"),
    ],
)
def test_malformed_camera_json_names_the_problem(bad, message):
    with pytest.raises(CameraError, match=message):
        Camera.from_json(bad)


def test_camera_json_round_trip(tmp_path):
    cam = Camera(33, 17, np.array([[20.5, 0.1, 16.0], [0, 21.25, 8.5], [0, 0, 1]]), PHOTO_WORLD_TO_CAMERA)
    cam.save(tmp_path / "c.json")
    back = Camera.load(tmp_path / "c.json")
    assert back.width == 33 and back.height == 17
    assert np.array_equal(back.K, cam.K) and np.array_equal(back.world_to_camera, cam.world_to_camera)


def test_quaternions_are_wxyz():
    # 90° about +Z, written w first.
    q = torch.tensor([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)], dtype=torch.float32)
    assert torch.allclose(Q.to_matrix(q) @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


def test_gaussians_from_colors_round_trips_activated_values():
    means = torch.randn(5, 3)
    colors = torch.rand(5, 3)
    scales = torch.rand(5, 3) + 0.01
    opac = torch.rand(5) * 0.9 + 0.05
    g = Gaussians.from_colors(means, colors, scales, opac)
    assert torch.allclose(g.base_colors, colors, atol=1e-6)
    assert torch.allclose(g.scales, scales, rtol=1e-5)
    assert torch.allclose(g.opacities, opac, atol=1e-6)
    assert torch.equal(g.quats, torch.tensor([[1.0, 0, 0, 0]]).expand(5, 4))
    assert np.isclose(SH_C0, 0.5 / np.sqrt(np.pi))


def test_gaussians_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="quats"):
        Gaussians(torch.zeros(3, 3), torch.zeros(2, 4), torch.zeros(3, 3), torch.zeros(3), torch.zeros(3, 1, 3))
    with pytest.raises(ValueError, match="SH"):
        Gaussians(torch.zeros(3, 3), torch.zeros(3, 4), torch.zeros(3, 3), torch.zeros(3), torch.zeros(3, 2, 3))
