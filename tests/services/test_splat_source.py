"""Bring your own splats: a 3DGS splat file (.spz, .splat, a .ply with 3DGS properties) given as the
mesh lifter's source is placed (as placed, or fitted) and coloured by the mesh lifter's own steps;
a mesh .ply stays a mesh; bad splat files are one line, from the CLI too."""
from __future__ import annotations

import numpy as np
import pytest
import torch


from mesh_scene import box_scene, iou, silhouette  # noqa: E402
from uplift.cli.main import main  # noqa: E402
from uplift.core.image_io import save_png  # noqa: E402
from uplift.core.mesh_surface import Y_UP_TO_Z_UP, SurfaceMesh, sample_surface, surface_gaussians  # noqa: E402
from uplift.core.ply import read_ply  # noqa: E402
from uplift.core.splat_io import is_splat_file, read_splat_file, write_splat_file  # noqa: E402
from uplift.services.backends.mesh_lift import MeshLifter, MeshLiftConfig  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    return box_scene()


@pytest.fixture(scope="module")
def files(scene, tmp_path_factory):
    """posed.ply (the scene's box mesh), placed.ply/.spz (grey splats of the posed box: what a
    capture lined up through the camera would hold) and box.ply (splats of the unturned box)."""
    folder = tmp_path_factory.mktemp("splats")
    scene.posed.export(folder / "posed.ply")
    grey = scene.truth.replace(sh=torch.zeros_like(scene.truth.sh))
    write_splat_file(folder / "placed.ply", grey)
    write_splat_file(folder / "placed.spz", grey)
    canonical = SurfaceMesh(np.asarray(scene.canonical.vertices, float), np.asarray(scene.canonical.faces))
    samples = sample_surface(canonical, 6000, seed=0)
    write_splat_file(folder / "box.ply", surface_gaussians(samples, np.full((len(samples.points), 3), 0.5)))
    save_png(folder / "photo.png", scene.image)
    save_png(folder / "mask.png", scene.mask)
    return folder


def test_splat_files_are_told_from_meshes(files, shared_data):
    assert is_splat_file(files / "placed.ply") and is_splat_file(files / "placed.spz")
    assert is_splat_file(files / "x.splat")  # by extension: the .splat reader names a missing file
    assert not is_splat_file(files / "posed.ply") and not is_splat_file(files / "missing.ply")
    assert not is_splat_file(files / "box.glb")
    lifter = MeshLifter(MeshLiftConfig(files / "posed.ply", as_placed=True), device="cpu")
    assert lifter.mesh is not None and lifter.splats is None
    lifter = MeshLifter(MeshLiftConfig(files / "placed.ply", as_placed=True), device="cpu")
    assert lifter.mesh is None and len(lifter.splats) > 1000


def test_splats_as_placed_keep_their_pose_and_take_the_photo(scene, files):
    g = MeshLifter(MeshLiftConfig(files / "placed.ply", as_placed=True), device="cpu").lift(
        scene.image, scene.mask, scene.camera)
    assert torch.equal(g.means, scene.truth.means)  # no resampling, no inset: the file's own splats
    from uplift.core.compositing import erode
    from uplift.core.render import render

    rgb = render(g, scene.camera, backend="torch").rgba[..., :3].numpy()
    inner = erode(scene.mask, 1)
    assert np.abs(rgb[inner] - scene.image[inner] / 255.0).mean() < 0.03  # grey file, the photo's colours


def test_the_up_axis_turns_splats_as_it_turns_meshes(files):
    z, y = (MeshLifter(MeshLiftConfig(files / "box.ply", up=up), device="cpu").splats for up in ("auto", "y"))
    np.testing.assert_allclose(y.means.double().numpy(), z.means.double().numpy() @ Y_UP_TO_Z_UP.T, atol=1e-6)


def test_unposed_splats_are_aligned_to_the_mask(scene, files):
    lifter = MeshLifter(MeshLiftConfig(files / "box.ply", fit_k=1), device="cpu")
    fits = lifter.fit(scene.mask, scene.camera)
    g = lifter.lift(scene.image, scene.mask, scene.camera, fits[0].similarity)
    assert len(g) == len(lifter.splats)
    assert iou(silhouette(g, scene.camera), scene.mask) > 0.85


def lift(folder, *extra):
    return main(["lift", str(folder / "photo.png"), "--mask", str(folder / "mask.png"), "-o", str(folder / "out.ply"),
                 *extra])


def test_cli_lifts_onto_a_spz(scene, files, capsys):
    assert lift(files, "--mesh", str(files / "placed.spz"), "--as-placed") == 0
    g = read_ply(files / "out.ply")
    assert len(g) == len(scene.truth) and "wrote" in capsys.readouterr().out
    assert iou(silhouette(g, scene.camera), scene.mask) > 0.85  # the photo's own splats, .spz-quantised: 0.899


@pytest.mark.parametrize("name, data, message", [
    ("junk.spz", b"not gzip at all", "not a readable .spz"),
    ("short.splat", b"\0" * 33, ".splat"),
    ("empty.splat", b"", "empty"),
    ("cut.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 9\nproperty float x\nproperty float y\n"
                b"property float z\nproperty float opacity\nend_header\n\0\0", "cut.ply"),
])
def test_bad_splat_files_are_one_line(files, capsys, name, data, message):
    (files / name).write_bytes(data)
    (files / "out.ply").unlink(missing_ok=True)
    assert lift(files, "--mesh", str(files / name), "--as-placed") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("uplift lift: error:") and message in err and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and not (files / "out.ply").exists()


@pytest.mark.parametrize("name", ["placed.ply", "placed.spz", "placed.splat"])
def test_a_splat_file_sent_to_a_server_lifts_as_in_process(scene, files, name):
    from live_server import running

    from uplift.services.api import HttpServices
    from uplift.services.client import UpliftClient
    from uplift.services.config import ServerConfig
    from uplift.services.options import mesh_upload

    if not (files / name).exists():
        write_splat_file(files / name, read_splat_file(files / "placed.ply"))
    config = MeshLiftConfig(files / name, as_placed=True)
    local = MeshLifter(config, device="cpu").lift(scene.image, scene.mask, scene.camera)
    with running(ServerConfig(segment="none", inpaint="none")) as url:
        served = HttpServices(UpliftClient(url, retries=0), mesh=mesh_upload(config)).lift(
            scene.image, scene.mask, scene.camera)
    assert len(served) == len(local) > 0
    assert torch.equal(served.means, local.means) and torch.allclose(served.sh, local.sh, atol=1e-6)
