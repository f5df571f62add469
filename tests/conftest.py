"""Shared fixtures. Test data lives in tests/data (see its README): every clone has it."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The test data folder (photos/, splats/); the name predates it moving into the repository."""
    assert (TEST_DATA / "photos" / "dog.jpg").is_file(), f"test data missing from {TEST_DATA}"
    return TEST_DATA


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
