"""`uplift render IN.ply --camera CAMERA.json -o OUT.png [--depth OUT.npy] [--backend ...] [--background R,G,B] [--scale S]
[--photo PHOTO --rest REST.ply [--photo-camera CAMERA.json]]`.

With --photo, IN.ply is a posed copy of REST.ply (same Gaussians, same order, e.g. `uplift
deform`'s output) lifted from PHOTO: the render shows the photo's own pixels wherever the
photo saw the object (`core.render.reprojection`)."""
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
    p.add_argument("ply", metavar="IN.ply", help="splat to render: 3DGS .ply, .spz or .splat")
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
    p.add_argument("--photo", metavar="PHOTO", help="reproject this photo: the object shows the photo's pixels "
                                                    "where the photo saw it (needs --rest)")
    p.add_argument("--rest", metavar="REST.ply", help="the object at rest, as lifted from --photo")
    p.add_argument("--photo-camera", metavar="CAMERA.json",
                   help="the photo's camera (default: from its EXIF focal length, as `uplift lift` makes it)")
    p.set_defaults(run=run)


def provide_viewport_renderer() -> None:
    """The 'viewport' backend is the Blender layer's shader, which the bpy-free core does not
    import: ask the Blender layer (bpy module) to provide it, or say what is missing."""
    from ..core.errors import RenderBackendError
    from ..core.render.viewport_backend import NEEDS_BPY

    try:
        from ..blender.splat_draw import provide_render_backend
    except ImportError as exc:
        raise RenderBackendError(f"{NEEDS_BPY}: {exc}") from None
    provide_render_backend()


def run(args) -> int:
    import io

    import numpy as np

    from ..core.camera import Camera
    from ..core.errors import ConfigError
    from ..core.image_io import to_uint8
    from ..core.splat_io import read_splat_file
    from ..core.render import render
    from ..core.atomic import write_bytes_atomic
    from ..services.options import refuse_overwriting_input
    from ..core.image_io import save_png
    from .progress import Progress

    if not str(args.output).lower().endswith(".png"):
        raise ConfigError(f"the output {args.output} must be a .png file")
    if (args.photo is None) != (args.rest is None) or (args.photo_camera and not args.photo):
        raise ConfigError("reprojection needs both --photo and --rest (and --photo-camera only with them)")
    inputs = [x for x in (args.ply, args.camera, args.photo, args.rest, args.photo_camera) if x]
    refuse_overwriting_input(args.output, *inputs)
    if args.depth:
        refuse_overwriting_input(args.depth, args.output, *inputs)
    if args.backend == "viewport":
        provide_viewport_renderer()
    progress = Progress()
    with progress.stage("read"):
        camera = Camera.load(args.camera)
        gaussians = read_splat_file(args.ply)
        photo = None
        if args.photo:
            from ..core.image_io import load_image
            from ..core.photo import camera_from_photo
            from ..core.render.reprojection import PhotoSource

            image = load_image(args.photo, what="photo")
            photo_camera = Camera.load(args.photo_camera) if args.photo_camera else camera_from_photo(args.photo)
            rest = read_splat_file(args.rest)
    if args.photo:
        with progress.stage("visibility"):
            photo = PhotoSource.from_photo(image, photo_camera, rest, backend=args.backend)
    with progress.stage("render"):
        result = render(gaussians, camera, backend=args.backend, background=args.background, scale=args.scale,
                        photo=photo)
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
