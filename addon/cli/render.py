"""`uplift render IN.ply --camera CAMERA.json -o OUT.png [--depth OUT.npy] [--backend ...] [--background R,G,B] [--scale S]`."""
from __future__ import annotations

import argparse


def parse_background(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--background must be R,G,B numbers in [0, 1], got {text!r}") from None
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"--background must be three numbers in [0, 1], got {text!r}")
    return values


def add_parser(sub) -> None:
    from ..core.render import BACKENDS

    p = sub.add_parser("render", help="render a Gaussian splat PLY through a camera",
                       description="Write an 8-bit RGBA PNG (straight alpha) of the camera's size; "
                                   "a camera that sees nothing gives a fully transparent image.")
    p.add_argument("ply", metavar="IN.ply", help="3DGS splat PLY")
    p.add_argument("--camera", required=True, metavar="CAMERA.json",
                   help='camera JSON: {"width", "height", "K", "world_to_camera"} (OpenCV axes)')
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="image to write (atomically)")
    p.add_argument("--depth", metavar="OUT_DEPTH.npy", help="also write expected depth, float32 [H, W], 0 where empty")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: gsplat on CUDA, else the pure-torch renderer (default); viewport: the GLSL "
                        "splat shader through Blender's gpu module (needs the bpy module, 5.2 or later)")
    p.add_argument("--background", type=parse_background, metavar="R,G,B",
                   help="opaque background colour in [0, 1] (default: transparent)")
    p.add_argument("--scale", type=float, default=1.0, help="render at this fraction of the camera's size")
    p.set_defaults(run=run)


def run(args) -> int:
    import io

    import numpy as np

    from ..core.camera import Camera
    from ..core.errors import ConfigError
    from ..core.image_io import to_uint8
    from ..core.ply import read_ply
    from ..core.render import render
    from ..core.atomic import write_bytes_atomic
    from ..services.options import refuse_overwriting_input
    from ..core.image_io import save_png
    from .progress import Progress

    if not str(args.output).lower().endswith(".png"):
        raise ConfigError(f"the output {args.output} must be a .png file")
    refuse_overwriting_input(args.output, args.ply, args.camera)
    if args.depth:
        refuse_overwriting_input(args.depth, args.ply, args.camera, args.output)
    progress = Progress()
    with progress.stage("read"):
        camera = Camera.load(args.camera)
        gaussians = read_ply(args.ply)
    with progress.stage("render"):
        result = render(gaussians, camera, backend=args.backend, background=args.background, scale=args.scale)
    with progress.stage("write"):
        rgba = result.rgba.detach().cpu().numpy()
        save_png(args.output, to_uint8(np.clip(rgba, 0.0, 1.0)))
        if args.depth:
            buf = io.BytesIO()
            np.save(buf, result.depth.detach().cpu().numpy().astype(np.float32))
            write_bytes_atomic(args.depth, buf.getvalue())
    print(f"wrote {args.output} ({result.camera.width}x{result.camera.height})"
          + (f" and {args.depth}" if args.depth else ""))
    return 0
