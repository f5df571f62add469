"""`uplift segment PHOTO (--box X0,Y0,X1,Y1 | --point X,Y[,LABEL] ...) -o MASK.png`."""
from __future__ import annotations

import argparse

from ..core.errors import UpliftError


def _numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if len(values) not in count:
        raise argparse.ArgumentTypeError(f"{what} needs {' or '.join(map(str, count))} numbers, got {text!r}")
    return values


def parse_box(text: str) -> list[float]:
    return _numbers(text, (4,), "--box X0,Y0,X1,Y1")


def parse_point(text: str) -> list[float]:
    values = _numbers(text, (2, 3), "--point X,Y[,LABEL]")
    if len(values) == 3 and values[2] not in (0.0, 1.0):
        raise argparse.ArgumentTypeError(f"a point's LABEL is 1 (object) or 0 (background), got {text!r}")
    return values if len(values) == 3 else values + [1.0]


def add_parser(sub) -> None:
    from ..services.options import add_service_arguments

    p = sub.add_parser("segment", help="mask an object in a photo from a box and/or clicks",
                       description="Write a mask PNG (255 inside) of the photo's size. Coordinates are pixels "
                                   "from the top-left corner.")
    p.add_argument("photo", help="photo (PNG or JPEG)")
    p.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1", help="box around the object")
    p.add_argument("--point", type=parse_point, action="append", default=[], metavar="X,Y[,LABEL]",
                   help="a click; LABEL 1 = object (default), 0 = background; repeatable")
    p.add_argument("-o", "--output", required=True, metavar="MASK.png", help="mask to write (atomically)")
    add_service_arguments(p, "segment")
    p.set_defaults(run=run)


def run(args) -> int:
    import numpy as np

    from ..core.image_io import load_image
    from ..services.options import refuse_overwriting_input, services_from_args
    from ..core.image_io import save_png
    from .progress import Progress

    if args.box is None and not args.point:
        raise UpliftError("give --box X0,Y0,X1,Y1 or at least one --point X,Y")
    refuse_overwriting_input(args.output, args.photo)
    progress = Progress()
    with progress.stage("read photo"):
        image = load_image(args.photo, what="photo")
    with progress.stage("connect" if args.server else "load segmenter"):
        services = services_from_args(args, "segment")
    points = np.array([p[:2] for p in args.point], dtype=np.float64).reshape(-1, 2)
    labels = np.array([int(p[2]) for p in args.point], dtype=np.int64)
    with progress.stage("segment"):
        result = services.segment(image, points, labels, args.box)
    if not result.mask.any():
        raise UpliftError("the segmenter found nothing at those prompts; try a box or more points")
    save_png(args.output, result.mask)
    print(f"wrote {args.output} ({int(result.mask.sum())} pixels, score {result.score:.3f})")
    return 0
