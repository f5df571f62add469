"""services.backends.mesh_lift: the mesh lifter on a known scene (a coloured box rendered into a
photo), placed as given or aligned to the mask, its density, colours and errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch


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
    # On the given surface, where it was given: at most `inset_px` photo pixels inside it (that far
    # for all but the splats near an edge, whose nearest face is the other one).
    distance = nearest_face(means, scene.posed)[1]
    inset = mesh_lift.SILHOUETTE_INSET_PX * scene.camera.project(means)[1] / scene.camera.K[0, 0]
    assert (distance <= inset * 1.01).all() and np.median(distance / inset) > 0.99
    assert iou(silhouette(g, scene.camera), scene.mask) > 0.9  # a 45 px box: its splats widen it by about a pixel
    # The Gaussians the photo saw carry the photo's colour: the render matches it inside the mask.
    from uplift.core.render import render

    rgb = render(g, scene.camera, backend="torch").rgba[..., :3].numpy()
    from uplift.core.compositing import erode

    inner = erode(scene.mask, 1)  # the rim pixels mix in the background
    err = np.abs(rgb[inner] - scene.image[inner] / 255.0).mean()
    assert err < 0.03


def test_the_inset_tightens_the_silhouette_of_a_closed_mesh_only(scene, files, shared_data):
    config = MeshLiftConfig(files / "posed.ply", as_placed=True)
    on_surface = MeshLiftConfig(files / "posed.ply", as_placed=True, inset_px=0.0)
    ious = [iou(silhouette(MeshLifter(c, device="cpu").lift(scene.image, scene.mask, scene.camera), scene.camera),
                scene.mask) for c in (on_surface, config)]
    assert ious[1] > ious[0] + 0.01, ious  # measured 0.909 -> 0.931 (a 45 px box)
    quad = load_surface_mesh(shared_data / "meshes" / "textured_quad.glb")
    from uplift.core.mesh_surface import sample_surface

    samples = sample_surface(quad.with_vertices(quad.vertices + [0, 3, 0]), 500)
    assert mesh_lift.inset(samples, quad, scene.camera, 1.0) is samples  # open: no inside to move into


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


def test_the_lift_is_deterministic_for_a_seed(scene, files):
    lifts = [MeshLifter(MeshLiftConfig(files / "posed.ply", as_placed=True, seed=s), device="cpu").lift(
        scene.image, scene.mask, scene.camera) for s in (0, 0, 1)]
    assert torch.equal(lifts[0].means, lifts[1].means) and torch.equal(lifts[0].sh, lifts[1].sh)
    assert not torch.equal(lifts[0].means, lifts[2].means)


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


def test_a_mesh_sent_to_a_server_lifts_as_in_process(scene, files, tmp_path):
    from live_server import running

    from uplift.core.errors import UpliftError
    from uplift.services.api import HttpServices
    from uplift.services.client import UpliftClient
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices
    from uplift.services.options import mesh_upload

    config = MeshLiftConfig(files / "posed.ply", as_placed=True)
    local = LocalServices(ServerConfig(lift="mesh", mesh_lift=config)).lift(scene.image, scene.mask, scene.camera)
    (tmp_path / "junk.glb").write_bytes(b"not a mesh")
    with running(ServerConfig(segment="none", inpaint="none")) as url:
        client = UpliftClient(url, retries=0)
        served = HttpServices(client, mesh=mesh_upload(config)).lift(scene.image, scene.mask, scene.camera)
        with pytest.raises(UpliftError, match="cannot read mesh junk.glb"):
            HttpServices(client, mesh=mesh_upload(MeshLiftConfig(tmp_path / "junk.glb"))).lift(
                scene.image, scene.mask, scene.camera)
        with pytest.raises(UpliftError, match="--fit must be"):
            HttpServices(client, mesh=dataclasses.replace(mesh_upload(config), as_placed=False, fit=99)).lift(
                scene.image, scene.mask, scene.camera)
        # The command line sends the file the same way.
        from uplift.cli.main import main
        from uplift.core.image_io import save_png
        from uplift.core.ply import read_ply

        save_png(tmp_path / "photo.png", scene.image)
        save_png(tmp_path / "mask.png", scene.mask)
        assert main(["lift", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"), "-o",
                     str(tmp_path / "out.ply"), "--mesh", str(files / "posed.ply"), "--as-placed", "--server", url]) == 0
    assert torch.equal(served.means, local.means) and torch.equal(served.sh, local.sh)
    assert torch.equal(read_ply(tmp_path / "out.ply").means, local.means)


def test_the_subsampled_colour_fill_matches_the_full_solve(monkeypatch):
    """Reference: `laplace_fill` over every point. The fast path solves on FILL_POINTS of them and
    interpolates; on a sphere whose top half is known (a colour varying smoothly round it), the
    two agree to within 0.01 on average (measured 0.005) and 0.1 at worst (0.06)."""
    import trimesh

    from uplift.core.color_fill import laplace_fill
    from uplift.core.mesh_surface import SurfaceMesh, sample_surface

    ball = trimesh.creation.icosphere(4)
    points = sample_surface(SurfaceMesh(np.asarray(ball.vertices, float), np.asarray(ball.faces)), 12_000).points
    colors = np.stack([0.5 + 0.4 * points[:, 0], 0.5 + 0.4 * points[:, 1], np.full(len(points), 0.3)], 1)
    known = points[:, 2] > 0
    reference = laplace_fill(points, colors, known)[~known]
    monkeypatch.setattr(mesh_lift, "FILL_POINTS", 3000)
    fast = mesh_lift.harmonic_fill(points, colors, known)
    err = np.abs(fast - reference)
    assert err.mean() < 0.01 and err.max() < 0.1, (err.mean(), err.max())
    assert np.abs(reference - colors[~known]).mean() > 0.02  # the fill is not trivially the truth


def test_badly_scaled_open_multi_part_meshes_reach_the_alignment_as_a_unit_object(scene, monkeypatch):
    """The alignment always sees the mesh centred in a unit box, whatever the file's units and origin;
    the placed mesh is the file's mesh moved by the similarity the alignment returned."""
    import trimesh

    from uplift.core.mesh_surface import SurfaceMesh
    from uplift.core.transforms import Similarity

    a, b = trimesh.creation.box(extents=[2, 1, 1]), trimesh.creation.box(extents=[1, 1, 1])
    b.apply_translation([3, 0, 0])
    parts = trimesh.util.concatenate([a, b])
    faces = np.asarray(parts.faces)[1:]  # one triangle missing: not watertight
    mesh = SurfaceMesh(np.asarray(parts.vertices, float) * 5e3 + 1e6, faces)
    seen = {}
    turn = Similarity(np.eye(3), np.array([0.0, 3.0, 0.0]), 0.5)

    def fake_fit(g, mask, camera, k, seed, device, progress=None, cancel=None):
        seen["means"] = g.means.double().numpy()
        return [(turn, 1.0)]

    monkeypatch.setattr(mesh_lift, "fit_placements", fake_fit)
    fit = mesh_lift.fit_mesh(mesh, scene.mask, scene.camera, MeshLiftConfig("x.ply"), torch.device("cpu"))[0]
    placed = mesh.with_vertices(fit.similarity.apply_points(mesh.vertices))
    lo, hi = seen["means"].min(0), seen["means"].max(0)
    assert (hi - lo).max() == pytest.approx(1.0, abs=0.01) and np.abs((lo + hi) / 2).max() < 0.01
    # x: 4.5 file units wide (two parts, 0.5 apart) -> unit width, centred, then halved and moved by (0, 3, 0).
    plo, phi = placed.bounds()
    np.testing.assert_allclose(phi - plo, 0.5 * np.array([1.0, 1 / 4.5, 1 / 4.5]), rtol=1e-9)
    np.testing.assert_allclose((plo + phi) / 2, [0, 3, 0], atol=1e-9)


def test_the_server_refuses_bad_mesh_options_before_queueing_the_job(scene, files):
    """Options are checked in the request, before a job is queued (a busy server still answers 400
    at once, and a Ray replica is never woken for them); fit with as_placed is refused as the
    command line refuses --as-placed --fit."""
    from live_server import running as _  # noqa: F401  (the helpers' module sets up the path)

    from uplift.core.errors import UpliftError
    from uplift.services.client import UpliftClient
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices
    from uplift.services.server import LocalRunner, create_app, start_background

    class NoJobs(LocalRunner):
        async def run(self, job, *args):
            raise AssertionError(f"a {job} job was queued")

    config = ServerConfig(segment="none", inpaint="none")
    services = LocalServices(config)
    server = start_background(create_app(config, services, runner=NoJobs(services, config)))
    from uplift.core.image_io import encode_png

    image, mask = encode_png(scene.image), encode_png(scene.mask.astype(np.uint8) * 255)
    mesh = (files / "posed.ply").read_bytes()
    try:
        client = UpliftClient(server.url, retries=0)
        for params, message in (({"format": ".ply", "as_placed": True, "fit": 2}, "exclude each other"),
                                ({"format": ".ply", "fit": 99}, "--fit must be"),
                                ({"format": ".ply", "up": "x"}, "up axis"),
                                ({"format": ".ply", "colour": 1}, "unknown mesh parameters: colour"),
                                ({"format": ".ply", "as_placed": True, "refine": "yes"}, "refine must be true or false"),
                                ({"format": ".ply", "refine": True}, "use it with --as-placed"),
                                ({"format": ".usd"}, "format must be one of")):
            with pytest.raises(UpliftError, match=message):
                client.lift(image, mask, scene.camera.to_dict(), mesh=mesh, mesh_params=params)
    finally:
        server.stop()


def test_refine_snaps_an_artists_rough_pose_to_the_mask(scene, tmp_path):
    """A mesh lined up by hand a little off (turned 8 degrees, 4 px aside, 6 % small): kept as placed
    its silhouette misses the mask; refined, it lands on the true pose at the artist's depth."""
    from uplift.core.transforms import Similarity, axis_angle_matrix
    from uplift.services.backends.placement import iou as mask_iou

    centre = scene.posed.bounding_box.centroid
    pixel = centre[1] / scene.camera.K[0, 0]  # a photo pixel at the object's depth (the camera looks along +Y)
    rough = Similarity.about(centre, axis_angle_matrix(np.array([0.3, 0.2, 1.0]), np.radians(8.0)), 0.94,
                             np.array([4 * pixel, 0.0, -2 * pixel]))
    moved = scene.posed.copy()
    moved.apply_transform(rough.matrix)
    moved.export(tmp_path / "rough.ply")
    placed = MeshLifter(MeshLiftConfig(tmp_path / "rough.ply", as_placed=True), device="cpu")
    refined = MeshLifter(MeshLiftConfig(tmp_path / "rough.ply", as_placed=True, refine=True), device="cpu")
    (as_placed,), (snapped,) = placed.fit(scene.mask, scene.camera), refined.fit(scene.mask, scene.camera)
    assert as_placed.similarity.is_identity() and as_placed.iou < 0.85
    assert snapped.iou > 0.93
    # Back on the true pose: the snapped mesh's corners within a few photo pixels of the truth's.
    truth = np.asarray(scene.posed.vertices)
    corners = snapped.similarity.apply_points(np.asarray(moved.vertices))
    uv_true, _ = scene.camera.project(truth)
    uv_got, _ = scene.camera.project(corners)
    assert np.abs(uv_got - uv_true).max() < 2.5
    g = refined.lift(scene.image, scene.mask, scene.camera)  # the lift goes through the same fit
    assert mask_iou(silhouette(g, scene.camera) > 0, scene.mask) > 0.9
    # The command line and a server give the same Gaussians.
    from live_server import running

    from uplift.cli.main import main
    from uplift.core.image_io import save_png
    from uplift.core.ply import read_ply
    from uplift.services.config import ServerConfig

    save_png(tmp_path / "photo.png", scene.image)
    save_png(tmp_path / "mask.png", scene.mask)
    argv = ["lift", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"), "--mesh", str(tmp_path / "rough.ply"),
            "--as-placed", "--refine", "-o"]
    assert main([*argv, str(tmp_path / "local.ply")]) == 0
    with running(ServerConfig(segment="none", inpaint="none")) as url:
        assert main([*argv, str(tmp_path / "served.ply"), "--server", url]) == 0
    for name in ("local.ply", "served.ply"):
        assert torch.equal(read_ply(tmp_path / name).means, g.means)
    with pytest.raises(ConfigError, match="use it with --as-placed"):
        MeshLiftConfig(tmp_path / "rough.ply", refine=True)
