"""CUDA paths of the services; skipped on machines without CUDA."""
from __future__ import annotations

import pytest
import torch

from uplift.services.api import HttpServices
from uplift.services.client import UpliftClient
from uplift.services.config import ServerConfig
from uplift.services.errors import ServerFailedError

from live_server import assert_healthy, running, scene

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_health_reports_free_cuda_memory():
    with running(ServerConfig(device="cuda")) as url:
        info = UpliftClient(url).health()
        assert info["device"].startswith("cuda")
        assert 0 < info["cuda"]["free_bytes"] <= info["cuda"]["total_bytes"]


def test_a_real_cuda_out_of_memory_is_contained():
    class Greedy:
        name = "greedy"

        def segment(self, image, points, labels, box):
            torch.empty(1 << 46, dtype=torch.uint8, device="cuda")  # 64 TiB: no GPU has it

    image, mask = scene()
    with running(ServerConfig(device="cuda"), segmenter=Greedy()) as url:
        with pytest.raises(ServerFailedError, match="out of GPU memory"):
            HttpServices(UpliftClient(url)).segment(image, box=[1, 1, 30, 30])
        assert_healthy(url)
        assert HttpServices(UpliftClient(url)).inpaint(image, mask).shape == image.shape
