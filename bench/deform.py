"""Deformation benchmarks: sampling, graph, ARAP, skinning, and two reference figures.

- libigl's C++ ARAP (igl.arap_precomputation / igl.arap_solve) per iteration on a
  closed triangle mesh with as many vertices as we have control points, against our
  ARAP per iteration on 512 control points. Per-iteration cost is the difference of
  a 21-iteration and a 1-iteration solve, divided by 20, for both, so fixed per-call
  costs (argument conversion, result copies) are left out of both.
- a numpy copy (np.copyto) of a buffer as large as the bytes LBS reads plus writes
  (means, quaternions, binding indices and weights in; means and quaternions out).

Timings use one torch thread (UPLIFT_BENCH_THREADS overrides) and, being single-
threaded, the process CPU clock: the build machine's two cores are shared with other
jobs, an OpenMP region waits a whole scheduler slice whenever the other core is busy,
and wall medians swing 2-5x with the load. Rows marked "wall" use the wall clock
(multi-threaded cKDTree queries, and the end-to-end interactive update, which is
reported both ways).
"""
from __future__ import annotations

import functools
import math
import os
import time

import numpy as np
import torch

from .common import Row, median_time, peak_rss_mb

SECTION = "deform"
CONTROLS = 512
SKIN_K = 4


def surface_cloud(n: int, seed: int = 0):
    """n Gaussians on a torus-with-legs-like surface (a torus, R=1, r=0.3, with noise)."""
    from uplift.core import quaternion
    from uplift.core.gaussians import Gaussians

    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=gen) * 2 * math.pi
    v = torch.rand(n, generator=gen) * 2 * math.pi
    ring = 1.0 + 0.3 * torch.cos(v)
    means = torch.stack((ring * torch.cos(u), ring * torch.sin(u), 0.3 * torch.sin(v)), 1)
    means += 0.005 * torch.randn(n, 3, generator=gen)
    return Gaussians.from_colors(means, torch.rand(n, 3, generator=gen), torch.full((n, 3), 0.01),
                                 torch.rand(n, generator=gen) * 0.9 + 0.1,
                                 quats=quaternion.normalize(torch.randn(n, 4, generator=gen)))


def _sphere_mesh(count: int):
    """A closed triangle mesh with `count` vertices: the convex hull of points on a sphere."""
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(0)
    v = rng.normal(size=(count, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v, ConvexHull(v).simplices.astype(np.int64)


def _libigl_iteration_seconds(count: int) -> float | None:
    try:
        import igl
    except ImportError:
        return None
    V, F = _sphere_mesh(count)
    b = np.array([0, 1, 2, 3], dtype=np.int32)
    data = igl.ARAPData()
    igl.arap_precomputation(V, F, 3, b, data)
    bc = V[b] + np.array([0.0, 0.0, 0.3])

    def solve(iterations: int):
        data.max_iter = iterations
        return igl.arap_solve(bc, data, V.copy())

    cpu = functools.partial(median_time, clock=time.process_time)
    return (cpu(lambda: solve(21)) - cpu(lambda: solve(1))) / 20


def rows() -> list[Row]:
    threads = int(os.environ.get("UPLIFT_BENCH_THREADS", "1"))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _rows(threads)
    finally:
        torch.set_num_threads(previous_threads)


def _rows(threads: int) -> list[Row]:
    from uplift.core.arap import ArapSolver
    from uplift.core.deformer import DeformConfig, Deformer
    from uplift.core.graph import build_control_graph
    from uplift.core.sampling import farthest_point_sampling
    from uplift.core.skinning import bind, deform

    single = threads == 1
    timer = functools.partial(median_time, clock=time.process_time if single else time.perf_counter)
    note = f"median, {threads} thread{'s' if threads > 1 else ''}, {'CPU' if single else 'wall'} time"
    out: list[Row] = []
    big = surface_cloud(1_000_000)
    small = big.subset(torch.arange(100_000))

    fps = timer(lambda: farthest_point_sampling(big.means, CONTROLS), repeats=3)
    out.append(Row(SECTION, "FPS 512 of 1M Gaussians", fps * 1e3, "ms", note + "; voxel-thinned to 65k candidates"))

    controls = big.means[farthest_point_sampling(big.means, CONTROLS)]
    graph_s = timer(lambda: build_control_graph(controls), repeats=5)
    out.append(Row(SECTION, "control graph (512, kNN + geodesic kNN)", graph_s * 1e3, "ms", note))
    graph = build_control_graph(controls)

    solver = ArapSolver(controls, graph)
    handle_sets = [torch.tensor([i, (i * 7 + 100) % CONTROLS]) for i in range(8)]
    state = {"set": 0}

    def refactorise():
        state["set"] = (state["set"] + 1) % len(handle_sets)
        solver.set_handles(handle_sets[state["set"]])

    factor_s = timer(refactorise)
    out.append(Row(SECTION, "factorisation (new handle set, 512)", factor_s * 1e3, "ms", note + "; dense Cholesky + inverse, float64"))

    handles = torch.tensor([int(torch.argmin(controls[:, 0])), int(torch.argmax(controls[:, 0]))])
    solver.set_handles(handles)
    frame = {"t": 0}

    def drag_targets():
        frame["t"] += 1
        t = controls[handles].clone()
        t[1, 2] += 0.3 * math.sin(0.05 * frame["t"])
        return t

    update_s = timer(lambda: solver.solve(drag_targets(), iterations=3), repeats=31, warmup=3)
    out.append(Row(SECTION, "ARAP interactive update (3 iterations, 512)", update_s * 1e3, "ms", note))

    ours = (timer(lambda: solver.solve(drag_targets(), iterations=21), repeats=15)
            - timer(lambda: solver.solve(drag_targets(), iterations=1), repeats=15)) / 20
    out.append(Row(SECTION, "ARAP per iteration, ours (512 points)", ours * 1e6, "us", note))
    igl_s = _libigl_iteration_seconds(CONTROLS)
    if igl_s is None:
        out.append(Row(SECTION, "ARAP per iteration, libigl (512-vertex mesh)", None, "us", "libigl not installed"))
    else:
        out.append(Row(SECTION, "ARAP per iteration, libigl (512-vertex mesh)", igl_s * 1e6, "us", "median, C++, CPU time"))
        out.append(Row(SECTION, "ratio ours / libigl per iteration", ours / igl_s, "x", "aim <= 1"))

    bind_small = median_time(lambda: bind(small.means, controls, SKIN_K), repeats=3)
    out.append(Row(SECTION, "binding 100k Gaussians (k=4)", bind_small * 1e3, "ms", "median, wall; cKDTree on all cores"))
    bind_big = median_time(lambda: bind(big.means, controls, SKIN_K), repeats=1, warmup=0)
    out.append(Row(SECTION, "binding 1M Gaussians (k=4)", bind_big * 1e3, "ms", "one run; cKDTree, all cores"))

    result = solver.solve(drag_targets(), mode="batch")
    for label, g in (("100k", small), ("1M", big)):
        binding = bind(g.means, controls, SKIN_K)
        lbs = timer(lambda: deform(g, binding, controls, result.points, result.rotations, result.quaternions),
                    repeats=9 if label == "100k" else 5)
        n = len(g)
        read = n * (3 * 4 + 4 * 4 + SKIN_K * (binding.indices.element_size() + binding.weights.element_size()))
        written = n * (3 * 4 + 4 * 4)
        src = np.ones(read + written, dtype=np.uint8)
        dst = np.empty_like(src)
        copy = timer(lambda: np.copyto(dst, src), repeats=9)
        out.append(Row(SECTION, f"LBS {label} Gaussians", lbs * 1e3, "ms", note))
        out.append(Row(SECTION, f"numpy copy of LBS bytes ({label})", copy * 1e3, "ms",
                       f"{(read + written) / 1e6:.0f} MB = reads + writes"))
        out.append(Row(SECTION, f"ratio LBS / copy ({label})", lbs / copy, "x", "aim <= 4"))

    deformer = Deformer(small, DeformConfig(num_controls=CONTROLS, device="cpu"))
    grab = torch.tensor([int(torch.argmin(deformer.controls[:, 0])), int(torch.argmax(deformer.controls[:, 0]))])

    def deformer_targets():
        frame["t"] += 1
        t = deformer.controls[grab].clone()
        t[1, 2] += 0.3 * math.sin(0.05 * frame["t"])
        return t

    whole = timer(lambda: deformer.update(grab, deformer_targets()), repeats=21, warmup=3)
    out.append(Row(SECTION, "interactive update: ARAP 3 it + LBS 100k", whole * 1e3, "ms", note + "; aim < 25 ms"))
    wall = median_time(lambda: deformer.update(grab, deformer_targets()), repeats=21, warmup=3)
    out.append(Row(SECTION, "interactive update, wall clock", wall * 1e3, "ms",
                   f"median, {threads} thread(s), wall; includes waits for the shared cores"))
    out.append(Row(SECTION, "peak memory (process RSS)", peak_rss_mb(), "MB", "after all deform benchmarks"))
    return out
