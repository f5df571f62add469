"""`make bench-quality`: does editing in 3D beat pushing pixels in 2D?

Ground truth: objects built from Blender primitives with procedural / photo textures
(`bench.quality_scenes`), rendered by Cycles at pose A and at each edited pose B, and
composited over real photos (scikit-image's bundled `coffee`, `stereo_motorcycle`'s
left view, `rocket`). Photo A goes through the `uplift edit` pipeline in process (its box from A's
mask's bounding box, padded), with the edit that produced B; the result is compared
with the rendered B:

- PSNR and SSIM over the union of A's and B's object masks (where the edit happens),
- silhouette IoU between the edited object's mask and B's mask,
- PSNR outside the union (where nothing should change; 99 dB = identical).

The 2D baseline does what a pixel editor would: cut the object out of A with the same
mask the pipeline used, warp it with the 2D similarity (rotation, uniform scale,
translation) that best maps A's true mask onto B's true mask (an oracle fit: moments
for scale and translation, a search over the rotation angle for the best IoU), and
paste it over the same inpainted plate with the same compositing and seam pass.

Backends: 'grabcut' segments with the embedded GrabCut from the box; 'oracle' uses A's
true mask, isolating lifting from segmentation errors.

    python -m bench.quality [--out bench-output] [--backends grabcut,oracle] [--objects ...]

Prints one table per backend and writes OUT/quality.md, OUT/quality_scenes.csv and
OUT/quality_examples.png (one scene: A | true B | 3D | 2D per edit).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.quality_scenes import EDITS, OBJECT_NAMES, scene_key

# skimage.data photos bundled with the package: name -> loader.
BACKGROUNDS = {
    "coffee": lambda data: data.coffee(),
    "motorcycle": lambda data: data.stereo_motorcycle()[0],
    "rocket": lambda data: data.rocket(),
}
BOX_PAD = 4  # px around A's mask's bounding box, as a user would draw it
PSNR_CAP = 99.0  # dB reported for identical pixels


# -- scenes ------------------------------------------------------------------------------

def ensure_scenes(folder: Path, size: tuple[int, int], samples: int, objects) -> dict:
    """Render the ground-truth scenes in a bpy subprocess unless an identical set is cached."""
    meta_path = folder / "scenes.json"
    wanted = json.loads(json.dumps(scene_key(size, samples)))
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == wanted and all(o in meta["objects"] for o in objects):
            return meta
    print(f"[quality] rendering ground truth with Cycles into {folder} ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, "-m", "bench.quality_scenes", "--out", str(folder), "--size", f"{size[0]}x{size[1]}",
           "--samples", str(samples), "--objects", ",".join(objects)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(meta_path.read_text())


def background(name: str, size: tuple[int, int]) -> np.ndarray:
    """A bundled skimage photo, centre-cropped to the render's aspect and resized: uint8 [h, w, 3]."""
    import cv2
    import skimage.data

    img = BACKGROUNDS[name](skimage.data)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    w, h = size
    H, W = img.shape[:2]
    if W / H > w / h:
        cw = int(round(H * w / h))
        img = img[:, (W - cw) // 2:(W - cw) // 2 + cw]
    else:
        ch = int(round(W * h / w))
        img = img[(H - ch) // 2:(H - ch) // 2 + ch]
    return cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_AREA)


def over(rgba: np.ndarray, bg: np.ndarray) -> np.ndarray:  # uint8 [h, w, 4] straight over uint8 [h, w, 3]
    from uplift.core.compositing import alpha_over
    from uplift.core.image_io import to_float, to_uint8

    return to_uint8(alpha_over(to_float(rgba), to_float(bg)))


# -- metrics -------------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    if not region.any():
        return float("nan")
    mse = np.mean((a[region].astype(np.float64) - b[region].astype(np.float64)) ** 2)
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(255.0 ** 2 / mse))


def ssim_in(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    return float(full[region].mean())


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


# -- 2D baseline ---------------------------------------------------------------------------

def _similarity_2d(center_a, center_b, scale: float, angle_deg: float) -> np.ndarray:  # -> [2, 3]
    import cv2

    M = cv2.getRotationMatrix2D((float(center_a[0]), float(center_a[1])), angle_deg, scale)
    M[:, 2] += np.asarray(center_b) - np.asarray(center_a)
    return M


def _warp(image: np.ndarray, M: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    import cv2

    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(image, M, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def fit_mask_similarity(mask_a: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
    """The 2D similarity [2, 3] best mapping mask A onto mask B: centroids and the square
    root of the area ratio fix translation and scale; the angle is searched (5° steps over
    the circle, then 0.5° steps around the best) for the highest IoU."""
    ya, xa = np.nonzero(mask_a)
    yb, xb = np.nonzero(mask_b)
    ca = np.array([xa.mean() + 0.5, ya.mean() + 0.5])
    cb = np.array([xb.mean() + 0.5, yb.mean() + 0.5])
    scale = math.sqrt(len(xb) / len(xa))
    size = (mask_a.shape[1], mask_a.shape[0])
    src = mask_a.astype(np.uint8)

    def score(angle):
        return iou(_warp(src, _similarity_2d(ca, cb, scale, angle), size, nearest=True) > 0, mask_b)

    best = max(np.arange(-180, 180, 5.0), key=score)
    best = max(np.arange(best - 5, best + 5.01, 0.5), key=score)
    return _similarity_2d(ca, cb, scale, best)


def warp_cutout(image: np.ndarray, mask: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Cut `mask` out of `image` and warp it by M: float32 [h, w, 4] straight alpha."""
    alpha = mask.astype(np.float32)
    premult = np.concatenate([image.astype(np.float32) / 255 * alpha[..., None], alpha[..., None]], -1)
    warped = _warp(premult, M, (image.shape[1], image.shape[0]))
    a = warped[..., 3:4]
    rgb = np.where(a > 1e-6, warped[..., :3] / np.maximum(a, 1e-6), 0.0)
    return np.concatenate([np.clip(rgb, 0, 1), np.clip(a, 0, 1)], -1).astype(np.float32)


# -- the run -------------------------------------------------------------------------------

@dataclass
class Score:
    backend: str
    edit: str
    method: str   # '3d' | '2d'
    scene: str
    psnr_union: float
    ssim_union: float
    iou: float
    psnr_outside: float


def evaluate(final, silhouette, truth_b, mask_a, mask_b) -> tuple[float, float, float, float]:
    union = mask_a | mask_b
    return (psnr(final, truth_b, union), ssim_in(final, truth_b, union), iou(silhouette, mask_b),
            psnr(final, truth_b, ~union))


def run(out: Path, size, samples, backends, objects, backgrounds, edits, log) -> list[Score]:
    import torch

    from uplift.core.camera import Camera
    from uplift.core.image_io import load_rgba, save_png
    from uplift.pipeline.edit import EditConfig, EditRequest, EditSpec, apply_edit, compose, prepare
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices

    torch.manual_seed(0)
    meta = ensure_scenes(out / "scenes", size, samples, objects)
    camera = Camera.from_dict(meta["camera"])
    services = LocalServices(ServerConfig(segment="grabcut", lift="inflate", inpaint="telea"))
    config = EditConfig()
    scores: list[Score] = []
    examples: list[np.ndarray] = []
    for obj in objects:
        renders = {pose: load_rgba(out / "scenes" / obj / f"{pose}.png") for pose in ("A", *edits)}
        masks = {pose: r[..., 3] >= 128 for pose, r in renders.items()}
        for bg_name in backgrounds:
            bg = background(bg_name, size)
            photo = over(renders["A"], bg)
            ys, xs = np.nonzero(masks["A"])
            box = (max(0, xs.min() - BOX_PAD), max(0, ys.min() - BOX_PAD),
                   min(size[0], xs.max() + 1 + BOX_PAD), min(size[1], ys.max() + 1 + BOX_PAD))
            scene = f"{obj}/{bg_name}"
            for backend in backends:
                request = EditRequest(photo, camera, box=None if backend == "oracle" else box,
                                      mask=masks["A"] if backend == "oracle" else None)
                t0 = time.perf_counter()
                prepared = prepare(request, services, config)
                log(f"[quality] {scene} {backend}: prepared in {time.perf_counter() - t0:.1f} s "
                    f"(mask IoU {iou(prepared.mask, masks['A']):.3f}, {len(prepared.gaussians)} Gaussians)")
                row = [photo]
                for edit in edits:
                    rot, trans, scale = EDITS[edit]
                    truth = over(renders[edit], bg)
                    result = apply_edit(prepared, EditSpec(rotate_deg=rot, translate=trans, scale=scale),
                                        services, config)
                    c3 = result.composite
                    scores.append(Score(backend, edit, "3d", scene,
                                        *evaluate(c3.final, c3.silhouette, truth, masks["A"], masks[edit])))
                    M = fit_mask_similarity(masks["A"], masks[edit])
                    c2 = compose(prepared, warp_cutout(photo, prepared.mask, M), services, config)
                    scores.append(Score(backend, edit, "2d", scene,
                                        *evaluate(c2.final, c2.silhouette, truth, masks["A"], masks[edit])))
                    row += [np.concatenate([truth, c3.final, c2.final], axis=0)]
                if not examples and backend == backends[0]:
                    examples = row
    if examples:
        first = np.concatenate([examples[0], np.zeros_like(examples[0]), np.zeros_like(examples[0])], axis=0)
        save_png(out / "quality_examples.png", np.concatenate([first] + examples[1:], axis=1))
    return scores


def summarise(scores: list[Score], backends, edits) -> tuple[str, str]:
    """-> (plain-text tables for the terminal, markdown for quality.md)."""
    text, md = [], []
    header = ("edit", "method", "PSNR∪ dB", "SSIM∪", "IoU", "PSNR out dB", "3D wins (PSNR∪)")
    for backend in backends:
        rows = []
        for edit in edits:
            by = {m: [s for s in scores if s.backend == backend and s.edit == edit and s.method == m] for m in ("3d", "2d")}
            if not by["3d"]:
                continue
            wins = sum(a.psnr_union > b.psnr_union for a, b in zip(by["3d"], by["2d"]))
            for method in ("3d", "2d"):
                s = by[method]
                rows.append((edit, method, f"{statistics.median(x.psnr_union for x in s):.2f}",
                             f"{statistics.median(x.ssim_union for x in s):.3f}",
                             f"{statistics.median(x.iou for x in s):.3f}",
                             f"{statistics.median(x.psnr_outside for x in s):.1f}",
                             f"{wins}/{len(s)}" if method == "3d" else ""))
        title = f"backend: {backend} segmentation + inflate lifting + telea inpainting"
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        text.append(title)
        text.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        text += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
        text.append("")
        md.append(f"### {title}\n")
        md.append("| " + " | ".join(header) + " |")
        md.append("|" + "---|" * len(header))
        md += ["| " + " | ".join(r) + " |" for r in rows]
        md.append("")
    return "\n".join(text), "\n".join(md)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="3D-consistency quality benchmark against a 2D baseline.")
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--backends", default="grabcut,oracle")
    ap.add_argument("--objects", default=",".join(OBJECT_NAMES))
    ap.add_argument("--backgrounds", default=",".join(BACKGROUNDS))
    ap.add_argument("--edits", default=",".join(EDITS))
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in ("grabcut", "oracle"):
            ap.error(f"unknown backend {b!r}: choose grabcut and/or oracle")
    edits = [e for e in args.edits.split(",") if e]
    unknown = [e for e in edits if e not in EDITS]
    if unknown:
        ap.error(f"unknown edits {unknown}; choose from {', '.join(EDITS)}")
    objects = [o for o in args.objects.split(",") if o]
    backgrounds = [b for b in args.backgrounds.split(",") if b]
    if set(backgrounds) - set(BACKGROUNDS):
        ap.error(f"unknown backgrounds {sorted(set(backgrounds) - set(BACKGROUNDS))}; choose from {', '.join(BACKGROUNDS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scores = run(args.out, size, args.samples, backends, objects, backgrounds, edits,
                 log=lambda s: print(s, file=sys.stderr, flush=True))
    with open(args.out / "quality_scenes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(Score.__dataclass_fields__)
        writer.writerows([[getattr(s, k) for k in Score.__dataclass_fields__] for s in scores])
    text, md = summarise(scores, backends, edits)
    minutes = (time.perf_counter() - start) / 60
    intro = (f"# Quality: 3D edit vs 2D baseline\n\n{len(objects)} objects x {len(backgrounds)} backgrounds "
             f"({', '.join(backgrounds)}), {size[0]}x{size[1]} px, Cycles {args.samples} samples; medians over "
             f"scenes. PSNR∪/SSIM∪ over the union of the true A and B masks, IoU of the edited silhouette with "
             f"B's mask, PSNR outside the union (99 = identical). Run time {minutes:.1f} min.\n")
    (args.out / "quality.md").write_text(intro + "\n" + md + "\n")
    print(text)
    print(f"[quality] wrote {args.out / 'quality.md'} in {minutes:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
