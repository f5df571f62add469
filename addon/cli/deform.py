"""`uplift deform IN.ply -o OUT.ply --drag FX,FY,FZ:TX,TY,TZ [--drag ...] [--controls 512] [--iterations N]`.

IN and OUT may be any splat file `core.splat_io` reads and writes (.ply, .spz, .splat), by
extension: `-o POSED.spz` writes the posed splat as Niantic's compressed .spz.

Each drag grabs the control point nearest to FROM and moves it *by* TO - FROM (FROM == TO
pins that point where it is); controls farther than --pin-radius object sizes from every
FROM stay put. The grab rule is `core.drags.grab`, the same as `uplift edit --drag`.
Without --iterations ARAP runs to convergence (batch mode). Only the Gaussian centres and
rotations change; every other property is written back as read (all of them to a .ply;
.spz and .splat keep what their formats hold).
"""
from __future__ import annotations

import argparse
import re

from ..core.drags import DEFAULT_PIN_RADIUS, DRAG_REACH, MAX_DRAG_SIZES, SYNTAX
from ..core.errors import ControlError


def drag_argument(text: str):
    """argparse type for --drag: `core.drags.parse_drag`, its error as a usage error."""
    from ..core.drags import parse_drag

    try:
        return parse_drag(text)
    except ControlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


DRAG_HELP = (f"grab the control nearest FROM and move it by TO - FROM (FROM == TO pins it); a drag must start "
             f"within {DRAG_REACH:g} object sizes of the object and move at most {MAX_DRAG_SIZES:g} object sizes; "
             "repeatable")


def allow_negative_values(parser: argparse.ArgumentParser) -> None:
    """Let argparse take '-1.5,0,0:...' as a value in the `--drag -1.5,...` form too."""
    parser._negative_number_matcher = re.compile(r"^-\.?\d")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "deform", help="pose a Gaussian splat PLY with ARAP control-point drags",
        description="Grab the control point nearest to each FROM and move it by TO - FROM (FROM == TO pins it "
                    "where it is); the rest of the object follows as rigidly as possible, and controls farther "
                    "than --pin-radius object sizes from every FROM stay put. Coordinates are in the PLY's "
                    "units; the object's size is the largest side of its control points' bounding box.",
    )
    allow_negative_values(p)
    p.add_argument("input", metavar="IN.ply", help="splat to deform: 3DGS .ply, .spz or .splat (never modified)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.ply",
                   help="splat to write (atomically): .ply (every property), .spz (compressed) or .splat")
    p.add_argument("--drag", type=drag_argument, action="append", default=[], metavar=SYNTAX, help=DRAG_HELP)
    p.add_argument("--pin-radius", type=_non_negative, default=DEFAULT_PIN_RADIUS, metavar="SIZES",
                   help=f"controls farther than this many object sizes from every drag stay put; 0 pins nothing "
                        f"(default {DEFAULT_PIN_RADIUS:g}, as uplift edit)")
    p.add_argument("--controls", type=_positive, default=512, help="number of control points (default 512)")
    p.add_argument("--iterations", type=_positive, default=None,
                   help="ARAP iterations; without it ARAP runs until the energy stops changing")
    p.add_argument("--seed", type=int, default=0, help="seed of the control point sampling (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run)


def run(args) -> int:
    import numpy as np
    import torch

    from ..core.deformer import DeformConfig, Deformer
    from ..core.drags import format_drag, grab
    from ..core.splat_io import read_splat_file, splat_format, write_splat_file
    from ..services.options import refuse_overwriting_input
    from .progress import Progress

    if not args.drag:
        raise ControlError(f"give at least one --drag {SYNTAX} (FROM == TO pins a point)")
    refuse_overwriting_input(args.output, args.input)
    splat_format(args.output)  # an unknown type fails before the solve
    config = DeformConfig(num_controls=args.controls, seed=args.seed, device=args.device)
    progress = Progress(quiet=args.quiet)
    with progress.stage("read splat"):
        gaussians = read_splat_file(args.input)
    with progress.stage("controls, graph and skinning"):
        deformer = Deformer(gaussians, config)
    sources = np.array([start for start, _ in args.drag], dtype=np.float64)
    moves = np.array([end for _, end in args.drag], dtype=np.float64) - sources
    labels = [format_drag(start, end) for start, end in args.drag]
    handles, targets = grab(deformer.controls.detach().double().cpu().numpy(), sources, moves, args.pin_radius,
                            labels=labels)
    mode = "batch" if args.iterations is None else "interactive"
    with progress.stage(f"ARAP ({mode}) and skinning"):
        posed = deformer.update(torch.as_tensor(handles), torch.as_tensor(targets, dtype=torch.float32),
                                mode=mode, iterations=args.iterations)
    with progress.stage("write splat"):
        write_splat_file(args.output, posed.to("cpu"))
    r = deformer.last_result
    if not args.quiet:
        print(f"[uplift] {deformer.num_controls} controls, {len(handles)} handles ({len(args.drag)} dragged), "
              f"{r.iterations} iterations, ARAP energy {r.energy:.3g}; wrote {args.output}", file=progress.stream)
    return 0
