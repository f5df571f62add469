"""As-rigid-as-possible deformation of the control points (Sorkine & Alexa 2007).

Energy, over the symmetric control graph (w_ij == w_ji, j in N(i) <=> i in N(j)):

    E(p', R) = sum_i sum_{j in N(i)} w_ij || (p'_i - p'_j) - R_i (p_i - p_j) ||^2

with the handles as hard constraints (p'_h = target_h exactly). Alternating
minimisation, one *iteration* = global step then local step:

- global: with the R_i fixed, dE/dp' = 0 is the Laplacian system
  sum_j w_ij (p'_i - p'_j) = sum_j w_ij/2 (R_i + R_j)(p_i - p_j) over the free points.
  Its matrix depends only on which points are fixed, so it is factorised (inverted,
  in float64) once per handle set and every solve is one small matrix product.
  The right-hand side is linear in the flat rotations: one sparse product.
- local: with p' fixed, each R_i maximises tr(R_i S_i), S_i = sum_j w_ij e_ij e'_ij^T.
  That is the SVD solution R = V U^T with the reflection fixed (the smallest singular
  vector flipped when det < 0). We compute the same maximiser with Horn's quaternion
  form: q_i is the top eigenvector of a 4x4 symmetric matrix built from S_i, so R_i is
  always a proper rotation (no reflection case). The eigenvector comes from powers of
  the shifted matrix (by repeated squaring) applied to the previous rotation (warm start); because the
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

Layout and cost: at M≈512 ARAP is dominated by the number of tensor operations
(10-80 µs each on the CPU), not by arithmetic, so an iteration is a few whole-batch
operations. Both steps are linear maps of the state and are precomputed as sparse
(CSR, int32 indices) matrices from the rest edges: the covariances S = U @ p' (one
product), the global right-hand side = B @ flat R (one product) followed by the dense
inverse of the free block; the energy residuals = Z @ [p', flat R] (one product; the
state lives in one buffer for this). Horn's power iteration squares the 4x4 matrices
of all points at once (P^16 = four squarings), component-major ([16, M]): torch
broadcasts over a trailing dimension of 3 or 4 an order of magnitude slower than over
a leading one.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor

from .device import torch_cpu_threads
from .graph import ControlGraph
from .quaternion import canonical_sign

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


def _quat_to_matrix_map() -> Tensor:  # [9, 16]: flat R = map @ flat (q q^T) of a unit wxyz q
    w, x, y, z = 0, 1, 2, 3
    entries = {  # R entries as sums of coefficient * q_i q_j (unit quaternion)
        0: [(1, (w, w)), (1, (x, x)), (-1, (y, y)), (-1, (z, z))],
        1: [(2, (x, y)), (-2, (w, z))], 2: [(2, (x, z)), (2, (w, y))],
        3: [(2, (x, y)), (2, (w, z))], 4: [(1, (w, w)), (-1, (x, x)), (1, (y, y)), (-1, (z, z))],
        5: [(2, (y, z)), (-2, (w, x))], 6: [(2, (x, z)), (-2, (w, y))], 7: [(2, (y, z)), (2, (w, x))],
        8: [(1, (w, w)), (-1, (x, x)), (-1, (y, y)), (1, (z, z))],
    }
    q = torch.zeros(9, 4, 4)
    for row, terms in entries.items():
        for coef, (i, j) in terms:  # q_i q_j == q_j q_i: split off-diagonal terms over both
            q[row, i, j] += coef / 2
            q[row, j, i] += coef / 2
    return q.reshape(9, 16)


_HORN = _horn_matrix()
_QMAT = _quat_to_matrix_map()
_QUARTER_EYE = (torch.eye(4) / 4).reshape(16, 1)


@functools.lru_cache(maxsize=None)
def _constants(device: torch.device, dtype: torch.dtype) -> SimpleNamespace:
    """The matrix constants above, on `device` (copies per call cost more than the maths)."""
    return SimpleNamespace(horn=_HORN.to(device, dtype), qmat=_QMAT.to(device, dtype),
                           quarter_eye=_QUARTER_EYE.to(device, dtype))


def quats_to_matrices_cm(
    q: Tensor,                 # [4, M] unit wxyz
    out: Tensor | None = None,  # [9, M] to write into
) -> Tensor:                   # -> [9, M] row-major flat rotations
    """core/quaternion.py's to_matrix inlined as one matmul on the component-major layout
    ARAP keeps: ~10x faster than the core call plus transposes at 512 controls (`python -m
    bench quaternion`); tests/core/test_quaternion_inline.py checks the two agree."""
    return torch.mm(_constants(q.device, q.dtype).qmat, (q[:, None, :] * q[None, :, :]).view(16, -1), out=out)


def _shifted_horn(S: Tensor) -> Tensor:  # S: [9, M] (a transposed view is fine) -> [16, M] flat 4x4 P
    """P = (N(S) + cI) / (4c), Horn's matrix N shifted to be positive semi-definite with
    trace 1; c = sqrt(3)·||S||_F bounds N's most negative eigenvalue."""
    c = _constants(S.device, S.dtype)
    inverse_norm = torch.linalg.vector_norm(S, dim=0).clamp_min_(torch.finfo(S.dtype).tiny ** 0.5).reciprocal_()
    return torch.addcmul(c.quarter_eye, c.horn @ S, inverse_norm, value=1 / (4 * 3 ** 0.5))


def _square(P: Tensor) -> Tensor:  # P: [16, M] flat 4x4 matrices -> [16, M] flat P @ P
    m = P.shape[1]
    return (P.view(4, 4, 1, m) * P.view(1, 4, 4, m)).sum(1).view(16, m)


def _apply(P: Tensor, q: Tensor) -> Tensor:  # P: [16, M], q: [4, M] -> [4, M] P @ q, normalised
    q = (P.view(4, 4, -1) * q[None]).sum(1)
    return q.mul_(torch.sum(q * q, 0).clamp_min_(1e-60 if q.dtype == torch.float64 else 1e-30).rsqrt_())


def horn_rotations(
    S: Tensor,       # [9, M] flat S_i = sum_j w_ij e_ij e'_ij^T (row a*3+b = sum w e_a e'_b)
    warm: Tensor,    # [4, M] previous unit quaternions (wxyz)
    squarings: int = 4,
    robust: bool = False,
) -> Tensor:         # -> [4, M] unit quaternions (either sign) of R_i maximising tr(R_i S_i)
    """Top eigenvector of Horn's matrix N(S): P^(2^squarings) @ warm, P = (N + cI)/(4c).

    c = sqrt(3)·||S||_F bounds the most negative eigenvalue, so P is positive
    semi-definite and every power raises tr(R S). The power comes from repeated
    squaring of the 4x4 matrices (a handful of whole-batch operations instead of
    2**squarings matrix-vector products); the warm start makes the residual tiny in
    practice. A warm start (nearly) orthogonal to the answer (a half-turn away, which
    ARAP's updates between iterations never are) is only caught with `robust=True`.
    """
    P = _shifted_horn(S)
    for step in range(squarings):
        # P has trace 1, so its top eigenvalue is >= 1/4 and four squarings stay >= 2**-32:
        # rescale to trace 1 only between blocks of four (never on the default path).
        if step and step % 4 == 0:
            P = P / P.view(4, 4, -1).diagonal().sum(-1)
        P = _square(P)
    q = _apply(P, warm)
    if not robust:
        return q
    # A warm start (nearly) orthogonal to the answer (a half-turn away) barely moves:
    # its Rayleigh quotient stays below P's largest diagonal entry, itself a lower bound
    # of the top eigenvalue. Restart those from the basis vector of that entry.
    diagonal = P.view(4, 4, -1).diagonal().T                               # [4, M]
    top, best = diagonal.max(0)
    stalled = (q * (P.view(4, 4, -1) * q[None]).sum(1)).sum(0) < 0.5 * top
    if bool(stalled.any()):
        restart = torch.nn.functional.one_hot(best, 4).T.to(q)
        for _ in range(3):
            restart = _apply(P, restart)
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


def single_threaded(device: torch.device):
    """One CPU thread for a solve (every tensor is tiny, M≈512; ~12 ms stalls were measured
    with two threads on the busy 2-core build machine); no change on CUDA."""
    return torch_cpu_threads(1 if device.type == "cpu" else 0)


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
        # The real (directed) edges i -> j, both directions present with w_ij == w_ji.
        mask = graph.mask.to(self.device)
        rows = torch.arange(m, device=self.device)[:, None].expand_as(mask)[mask]          # [E] i
        cols = graph.neighbours.to(self.device)[mask]                                      # [E] j
        w = graph.weights.to(self.device, torch.float64)[mask]                             # [E]
        e = (self.rest[rows] - self.rest[cols]).double()                                   # [E, 3] e_ij
        self._edges = (rows, cols, w, e)
        self._energy_scale = float((w * e.square().sum(1)).sum())                          # sum w |e|^2
        # State: points [M, 3] and flat rotations [9, M] side by side in one vector, so that the
        # energy residuals are a single sparse product with it.
        self._state = torch.empty(12 * m, device=self.device, dtype=dtype)
        self._points = self._state[:3 * m].view(m, 3)
        self._matrices = self._state[3 * m:].view(9, m)
        three = torch.arange(3, device=self.device)
        ab = torch.arange(9, device=self.device)                                             # a*3 + b
        # S_i = sum_j w_ij e_ij (p'_i - p'_j)^T as one sparse product: S.view(M, 3, 3) = U @ p'.
        we = w[:, None] * e                                                                # [E, 3]
        u_rows = (rows[:, None] * 3 + three).reshape(-1).repeat(2)
        u_cols = torch.cat((rows.repeat_interleave(3), cols.repeat_interleave(3)))
        self._covariance_op = self._sparse(u_rows, u_cols, torch.cat((we.reshape(-1), -we.reshape(-1))), (3 * m, m))
        self._covariance = torch.empty(3 * m, 3, device=self.device, dtype=dtype)
        # Global step right-hand side b_i[a] = sum_j w_ij/2 sum_b (R_i + R_j)[a, b] e_ij[b]: linear in
        # the flat rotations, entry (i*3 + a, (a*3 + b)*M + i or j); rows of the free points are
        # taken per handle set.
        half = (0.5 * we)[:, None, :].expand(-1, 3, 3).reshape(-1)                           # [E*9] (edge, a, b)
        self._rhs_entries = (
            (rows[:, None] * 3 + three).repeat_interleave(3, 1).reshape(-1).repeat(2),
            torch.cat((ab[None] * m + rows[:, None], ab[None] * m + cols[:, None])).reshape(-1),
            half.repeat(2),
        )
        # Energy residuals sqrt(w_ij) ((p'_i - p'_j) - R_i e_ij), one row per directed edge and
        # axis: Z @ state.
        root = w.sqrt()
        n_edges = rows.numel()
        edge_axis = (torch.arange(n_edges, device=self.device)[:, None] * 3 + three).reshape(-1)  # [3E]
        z_rows = torch.cat((edge_axis, edge_axis, edge_axis.repeat_interleave(3)))
        z_cols = torch.cat(((rows[:, None] * 3 + three).reshape(-1), (cols[:, None] * 3 + three).reshape(-1),
                            (3 * m + ab[None] * m + rows[:, None]).reshape(-1)))
        z_values = torch.cat((root.repeat_interleave(3), -root.repeat_interleave(3),
                              -(root[:, None, None] * e[:, None, :]).expand(-1, 3, 3).reshape(-1)))
        self._residual_op = self._sparse(z_rows, z_cols, z_values, (3 * n_edges, 12 * m))
        # Dense Laplacian, float64 for the factorisation.
        lap = torch.zeros(m, m, dtype=torch.float64, device=self.device)
        lap.index_put_((rows, cols), -w, accumulate=True)
        lap.index_put_((rows, rows), w, accumulate=True)
        self._laplacian = lap
        self.factorizations = 0
        self._handles: Tensor | None = None
        self.set_handles(torch.zeros(0, dtype=torch.long))
        self.reset()

    def _sparse(self, rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
        """A CSR matrix (duplicates summed, in float64 before the cast) in the solver's dtype."""
        coo = torch.sparse_coo_tensor(torch.stack((rows, cols)), values.double(), shape, device=self.device,
                                      check_invariants=False)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the CSR x dense product is all we use
            warnings.simplefilter("ignore", UserWarning)
            csr = coo.coalesce().to(self.dtype).to_sparse_csr()
            if max(shape) < 2**31 and csr.values().numel() < 2**31:  # int32 indices spare a conversion per product
                csr = torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), shape)
            return csr

    # -- state -----------------------------------------------------------------
    def reset(self) -> None:
        """Forget the warm start: back to the rest pose with identity rotations."""
        self._at_rest = True
        self._points.copy_(self.rest)                                           # [M, 3]
        self._quats = torch.zeros(4, self.num_points, device=self.device, dtype=self.dtype)
        self._quats[0] = 1
        quats_to_matrices_cm(self._quats, out=self._matrices)

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
        # cholesky_inverse returns column-major storage; the product wants rows contiguous
        self._inverse = inverse.to(self.dtype).contiguous()                      # [F, F]
        self._fixed_coupling = (lap[self._fixed][:, self._free] @ inverse).to(self.dtype)  # [X, F]
        # The rhs operator's rows for the free points: [F, 3M].
        row_of = torch.full((self.num_points,), -1, dtype=torch.long, device=self.device)
        row_of[self._free] = torch.arange(self._free.numel(), device=self.device)
        rows, cols, values = self._rhs_entries
        keep = row_of[rows // 3] >= 0
        rows = row_of[rows // 3] * 3 + rows % 3
        f = self._free.numel()
        self._rhs_op = self._sparse(rows[keep], cols[keep], values[keep], (3 * f, 9 * self.num_points))
        self._rhs = torch.empty(3 * f, device=self.device, dtype=self.dtype)
        self.factorizations += 1

    # -- steps -----------------------------------------------------------------
    def _local(self) -> None:
        S = torch.mm(self._covariance_op, self._points, out=self._covariance).view(-1, 9).T  # [9, M] (a view)
        if self.local_step == "svd":
            self._matrices.copy_(svd_rotations(S))
            from .quaternion import from_matrix  # quaternions only for the result
            self._quats = from_matrix(self._matrices.T.reshape(-1, 3, 3)).T.contiguous()
        else:
            self._quats = horn_rotations(S, self._quats, self.horn_squarings)
            quats_to_matrices_cm(self._quats, out=self._matrices)

    def _global(self, offset: Tensor) -> None:  # offset: [3, F] contribution of the fixed points
        if not self._free.numel():
            return
        rhs = torch.mv(self._rhs_op, self._matrices.view(-1), out=self._rhs)     # [3F]
        solved = torch.addmm(offset, rhs.view(-1, 3).T, self._inverse)            # [3, F]
        self._points.index_copy_(0, self._free, solved.T)

    def _energy(self) -> float:
        residual = torch.mv(self._residual_op, self._state)                      # [3E]
        return float(torch.dot(residual, residual))

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
        self._points.index_copy_(0, free, (self.rest[free] - src_c) @ R.T + dst_c)
        turned = torch.cat((free, self._handles))
        self._quats.index_copy_(1, turned, q.expand(4, turned.numel()).contiguous())
        quats_to_matrices_cm(self._quats, out=self._matrices)

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
        with single_threaded(self.device), torch.no_grad():
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
        p[self._handles] = targets[self._target_order]
        p[self._pinned_at_rest] = self.rest[self._pinned_at_rest]
        offset = None
        if self._free.numel():
            offset = -(p[self._fixed].T @ self._fixed_coupling)                  # [3, F]
        if mode == "batch" and self._at_rest:
            self._start_from_rigid_fit(targets[self._target_order])
        self._at_rest = False
        energies: list[float] = []
        if mode == "interactive":
            for _ in range(iterations):
                self._global(offset)
                self._local()
            run = iterations
        else:
            previous = None
            # Below this the energy is rounding noise (RMS strain ~sqrt(eps)): converged.
            floor = torch.finfo(self.dtype).eps * max(self._energy_scale, 1e-30)
            run = 0
            while run < max_iterations:
                self._global(offset)
                self._local()
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
            points=self._points.clone(),
            rotations=self._matrices.T.reshape(-1, 3, 3).contiguous(),
            quaternions=canonical_sign(self._quats.T),
            energy=energies[-1] if energies else self._energy(),
            iterations=iterations,
            energies=list(energies or []),
        )
