"""As-rigid-as-possible deformation of the control points (Sorkine & Alexa 2007).

Energy, over the symmetric control graph (w_ij == w_ji, j in N(i) <=> i in N(j)):

    E(p', R) = sum_i sum_{j in N(i)} w_ij || (p'_i - p'_j) - R_i (p_i - p_j) ||^2

with the handles as hard constraints (p'_h = target_h exactly). Alternating
minimisation, one *iteration* = global step then local step:

- global: with the R_i fixed, dE/dp' = 0 is the Laplacian system
  sum_j w_ij (p'_i - p'_j) = sum_j w_ij/2 (R_i + R_j)(p_i - p_j) over the free points.
  Its matrix depends only on which points are fixed, so it is factorised (inverted,
  in float64) once per handle set and every solve is one small matrix product.
- local: with p' fixed, each R_i maximises tr(R_i S_i), S_i = sum_j w_ij e_ij e'_ij^T.
  That is the SVD solution R = V U^T with the reflection fixed (the smallest singular
  vector flipped when det < 0). We compute the same maximiser with Horn's quaternion
  form: q_i is the top eigenvector of a 4x4 symmetric matrix built from S_i, so R_i is
  always a proper rotation (no reflection case). The eigenvector comes from powers of
  the shifted matrix applied to the previous rotation (warm start); because the
  matrix is positive semi-definite, every power step can only increase tr(R_i S_i),
  so the energy never increases. `local_step='svd'` runs torch.linalg.svd instead
  (LAPACK's batched 3x3 SVD costs ~1.4 ms per call for 512 points on the CPU, more than
  a whole Horn iteration; kept as the textbook path and for comparison).

Each iteration leaves R = local(p'), so the energy reported after every iteration is
E(p'_k, R(p'_k)), which is non-increasing.

Modes: 'interactive' warm-starts from the previous solution and runs a fixed number
of iterations (3 by default); 'batch' also warm-starts and iterates until the
relative energy change falls below `tolerance` (or `max_iterations`).

Disconnected graphs: a connected component that holds no handle has nothing pulling
it, so its points are held at their rest positions (identity rotations). This keeps
the system solvable (every free point's component has a fixed point) and matches
what an artist expects: pieces nobody grabbed stay where they were.

Layout: internally everything is component-major ([3, M] points, [9, M] matrices,
[4, M] quaternions, [c, K, M] per-edge values). On the CPU torch broadcasts over a
trailing dimension of 3 or 4 an order of magnitude slower than over a leading one,
and ARAP at M≈512 is dominated by per-operation cost, not arithmetic.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor

from .graph import ControlGraph
from .quaternion import canonical_sign

# Row a*3+b of a flattened 3x3 matrix takes factor a from the first operand, b from the second.
_ROW = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
_COL = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
# 4x4 products in flat form: out[i*4+k] = sum_j a[i*4+j] * b[j*4+k].
_SQ_LEFT = torch.tensor([i * 4 + j for i in range(4) for k in range(4) for j in range(4)])
_SQ_RIGHT = torch.tensor([j * 4 + k for i in range(4) for k in range(4) for j in range(4)])
_DIAG4 = torch.tensor([0, 5, 10, 15])


def _horn_matrix() -> Tensor:  # [16, 9]: flat 4x4 Horn matrix = H @ flat 3x3 S
    h = torch.zeros(4, 4, 3, 3)
    xx, yy, zz = (0, 0), (1, 1), (2, 2)
    def put(r, c, terms):
        for sign, (a, b) in terms:
            h[r, c, a, b] += sign
    put(0, 0, [(1, xx), (1, yy), (1, zz)])
    put(1, 1, [(1, xx), (-1, yy), (-1, zz)])
    put(2, 2, [(-1, xx), (1, yy), (-1, zz)])
    put(3, 3, [(-1, xx), (-1, yy), (1, zz)])
    for r, c, terms in (
        (0, 1, [(1, (1, 2)), (-1, (2, 1))]), (0, 2, [(1, (2, 0)), (-1, (0, 2))]), (0, 3, [(1, (0, 1)), (-1, (1, 0))]),
        (1, 2, [(1, (0, 1)), (1, (1, 0))]), (1, 3, [(1, (2, 0)), (1, (0, 2))]), (2, 3, [(1, (1, 2)), (1, (2, 1))]),
    ):
        put(r, c, terms)
        put(c, r, terms)
    return h.reshape(16, 9)


def _quat_to_matrix_map() -> tuple[Tensor, Tensor, Tensor]:
    """R_flat[9] = Q @ (q[i] * q[j]) over the 10 pairs i <= j of a unit wxyz quaternion."""
    pairs = [(i, j) for i in range(4) for j in range(i, 4)]
    index = {p: n for n, p in enumerate(pairs)}
    w, x, y, z = 0, 1, 2, 3
    entries = {  # R entries as sums of coefficient * q_i q_j (unit quaternion)
        0: [(1, (w, w)), (1, (x, x)), (-1, (y, y)), (-1, (z, z))],
        1: [(2, (x, y)), (-2, (w, z))], 2: [(2, (x, z)), (2, (w, y))],
        3: [(2, (x, y)), (2, (w, z))], 4: [(1, (w, w)), (-1, (x, x)), (1, (y, y)), (-1, (z, z))],
        5: [(2, (y, z)), (-2, (w, x))], 6: [(2, (x, z)), (-2, (w, y))], 7: [(2, (y, z)), (2, (w, x))],
        8: [(1, (w, w)), (-1, (x, x)), (-1, (y, y)), (1, (z, z))],
    }
    q = torch.zeros(9, len(pairs))
    for row, terms in entries.items():
        for coef, pair in terms:
            q[row, index[pair]] += coef
    left = torch.tensor([i for i, _ in pairs])
    right = torch.tensor([j for _, j in pairs])
    return q, left, right


_HORN = _horn_matrix()
_QMAT, _QLEFT, _QRIGHT = _quat_to_matrix_map()


@functools.lru_cache(maxsize=None)
def _constants(device: torch.device, dtype: torch.dtype) -> SimpleNamespace:
    """The index and matrix constants above, on `device` (copies per call cost more than the maths)."""
    return SimpleNamespace(
        horn=_HORN.to(device, dtype), qmat=_QMAT.to(device, dtype),
        **{name: t.to(device) for name, t in (("qleft", _QLEFT), ("qright", _QRIGHT), ("sq_left", _SQ_LEFT),
                                             ("sq_right", _SQ_RIGHT), ("diag4", _DIAG4), ("row", _ROW), ("col", _COL))},
    )


def quats_to_matrices_cm(q: Tensor) -> Tensor:  # q: [4, M] unit wxyz -> [9, M] row-major flat rotations
    c = _constants(q.device, q.dtype)
    return c.qmat @ (q.index_select(0, c.qleft) * q.index_select(0, c.qright))


def horn_rotations(
    S: Tensor,       # [9, M] flat S_i = sum_j w_ij e_ij e'_ij^T (row a*3+b = sum w e_a e'_b)
    warm: Tensor,    # [4, M] previous unit quaternions (wxyz)
    squarings: int = 4,
    robust: bool = False,
) -> Tensor:         # -> [4, M] unit quaternions (either sign) of R_i maximising tr(R_i S_i)
    """Top eigenvector of Horn's matrix N(S) by powers of (N + cI)/(4c) applied to `warm`.

    c = sqrt(3)·||S||_F bounds the most negative eigenvalue, so the shifted matrix is
    positive semi-definite and each step raises tr(R S). `squarings` repeated squarings
    give the power 2**squarings; the warm start makes the residual tiny in practice.
    A warm start (nearly) orthogonal to the answer (a half-turn away, which ARAP's
    updates between iterations never are) is only caught with `robust=True`.
    """
    c = _constants(S.device, S.dtype)
    N = c.horn @ S                                        # [16, M]
    shift = (S.square().sum(0).sqrt() * 3 ** 0.5).clamp_min(torch.finfo(S.dtype).tiny ** 0.5)
    N.index_add_(0, c.diag4, shift.expand(4, -1))
    P = N / (4 * shift)                                   # trace 1
    # P^(2^squarings) q as (P^4)^(2^(squarings-2)) q when that is cheaper: a 4x4 product
    # costs about four matrix-vector products here.
    squared = min(squarings, 2)
    for _ in range(squared):
        P = (P.index_select(0, c.sq_left) * P.index_select(0, c.sq_right)).view(16, 4, -1).sum(1)
        P = P / P.index_select(0, c.diag4).sum(0)
    P = P.view(4, 4, -1)
    q = warm
    steps = 2 ** (squarings - squared)
    for step in range(steps):  # P's eigenvalues lie in [0, 1]: renormalise only for long runs
        q = (P * q[None]).sum(1)                          # [4, M]
        if step % 4 == 3 or step == steps - 1:
            q = q / q.square().sum(0).sqrt().clamp_min(1e-30)[None]  # (linalg norm over dim 0 is slow)
    # A warm start (nearly) orthogonal to the answer (a half-turn away) barely moves:
    # its Rayleigh quotient stays below P's largest diagonal entry, itself a lower bound
    # of the top eigenvalue. Restart those from the basis vector of that entry.
    if not robust:
        return q
    diagonal = P.diagonal(dim1=0, dim2=1).T                                  # [4, M]
    top, best = diagonal.max(0)
    stalled = (q * (P * q[None]).sum(1)).sum(0) < 0.5 * top
    if bool(stalled.any()):
        restart = torch.nn.functional.one_hot(best, 4).T.to(q)
        for _ in range(2 ** (squarings - squared) + 8):
            restart = (P * restart[None]).sum(1)
            restart = restart / restart.square().sum(0).sqrt().clamp_min(1e-30)[None]
        q = torch.where(stalled, restart, q)
    return q


def svd_rotations(S: Tensor) -> Tensor:  # S: [9, M] as above -> [9, M] flat R = V U^T, det +1
    """The textbook local step: batched SVD with the reflection fixed."""
    U, _, Vh = torch.linalg.svd(S.T.reshape(-1, 3, 3))
    V = Vh.transpose(1, 2)
    det = torch.linalg.det(V @ U.transpose(1, 2))
    fix = torch.ones_like(U[:, 0, :])
    fix[:, 2] = torch.sign(det).masked_fill(det == 0, 1.0)
    R = (V * fix[:, None, :]) @ U.transpose(1, 2)
    return R.reshape(-1, 9).T.contiguous()


@contextlib.contextmanager
def single_threaded(device: torch.device):
    """Run a small CPU problem on one thread.

    Every tensor here is tiny (M≈512): splitting an operation across threads costs
    more than it saves, and when another process holds the second core an OpenMP
    region waits a whole scheduler slice (~12 ms measured on the 2-core build machine)
    for its sleeping worker. torch's thread count is process-wide, so it is restored
    right after the solve.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class ArapResult:
    points: Tensor        # [M, 3] deformed control points (handles exactly on target)
    rotations: Tensor     # [M, 3, 3] per-point rotations R_i (fitted to `points`)
    quaternions: Tensor   # [M, 4] the same rotations as wxyz, w >= 0
    energy: float         # E(points, rotations)
    iterations: int       # iterations run by this solve
    energies: list[float]  # energy after each iteration ([] in interactive mode)


class ArapSolver:
    """ARAP over control points; see the module docstring for the method.

    `rest` and the graph's tensors move to `device` (default: rest's device). The
    solver keeps its last solution and warm-starts from it.
    """

    def __init__(
        self,
        rest: Tensor,         # [M, 3] rest positions
        graph: ControlGraph,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        local_step: str = "horn",
        horn_squarings: int = 4,
    ) -> None:
        if local_step not in ("horn", "svd"):
            raise ValueError(f"local_step must be 'horn' or 'svd', not {local_step!r}")
        if rest.ndim != 2 or rest.shape[1] != 3 or rest.shape[0] != graph.num_points:
            raise ValueError(f"rest must be [{graph.num_points}, 3], got {tuple(rest.shape)}")
        self.device = torch.device(device) if device is not None else rest.device
        self.dtype = dtype
        self.local_step = local_step
        self.horn_squarings = horn_squarings
        self.num_points = m = rest.shape[0]
        self.rest = rest.detach().to(self.device, dtype)
        self.component = graph.component.to(self.device)
        nbr = graph.neighbours.to(self.device)
        w = graph.weights.to(self.device, dtype) * graph.mask.to(self.device)
        k = nbr.shape[1]
        self._nbr_flat = nbr.T.reshape(-1)                              # [K*M], slot-major
        rest_cm = self.rest.T.contiguous()                                # [3, M]
        edges = rest_cm[:, None, :] - rest_cm.index_select(1, self._nbr_flat).view(3, k, m)   # [3, K, M] e_ij
        w_km = w.T.contiguous()                                           # [K, M]
        self._w = w_km
        self._edges = edges
        consts = _constants(self.device, dtype)
        row, col = consts.row, consts.col
        self._w_edges_row = (w_km * edges).index_select(0, row)            # [9, K, M] w e_a for S_ab
        self._half_w_edges_col = (0.5 * w_km * edges).index_select(0, col)  # [9, K, M] w/2 e_b for rhs
        self._row, self._col = row, col
        self._energy_scale = float((w_km * edges.square().sum(0)).sum())   # sum w |e|^2
        # Dense Laplacian, float64 for the factorisation.
        lap = torch.zeros(m, m, dtype=torch.float64, device=self.device)
        rows = torch.arange(m, device=self.device).repeat(k)
        w64 = w_km.reshape(-1).double()
        lap.index_put_((rows, self._nbr_flat), -w64, accumulate=True)
        lap.index_put_((rows, rows), w64, accumulate=True)
        self._laplacian = lap
        self.factorizations = 0
        self._handles: Tensor | None = None
        self.set_handles(torch.zeros(0, dtype=torch.long))
        self.reset()

    # -- state -----------------------------------------------------------------
    def reset(self) -> None:
        """Forget the warm start: back to the rest pose with identity rotations."""
        self._at_rest = True
        self._points = self.rest.T.contiguous()                               # [3, M]
        self._quats = torch.zeros(4, self.num_points, device=self.device, dtype=self.dtype)
        self._quats[0] = 1
        self._matrices = quats_to_matrices_cm(self._quats)

    @property
    def handles(self) -> Tensor:  # [H] long, in the order given to set_handles
        return self._handles[self._given_order]

    def set_handles(self, indices: Tensor) -> None:  # indices: [H] long, distinct
        """Choose the handles; `solve`'s targets follow this order. Refactorises only when
        the set (ignoring order) differs from the current one."""
        idx = torch.as_tensor(indices, dtype=torch.long).to(self.device).reshape(-1)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.num_points):
            raise ValueError(f"handle indices must lie in [0, {self.num_points})")
        ordered, sort_order = torch.sort(idx)
        if ordered.numel() != torch.unique(ordered).numel():
            raise ValueError("handle indices must be distinct")
        self._target_order = sort_order                          # targets[sort_order] follow `ordered`
        self._given_order = torch.argsort(sort_order)
        if self._handles is not None and torch.equal(ordered, self._handles):
            return
        m = self.num_points
        fixed = torch.zeros(m, dtype=torch.bool, device=self.device)
        fixed[ordered] = True
        # Components without a handle stay at rest: fix all of their points.
        held = torch.zeros(int(self.component.max()) + 1 if m else 0, dtype=torch.bool, device=self.device)
        held[self.component[ordered]] = True
        fixed |= ~held[self.component]
        self._handles = ordered
        self._free = torch.nonzero(~fixed).squeeze(1)
        self._fixed = torch.nonzero(fixed).squeeze(1)
        self._pinned_at_rest = torch.nonzero(fixed & ~held[self.component]).squeeze(1)
        if self._free.numel():
            with single_threaded(self.device):
                self._factorise()

    def _factorise(self) -> None:
        lap = self._laplacian
        a = lap[self._free][:, self._free]
        chol, info = torch.linalg.cholesky_ex(a)
        if int(info):
            raise RuntimeError("ARAP system is not positive definite (graph weights broken?)")
        inverse = torch.cholesky_inverse(chol)
        self._inverse = inverse.to(self.dtype)                                   # [F, F]
        self._fixed_coupling = (lap[self._fixed][:, self._free] @ inverse).to(self.dtype)  # [X, F]
        self.factorizations += 1

    # -- steps -----------------------------------------------------------------
    def _covariances(self, points: Tensor) -> Tensor:  # points [3, M] -> S [9, M]
        k, m = self._w.shape
        deformed = points[:, None, :] - points.index_select(1, self._nbr_flat).view(3, k, m)  # [3, K, M]
        return (self._w_edges_row * deformed.index_select(0, self._col)).sum(1)

    def _local(self, points: Tensor) -> None:
        S = self._covariances(points)
        if self.local_step == "svd":
            self._matrices = svd_rotations(S)
            from .quaternion import from_matrix  # quaternions only for the result
            self._quats = from_matrix(self._matrices.T.reshape(-1, 3, 3)).T.contiguous()
        else:
            self._quats = horn_rotations(S, self._quats, self.horn_squarings)
            self._matrices = quats_to_matrices_cm(self._quats)

    def _global(self, offset: Tensor) -> None:  # offset: [3, F] contribution of the fixed points
        if not self._free.numel():
            return
        k, m = self._w.shape
        R = self._matrices
        pair = R[:, None, :] + R.index_select(1, self._nbr_flat).view(9, k, m)  # [9, K, M] R_i + R_j
        rhs = (pair * self._half_w_edges_col).sum(1).view(3, 3, m).sum(1)          # [3, M]
        solved = torch.addmm(offset, rhs.index_select(1, self._free), self._inverse)
        self._points.index_copy_(1, self._free, solved)

    def _energy(self) -> float:
        k, m = self._w.shape
        p = self._points
        deformed = p[:, None, :] - p.index_select(1, self._nbr_flat).view(3, k, m)
        rotated = (self._matrices[:, None, :] * self._edges.index_select(0, self._col)).view(3, 3, k, m).sum(1)
        return float((self._w * (deformed - rotated).square().sum(0)).sum())

    def _start_from_rigid_fit(self, targets: Tensor) -> None:  # targets: [H, 3] for the sorted handles
        """Initial guess for a cold batch solve: the rigid motion that best maps the handles
        onto their targets (Horn's absolute orientation), applied to every free point.

        From the rest pose ARAP needs very many iterations to discover a large rotation;
        from this start a rigid motion of the handles is solved at once, and other poses
        start from their best rigid approximation. Identity for fewer than 2 handles.
        """
        if self._handles.numel() < 2 or not self._free.numel():
            return
        src = self.rest[self._handles]
        src_c, dst_c = src.mean(0), targets.mean(0)
        S = ((src - src_c)[:, :, None] * (targets - dst_c)[:, None, :]).sum(0).reshape(9, 1)
        q = horn_rotations(S, self._quats[:, :1], squarings=10, robust=True)
        R = quats_to_matrices_cm(q).reshape(3, 3)
        free = self._free
        moved = R @ (self.rest[free] - src_c).T + dst_c[:, None]               # [3, F]
        self._points.index_copy_(1, free, moved)
        turned = torch.cat((free, self._handles))
        self._quats.index_copy_(1, turned, q.expand(4, turned.numel()).contiguous())
        self._matrices = quats_to_matrices_cm(self._quats)

    # -- API -------------------------------------------------------------------
    def solve(
        self,
        targets: Tensor,  # [H, 3] target positions of the handles, in set_handles order
        mode: str = "interactive",
        iterations: int = 3,
        tolerance: float = 1e-5,
        max_iterations: int = 500,
    ) -> ArapResult:
        """Move the handles to `targets` and relax the rest (see the module docstring)."""
        with single_threaded(self.device):
            return self._solve(targets, mode, iterations, tolerance, max_iterations)

    def _solve(self, targets: Tensor, mode: str, iterations: int, tolerance: float, max_iterations: int) -> ArapResult:
        if mode not in ("interactive", "batch"):
            raise ValueError(f"mode must be 'interactive' or 'batch', not {mode!r}")
        targets = torch.as_tensor(targets).to(self.device, self.dtype)
        if tuple(targets.shape) != (self._handles.numel(), 3):
            raise ValueError(f"targets must be [{self._handles.numel()}, 3], got {tuple(targets.shape)}")
        if not torch.isfinite(targets).all():
            raise ValueError("handle targets must be finite")
        p = self._points
        p[:, self._handles] = targets[self._target_order].T
        p[:, self._pinned_at_rest] = self.rest[self._pinned_at_rest].T
        offset = None
        if self._free.numel():
            offset = -(p.index_select(1, self._fixed) @ self._fixed_coupling)       # [3, F]
        if mode == "batch" and self._at_rest:
            self._start_from_rigid_fit(targets[self._target_order])
        self._at_rest = False
        energies: list[float] = []
        if mode == "interactive":
            for _ in range(iterations):
                self._global(offset)
                self._local(p)
            run = iterations
        else:
            previous = None
            # Below this the energy is rounding noise (RMS strain ~sqrt(eps)): converged.
            floor = torch.finfo(self.dtype).eps * max(self._energy_scale, 1e-30)
            run = 0
            while run < max_iterations:
                self._global(offset)
                self._local(p)
                run += 1
                energy = self._energy()
                energies.append(energy)
                if previous is not None and abs(previous - energy) <= tolerance * max(previous, floor):
                    break
                if energy <= floor:
                    break
                previous = energy
        return self.result(run, energies)

    def result(self, iterations: int = 0, energies: list[float] | None = None) -> ArapResult:
        """The current solution (points, rotations, energy)."""
        return ArapResult(
            points=self._points.T.contiguous(),
            rotations=self._matrices.T.reshape(-1, 3, 3).contiguous(),
            quaternions=canonical_sign(self._quats.T),
            energy=energies[-1] if energies else self._energy(),
            iterations=iterations,
            energies=list(energies or []),
        )
