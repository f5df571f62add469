"""inpaint/lama — a LaMa TorchScript export (the `big-lama.pt` that common tools ship).

Call signature of the export: model(image [1, 3, H, W] float in [0, 1],
mask [1, 1, H, W] float in {0, 1}) -> [1, 3, H, W] float in [0, 1], with H and W
multiples of 8 (we pad by edge replication and crop back)."""
from __future__ import annotations

import numpy as np

from ...core.errors import BackendFailedError, BackendUnavailableError
from .base import require_module, require_path

MODULO = 8


class LamaInpainter:
    name = "lama"
    takes_prompt = False

    def __init__(self, model_path, device: str = "auto") -> None:
        torch = require_module("torch", "lama", "install PyTorch")
        from ...core.device import pick_device

        path = require_path(model_path, "lama", "--lama-model PATH (big-lama TorchScript .pt)")
        self.device = pick_device(device)
        try:
            self.model = torch.jit.load(str(path), map_location=self.device).eval()
        except (RuntimeError, ValueError, OSError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendUnavailableError(f"{path} is not a TorchScript LaMa model: {first[:300]}") from None

    def inpaint(self, image: np.ndarray, region: np.ndarray, prompt: str | None = None) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        h, w = image.shape[:2]
        img = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float() / 255.0  # [1, 3, H, W]
        msk = torch.from_numpy(region).to(self.device)[None, None].float()                    # [1, 1, H, W]
        pad_h, pad_w = (-h) % MODULO, (-w) % MODULO
        if pad_h or pad_w:
            img = F.pad(img, (0, pad_w, 0, pad_h), mode="replicate")
            msk = F.pad(msk, (0, pad_w, 0, pad_h), mode="replicate")
        with torch.inference_mode():
            out = self.model(img, msk)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(img.shape):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise BackendFailedError(f"the LaMa model returned {got}, expected {tuple(img.shape)}")
        out = out[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0)
        return (out * 255.0).round().to(torch.uint8).cpu().numpy()
