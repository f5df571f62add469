"""The render backend registry (`core.render_backends`): the viewport renderer is whatever the
Blender layer provided; without it `render(..., backend='viewport')` is a clear RenderBackendError."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from uplift.core import render_backends
from uplift.core.camera import Camera
from uplift.core.errors import RenderBackendError
from uplift.core.gaussians import Gaussians
from uplift.core.render import render


@pytest.fixture
def scene():
    g = Gaussians.from_colors(torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.2, 0.4, 0.6]]),
                              torch.full((1, 3), 0.3), torch.tensor([0.9]))
    return g, Camera.from_fov(8, 6, 60.0)


@pytest.fixture
def nothing_provided(monkeypatch):
    monkeypatch.setattr(render_backends, "_provided", {})


def test_viewport_without_a_provider_is_a_one_line_render_backend_error(scene, nothing_provided):
    with pytest.raises(RenderBackendError) as err:
        render(*scene, backend="viewport")
    assert "needs Blender's bpy module" in str(err.value) and "\n" not in str(err.value)


def test_a_provided_renderer_draws_and_withdrawing_it_stops_that(scene, nothing_provided):
    g, cam = scene
    calls = []

    def draw(gaussians, camera, *, depth, features):  # as blender.splat_draw.render_offscreen
        calls.append((len(gaussians), camera.width, depth, features))
        colour = np.full((camera.height, camera.width, 3), 0.25, np.float32)
        alpha = np.full((camera.height, camera.width), 0.5, np.float32)
        return colour, alpha, alpha * 3.0

    render_backends.provide("viewport", draw)
    out = render(g, cam, backend="viewport")
    assert calls == [(1, 8, True, None)]
    torch.testing.assert_close(out.rgba[..., :3], torch.full((6, 8, 3), 0.5))  # straight alpha: 0.25 / 0.5
    torch.testing.assert_close(out.depth, torch.full((6, 8), 3.0))
    render_backends.withdraw("viewport")
    with pytest.raises(RenderBackendError):
        render(g, cam, backend="viewport")
