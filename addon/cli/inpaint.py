"""`uplift inpaint PHOTO --mask MASK.png -o PLATE.png [--dilate PX]`."""
from __future__ import annotations


def add_parser(sub) -> None:
    from ..services.options import add_service_arguments

    p = sub.add_parser("inpaint", help="paint out the masked object (clean plate)",
                       description="Fill the mask grown by --dilate pixels; every pixel outside stays as it was. "
                                   "--mode seam repaints a ring of --dilate pixels around the mask's edge instead.")
    p.add_argument("photo", help="photo (PNG or JPEG)")
    p.add_argument("--mask", required=True, help="mask of the photo's size (255 or alpha = inside)")
    p.add_argument("-o", "--output", required=True, metavar="PLATE.png", help="image to write (atomically)")
    p.add_argument("--dilate", type=int, default=8, metavar="PX", help="grow the mask by PX pixels (default 8)")
    p.add_argument("--mode", choices=("fill", "seam"), default="fill")
    p.add_argument("--prompt", help="what the background shows (the diffusers backend needs it)")
    add_service_arguments(p, "inpaint")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..core.image_io import load_image, load_mask
    from ..services.options import refuse_overwriting_input, services_from_args
    from ..core.image_io import save_png
    from .progress import Progress

    refuse_overwriting_input(args.output, args.photo, args.mask)
    progress = Progress()
    with progress.stage("read inputs"):
        image = load_image(args.photo, what="photo")
        mask = load_mask(args.mask, shape=image.shape[:2], what="mask")
    with progress.stage("connect" if args.server else "load inpainter"):
        services = services_from_args(args, "inpaint")
    with progress.stage("inpaint"):
        plate = services.inpaint(image, mask, mode=args.mode, dilate=args.dilate, prompt=args.prompt)
    save_png(args.output, plate)
    print(f"wrote {args.output}")
    return 0
