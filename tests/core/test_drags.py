"""The one drag rule (`core.drags`): parsing, displacement semantics, reach, pinning, limits."""
import numpy as np
import pytest

from uplift.core.drags import DRAG_REACH, grab, object_size, parse_drag
from uplift.core.errors import ControlError


def test_parse_reads_both_ends():
    assert parse_drag("-1.5,0,2e-1:3,4,5") == ((-1.5, 0.0, 0.2), (3.0, 4.0, 5.0))


@pytest.mark.parametrize("text", ["1,2:3,4,5", "a,b,c:1,2,3", "1,2,3", "1,2,3:4,5,nan", "1,2,3:4,5,6:7,8,9",
                                  "1,2,3:inf,0,0"])
def test_parse_refuses_malformed_drags(text):
    with pytest.raises(ControlError, match="drag"):
        parse_drag(text)


@pytest.fixture
def grid():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, size=(200, 3)) * [2.0, 1.0, 0.5]  # size 4 (x extent ~4)


def test_targets_are_the_grabbed_control_plus_the_displacement(grid):
    source = grid[17] + [0.05, -0.02, 0.01]  # off the control: it must not snap to the source
    move = np.array([0.3, -0.2, 0.1])
    idx, targets = grab(grid, source[None], move[None])
    assert idx.tolist() == [17]
    assert np.allclose(targets[0], grid[17] + move, atol=1e-12)


def test_a_zero_displacement_holds_the_control_where_it_is(grid):
    idx, targets = grab(grid, (grid[3] + 0.01)[None], np.zeros((1, 3)))
    assert np.array_equal(targets, grid[idx])


def test_pinning_matches_a_naive_loop(grid):
    sources = grid[[5, 60]] + 0.01
    moves = np.array([[0, 0, 0.4], [0.1, 0, 0]])
    pin_radius = 0.3
    idx, targets = grab(grid, sources, moves, pin_radius)
    size = object_size(grid)
    expected = {}
    for i, control in enumerate(grid):
        if all(np.linalg.norm(control - s) > pin_radius * size for s in sources):
            expected[i] = control
    expected[5], expected[60] = grid[5] + moves[0], grid[60] + moves[1]
    assert idx.tolist() == sorted(expected)
    assert np.allclose(targets, [expected[i] for i in idx])


def test_reach_limit_duplicates_and_absurd_moves_are_refused(grid):
    size = object_size(grid)
    far = grid[0] + [0, 0, DRAG_REACH * size + 2.0]
    with pytest.raises(ControlError, match=r"drag 1 \(.*\) starts .* object sizes"):
        grab(grid, far[None], np.zeros((1, 3)))
    with pytest.raises(ControlError, match="grab the same control point"):
        grab(grid, grid[[4, 4]], np.zeros((2, 3)))
    with pytest.raises(ControlError, match="more than 100 object sizes"):
        grab(grid, grid[[4]], np.array([[101 * size, 0, 0]]))
    with pytest.raises(ControlError, match="at least one drag"):
        grab(grid, np.zeros((0, 3)), np.zeros((0, 3)))
