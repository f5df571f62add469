"""lift/trellis — an adapter for TRELLIS's image-to-3D pipeline.

`TrellisImageTo3DPipeline.from_pretrained(DIR).run(rgba_crop, seed=…, formats=['gaussian'])`
returns `outputs['gaussian'][0]`, a Gaussian in TRELLIS's canonical frame (Z up, inside the
unit cube) whose activated parameters are `get_xyz` [N, 3], `get_features` [N, K, 3] SH,
`get_scaling` [N, 3] standard deviations, `get_rotation` [N, 4] wxyz, `get_opacity` [N, 1].
`placement.place` then fits scale, rotation and translation so the object's silhouette,
rendered through the photo's camera, matches the mask.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import BackendFailedError
from .base import require_module, require_path

INSTALL_HINT = ("TRELLIS is not pip-installable: clone https://github.com/microsoft/TRELLIS, run its setup.sh "
                "in this environment and put the repository on PYTHONPATH (weights from --trellis-model DIR)")
CROP_MARGIN = 0.1   # fraction of the mask's bbox added on each side of the crop TRELLIS sees


class TrellisLifter:
    name = "trellis"

    def __init__(self, model_dir, device: str = "auto", seed: int = 0) -> None:
        pipelines = require_module("trellis.pipelines", "trellis", INSTALL_HINT)
        from ...core.device import pick_device
        from ...core.errors import BackendUnavailableError

        path = require_path(model_dir, "trellis", "--trellis-model DIR (a local TRELLIS-image model folder)",
                            directory=True)
        self.device = pick_device(device)
        try:
            pipeline = pipelines.TrellisImageTo3DPipeline.from_pretrained(str(path))
        except Exception as exc:  # third-party loader: any failure means "cannot load", reported with its text
            raise BackendUnavailableError(f"cannot load TRELLIS from {path}: {exc}") from None
        if self.device.type == "cuda":
            pipeline.cuda()
        self.pipeline = pipeline
        self.seed = seed

    def lift(self, image: np.ndarray, mask: np.ndarray, camera):
        from PIL import Image

        from .placement import place

        outputs = self.pipeline.run(Image.fromarray(rgba_crop(image, mask)), seed=self.seed, formats=["gaussian"])
        try:
            gaussian = outputs["gaussian"][0]
        except (KeyError, IndexError, TypeError):
            raise BackendFailedError("TRELLIS returned no Gaussian output") from None
        return place(gaussians_from_trellis(gaussian), mask, camera, device=self.device).gaussians.to("cpu")


def rgba_crop(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] + bool [H, W] -> uint8 [h, w, 4]: the mask's bbox (plus margin), alpha = mask."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    my, mx = int((y1 - y0) * CROP_MARGIN), int((x1 - x0) * CROP_MARGIN)
    y0, y1 = max(0, y0 - my), min(mask.shape[0], y1 + my)
    x0, x1 = max(0, x0 - mx), min(mask.shape[1], x1 + mx)
    alpha = mask[y0:y1, x0:x1, None].astype(np.uint8) * 255
    return np.concatenate([image[y0:y1, x0:x1], alpha], axis=-1)


def gaussians_from_trellis(gaussian):
    """TRELLIS Gaussian (documented activated getters) -> Gaussians on the CPU, canonical frame."""
    import torch

    from ...core.gaussians import Gaussians

    def get(name):
        try:
            value = getattr(gaussian, name)
        except AttributeError:
            raise BackendFailedError(f"TRELLIS's Gaussian output has no {name}") from None
        return torch.as_tensor(value).detach().float().cpu()

    means, features = get("get_xyz"), get("get_features")
    scales, rotation, opacity = get("get_scaling"), get("get_rotation"), get("get_opacity").reshape(-1)
    n = means.shape[0]
    if n == 0:
        raise BackendFailedError("TRELLIS produced an empty object")
    if features.ndim == 2:
        features = features[:, None, :]
    try:
        g = Gaussians(means=means, quats=rotation, log_scales=scales.clamp_min(1e-8).log(),
                      opacity_logits=torch.logit(opacity.clamp(1e-6, 1 - 1e-6)), sh=features)
    except ValueError as exc:
        raise BackendFailedError(f"TRELLIS's Gaussian output has inconsistent shapes: {exc}") from None
    finite = torch.isfinite(torch.cat([g.means, g.quats, g.log_scales, g.opacity_logits[:, None],
                                       g.sh.reshape(n, -1)], 1)).all()
    if not finite:
        raise BackendFailedError("TRELLIS's Gaussian output contains NaN or infinite values")
    return g
