"""Write every intermediate of an edit to a folder, with a README that explains each file."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..core.atomic import write_bytes_atomic
from ..core.image_io import save_png, to_float, to_uint8
from .edit import STAGES, Composite, EditConfig, EditResult, EditSpec, Prepared

# The composite's layers, written by `write_layers` for `uplift edit --keep` and Blender's
# Compose & Export alike; the compositor tree (blender/compositor.py) rebuilds final.png from
# them: final = Mix(photo, Mix(AlphaOver(plate, object), seam_fill, seam_mask), region).
LAYER_FILES = {
    "photo.png": "the photo as loaded (EXIF orientation applied): the result's pixels outside region.png",
    "plate.png": "the photo with the object's dilated mask inpainted (the background the edited object is composited over)",
    "object.png": "the edited object rendered through the camera, RGBA with straight alpha, at the photo's size",
    "seam_mask.png": "the ring around the new silhouette that the seam pass inpainted to blend the composite",
    "seam_fill.png": "the object over the plate after the seam pass (final.png inside region.png)",
    "region.png": "every pixel that may differ from the photo: the old dilated mask united with the new dilated silhouette",
    "final.png": "the result: the photo outside the region; inside, the object over the plate, seamed",
    "layers.exr": "the layers as one multilayer EXR, linear: plate, object (premultiplied), seam_mask, region, final",
}

# File name -> what it holds. README.txt lists them in this order.
KEPT_FILES = {
    "mask.png": "the selected object's mask at the photo's size (white = object), from the segmentation stage",
    "object.ply": "the lifted object as 3D Gaussian splats (binary 3DGS PLY), in the camera's world (Blender axes, Z up), before the edit",
    "edited.ply": "the same Gaussians after the drags and the rigid edit",
    "camera.json": "the photo's camera: width, height, K (3x3 intrinsics, pixels) and world_to_camera (4x4, OpenCV axes: x right, y down, z forward)",
    "new_mask.png": "the edited object's silhouette (render alpha above the threshold)",
    **LAYER_FILES,
    "edit.json": "the edit, the pipeline settings, the working resolution and each stage's time in seconds",
}


def readme_text(photo_name: str) -> str:
    width = max(len(n) for n in KEPT_FILES)
    lines = [f"Intermediates of `uplift edit` on {photo_name}.", "",
             "Stages: " + " -> ".join(STAGES) + ".", ""]
    lines += [f"{name:<{width}}  {what}" for name, what in KEPT_FILES.items()]
    lines += ["", "Images are at the photo's size. Large photos are processed at a working resolution "
              "(edit.json: work_size) and upsampled; pixels outside region.png are the photo's own."]
    return "\n".join(lines) + "\n"


def write_layers(folder: str | Path, prepared: Prepared, composite: Composite) -> list[Path]:
    """Write LAYER_FILES into `folder` (which must exist); returns the paths written.
    layers.exr is left out (and any earlier one removed) where `OpenEXR` is not installed."""
    from ..core.exr import exr_available, srgb_to_linear, write_multilayer_exr

    folder = Path(folder)
    c = composite
    for name, array in (("photo", prepared.image), ("plate", prepared.plate), ("object", to_uint8(c.object_rgba)),
                        ("seam_mask", c.seam_mask), ("seam_fill", c.seam_fill), ("region", c.region),
                        ("final", c.final)):
        save_png(folder / f"{name}.png", array)
    written = [folder / f"{name}.png" for name in ("photo", "plate", "object", "seam_mask", "seam_fill", "region",
                                                   "final")]
    if not exr_available():
        (folder / "layers.exr").unlink(missing_ok=True)  # never leave a stale EXR beside new PNGs
        return written
    straight = c.object_rgba
    write_multilayer_exr(folder / "layers.exr", {
        "plate": srgb_to_linear(to_float(prepared.plate)),
        "object": np.concatenate([srgb_to_linear(straight[..., :3]) * straight[..., 3:], straight[..., 3:]], -1),
        "seam_mask": c.seam_mask.astype(np.float32),
        "region": c.region.astype(np.float32),
        "final": srgb_to_linear(to_float(c.final)),
    })
    return written + [folder / "layers.exr"]


def write_kept(result: EditResult, folder: str | Path, *, photo_name: str, edit: EditSpec,
               config: EditConfig) -> list[Path]:
    """Write KEPT_FILES into `folder` (created if needed); returns the paths written."""
    from ..core.ply import write_ply

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    p, c = result.prepared, result.composite
    save_png(folder / "mask.png", p.mask)
    write_ply(folder / "object.ply", p.gaussians)
    write_ply(folder / "edited.ply", result.edited)
    _write_text(folder / "camera.json", p.camera.to_json())
    save_png(folder / "new_mask.png", c.silhouette)
    write_layers(folder, p, c)
    info = {
        "photo": photo_name,
        "photo_size": [p.camera.width, p.camera.height],
        "work_size": [p.work_camera.width, p.work_camera.height],
        "segment_score": p.segment_score,
        "gaussians": len(p.gaussians),
        "edit": asdict(edit),
        "transform_4x4": result.transform.matrix.tolist(),
        "config": {k: v for k, v in asdict(config).items() if k != "deform"},
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        "changed_pixels": int(np.count_nonzero((c.final != p.image).any(-1))),
    }
    _write_text(folder / "edit.json", json.dumps(info, indent=2, default=str))
    _write_text(folder / "README.txt", readme_text(photo_name))
    return [folder / name for name in KEPT_FILES] + [folder / "README.txt"]


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())
