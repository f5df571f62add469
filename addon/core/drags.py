"""What a drag means, once for every caller (`uplift deform`, `uplift edit --drag`, the pipeline).

A drag is FROM -> TO. It grabs the control point nearest FROM and moves it *by*
TO - FROM (as Blender's grab and DragGAN do): the control's target is its current
position plus the displacement, so FROM == TO pins that control exactly where it is and
nothing moves. Reach, pinning and the plausibility limit are in units of the object's
size (`object_size`), so one rule serves a PLY in metres and a lifted photo object alike.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import ControlError

Vec3 = tuple[float, float, float]

SYNTAX = "FX,FY,FZ:TX,TY,TZ"
# A drag must start within this many object sizes of a control: farther means a typo or
# the wrong object, not a point on this one.
DRAG_REACH = 0.5
# With drags, controls farther than this many object sizes from every drag's start stay
# where they are (0 pins nothing beyond the drags themselves).
DEFAULT_PIN_RADIUS = 0.6
# Drag ends and displacements beyond this many object sizes are refused as absurd.
MAX_DRAG_SIZES = 100.0


def parse_drag(text: str) -> tuple[Vec3, Vec3]:
    """'FX,FY,FZ:TX,TY,TZ' -> (FROM, TO); ControlError naming the problem otherwise."""
    parts = str(text).split(":")
    if len(parts) != 2:
        raise ControlError(f"a drag is {SYNTAX}, got {text!r}")
    ends = []
    for part in parts:
        try:
            values = tuple(float(v) for v in part.split(","))
        except ValueError:
            raise ControlError(f"a drag is {SYNTAX} with numbers, got {text!r}") from None
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise ControlError(f"each end of a drag is three finite numbers X,Y,Z, got {text!r}")
        ends.append(values)
    return ends[0], ends[1]


def object_size(points: np.ndarray) -> float:  # points: [N, 3] -> the largest side of their box
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    size = float((points.max(0) - points.min(0)).max()) if len(points) else 0.0
    if not size > 0:
        raise ControlError("the object has no extent, so drags cannot be measured against its size")
    return size


def format_drag(source, target) -> str:  # -> 'FX,FY,FZ:TX,TY,TZ', as parse_drag reads it
    return ":".join(",".join(f"{v:g}" for v in end) for end in (source, target))


def grab(
    controls: np.ndarray,   # [M, 3] the controls' current positions
    sources: np.ndarray,    # [D, 3] each drag's FROM, same units and frame as controls
    moves: np.ndarray,      # [D, 3] each drag's TO - FROM
    pin_radius: float = 0.0,
    *,
    labels: list[str] | None = None,  # how to name each drag in errors; default its FROM
) -> tuple[np.ndarray, np.ndarray]:
    """The one grab rule -> (handle indices [H] sorted, targets [H, 3]).

    Drag d grabs the control nearest sources[d] (within DRAG_REACH object sizes) and sends
    it to its position + moves[d]. With pin_radius > 0, every control farther than that
    many object sizes from every source is a handle too, held where it is."""
    controls = np.asarray(controls, dtype=np.float64).reshape(-1, 3)
    sources = np.asarray(sources, dtype=np.float64).reshape(-1, 3)
    moves = np.asarray(moves, dtype=np.float64).reshape(-1, 3)
    if len(sources) == 0:
        raise ControlError(f"give at least one drag {SYNTAX} (FROM == TO pins a point)")
    size = object_size(controls)
    reach, limit = DRAG_REACH * size, MAX_DRAG_SIZES * size
    labels = labels or [format_drag(s, s + m) for s, m in zip(sources, moves)]
    handles: dict[int, np.ndarray] = {}
    grabbed_by: dict[int, int] = {}
    for number, (source, move) in enumerate(zip(sources, moves), start=1):
        name = f"drag {number} ({labels[number - 1]})"
        if np.linalg.norm(move) > limit:
            raise ControlError(f"{name} moves {np.linalg.norm(move):.3g}, more than {MAX_DRAG_SIZES:g} object "
                               f"sizes (the object's size is {size:.3g}); check its units")
        distances = np.linalg.norm(controls - source, axis=1)
        index = int(np.argmin(distances))
        if distances[index] > reach:
            raise ControlError(f"{name} starts {distances[index]:.3g} from the nearest control point; it must "
                               f"start within {reach:.3g} ({DRAG_REACH:g} object sizes) of the object, whose "
                               f"size is {size:.3g}")
        if index in handles:
            raise ControlError(f"drags {grabbed_by[index]} and {number} grab the same control point; start them "
                               "farther apart or use more control points")
        grabbed_by[index] = number
        handles[index] = controls[index] + move
    if pin_radius > 0:
        nearest_source = np.linalg.norm(controls[:, None] - sources[None], axis=-1).min(1)
        for i in np.flatnonzero(nearest_source > pin_radius * size):
            handles.setdefault(int(i), controls[i])
    idx = np.array(sorted(handles), dtype=np.int64)
    return idx, np.stack([handles[i] for i in idx])
