"""Colours for the surfaces a photo never saw, diffused from the ones it did.

A lifter only knows the colours of what the photo shows. The inflate lifter gives its back
and side-wall splats the colour of the rim cell they were extruded from, so a turned
object shows long stripes. Here every Gaussian the photo did not see (visibility below
SEEN) takes the harmonic interpolation of the seen Gaussians' colours over a symmetric
k-nearest-neighbour graph of the means: each unseen colour is the average of its
neighbours', seen colours fixed. High-frequency rim patterns decay within a few
neighbours of the rim instead of being extruded, and the back gets the seen surface's
smooth continuation. Solved exactly by a sparse LU factorisation of the graph Laplacian's
unseen block (non-singular where each component has a seen Gaussian; components with none
keep their colours): measured 2.6 s for 97k unknowns, against 2.3 s for Jacobi-preconditioned
CG to 1e-4 with one BLAS thread and 26 s with the default threads on 2 shared cores.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .gaussians import SH_C0, Gaussians

SEEN = 0.5           # visibility at and above which a Gaussian's colour is kept
NEIGHBOURS = 8       # k of the k-NN graph


def laplace_fill(points: np.ndarray,  # [N, 3]
                 values: np.ndarray,  # [N, C] known where `known`
                 known: np.ndarray,   # [N] bool
                 k: int = NEIGHBOURS) -> np.ndarray:  # -> [N, C] float64
    """Harmonic extension of `values` from the known points to the others over the k-NN graph."""
    from scipy.sparse import coo_matrix, diags
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import splu
    from scipy.spatial import cKDTree

    n = len(points)
    out = np.asarray(values, np.float64).copy()
    unknown = ~known
    if n < 2 or not unknown.any() or not known.any():
        return out
    k = min(k, n - 1)
    _, nbr = cKDTree(points).query(points, k=k + 1)
    rows = np.repeat(np.arange(n), k)
    cols = nbr[:, 1:].reshape(-1)
    adjacency = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float64)  # symmetric, unweighted
    # Unknown points in a component without a known point have no harmonic extension: keep them.
    _, label = connected_components(adjacency, directed=False)
    anchored = np.zeros(label.max() + 1, bool)
    anchored[label[known]] = True
    solve = unknown & anchored[label]
    if not solve.any():
        return out
    idx = np.flatnonzero(solve)
    degree = np.asarray(adjacency.sum(1)).ravel()
    L = (diags(degree[idx]) - adjacency[idx][:, idx]).tocsc()  # Laplacian block of the unknowns
    fixed = ~solve
    rhs = adjacency[idx][:, np.flatnonzero(fixed)] @ out[fixed]  # pull of the fixed neighbours
    out[idx] = splu(L).solve(np.ascontiguousarray(rhs))
    return out


def fill_unseen_colors(g: Gaussians, visibility: Tensor,  # [N] in [0, 1] (core.render.reprojection)
                       seen: float = SEEN, k: int = NEIGHBOURS) -> Gaussians:
    """-> `g` with the unseen Gaussians' base colours replaced by the seen ones' harmonic
    extension (view-dependent SH terms of those Gaussians zeroed)."""
    known = (visibility.detach().cpu().numpy() >= seen)
    if known.all() or not known.any():
        return g
    colors = g.base_colors.detach().double().cpu().numpy()
    filled = laplace_fill(g.means.detach().double().cpu().numpy(), colors, known, k)
    sh = g.sh.clone()
    unseen = torch.from_numpy(~known).to(sh.device)
    sh[unseen, 0] = ((torch.from_numpy(filled).to(sh) - 0.5) / SH_C0)[unseen]
    sh[unseen, 1:] = 0.0
    return g.replace(sh=sh)
