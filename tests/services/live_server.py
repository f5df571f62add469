"""Helpers for the services tests: live Uplift servers on loopback (ephemeral ports) and
small test inputs. (Not named conftest: tests/conftest.py owns that module name.)"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

from uplift.services.client import UpliftClient
from uplift.services.config import ServerConfig
from uplift.services.local import LocalServices
from uplift.services.server import create_app, start_background


@contextlib.contextmanager
def running(config: ServerConfig = ServerConfig(), **backends):
    """A real uvicorn server on 127.0.0.1:<ephemeral> in a thread; yields its URL."""
    services = LocalServices(config, **backends)
    server = start_background(create_app(config, services))
    try:
        yield server.url
    finally:
        server.stop()


def assert_healthy(url: str, token: str | None = None) -> None:
    info = UpliftClient(url, token=token, retries=0).health()
    assert info["service"] == "uplift" and info["queue"]["running"] == 0


def scene(h: int = 48, w: int = 64, seed: int = 0):
    """A textured image with a bright ellipse and the ellipse's mask: uint8 [h, w, 3], bool [h, w]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((xx - w / 2) / (w / 4)) ** 2 + ((yy - h / 2) / (h / 4)) ** 2 <= 1
    image = (rng.random((h, w, 3)) * 80 + 20).astype(np.uint8)
    image[mask] = (np.array([220, 180, 60]) + rng.integers(-20, 20, (mask.sum(), 3))).clip(0, 255).astype(np.uint8)
    return image, mask


@pytest.fixture(scope="module")
def default_server():
    """grabcut / inflate / telea with a 2-megapixel limit (so 'huge' is cheap to send).
    Test modules import this fixture by name."""
    with running(ServerConfig(max_pixels=2_000_000)) as url:
        yield url
