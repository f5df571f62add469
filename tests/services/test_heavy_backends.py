"""The real loading code of the heavy backends, with tiny random models saved to disk,
served by a live server and called through the client."""
from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch

from uplift.core.camera import Camera
from uplift.core.errors import BackendUnavailableError, ConfigError
from uplift.services.api import HttpServices
from uplift.services.client import UpliftClient
from uplift.services.config import ServerConfig
from uplift.services.local import LocalServices
from uplift.services.server import create_app

from live_server import assert_healthy, running, scene

TINY_SAM = dict(encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1])


# -- SAM ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_sam_checkpoint(tmp_path_factory):
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(0)
    model = _build_sam(**TINY_SAM, checkpoint=None)
    path = tmp_path_factory.mktemp("sam") / "sam_tiny.pth"
    torch.save(model.state_dict(), path)
    return path


def test_sam_encoder_shape_is_read_from_the_checkpoint(tiny_sam_checkpoint):
    from uplift.services.backends.sam import encoder_shape

    state = torch.load(tiny_sam_checkpoint, weights_only=True)
    assert encoder_shape(state) == TINY_SAM


def test_sam_through_the_server_with_point_and_box_prompts(tiny_sam_checkpoint):
    image, mask = scene()
    config = ServerConfig(segment="sam", sam_checkpoint=tiny_sam_checkpoint, lift="none", inpaint="none")
    services = LocalServices(config)
    with running(config, segmenter=services.backend("segment")) as url:
        assert UpliftClient(url).health()["loaded"]["segment"] == "sam"
        sam = services.backend("segment")
        calls = []
        original = sam.predictor.set_image
        sam.predictor.set_image = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
        http = HttpServices(UpliftClient(url))
        first = http.segment(image, points=[[32, 24]], labels=[1])
        second = http.segment(image, points=[[30, 20], [2, 2]], labels=[1, 0], box=[10, 8, 54, 40])
        assert first.mask.shape == second.mask.shape == (48, 64)
        assert 0.0 <= first.score <= 1.0
        assert len(calls) == 1          # the embedding of the same image is reused
        http.segment(image[::-1].copy(), points=[[32, 24]], labels=[1])
        assert len(calls) == 2          # a different image is embedded again
        assert_healthy(url)


def test_sam_wrong_model_type_says_so(tiny_sam_checkpoint):
    config = ServerConfig(segment="sam", sam_checkpoint=tiny_sam_checkpoint, sam_model_type="vit_b")
    with pytest.raises(BackendUnavailableError, match="cannot load SAM checkpoint .* as vit_b.*--sam-model-type auto"):
        LocalServices(config).backend("segment")


def test_sam_missing_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="--sam-checkpoint"):
        ServerConfig(segment="sam")
    with pytest.raises(BackendUnavailableError, match="is not a file"):
        LocalServices(ServerConfig(segment="sam", sam_checkpoint=tmp_path / "nope.pth")).backend("segment")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(BackendUnavailableError, match="cannot load SAM checkpoint"):
        LocalServices(ServerConfig(segment="sam", sam_checkpoint=garbage)).backend("segment")


def test_server_refuses_to_start_with_a_bad_checkpoint(tmp_path):
    with pytest.raises(BackendUnavailableError):
        create_app(ServerConfig(segment="sam", sam_checkpoint=tmp_path / "missing.pth"))


# -- LaMa ---------------------------------------------------------------------------------------

class TinyLama(torch.nn.Module):
    """Same call signature as big-lama's TorchScript export: (image [1,3,H,W], mask [1,1,H,W]) -> [1,3,H,W]."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if image.shape[2] % 8 != 0 or image.shape[3] % 8 != 0:
            raise RuntimeError("LaMa needs sides that are multiples of 8")
        fill = torch.sigmoid(self.conv(torch.cat([image * (1 - mask), mask], 1)))
        return image * (1 - mask) + fill * mask


@pytest.fixture(scope="module")
def tiny_lama(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lama") / "big-lama.pt"
    torch.jit.script(TinyLama()).save(str(path))
    return path


def test_lama_through_the_server(tiny_lama):
    image, mask = scene(45, 61)  # not multiples of 8: the backend pads and crops back
    config = ServerConfig(inpaint="lama", lama_model=tiny_lama, segment="none", lift="none")
    with running(config) as url:
        assert UpliftClient(url).health()["loaded"]["inpaint"] == "lama"
        out = HttpServices(UpliftClient(url)).inpaint(image, mask, dilate=1)
        from uplift.core.compositing import dilate

        region = dilate(mask, 1)
        assert out.shape == image.shape
        assert (out[~region] == image[~region]).all() and (out[region] != image[region]).any()
        # The same model run by hand on the edge-padded 48x64 input, cropped back.
        model = torch.jit.load(str(tiny_lama))
        img = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        msk = torch.from_numpy(region)[None, None].float()
        pad = lambda t: torch.nn.functional.pad(t, (0, 3, 0, 3), mode="replicate")  # noqa: E731
        with torch.no_grad():
            want = (model(pad(img), pad(msk))[0, :, :45, :61].permute(1, 2, 0) * 255).round().numpy()
        assert np.abs(out.astype(float) - want).max() <= 1
        assert_healthy(url)


def test_lama_rejects_a_non_torchscript_file(tmp_path):
    bad = tmp_path / "lama.pt"
    torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(BackendUnavailableError, match="not a TorchScript LaMa model"):
        LocalServices(ServerConfig(inpaint="lama", lama_model=bad)).backend("inpaint")


# -- diffusers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_diffusers(tmp_path_factory):
    """A tiny StableDiffusionInpaintPipeline from small configs; the CLIP tokenizer's BPE files
    are written here (letters only, no merges) so nothing is downloaded."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("sd")
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({c: i + 2 for i, c in enumerate(letters)})
    vocab.update({c + "</w>": i + 2 + len(letters) for i, c in enumerate(letters)})
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=16,
                              pad_token="<|endoftext|>")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=9,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=4, sample_size=32)
    text = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=16,
                                        intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                                        vocab_size=len(vocab), max_position_embeddings=16, projection_dim=16))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.save_pretrained(root / "model")
    return root / "model"


@pytest.mark.slow
def test_diffusers_through_the_server(tiny_diffusers):
    image, mask = scene(40, 52)
    config = ServerConfig(inpaint="diffusers", diffusers_model=tiny_diffusers, diffusers_steps=2,
                          segment="none", lift="none")
    with running(config) as url:
        assert UpliftClient(url).health()["loaded"]["inpaint"] == "diffusers"
        http = HttpServices(UpliftClient(url))
        from uplift.services.errors import BadRequestError

        with pytest.raises(BadRequestError, match="needs a prompt"):
            http.inpaint(image, mask)
        out = http.inpaint(image, mask, prompt="empty street")
        assert out.shape == image.shape
        assert (out[~mask] == image[~mask]).all() and (out[mask] != image[mask]).any()
        assert_healthy(url)


def test_diffusers_folder_without_a_pipeline(tmp_path):
    with pytest.raises(BackendUnavailableError, match="cannot load a diffusers inpainting pipeline"):
        LocalServices(ServerConfig(inpaint="diffusers", diffusers_model=tmp_path)).backend("inpaint")


# -- TRELLIS (fake module honouring the documented API) ---------------------------------------------

def canonical_object(n: int = 4000, seed: int = 0):
    """An asymmetric 'L' of Gaussians in TRELLIS's canonical frame (Z up, inside the unit cube)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform([-0.4, -0.1, -0.3], [0.4, 0.1, -0.1], (n // 2, 3))      # a long bar along X
    b = rng.uniform([0.2, -0.1, -0.1], [0.4, 0.1, 0.4], (n - n // 2, 3))     # a post at +X, going up
    return np.concatenate([a, b]).astype(np.float32)


class FakeTrellisGaussian:
    """The attributes TRELLIS's Gaussian documents (activated values)."""

    def __init__(self, xyz):
        n = xyz.shape[0]
        self.get_xyz = torch.from_numpy(xyz)
        self.get_features = torch.full((n, 1, 3), 0.8)
        self.get_scaling = torch.full((n, 3), 0.02)
        rot = torch.zeros(n, 4)
        rot[:, 0] = 1
        self.get_rotation = rot
        self.get_opacity = torch.full((n, 1), 0.95)


def install_fake_trellis(monkeypatch, runs: list):
    class TrellisImageTo3DPipeline:
        @staticmethod
        def from_pretrained(path):
            from pathlib import Path

            if not (Path(path) / "pipeline.json").is_file():
                raise FileNotFoundError(f"{path}/pipeline.json")
            return TrellisImageTo3DPipeline()

        def cuda(self):
            return self

        def run(self, image, seed=42, formats=("mesh", "gaussian", "radiance_field"), **kwargs):
            runs.append((image.mode, image.size, seed, tuple(formats)))
            return {"gaussian": [FakeTrellisGaussian(canonical_object())]}

    trellis = types.ModuleType("trellis")
    pipelines = types.ModuleType("trellis.pipelines")
    pipelines.TrellisImageTo3DPipeline = TrellisImageTo3DPipeline
    trellis.pipelines = pipelines
    monkeypatch.setitem(sys.modules, "trellis", trellis)
    monkeypatch.setitem(sys.modules, "trellis.pipelines", pipelines)


def test_trellis_missing_gives_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "trellis", None)
    monkeypatch.setitem(sys.modules, "trellis.pipelines", None)
    with pytest.raises(BackendUnavailableError, match="clone https://github.com/microsoft/TRELLIS"):
        LocalServices(ServerConfig(lift="trellis", trellis_model=tmp_path)).backend("lift")


@pytest.mark.slow
def test_trellis_through_the_server_is_placed_to_match_the_mask(monkeypatch, tmp_path):
    """Render the canonical object at a known pose to make the mask; the service must find a
    placement whose silhouette matches it."""
    from uplift.core.gaussians import Gaussians
    from uplift.core.transforms import Similarity, apply_similarity, axis_angle_matrix
    from uplift.services.backends.placement import iou, silhouette
    from uplift.services.backends.trellis import gaussians_from_trellis

    runs = []
    install_fake_trellis(monkeypatch, runs)
    (tmp_path / "pipeline.json").write_text("{}")
    cam = Camera.from_fov(96, 72)
    truth = Similarity(axis_angle_matrix(np.array([0, 0, 1.0]), np.radians(100)), np.array([0.1, 1.3, 0.05]), 0.9)
    g0 = gaussians_from_trellis(FakeTrellisGaussian(canonical_object()))
    mask = silhouette(apply_similarity(g0, truth), cam)
    image = np.repeat(np.where(mask[..., None], 200, 40), 3, axis=2).astype(np.uint8)
    config = ServerConfig(lift="trellis", trellis_model=tmp_path, segment="none", inpaint="none", seed=7)
    with running(config) as url:
        g = HttpServices(UpliftClient(url)).lift(image, mask, cam)
        assert isinstance(g, Gaussians) and len(g) == 4000
        assert runs == [("RGBA", runs[0][1], 7, ("gaussian",))]
        assert iou(silhouette(g, cam), mask) >= 0.85
        assert_healthy(url)


def test_trellis_bad_output_is_a_backend_failure(monkeypatch, tmp_path):
    runs = []
    install_fake_trellis(monkeypatch, runs)
    pipelines = sys.modules["trellis.pipelines"]
    original_run = pipelines.TrellisImageTo3DPipeline.run

    def broken_run(self, image, **kwargs):
        out = original_run(self, image, **kwargs)
        out["gaussian"][0].get_xyz[0, 0] = float("nan")
        return out

    monkeypatch.setattr(pipelines.TrellisImageTo3DPipeline, "run", broken_run)
    (tmp_path / "pipeline.json").write_text("{}")
    image, mask = scene()
    with running(ServerConfig(lift="trellis", trellis_model=tmp_path)) as url:
        from uplift.services.errors import ServerFailedError

        with pytest.raises(ServerFailedError, match="NaN"):
            HttpServices(UpliftClient(url)).lift(image, mask, Camera.from_fov(64, 48))
        assert_healthy(url)
