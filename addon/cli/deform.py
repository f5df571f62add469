"""`uplift deform IN.ply -o OUT.ply --drag FX,FY,FZ:TX,TY,TZ [--drag ...] [--controls 512] [--iterations N]`.

Each drag grabs the control point nearest to FROM and moves it to TO; FROM == TO pins
that point. Without --iterations ARAP runs to convergence (batch mode). Only the
Gaussian centres and rotations change; every other property is written back as read.
"""
from __future__ import annotations

import argparse
import re

from ..core.errors import ControlError

# A drag grabs a control only if FROM is within this fraction of the object's size
# (the diagonal of the controls' bounding box) from it: farther means a typo or the
# wrong object, not a point on this one.
DRAG_REACH = 0.1


def parse_drag(text: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"a drag is FX,FY,FZ:TX,TY,TZ, got {text!r}")
    points = []
    for part in parts:
        try:
            values = tuple(float(v) for v in part.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"a drag needs numbers, got {text!r}") from None
        if len(values) != 3 or not all(abs(v) < float("inf") for v in values):
            raise argparse.ArgumentTypeError(f"each end of a drag is three finite numbers X,Y,Z, got {text!r}")
        points.append(values)
    return points[0], points[1]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "deform", help="pose a Gaussian splat PLY with ARAP control-point drags",
        description="Grab the control point nearest to each FROM and move it to TO (FROM == TO pins it); the "
                    "rest of the object follows as rigidly as possible. Coordinates are in the PLY's units.",
    )
    # Values such as "-1.5,0,0:-1.5,0,1" start with '-'; let argparse take them as values
    # in the `--drag -1.5,...` form as well as `--drag=-1.5,...`.
    p._negative_number_matcher = re.compile(r"^-\.?\d")
    p.add_argument("input", metavar="IN.ply", help="3DGS PLY to deform (never modified)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.ply", help="PLY to write (atomically)")
    p.add_argument("--drag", type=parse_drag, action="append", default=[], metavar="FX,FY,FZ:TX,TY,TZ",
                   help="move the control nearest to FROM to TO; repeatable")
    p.add_argument("--controls", type=_positive, default=512, help="number of control points (default 512)")
    p.add_argument("--iterations", type=_positive, default=None,
                   help="ARAP iterations; without it ARAP runs until the energy stops changing")
    p.add_argument("--seed", type=int, default=0, help="seed of the control point sampling (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run)


def run(args) -> int:
    import torch

    from ..core.deformer import DeformConfig, Deformer
    from ..core.ply import read_ply, write_ply
    from ..services.options import refuse_overwriting_input
    from .progress import Progress

    if not args.drag:
        raise ControlError("give at least one --drag FX,FY,FZ:TX,TY,TZ (FROM == TO pins a point)")
    refuse_overwriting_input(args.output, args.input)
    config = DeformConfig(num_controls=args.controls, seed=args.seed, device=args.device)
    progress = Progress(quiet=args.quiet)
    with progress.stage("read PLY"):
        gaussians = read_ply(args.input)
    with progress.stage("controls, graph and skinning"):
        deformer = Deformer(gaussians, config)
    handles = _grab(deformer, args.drag)
    targets = torch.tensor([to for _, to in args.drag], dtype=torch.float32)
    mode = "batch" if args.iterations is None else "interactive"
    with progress.stage(f"ARAP ({mode}) and skinning"):
        posed = deformer.update(torch.tensor(handles), targets, mode=mode, iterations=args.iterations)
    with progress.stage("write PLY"):
        write_ply(args.output, posed.to("cpu"))
    r = deformer.last_result
    if not args.quiet:
        print(f"[uplift] {deformer.num_controls} controls, {len(handles)} handles, {r.iterations} iterations, "
              f"ARAP energy {r.energy:.3g}; wrote {args.output}", file=progress.stream)
    return 0


def _grab(deformer, drags) -> list[int]:
    """The control index each drag grabs; errors for drags off the object or sharing a control."""
    controls = deformer.controls
    size = float((controls.max(0).values - controls.min(0).values).norm())
    reach = DRAG_REACH * size
    grabbed: dict[int, int] = {}
    for number, (start, _) in enumerate(drags, start=1):
        index, distance = deformer.nearest_control(start)
        if distance > reach:
            raise ControlError(
                f"drag {number} starts at {_fmt(start)}, {distance:.3g} from the nearest control point; "
                f"it must start within {reach:.3g} of the object (whose size is {size:.3g})"
            )
        if index in grabbed:
            raise ControlError(
                f"drags {grabbed[index]} and {number} grab the same control point (nearest to {_fmt(start)}); "
                "start them farther apart or use more --controls"
            )
        grabbed[index] = number
    return list(grabbed)


def _fmt(point) -> str:
    return ",".join(f"{v:g}" for v in point)
