"""services.backends.mesh_lift: the mesh lifter on a known scene (a coloured box rendered into a
photo), placed as given or aligned to the mask, its density, colours and errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("trimesh")

from mesh_scene import box_scene, iou, nearest_face, silhouette  # noqa: E402
from uplift.core.errors import ConfigError, MeshFormatError  # noqa: E402
from uplift.core.mesh_surface import load_surface_mesh  # noqa: E402
from uplift.services.backends import mesh_lift  # noqa: E402
from uplift.services.backends.mesh_lift import MeshLifter, MeshLiftConfig  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    return box_scene()


@pytest.fixture(scope="module")
def files(scene, tmp_path_factory):
    folder = tmp_path_factory.mktemp("meshes")
    scene.posed.export(folder / "posed.ply")
    scene.canonical.export(folder / "box.ply")
    return folder


def test_as_placed_keeps_the_pose_and_shows_the_photo(scene, files):
    lifter = MeshLifter(MeshLiftConfig(files / "posed.ply", as_placed=True), device="cpu")
    g = lifter.lift(scene.image, scene.mask, scene.camera)
    means = g.means.double().numpy()
    assert nearest_face(means, scene.posed)[1].max() < 1e-4  # on the given surface, where it was given
    assert iou(silhouette(g, scene.camera), scene.mask) > 0.95
    # The Gaussians the photo saw carry the photo's colour: the render matches it inside the mask.
    from uplift.core.render import render

    rgb = render(g, scene.camera, backend="torch").rgba[..., :3].numpy()
    from uplift.core.compositing import erode

    inner = erode(scene.mask, 1)  # the rim pixels mix in the background
    err = np.abs(rgb[inner] - scene.image[inner] / 255.0).mean()
    assert err < 0.03


def test_density_follows_the_photo_and_is_capped(scene, files):
    mesh = load_surface_mesh(files / "posed.ply")
    _, z = scene.camera.project(scene.posed.vertices)
    pixel = np.median(z) / scene.camera.K[0, 0]
    expected = mesh.area / (mesh_lift.SPLAT_SPACING_PX * pixel) ** 2
    config = MeshLiftConfig(files / "posed.ply", as_placed=True)
    assert mesh_lift.splat_count(mesh, scene.camera, config) == pytest.approx(expected, rel=0.1)
    capped = MeshLiftConfig(files / "posed.ply", as_placed=True, max_splats=mesh_lift.MIN_SPLATS)
    assert len(MeshLifter(capped, device="cpu").lift(scene.image, scene.mask, scene.camera)) == mesh_lift.MIN_SPLATS
    # Twice the photo's resolution: four times the splats (the same object in twice the pixels).
    big, bigger = (mesh_lift.splat_count(mesh, scene.camera.scaled(f), config) for f in (2.0, 4.0))
    assert bigger == pytest.approx(4 * big, rel=0.01)


@pytest.mark.slow
def test_an_unposed_mesh_is_aligned_to_the_mask_at_the_inflate_depth(scene, files):
    from uplift.core.transforms import object_frame
    from uplift.services.backends.inflate import reference_depth

    lifter = MeshLifter(MeshLiftConfig(files / "box.ply"), device="cpu")
    g = lifter.lift(scene.image, scene.mask, scene.camera)
    assert iou(silhouette(g, scene.camera), scene.mask) > 0.85
    depth = scene.camera.project(object_frame(g, scene.camera).center[None])[1][0]
    assert depth == pytest.approx(reference_depth(scene.mask, scene.camera), rel=0.25)
    again = MeshLifter(MeshLiftConfig(files / "box.ply"), device="cpu").lift(scene.image, scene.mask, scene.camera)
    assert torch.equal(g.means, again.means) and torch.equal(g.sh, again.sh)  # deterministic for a seed


def test_unseen_surfaces_take_the_meshs_colours_matched_to_the_photo(tmp_path):
    """The photo shows the box's own colours at 60 %: the back (never seen) takes the file's
    colours at 60 % too (the texture-to-photo match), not the file's raw colours."""
    scene = box_scene(gain=0.6)
    scene.posed.export(tmp_path / "posed.ply")
    g = MeshLifter(MeshLiftConfig(tmp_path / "posed.ply", as_placed=True), device="cpu").lift(
        scene.image, scene.mask, scene.camera)
    from uplift.core.render.reprojection import photo_visibility

    unseen = photo_visibility(g, scene.camera, backend="torch").numpy() < 0.5
    assert unseen.mean() > 0.3  # the back half of a box
    own = load_surface_mesh(tmp_path / "posed.ply")
    face = nearest_face(g.means.double().numpy()[unseen], scene.posed)[0]
    file_rgb = own.face_colors[face]
    got = g.base_colors.double().numpy()[unseen]
    assert np.abs(got - 0.6 * file_rgb).mean() < 0.03
    assert np.abs(got - file_rgb).mean() > 0.1


def test_without_mesh_colours_the_unseen_take_the_harmonic_fill(tmp_path):
    scene = box_scene(colors="none")
    scene.posed.export(tmp_path / "plain.ply")
    g = MeshLifter(MeshLiftConfig(tmp_path / "plain.ply", as_placed=True), device="cpu").lift(
        scene.image, scene.mask, scene.camera)
    colors = g.base_colors.double().numpy()
    photo = scene.image[scene.mask] / 255.0
    # No grey placeholder left: every colour lies inside the range the photo showed.
    assert (colors >= photo.min(0) - 1e-3).all() and (colors <= photo.max(0) + 1e-3).all()
    assert not np.isclose(colors, 0.5, atol=1e-4).all(1).any()


def test_pre_made_gaussians_enter_at_the_placement_step(scene):
    g = scene.truth.replace(sh=torch.zeros_like(scene.truth.sh))  # grey splats, already lined up
    config = MeshLiftConfig("unused.ply", as_placed=True)
    out = mesh_lift.lift_splats(g, scene.image, scene.mask, scene.camera, config, device="cpu")
    assert torch.equal(out.means, g.means)
    seen = scene.mask[tuple(np.floor(scene.camera.project(g.means.double().numpy())[0][:, ::-1]).astype(int).T)]
    assert not np.allclose(out.base_colors.numpy()[seen], 0.5, atol=0.01)


def test_meshes_the_camera_cannot_see_are_refused(scene, tmp_path):
    behind = scene.posed.copy()
    behind.apply_translation([0, -8, 0])  # the camera at the origin looks along +Y
    behind.export(tmp_path / "behind.ply")
    with pytest.raises(MeshFormatError, match="lies behind the photo's camera .*leave out --as-placed"):
        MeshLifter(MeshLiftConfig(tmp_path / "behind.ply", as_placed=True), device="cpu").lift(
            scene.image, scene.mask, scene.camera)
    aside = scene.posed.copy()
    aside.apply_translation([30, 0, 0])
    aside.export(tmp_path / "aside.ply")
    with pytest.raises(MeshFormatError, match="does not cover the mask"):
        MeshLifter(MeshLiftConfig(tmp_path / "aside.ply", as_placed=True), device="cpu").lift(
            scene.image, scene.mask, scene.camera)


def test_local_services_build_the_mesh_lifter(scene, files):
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices

    config = ServerConfig(lift="mesh", mesh_lift=MeshLiftConfig(files / "posed.ply", as_placed=True))
    g = LocalServices(config).lift(scene.image, scene.mask, scene.camera)
    assert len(g) > 1000
    with pytest.raises(ConfigError, match="needs a mesh file"):
        ServerConfig(lift="mesh")
    with pytest.raises(ConfigError, match="not 'mesh'"):
        ServerConfig(mesh_lift=MeshLiftConfig(files / "posed.ply"))
    with pytest.raises(ConfigError, match="--fit"):
        MeshLiftConfig(files / "posed.ply", fit_k=0)


def test_a_mesh_in_memory_lifts_as_its_file_does(scene, files):
    """Blender hands the lifter a SurfaceMesh: the same Gaussians as from the file it was read from."""
    config = MeshLiftConfig(files / "posed.ply", as_placed=True)
    from_file = MeshLifter(config, device="cpu")
    given = MeshLifter(MeshLiftConfig(as_placed=True), device="cpu", mesh=load_surface_mesh(files / "posed.ply"))
    a = from_file.lift(scene.image, scene.mask, scene.camera)
    b = given.lift(scene.image, scene.mask, scene.camera)
    assert torch.equal(a.means, b.means) and torch.equal(a.sh, b.sh)
    fits = given.fit(scene.mask, scene.camera)  # as placed: one fit, where the mesh is
    assert len(fits) == 1 and fits[0].similarity.is_identity() and fits[0].iou > 0.85
    with pytest.raises(ConfigError, match="needs a mesh file or a mesh"):
        MeshLifter(MeshLiftConfig(), device="cpu")


def test_fitting_reports_progress_and_cancels(scene, files):
    from uplift.core.errors import CancelledError

    seen = []
    lifter = MeshLifter(MeshLiftConfig(files / "box.ply"), device="cpu")
    with pytest.raises(CancelledError):
        lifter.fit(scene.mask, scene.camera, progress=seen.append, cancel=lambda: len(seen) >= 3)
    assert len(seen) == 3 and seen == sorted(seen) and 0 <= seen[0] and seen[-1] < 1
