"""`uplift lift | edit --mesh FILE [--up y|z] [--as-placed | --fit K]` end to end, and the one-line
errors of bad meshes and options (nothing written)."""
from __future__ import annotations

import numpy as np
import pytest


from mesh_scene import box_scene, iou, nearest_face, silhouette  # noqa: E402
from uplift.cli.main import main  # noqa: E402
from uplift.core.image_io import load_image, save_png  # noqa: E402
from uplift.core.ply import read_ply  # noqa: E402
from uplift.services.backends.mesh_lift import SILHOUETTE_INSET_PX  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    return box_scene()


@pytest.fixture
def inputs(scene, tmp_path):
    """photo.png (no EXIF: the 60 degree camera the scene was rendered with), mask.png, the box posed
    through that camera (posed.ply) and at the origin as a Y-up glTF (box.glb)."""
    import trimesh

    save_png(tmp_path / "photo.png", scene.image)
    save_png(tmp_path / "mask.png", scene.mask)
    scene.posed.export(tmp_path / "posed.ply")
    canonical = scene.canonical.copy()
    canonical.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))  # Z up -> glTF's Y up
    canonical.export(tmp_path / "box.glb")
    return tmp_path


def lift(folder, *extra):
    return main(["lift", str(folder / "photo.png"), "--mask", str(folder / "mask.png"), "-o", str(folder / "out.ply"),
                 *extra])


def test_lift_onto_a_mesh_lined_up_through_the_camera(scene, inputs, capsys):
    assert lift(inputs, "--mesh", str(inputs / "posed.ply"), "--as-placed") == 0
    g = read_ply(inputs / "out.ply")
    means = g.means.double().numpy()
    inset = SILHOUETTE_INSET_PX * scene.camera.project(means)[1] / scene.camera.K[0, 0]
    assert (nearest_face(means, scene.posed)[1] <= inset * 1.01).all()  # kept its pose
    assert iou(silhouette(g, scene.camera), scene.mask) > 0.9  # a 45 px box: its splats widen it by about a pixel
    assert "wrote" in capsys.readouterr().out


@pytest.mark.slow
def test_lift_aligns_an_unposed_gltf(scene, inputs):
    assert lift(inputs, "--mesh", str(inputs / "box.glb"), "--fit", "2") == 0
    assert iou(silhouette(read_ply(inputs / "out.ply"), scene.camera), scene.mask) > 0.85


@pytest.mark.slow
def test_edit_with_a_mesh(scene, inputs):
    out = inputs / "final.png"
    assert main(["edit", str(inputs / "photo.png"), "--mask", str(inputs / "mask.png"), "--mesh",
                 str(inputs / "posed.ply"), "--as-placed", "--rotate", "0,0,0", "-o", str(out), "-q"]) == 0
    assert np.array_equal(load_image(out), scene.image)  # identity: the photo exactly
    assert main(["edit", str(inputs / "photo.png"), "--mask", str(inputs / "mask.png"), "--mesh",
                 str(inputs / "posed.ply"), "--as-placed", "--rotate", "30,0,0", "-o", str(out), "-q"]) == 0
    assert not np.array_equal(load_image(out), scene.image)


@pytest.mark.parametrize("argv, message", [
    (["--mesh", "{d}/missing.glb"], "does not exist"),
    (["--mesh", "{d}/junk.glb"], "cannot read mesh"),
    (["--mesh", "{d}/empty.obj"], "empty (0 bytes)"),
    (["--mesh", "{d}/flat.obj"], "zero area"),
    (["--mesh", "{d}/photo.png"], "unsupported format"),
    (["--mesh", "{d}/posed.ply", "--as-placed", "--fit", "2"], "give one of them"),
    (["--mesh", "{d}/posed.ply", "--fit", "0"], "--fit must be"),
    (["--up", "y"], "only applies with --mesh"),
    (["--as-placed"], "only applies with --mesh"),
    (["--refine"], "only applies with --mesh"),
    (["--mesh", "{d}/posed.ply", "--refine"], "give it with --as-placed"),
    (["--mesh", "{d}/model.gltf", "--server", "http://127.0.0.1:9"], "save it as .glb"),
    (["--mesh", "{d}/missing.ply", "--server", "http://127.0.0.1:9"], "does not exist"),
    (["--mesh", "{d}/posed.ply", "--backend", "inflate"], "cannot be combined with --backend"),
])
def test_bad_meshes_and_options_are_one_line(inputs, capsys, argv, message):
    (inputs / "junk.glb").write_bytes(b"glTF but not really")
    (inputs / "empty.obj").write_bytes(b"")
    (inputs / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    (inputs / "model.gltf").write_text("{}")
    rc = lift(inputs, *[a.format(d=inputs) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("uplift lift: error:") and message in err and "Traceback" not in err, err
    assert len(err.splitlines()) == 1
    assert not (inputs / "out.ply").exists()


def test_a_mesh_the_camera_cannot_see_writes_nothing(scene, inputs, capsys):
    behind = scene.posed.copy()
    behind.apply_translation([0, -8, 0])
    behind.export(inputs / "behind.ply")
    assert lift(inputs, "--mesh", str(inputs / "behind.ply"), "--as-placed") == 2
    err = capsys.readouterr().err
    assert "uplift lift: error: mesh" in err and "behind the photo's camera" in err and "Traceback" not in err
    assert not (inputs / "out.ply").exists()


def test_edit_refuses_a_bad_mesh_before_any_work(inputs, capsys):
    rc = main(["edit", str(inputs / "photo.png"), "--box", "10,10,60,60", "--mesh", str(inputs / "nothing.obj"),
               "-o", str(inputs / "final.png"), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("uplift edit: error: mesh") and "does not exist" in err
    assert len(err.splitlines()) == 1 and not (inputs / "final.png").exists()
    rc = main(["edit", str(inputs / "photo.png"), "--box", "10,10,60,60", "--mesh", str(inputs / "posed.ply"),
               "--lift", "trellis", "-o", str(inputs / "final.png"), "-q"])
    assert rc == 2 and "cannot be combined with --lift trellis" in capsys.readouterr().err
