"""ARAP: the fast solver against a naive per-point reference, and its geometric properties."""
import numpy as np
import pytest
import torch

from uplift.core import quaternion as Q
from uplift.core.arap import ArapSolver, horn_rotations, quats_to_matrices_cm, svd_rotations
from uplift.core.graph import build_control_graph


# -- naive reference ---------------------------------------------------------------
def reference_iteration(rest, current, rotations, graph, fixed):
    """One global + local ARAP step, point by point, in float64 numpy.

    fixed: {index: position} for every point held in place.
    """
    m = len(rest)
    nbr = graph.neighbours.cpu().numpy()
    w = graph.weights.double().cpu().numpy()
    mask = graph.mask.cpu().numpy()
    A = np.zeros((m, m))
    b = np.zeros((m, 3))
    for i in range(m):
        if i in fixed:
            A[i, i] = 1.0
            b[i] = fixed[i]
            continue
        for j, wij, real in zip(nbr[i], w[i], mask[i]):
            if not real:
                continue
            A[i, i] += wij
            A[i, j] -= wij
            b[i] += 0.5 * wij * (rotations[i] + rotations[j]) @ (rest[i] - rest[j])
    points = np.linalg.solve(A, b)
    new_rotations = np.empty_like(rotations)
    for i in range(m):
        S = np.zeros((3, 3))
        for j, wij, real in zip(nbr[i], w[i], mask[i]):
            if real:
                S += wij * np.outer(rest[i] - rest[j], points[i] - points[j])
        U, _, Vt = np.linalg.svd(S)
        R = Vt.T @ U.T
        if np.linalg.det(R) < 0:
            Vt[2] *= -1
            R = Vt.T @ U.T
        new_rotations[i] = R
    return points, new_rotations


def reference_energy(rest, points, rotations, graph):
    total = 0.0
    for i in range(len(rest)):
        for j, wij, real in zip(graph.neighbours[i].tolist(), graph.weights[i].tolist(), graph.mask[i].tolist()):
            if real:
                r = (points[i] - points[j]) - rotations[i] @ (rest[i] - rest[j])
                total += wij * float(r @ r)
    return total


# -- fixtures ----------------------------------------------------------------------
def bar(m=120, seed=0):
    """A 4 x 1 x 1 box of random points: long enough to bend."""
    pts = torch.rand(m, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return pts * torch.tensor([4.0, 1.0, 1.0], dtype=torch.float64)


def bend_setup(rest):
    """Pin the left end, lift the right end."""
    left = torch.nonzero(rest[:, 0] < 0.4).squeeze(1)
    right = torch.nonzero(rest[:, 0] > 3.6).squeeze(1)
    handles = torch.cat((left, right))
    targets = rest[handles].clone()
    targets[len(left):, 2] += 1.5
    return handles, targets


def rigid(seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = Q.normalize(torch.randn(4, generator=gen, dtype=torch.float64))
    return Q.to_matrix(q), torch.randn(3, generator=gen, dtype=torch.float64)


# -- fast vs reference ---------------------------------------------------------------
def test_each_iteration_matches_the_per_point_reference(device):
    rest = bar()
    graph = build_control_graph(rest)
    handles, targets = bend_setup(rest)
    solver = ArapSolver(rest, graph, device=device, dtype=torch.float64, horn_squarings=10)
    solver.set_handles(handles)
    ref_points, ref_rot = rest.numpy().copy(), np.repeat(np.eye(3)[None], len(rest), 0)
    fixed = {int(h): t.numpy() for h, t in zip(handles, targets)}
    for _ in range(4):
        got = solver.solve(targets, iterations=1)
        ref_points, ref_rot = reference_iteration(rest.numpy(), ref_points, ref_rot, graph, fixed)
        # float64 throughout and 2**10 power steps: agreement to rounding
        assert np.allclose(got.points.cpu().numpy(), ref_points, atol=1e-9)
        assert np.allclose(got.rotations.cpu().numpy(), ref_rot, atol=1e-7)
    assert got.energy == pytest.approx(reference_energy(rest.numpy(), ref_points, ref_rot, graph), rel=1e-9)


def test_float32_default_solver_converges_to_the_reference_solution():
    """The hot-path solver (float32, 2**4 warm-started power steps) reaches the same
    minimum as the float64 solver that matches the reference step by step above."""
    rest = bar()
    graph = build_control_graph(rest)
    handles, targets = bend_setup(rest)
    exact = ArapSolver(rest, graph, dtype=torch.float64, horn_squarings=10)
    exact.set_handles(handles)
    want = exact.solve(targets, mode="batch", tolerance=1e-8)
    fast = ArapSolver(rest.float(), graph)
    fast.set_handles(handles)
    got = fast.solve(targets.float(), mode="batch", tolerance=1e-6)
    # float32 (eps 6e-8) on a Laplacian with condition number ~1e3, and a flat energy
    # valley near the minimum: 1e-3 of the 4-unit bar
    assert (got.points.double() - want.points).abs().max() < 4e-3
    assert got.energy == pytest.approx(want.energy, rel=1e-3)


# -- local step --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["general", "reflection", "planar", "rank_one_free"])
def test_horn_local_step_equals_svd_with_reflection_fix(kind, device):
    gen = torch.Generator().manual_seed(1)
    S = torch.randn(64, 3, 3, generator=gen, dtype=torch.float64)
    if kind == "reflection":
        S = S * torch.where(torch.linalg.det(S) > 0, -1.0, 1.0).double()[:, None, None]  # all det < 0
        assert (torch.linalg.det(S) < 0).all()
    elif kind == "planar":
        S[:, 2, :] = 0  # rest neighbourhoods in a plane: rank 2
    S_flat = S.reshape(64, 9).T.contiguous().to(device)
    warm = torch.zeros(4, 64, dtype=torch.float64, device=device)
    warm[0] = 1
    q = horn_rotations(S_flat, warm, squarings=10, robust=True)
    R_horn = quats_to_matrices_cm(q).T.reshape(64, 3, 3).cpu()
    R_svd = svd_rotations(S_flat).T.reshape(64, 3, 3).cpu()
    assert torch.allclose(torch.linalg.det(R_horn), torch.ones(64, dtype=torch.float64), atol=1e-9)
    trace = lambda R: torch.einsum("nab,nba->n", R, S)  # the maximised objective tr(R S)
    assert torch.allclose(trace(R_horn), trace(R_svd), rtol=1e-9, atol=1e-9)
    if kind != "rank_one_free":
        assert torch.allclose(R_horn, R_svd, atol=1e-6)


def test_horn_step_never_lowers_the_objective_from_a_warm_start():
    gen = torch.Generator().manual_seed(2)
    S = torch.randn(200, 9, generator=gen).T.contiguous()
    warm = Q.normalize(torch.randn(200, 4, generator=gen)).T.contiguous()
    before = (quats_to_matrices_cm(warm).T.reshape(-1, 3, 3) * S.T.reshape(-1, 3, 3).transpose(1, 2)).sum((1, 2))
    after_q = horn_rotations(S, warm, squarings=1)  # a weak step: still an improvement
    after = (quats_to_matrices_cm(after_q).T.reshape(-1, 3, 3) * S.T.reshape(-1, 3, 3).transpose(1, 2)).sum((1, 2))
    assert (after >= before - 1e-5).all()


def test_svd_local_step_solver_agrees_with_horn():
    rest = bar()
    graph = build_control_graph(rest)
    handles, targets = bend_setup(rest)
    results = []
    for step in ("horn", "svd"):
        s = ArapSolver(rest, graph, dtype=torch.float64, local_step=step, horn_squarings=10)
        s.set_handles(handles)
        results.append(s.solve(targets, iterations=5))
    assert torch.allclose(results[0].points, results[1].points, atol=1e-9)


# -- properties ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["interactive", "batch"])
def test_no_handle_moved_nothing_moves(mode, device):
    rest = bar().float()
    solver = ArapSolver(rest, build_control_graph(rest), device=device)
    handles = torch.tensor([0, 5, 17])
    solver.set_handles(handles)
    r = solver.solve(rest[handles], mode=mode)
    # float32 rounding of the global solve only
    assert torch.allclose(r.points.cpu(), rest, atol=1e-5)
    assert torch.allclose(r.rotations.cpu(), torch.eye(3).expand(len(rest), 3, 3), atol=1e-5)
    assert r.energy < 1e-8


def test_rigid_motion_of_the_handles_moves_everything_rigidly(device):
    rest = bar()
    R, t = rigid(3)
    solver = ArapSolver(rest.float(), build_control_graph(rest), device=device)
    handles = torch.tensor([0, 10, 20, 30, 40])
    solver.set_handles(handles)
    r = solver.solve((rest[handles] @ R.T + t).float(), mode="batch")
    assert torch.allclose(r.points.cpu().double(), rest @ R.T + t, atol=1e-4)
    assert torch.allclose(r.rotations.cpu().double(), R.expand(len(rest), 3, 3), atol=1e-4)


@pytest.mark.parametrize("dtype, slack", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_energy_never_increases_in_batch_mode(dtype, slack):
    rest = bar(150, seed=4)
    handles, targets = bend_setup(rest)
    targets[:, 0] += 0.7  # also stretch: a deformation ARAP cannot reach exactly
    solver = ArapSolver(rest.to(dtype), build_control_graph(rest))
    solver.set_handles(handles)
    r = solver.solve(targets.to(dtype), mode="batch", tolerance=1e-7, max_iterations=60)
    e = torch.tensor(r.energies, dtype=torch.float64)
    assert len(e) > 5 and e[-1] > 0
    # float32 rounding may wobble the last digits once converged
    assert (e[1:] <= e[:-1] * (1 + slack)).all(), e


def test_handles_land_exactly_on_targets():
    rest = bar()
    handles, targets = bend_setup(rest)
    solver = ArapSolver(rest.float(), build_control_graph(rest))
    perm = torch.randperm(len(handles), generator=torch.Generator().manual_seed(0))
    solver.set_handles(handles[perm])  # any order: targets follow it
    for mode in ("interactive", "batch"):
        r = solver.solve(targets[perm].float(), mode=mode)
        assert torch.equal(r.points[handles], targets.float())


def test_factorisation_is_reused_until_the_handle_set_changes():
    rest = bar()
    solver = ArapSolver(rest.float(), build_control_graph(rest))
    solver.set_handles(torch.tensor([1, 2, 3]))
    count = solver.factorizations
    for step in range(3):
        solver.set_handles(torch.tensor([3, 1, 2]))  # same set, other order
        solver.solve(rest[[3, 1, 2]].float() + 0.1 * step)
    assert solver.factorizations == count
    assert torch.equal(solver.handles, torch.tensor([3, 1, 2]))
    solver.set_handles(torch.tensor([1, 2, 4]))
    assert solver.factorizations == count + 1


def test_disconnected_piece_without_handle_stays_and_the_system_solves():
    gen = torch.Generator().manual_seed(5)
    a = bar(80)
    b = torch.rand(40, 3, generator=gen, dtype=torch.float64) + torch.tensor([0.0, 10.0, 0.0], dtype=torch.float64)
    rest = torch.cat((a, b)).float()
    graph = build_control_graph(rest)
    assert graph.num_components == 2
    solver = ArapSolver(rest, graph)
    handles, targets = bend_setup(a)
    solver.set_handles(handles)
    r = solver.solve(targets.float(), mode="batch")
    assert torch.isfinite(r.points).all()
    assert torch.equal(r.points[80:], rest[80:])  # the untouched piece stays at rest
    assert (r.points[:80] - rest[:80]).abs().max() > 0.5  # the grabbed piece moved
    # grabbing the second piece too makes both move
    solver.set_handles(torch.cat((handles, torch.tensor([80]))))
    r = solver.solve(torch.cat((targets.float(), rest[80:81] + 1.0)), mode="batch")
    assert torch.allclose(r.points[80:], rest[80:] + 1.0, atol=1e-4)


def test_no_handles_is_valid_and_keeps_the_rest_pose():
    rest = bar().float()
    solver = ArapSolver(rest, build_control_graph(rest))
    r = solver.solve(torch.zeros(0, 3), mode="batch")
    assert torch.equal(r.points, rest)


def test_bad_handles_are_refused():
    rest = bar().float()
    solver = ArapSolver(rest, build_control_graph(rest))
    with pytest.raises(ValueError, match="distinct"):
        solver.set_handles(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="lie in"):
        solver.set_handles(torch.tensor([len(rest)]))
    solver.set_handles(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="targets must be"):
        solver.solve(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="finite"):
        solver.solve(torch.tensor([[0.0, 0, 0], [float("nan"), 0, 0]]))
