"""Shared fixtures. Real test data is read from ../shared/data (never copied here)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# Core tests that make sense on both devices take the `device` fixture; CUDA is
# skipped cleanly on machines without it.
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not _cuda_available(), reason="no CUDA device")])]


@pytest.fixture(params=DEVICES)
def device(request):
    import torch

    return torch.device(request.param)
