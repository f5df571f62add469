"""inpaint/diffusers — a local Stable Diffusion inpainting folder through
`diffusers.AutoPipelineForInpainting.from_pretrained(DIR, local_files_only=True)`.

The image is resized so both sides are multiples of 8 (and the longer side at most
MAX_SIDE), inpainted with the prompt, and resized back; the caller keeps the
original pixels outside the region."""
from __future__ import annotations

import numpy as np

from ...core.errors import BackendUnavailableError
from .base import require_module, require_path

MAX_SIDE = 1024
DEFAULT_STEPS = 30


class DiffusersInpainter:
    name = "diffusers"
    takes_prompt = True

    def __init__(self, model_dir, device: str = "auto", seed: int = 0, steps: int = DEFAULT_STEPS) -> None:
        torch = require_module("torch", "diffusers", "install PyTorch")
        diffusers = require_module("diffusers", "diffusers", "install it with `pip install diffusers transformers`")
        from ...core.device import pick_device

        path = require_path(model_dir, "diffusers", "--diffusers-model DIR (a local Stable Diffusion inpainting folder)",
                            directory=True)
        self.device = pick_device(device)
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        try:
            pipe = diffusers.AutoPipelineForInpainting.from_pretrained(str(path), local_files_only=True, dtype=dtype)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendUnavailableError(f"cannot load a diffusers inpainting pipeline from {path}: {first[:300]}") from None
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        self.seed = seed
        self.steps = steps

    def inpaint(self, image: np.ndarray, region: np.ndarray, prompt: str | None = None) -> np.ndarray:
        import torch
        from PIL import Image

        h, w = image.shape[:2]
        scale = min(1.0, MAX_SIDE / max(h, w))
        ww, hh = max(8, int(w * scale) // 8 * 8), max(8, int(h * scale) // 8 * 8)
        src = Image.fromarray(image).resize((ww, hh), Image.Resampling.LANCZOS)
        msk = Image.fromarray(region.astype(np.uint8) * 255).resize((ww, hh), Image.Resampling.NEAREST)
        generator = torch.Generator(device=self.device.type).manual_seed(self.seed)
        out = self.pipe(prompt=prompt or "", image=src, mask_image=msk, height=hh, width=ww,
                        num_inference_steps=self.steps, generator=generator, output_type="pil").images[0]
        return np.asarray(out.convert("RGB").resize((w, h), Image.Resampling.LANCZOS), dtype=np.uint8).copy()
