"""`make demo`: the whole product on a photo that ships with scikit-image.

Takes `skimage.data.coffee()` (an espresso cup on a saucer), selects the cup with a
hand-chosen box and a few clicks, and runs `uplift edit` with the embedded backends (GrabCut, inflation
lifting, Telea inpainting): the cup turns 20° about the vertical and tips 8° towards
the camera (an out-of-plane rotation no 2D warp can fake), and its handle is dragged
out and down (an ARAP drag of one part; the rest of the cup stays pinned).

Writes OUT/: photo.png (the input), every intermediate of `uplift edit --keep`
(see OUT/README.txt), final.png, before_after.png (photo | result side by side) and
demo.blend (the camera, the photo, the lifted object with its controls and the
compositor tree), then prints the stage timings.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PHOTO = "coffee"                      # skimage.data.coffee(): 600x400
BOX = (168, 12, 418, 312)             # the cup, its handle and the spoon (x0, y0, x1, y1)
# Clicks on the cup's body, handle and rim: GrabCut alone confuses the red cup with the red saucer.
POINTS = ((200, 200), (330, 225), (225, 270), (290, 100), (260, 250), (300, 260), (210, 240), (350, 200),
          (215, 285), (380, 150))
ROTATE = (20.0, 8.0, 0.0)             # yaw, pitch, roll in degrees
# The handle sits left of and below the cup's centre (object sizes, camera axes): pull it out and down.
DRAG = ((-0.26, 0.36, -0.1), (-0.4, 0.46, -0.1))


def edit_argv(photo: Path, out: Path) -> list[str]:
    (fx, fy, fz), (tx, ty, tz) = DRAG
    points = [arg for x, y in POINTS for arg in ("--point", f"{x},{y}")]
    return ["edit", str(photo), "--box", ",".join(str(v) for v in BOX), *points, "-o", str(out / "final.png"),
            f"--rotate={ROTATE[0]},{ROTATE[1]},{ROTATE[2]}", f"--drag={fx},{fy},{fz}:{tx},{ty},{tz}",
            "--keep", str(out)]


def before_after(photo: np.ndarray, final: np.ndarray) -> np.ndarray:  # uint8 [H, W, 3] x2 -> [H, 2W, 3]
    return np.concatenate([photo, final], axis=1)


DEMO_README = """
Written by `make demo` (scripts/demo.py) besides the files above:
photo.png         the input, skimage.data.coffee()
before_after.png  photo.png and final.png side by side
"""
BLEND_README = """demo.blend        the camera, the photo, the lifted object with its controls and the compositor tree
                  (open it in Blender with the Uplift extension enabled)
"""

BLEND_SCRIPT = """
import sys
from uplift.blender.demo_scene import write_demo_blend
write_demo_blend(sys.argv[1], sys.argv[2], photo_path=sys.argv[3])
"""


def write_blend(out: Path) -> tuple[bool, str]:
    """demo.blend in a separate process, so bpy loads into a clean interpreter."""
    proc = subprocess.run([sys.executable, "-c", BLEND_SCRIPT, str(out), str(out / "demo.blend"),
                           str(out / "photo.png")], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        return False, lines[-1]
    return True, str(out / "demo.blend")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run Uplift's demo edit on a bundled photo.")
    ap.add_argument("--out", type=Path, default=Path("demo-output"))
    ap.add_argument("--no-blend", action="store_true", help="skip writing demo.blend")
    args = ap.parse_args(argv)

    import skimage.data

    from uplift.cli.main import main as uplift_main
    from uplift.core.image_io import load_image, save_png

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    photo = getattr(skimage.data, PHOTO)()
    save_png(out / "photo.png", photo)
    print(f"[demo] photo: skimage.data.{PHOTO}() {photo.shape[1]}x{photo.shape[0]}, box {BOX}", flush=True)
    argv_edit = edit_argv(out / "photo.png", out)
    print("[demo] uplift " + " ".join(argv_edit), flush=True)
    start = time.perf_counter()
    rc = uplift_main(argv_edit)
    if rc != 0:
        print(f"[demo] uplift edit failed (exit {rc})", file=sys.stderr)
        return rc
    final = load_image(out / "final.png")
    save_png(out / "before_after.png", before_after(photo, final))
    print(f"[demo] before_after.png written ({2 * photo.shape[1]}x{photo.shape[0]})", flush=True)
    if not args.no_blend:
        t0 = time.perf_counter()
        ok, what = write_blend(out)
        if not ok:
            print(f"[demo] demo.blend: failed: {what}", file=sys.stderr)
            return 1
        print(f"[demo] demo.blend written in {time.perf_counter() - t0:.1f} s: {what}", flush=True)
    with open(out / "README.txt", "a") as readme:
        readme.write(DEMO_README + ("" if args.no_blend else BLEND_README))
    print(f"[demo] done in {time.perf_counter() - start:.1f} s; open {out / 'before_after.png'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
