"""`uplift lift PHOTO --mask MASK.png -o OBJECT.ply [--camera CAMERA.json] [--camera-out CAM.json]
[--mesh FILE [--up y|z] [--as-placed [--refine] | --fit K]]`."""
from __future__ import annotations


def add_parser(sub) -> None:
    from ..services.options import add_mesh_arguments, add_service_arguments

    p = sub.add_parser("lift", help="turn the masked object into 3D Gaussians placed in the photo's camera",
                       description="Write a 3DGS PLY in the camera's world (Blender axes, Z up). Without "
                                   "--camera the camera is built from the photo (EXIF focal length, else a "
                                   "60-degree field of view) at the origin looking along +Y.")
    p.add_argument("photo", help="photo (PNG or JPEG)")
    p.add_argument("--mask", required=True, help="mask of the photo's size (255 or alpha = inside)")
    p.add_argument("-o", "--output", required=True, metavar="OBJECT.ply", help="PLY to write (atomically)")
    p.add_argument("--camera", metavar="CAMERA.json", help="camera to lift through (JSON: width, height, K, "
                                                           "world_to_camera)")
    p.add_argument("--camera-out", metavar="CAM.json", help="also write the camera used")
    add_service_arguments(p, "lift")
    add_mesh_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..core.camera import Camera
    from ..core.errors import CameraError
    from ..core.image_io import load_image, load_mask
    from ..core.ply import write_ply
    from ..core.atomic import write_bytes_atomic
    from ..services.options import mesh_config_from_args, refuse_overwriting_input, services_from_args
    from .progress import Progress

    for out in (args.output, args.camera_out):
        if out is not None:
            refuse_overwriting_input(out, args.photo, args.mask, args.camera, args.mesh)
    # The mesh options, and with --mesh the mesh file, are checked first: a bad one is the only line printed.
    mesh_config_from_args(args)
    services = services_from_args(args, "lift") if args.mesh else None
    progress = Progress()
    with progress.stage("read inputs"):
        image = load_image(args.photo, what="photo")
        mask = load_mask(args.mask, shape=image.shape[:2], what="mask")
        if args.camera:
            camera = Camera.load(args.camera)
            if (camera.width, camera.height) != (image.shape[1], image.shape[0]):
                raise CameraError(f"camera {args.camera} is {camera.width}x{camera.height} but the photo is "
                                  f"{image.shape[1]}x{image.shape[0]}")
        else:
            from ..core.photo import camera_from_photo

            camera = camera_from_photo(args.photo)
    if services is None:
        with progress.stage("connect" if args.server else "load lifter"):
            services = services_from_args(args, "lift")
    with progress.stage("lift"):
        gaussians = services.lift(image, mask, camera)
    write_ply(args.output, gaussians)
    if args.camera_out:
        write_bytes_atomic(args.camera_out, camera.to_json().encode())
    print(f"wrote {args.output} ({len(gaussians)} Gaussians)" + (f" and {args.camera_out}" if args.camera_out else ""))
    return 0
