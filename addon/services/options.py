"""Command-line options shared by `uplift segment | lift | inpaint | serve | edit`:
where the models run (`--server URL` or in-process `--backend NAME`) and their paths."""
from __future__ import annotations

import argparse
import os

from . import protocol as P
from .config import INPAINT_BACKENDS, LIFT_BACKENDS, MESH_LIFT, SAM_MODEL_TYPES, SEGMENT_BACKENDS, ServerConfig

TOKEN_ENV = "UPLIFT_TOKEN"
KIND_BACKENDS = {"segment": SEGMENT_BACKENDS, "lift": LIFT_BACKENDS, "inpaint": INPAINT_BACKENDS}
KIND_PATHS = {"segment": ("sam_checkpoint",), "lift": ("trellis_model",), "inpaint": ("lama_model", "diffusers_model")}
PATH_HELP = {
    "sam_checkpoint": ("--sam-checkpoint", "segment_anything checkpoint (.pth) for the sam backend"),
    "trellis_model": ("--trellis-model", "local TRELLIS image-to-3D folder for the trellis backend"),
    "lama_model": ("--lama-model", "big-lama TorchScript file for the lama backend"),
    "diffusers_model": ("--diffusers-model", "local Stable Diffusion inpainting folder for the diffusers backend"),
}


def add_model_paths(parser: argparse.ArgumentParser, fields) -> None:
    for field in fields:
        flag, text = PATH_HELP[field]
        parser.add_argument(flag, dest=field, metavar="PATH", help=text + "; nothing is downloaded")
    if "sam_checkpoint" in fields:
        parser.add_argument("--sam-model-type", choices=SAM_MODEL_TYPES, default="auto",
                            help="SAM encoder size; 'auto' reads it from the checkpoint (default)")


def add_service_arguments(parser: argparse.ArgumentParser, kind: str) -> None:
    """--server/--token for a running `uplift serve`, or --backend and paths to run in-process."""
    group = parser.add_argument_group("where the model runs")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--server", metavar="URL", help=f"use a running `uplift serve` (e.g. {P.DEFAULT_URL})")
    choices = [b for b in KIND_BACKENDS[kind] if b != "none"]
    where.add_argument("--backend", choices=choices, default=None,
                       help=f"run in this process with this {kind} backend (default: {choices[0]})")
    group.add_argument("--token", help=f"bearer token of the server (default: ${TOKEN_ENV})")
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="in-process device")
    group.add_argument("--timeout", type=float, default=600.0, metavar="S",
                       help="seconds to wait for the server's answer (default 600)")
    add_model_paths(group, KIND_PATHS[kind])


def add_mesh_arguments(parser) -> None:
    """--mesh FILE [--up y|z] [--as-placed [--refine]] [--fit K]: lift onto the artist's own mesh (`uplift lift`,
    `uplift edit`)."""
    group = parser.add_argument_group("lifting onto your own mesh (in this process, or sent to --server)")
    group.add_argument("--mesh", metavar="FILE", help="lift onto this mesh (OBJ, glTF/GLB, PLY, STL) or these splats "
                                                      "(SPZ, .splat, 3DGS PLY) instead of guessing the shape; the "
                                                      "photo's pixels go where it saw it")
    group.add_argument("--up", choices=("y", "z"), default=None,
                       help="the mesh's up axis (default: by format: glTF and OBJ y, PLY, STL and splat files z)")
    group.add_argument("--as-placed", action="store_true",
                       help="keep the mesh where it is: it is already lined up through the photo's camera")
    group.add_argument("--refine", action="store_true",
                       help="with --as-placed: snap the mesh's pose to the mask (turn, shift, size; its depth stays)")
    group.add_argument("--fit", type=int, default=None, metavar="K",
                       help="alignment hypotheses to refine, the best one kept (default 3)")


def mesh_config_from_args(args: argparse.Namespace):
    """-> backends.mesh_lift.MeshLiftConfig for --mesh, else None (refusing mesh options without it)."""
    from ..core.errors import ConfigError

    if args.mesh is None:
        for flag, value in (("--up", args.up), ("--as-placed", args.as_placed or None), ("--refine", args.refine or None),
                            ("--fit", args.fit)):
            if value is not None:
                raise ConfigError(f"{flag} only applies with --mesh FILE")
        return None
    if args.as_placed and args.fit is not None:
        raise ConfigError("--fit aligns the mesh to the photo; --as-placed keeps its pose: give one of them")
    from .backends.mesh_lift import MeshLiftConfig

    if args.refine and not args.as_placed:
        raise ConfigError("--refine snaps a mesh kept as placed to the photo: give it with --as-placed")
    fields = {"path": args.mesh, "up": args.up or "auto", "as_placed": args.as_placed, "refine": args.refine}
    if args.fit is not None:
        fields["fit_k"] = args.fit
    return MeshLiftConfig(**fields)


def mesh_upload(config):
    """MeshLiftConfig -> api.MeshUpload: the file's bytes for a server (`--mesh FILE --server URL`),
    checked for what this side can check (one self-contained file, present, within the size limit)."""
    from ..core.errors import MeshFormatError
    from ..core.mesh_surface import MAX_MESH_BYTES
    from .api import MeshUpload

    path = config.path
    fmt = path.suffix.lower()
    if fmt not in P.MESH_FORMATS:
        hint = "; save it as .glb (one file) to send it" if fmt == ".gltf" else ""
        raise MeshFormatError(f"mesh {path}: a server takes one of {', '.join(P.MESH_FORMATS)}, not "
                              f"{fmt or '(no extension)'!r}{hint}")
    try:
        if path.stat().st_size > MAX_MESH_BYTES:
            raise MeshFormatError(f"mesh {path} is over the {MAX_MESH_BYTES // 2**20} MiB limit")
        data = path.read_bytes()
    except FileNotFoundError:
        raise MeshFormatError(f"mesh {path} does not exist") from None
    except OSError as exc:
        raise MeshFormatError(f"cannot read mesh {path}: {exc.strerror or exc}") from None
    return MeshUpload(data, fmt, config.up, config.as_placed, None if config.as_placed else config.fit_k, name=path.name,
                      refine=config.refine)


def services_from_args(args: argparse.Namespace, kind: str):
    """-> a `Services` object: HttpServices for --server, else LocalServices for --backend
    (or the mesh lifter for `uplift lift --mesh FILE`)."""
    mesh = mesh_config_from_args(args) if kind == "lift" else None
    if args.server:
        return http_services_from_args(args, mesh)
    from .local import LocalServices

    fields = {"device": args.device, kind: args.backend or KIND_BACKENDS[kind][0]}
    if mesh is not None:
        if args.backend is not None:
            from ..core.errors import ConfigError

            raise ConfigError(f"--mesh lifts onto the given mesh; it cannot be combined with --backend {args.backend}")
        fields.update(lift=MESH_LIFT, mesh_lift=mesh)
    for field in KIND_PATHS[kind]:
        fields[field] = getattr(args, field)
    if kind == "segment":
        fields["sam_model_type"] = args.sam_model_type
    # Only the requested kind is built; the others stay unloaded ('none').
    for other in KIND_BACKENDS:
        fields.setdefault(other, "none")
    services = LocalServices(ServerConfig(**fields))
    if mesh is not None:
        services.backend("lift")  # read and check the mesh file now, before any photo work
    return services


def http_services_from_args(args: argparse.Namespace, mesh=None):
    """HttpServices for --server, with --mesh's file (if any) checked and read before the server is
    asked anything, and the server's health checked before anything is uploaded."""
    upload = None if mesh is None else mesh_upload(mesh)
    from .api import HttpServices
    from .client import ClientTimeouts, UpliftClient

    client = UpliftClient(args.server, token=args.token or os.environ.get(TOKEN_ENV),
                          timeouts=ClientTimeouts(job=args.timeout))
    client.health()  # say "nothing listens" / "not Uplift" / "wrong token" before uploading anything
    return HttpServices(client, mesh=upload)


def refuse_overwriting_input(output, *inputs) -> None:
    """Never let an output path replace one of the command's inputs."""
    from pathlib import Path

    from ..core.errors import OutputWriteError

    out = Path(output).resolve()
    for source in inputs:
        if source is not None and Path(source).resolve() == out:
            raise OutputWriteError(f"the output {output} is also an input; choose another output path")
