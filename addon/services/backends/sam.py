"""segment/sam — Segment Anything (`segment_anything`) with point and box prompts.

The model is built by segment_anything's own builders from a user-given checkpoint.
`model_type='auto'` reads the encoder's width, depth, heads and global-attention
blocks from the checkpoint itself, so a vit_b file is never forced into a vit_h
model (a classic "size mismatch" crash). The image embedding — the expensive part —
is cached per image (keyed by a hash of its pixels), so re-prompting is fast.
"""
from __future__ import annotations

import hashlib
import re
import threading

import numpy as np

from ...core.errors import BackendFailedError, BackendUnavailableError
from .base import SegmentResult, require_module, require_path

INSTALL_HINT = "install it with `pip install segment-anything` (weights come from --sam-checkpoint)"
PATCH_GRID = 64    # SAM's 1024-px input over 16-px patches
WINDOW = 14        # SAM's windowed-attention size


def encoder_shape(state_dict: dict) -> dict:
    """Read `_build_sam`'s encoder arguments from a SAM state dict."""
    try:
        embed_dim = int(state_dict["image_encoder.patch_embed.proj.weight"].shape[0])
    except KeyError:
        raise BackendUnavailableError("the SAM checkpoint has no image_encoder.patch_embed weights; "
                                      "is it a segment_anything checkpoint?") from None
    blocks = sorted({int(m.group(1)) for k in state_dict
                     if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))})
    global_idx, head_dim = [], None
    for i in blocks:
        rel = state_dict.get(f"image_encoder.blocks.{i}.attn.rel_pos_h")
        if rel is None:
            raise BackendUnavailableError("the SAM checkpoint lacks relative position tables; unsupported variant")
        head_dim = int(rel.shape[1])
        if rel.shape[0] == 2 * PATCH_GRID - 1:
            global_idx.append(i)
    if not blocks or head_dim is None:
        raise BackendUnavailableError("the SAM checkpoint has no image encoder blocks")
    return {"encoder_embed_dim": embed_dim, "encoder_depth": len(blocks),
            "encoder_num_heads": embed_dim // head_dim, "encoder_global_attn_indexes": global_idx}


class SamSegmenter:
    name = "sam"

    def __init__(self, checkpoint, model_type: str = "auto", device: str = "auto") -> None:
        torch = require_module("torch", "sam", INSTALL_HINT)
        sa = require_module("segment_anything", "sam", INSTALL_HINT)
        build_module = require_module("segment_anything.build_sam", "sam", INSTALL_HINT)

        from ...core.device import pick_device

        path = require_path(checkpoint, "sam", "--sam-checkpoint PATH (a segment_anything .pth file)")
        self.device = pick_device(device)
        try:
            if model_type == "auto":
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                shape = encoder_shape(state)
                known = {"vit_h": (1280, 32), "vit_l": (1024, 24), "vit_b": (768, 12)}
                match = [t for t, dims in known.items() if dims == (shape["encoder_embed_dim"], shape["encoder_depth"])]
                self.model_type = match[0] if match else "custom {encoder_embed_dim}x{encoder_depth}".format(**shape)
                model = build_module._build_sam(**shape, checkpoint=None)
                model.load_state_dict(state)
                del state
            else:
                self.model_type = model_type
                model = sa.sam_model_registry[model_type](checkpoint=str(path))
        except BackendUnavailableError:
            raise
        except (RuntimeError, OSError, EOFError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendUnavailableError(
                f"cannot load SAM checkpoint {path} as {model_type}: {first[:300]}"
                + ("" if model_type == "auto" else " (try --sam-model-type auto)")) from None
        self.predictor = sa.SamPredictor(model.to(self.device).eval())
        self._image_key: str | None = None
        self._lock = threading.Lock()  # the predictor holds one image's embedding at a time

    def segment(self, image: np.ndarray,          # uint8 [H, W, 3]
                points: np.ndarray,                # float [P, 2]
                labels: np.ndarray,                # int [P]
                box: np.ndarray | None) -> SegmentResult:
        import torch

        key = hashlib.sha1(np.ascontiguousarray(image).data).hexdigest() + str(image.shape)
        with self._lock, torch.inference_mode():
            if key != self._image_key:
                self._image_key = None
                self.predictor.set_image(image, image_format="RGB")
                self._image_key = key
            masks, scores, _ = self.predictor.predict(
                point_coords=np.asarray(points, np.float32).reshape(-1, 2) if len(points) else None,
                point_labels=np.asarray(labels, np.int64).reshape(-1) if len(points) else None,
                box=None if box is None else np.asarray(box, np.float32),
                multimask_output=True,
            )
        if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
            raise BackendFailedError(f"SAM returned masks of shape {masks.shape} for a {image.shape[1]}x{image.shape[0]} image")
        best = int(np.argmax(scores))
        return SegmentResult(masks[best].astype(bool), float(np.clip(scores[best], 0.0, 1.0)))
