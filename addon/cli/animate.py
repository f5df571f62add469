"""`uplift animate FILE.blend --frames 1-48 -o frames/####.png`: render a saved edit's frame range headless.

Runs Blender in this process through the `bpy` module (registering the Uplift extension's
code from this package), so a farm node needs no Blender install. It is Blender's own
Render Animation: the same render_pre hook feeds the "Uplift Composite" tree each frame,
so `blender -b FILE.blend -a` with the extension enabled writes the same frames.
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


def parse_frames(text: str) -> tuple[int, int]:
    """'1-48' -> (1, 48); '7' -> (7, 7)."""
    try:
        parts = [int(p) for p in text.split("-", 1)] if "-" in text.lstrip("-") else [int(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--frames must be FIRST-LAST or one frame, got {text!r}") from None
    first, last = parts[0], parts[-1]
    if last < first:
        raise argparse.ArgumentTypeError(f"--frames {text}: the last frame comes before the first")
    return first, last


def add_parser(sub) -> None:
    p = sub.add_parser("animate", help="render the frames of a saved Uplift .blend (keyed controls)",
                       description="Render a frame range of a .blend made with the Uplift extension "
                                   "through its 'Uplift Composite' tree, headless (bpy module).")
    p.add_argument("blend", metavar="FILE.blend", help="a saved scene with a lifted object and a photo")
    p.add_argument("--frames", type=parse_frames, metavar="FIRST-LAST",
                   help="frame range (default: the scene's own)")
    p.add_argument("-o", "--output", required=True, metavar="frames/####.png",
                   help="output path; #### becomes the frame number; .png, .exr, .jpg or .tif")
    p.set_defaults(run=run)


FORMATS = {".png": "PNG", ".exr": "OPEN_EXR", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}


def run(args) -> int:
    from ..core.errors import ConfigError, UpliftError

    blend = Path(args.blend)
    if not blend.is_file():
        raise ConfigError(f"no such .blend file: {blend}")
    output = Path(args.output).resolve()
    if "#" not in output.name:
        raise ConfigError(f"the output {args.output} needs #### where the frame number goes")
    file_format = FORMATS.get(output.suffix.lower())
    if file_format is None:
        raise ConfigError(f"the output {args.output} must end in one of {', '.join(FORMATS)}")
    if importlib.util.find_spec("bpy") is None:
        raise UpliftError("uplift animate needs the bpy module (pip install bpy); or run "
                          f"`blender -b {blend} -a` with the Uplift extension enabled")
    import bpy

    from .. import register
    from ..blender import animation, scene_io

    if not hasattr(bpy.types.Scene, "uplift"):
        register()
    bpy.ops.wm.open_mainfile(filepath=str(blend.resolve()))
    scene = bpy.context.scene
    if not scene_io.roots(scene) or scene.uplift.photo_image is None:
        raise ConfigError(f"{blend} has no lifted object with a photo: nothing for Uplift to animate")
    animation.ensure_tree(scene)
    if args.frames is not None:
        scene.frame_start, scene.frame_end = args.frames
    output.parent.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(output)
    scene.render.use_file_extension = False  # the output names its own extension
    scene.render.image_settings.file_format = file_format
    if file_format != "OPEN_EXR":
        scene.render.image_settings.color_mode = "RGB"
    bpy.ops.render.render(animation=True)
    if animation.last_error["text"]:
        raise UpliftError(animation.last_error["text"])
    count = scene.frame_end - scene.frame_start + 1
    print(f"wrote {count} frame{'s' * (count != 1)} to {output.parent}")
    return 0
