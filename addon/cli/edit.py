"""`uplift edit` — edit an object in a photo in 3D, in one command.

    uplift edit PHOTO (--box X0,Y0,X1,Y1 | --point X,Y ... | --mask MASK.png) [--background-point X,Y ...] -o FINAL.png
        [--rotate YAW,PITCH,ROLL] [--translate X,Y,Z] [--scale S] [--drag FX,FY,FZ:TX,TY,TZ ...]
        [--server URL [--token T] | --segment grabcut|sam --lift inflate|trellis --inpaint structure_texture|membrane|telea|ns|fsr_fast|fsr_best|patchmatch|lama|diffusers ...]
        [--mesh FILE [--up y|z] [--as-placed [--refine] | --fit K]] [--keep DIR]

Runs segment → lift → inpaint → deform → render → compose (with the seam pass), printing
each stage and its time. Angles are degrees about the object's centre with the camera's
axes (yaw about up, pitch about right, roll about the viewing axis); translations and drag
points are in the camera's axes (x right, y down, z forward) in units of the object's size,
drag points relative to the object's centre. Write negative values with '=':
`--rotate=-30,0,0`, `--drag=0,-0.4,0:0.2,-0.6,0`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import ConfigError, ControlError

def _floats(text: str, count: int, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be {count} comma-separated numbers, got {text!r}") from None
    if len(values) != count:
        raise argparse.ArgumentTypeError(f"{what} must be {count} comma-separated numbers, got {text!r}")
    return values


def _box(text: str):
    return _floats(text, 4, "--box X0,Y0,X1,Y1")


def _point(text: str):
    return _floats(text, 2, "--point X,Y")


def _vec3(what: str):
    return lambda text: _floats(text, 3, what)


def _drag(text: str):
    """--drag: the shared parser (`core.drags.parse_drag`), then the object-frame checks of `Drag`."""
    from ..pipeline.edit import Drag
    from .deform import drag_argument

    try:
        return Drag(*drag_argument(text))
    except ControlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub) -> None:
    p = sub.add_parser(
        "edit", help="edit an object in a photo in 3D (segment, lift, deform, render, inpaint, composite)",
        description=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo", type=Path, metavar="PHOTO", help="the photo (JPEG/PNG/…); never modified")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FINAL.png", help="where to write the result (PNG)")
    sel = p.add_argument_group("selecting the object (a box, points, or both; or a ready mask)")
    sel.add_argument("--box", type=_box, metavar="X0,Y0,X1,Y1", help="box around the object, photo pixels")
    sel.add_argument("--point", type=_point, action="append", default=[], metavar="X,Y",
                     help="a click on the object, photo pixels (repeatable)")
    sel.add_argument("--background-point", type=_point, action="append", default=[], metavar="X,Y",
                     help="a click on something that is not the object (repeatable)")
    sel.add_argument("--mask", type=Path, metavar="MASK.png", help="use this mask instead of segmenting")
    ed = p.add_argument_group("the edit (drags first, then rotate / scale about the centre, then translate)")
    ed.add_argument("--rotate", type=_vec3("--rotate YAW,PITCH,ROLL"), default=(0.0, 0.0, 0.0),
                    metavar="YAW,PITCH,ROLL", help="degrees about the camera's up, right and viewing axes")
    ed.add_argument("--translate", type=_vec3("--translate X,Y,Z"), default=(0.0, 0.0, 0.0), metavar="X,Y,Z",
                    help="camera axes (x right, y down, z away), in object sizes")
    ed.add_argument("--scale", type=float, default=1.0, metavar="S", help="uniform scale about the centre")
    ed.add_argument("--drag", type=_drag, action="append", default=[], metavar="FX,FY,FZ:TX,TY,TZ",
                    help="grab the object's control nearest FROM and move it by TO - FROM (FROM == TO pins it; "
                         "object frame: camera axes, object sizes from the centre); controls far from every drag "
                         "stay pinned (repeatable)")
    from ..services.options import KIND_BACKENDS, KIND_PATHS, TOKEN_ENV, add_model_paths

    sv = p.add_argument_group("model services (a running server, or embedded backends in this process)")
    sv.add_argument("--server", metavar="URL", help="use a running `uplift serve` at URL")
    sv.add_argument("--token", help=f"bearer token for --server (default: ${TOKEN_ENV})")
    sv.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds to wait for the server")
    for kind, choices in KIND_BACKENDS.items():
        choices = [c for c in choices if c != "none"]
        sv.add_argument(f"--{kind}", choices=choices, default=choices[0],
                        help=f"embedded {kind} backend (default {choices[0]})")
    add_model_paths(sv, [f for fields in KIND_PATHS.values() for f in fields])
    sv.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="embedded backends' device")
    sv.add_argument("--prompt", help="text prompt for inpainting backends that take one")
    from ..services.options import add_mesh_arguments

    add_mesh_arguments(p)
    op = p.add_argument_group("output and speed")
    op.add_argument("--keep", type=Path, metavar="DIR", help="also write every intermediate to DIR, with a README.txt")
    op.add_argument("--max-size", type=int, default=1024, metavar="PX",
                    help="process photos at most PX on the long side, composite back at full size (default 1024)")
    op.add_argument("--render-backend", choices=("auto", "torch", "gsplat"), default="auto")
    op.add_argument("--no-seam", action="store_true", help="skip the seam inpainting pass")
    op.add_argument("--no-reproject", action="store_true",
                    help="render the lifted colours only, not the photo's own pixels where the photo saw the object")
    op.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run)


def make_services(args):
    """HttpServices for --server (checked for health first), else LocalServices with the
    chosen embedded backends."""
    from ..services.options import http_services_from_args, mesh_config_from_args

    mesh = mesh_config_from_args(args)
    if mesh is not None and args.lift != "inflate":
        raise ConfigError(f"--mesh lifts onto the given mesh; it cannot be combined with --lift {args.lift}")
    if args.server:
        return http_services_from_args(args, mesh)
    from ..services.config import ServerConfig
    from ..services.local import LocalServices

    services = LocalServices(ServerConfig(
        segment=args.segment, lift=args.lift if mesh is None else "mesh", mesh_lift=mesh, inpaint=args.inpaint,
        sam_checkpoint=args.sam_checkpoint,
        sam_model_type=args.sam_model_type, trellis_model=args.trellis_model, lama_model=args.lama_model,
        diffusers_model=args.diffusers_model, device=args.device))
    if mesh is not None:
        services.backend("lift")  # read and check the mesh file now, before segmenting
    return services


def run(args) -> int:
    from ..core.image_io import load_image, load_mask
    from ..services.options import refuse_overwriting_input
    from ..core.image_io import save_png
    from ..core.photo import camera_from_photo
    from ..pipeline.edit import EditConfig, EditRequest, EditSpec, run_edit
    from ..pipeline.keep import write_kept
    from .progress import Progress

    if args.box is None and not args.point and args.mask is None:
        raise ConfigError("select the object with --box, --point or --mask")
    if args.output.suffix.lower() != ".png":
        raise ConfigError(f"the output {args.output} must be a .png file")
    refuse_overwriting_input(args.output, args.photo, args.mask, args.mesh)
    if not args.output.parent.is_dir():
        raise ConfigError(f"the output folder {args.output.parent} does not exist")
    progress = Progress(quiet=args.quiet)
    with progress.stage("load"):
        photo_bytes = _read(args.photo)
        image = load_image(photo_bytes, what=f"photo {args.photo}")
        camera = camera_from_photo(photo_bytes)
        mask = None if args.mask is None else load_mask(args.mask, shape=image.shape[:2], what=f"mask {args.mask}")
        points = tuple(args.point) + tuple(args.background_point)
        labels = (1,) * len(args.point) + (0,) * len(args.background_point)
        request = EditRequest(image, camera, box=args.box, points=points, labels=labels, mask=mask)
        edit = EditSpec(rotate_deg=args.rotate, translate=args.translate, scale=args.scale, drags=tuple(args.drag))
        config = EditConfig(max_working_size=args.max_size, seam=not args.no_seam, reproject=not args.no_reproject,
                            render_backend=args.render_backend, inpaint_prompt=args.prompt)
        services = make_services(args)
    result = run_edit(request, edit, services, config, stage=progress.stage)
    with progress.stage("write"):
        save_png(args.output, result.final)
        if args.keep is not None:
            write_kept(result, args.keep, photo_name=args.photo.name, edit=edit, config=config)
    if not args.quiet:
        total = sum(progress.timings.values())
        print(f"[uplift] wrote {args.output} ({image.shape[1]}x{image.shape[0]}) in {total:.1f} s"
              + (f"; intermediates in {args.keep}" if args.keep else ""))
    return 0


def _read(path: Path) -> bytes:
    from ..core.errors import ImageFormatError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageFormatError(f"photo {path} does not exist") from None
    except OSError as exc:
        raise ImageFormatError(f"cannot read photo {path}: {exc.strerror or exc}") from None
