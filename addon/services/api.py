"""The `Services` protocol — segment, lift, inpaint over plain arrays — and its HTTP
implementation. `LocalServices` (in-process backends) lives in `local.py`.

Shapes: image uint8 [H, W, 3] RGB; mask bool [H, W]; points float [P, 2] pixels (x, y);
labels int [P] (1 foreground, 0 background); box float [4] (x0, y0, x1, y1) pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from . import protocol as P
from .client import UpliftClient
from .errors import ServerFailedError


@dataclass(frozen=True)
class SegmentResult:
    mask: np.ndarray   # bool [H, W]
    score: float       # the backend's quality estimate in [0, 1]


@runtime_checkable
class Services(Protocol):
    def segment(self, image: np.ndarray, points=None, labels=None, box=None) -> SegmentResult: ...

    def lift(self, image: np.ndarray, mask: np.ndarray, camera):  # -> core.gaussians.Gaussians
        ...

    def inpaint(self, image: np.ndarray, mask: np.ndarray, mode: str = "fill", dilate: int = 0,
                prompt: str | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class MeshUpload:
    """A mesh file sent with every lift (`uplift lift --mesh FILE --server URL`): the server lifts onto it."""
    data: bytes
    format: str              # one of protocol.MESH_FORMATS
    up: str = "auto"         # 'auto' (by format), 'y' or 'z'
    as_placed: bool = False
    fit: int | None = None   # alignment hypotheses; None: the server's default
    name: str = ""           # the file's name, for the server's messages
    refine: bool = False     # with as_placed: snap the pose to the mask

    @property
    def params(self) -> dict:
        params = {"format": self.format, "up": self.up, "as_placed": self.as_placed, "fit": self.fit, "name": self.name}
        if self.refine:  # sent only when asked: a server from before it still takes every other request
            params["refine"] = True
        return params


class HttpServices:
    """`Services` answered by an `uplift serve` process through `UpliftClient` (lifting onto `mesh`
    when given)."""

    def __init__(self, client: UpliftClient, mesh: MeshUpload | None = None) -> None:
        self.client = client
        self.mesh = mesh

    def segment(self, image, points=None, labels=None, box=None) -> SegmentResult:
        from ..core.image_io import load_mask

        points = np.zeros((0, 2)) if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        labels = np.ones(len(points), np.int64) if labels is None else np.asarray(labels).reshape(-1)
        reply = self.client.segment(_png(image), points.tolist(), labels.tolist(),
                                    None if box is None else np.asarray(box, dtype=np.float64).tolist())
        mask = self._decode(lambda: load_mask(reply.mask_png, shape=image.shape[:2], what="the server's mask",
                                              allow_empty=True))
        return SegmentResult(mask, reply.score)

    def lift(self, image, mask, camera):
        from ..core.ply import read_ply

        mesh = self.mesh
        ply = self.client.lift(_png(image), _png(mask), camera.to_dict(), mesh=None if mesh is None else mesh.data,
                               mesh_params=None if mesh is None else mesh.params)
        return self._decode(lambda: read_ply(ply))

    def inpaint(self, image, mask, mode="fill", dilate=0, prompt=None) -> np.ndarray:
        from ..core.image_io import load_image

        png = self.client.inpaint(_png(image), _png(mask), mode=mode, dilate=dilate, prompt=prompt)
        out = self._decode(lambda: load_image(png, what="the server's inpainted image"))
        if out.shape != image.shape:
            raise ServerFailedError(f"the server returned a {out.shape[1]}x{out.shape[0]} image for a "
                                    f"{image.shape[1]}x{image.shape[0]} input")
        return out

    def _decode(self, fn):
        from ..core.errors import UpliftError

        try:
            return fn()
        except UpliftError as exc:
            raise ServerFailedError(f"the server at {self.client.url} sent an unreadable answer: {exc}") from None


def _png(array: np.ndarray) -> bytes:
    from ..core.image_io import encode_png

    return encode_png(array, compress_level=P.PNG_COMPRESS_LEVEL)
