"""core.gaussians.concat keeps every Gaussian in order."""
import numpy as np
import pytest
import torch

from uplift.core.gaussians import Gaussians, concat


def make(n, seed):
    g = torch.Generator().manual_seed(seed)
    return Gaussians.from_colors(torch.rand(n, 3, generator=g), torch.rand(n, 3, generator=g),
                                 torch.rand(n, 3, generator=g) + 0.1, torch.rand(n, generator=g) * 0.9 + 0.05)


def test_concat_is_ordered_and_complete():
    a, b = make(3, 0), make(4, 1)
    a.extra["label"] = np.arange(3)
    b.extra["label"] = np.arange(4) + 10
    c = concat([a, b])
    assert len(c) == 7
    assert torch.equal(c.means[:3], a.means) and torch.equal(c.means[3:], b.means)
    assert torch.equal(c.sh[3:], b.sh)
    np.testing.assert_array_equal(c.extra["label"], [0, 1, 2, 10, 11, 12, 13])


def test_concat_refuses_mixed_degrees_and_nothing():
    a = make(2, 0)
    b = make(2, 1)
    b = b.replace(sh=torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="degrees"):
        concat([a, b])
    with pytest.raises(ValueError):
        concat([])
