"""Command-line options shared by `uplift segment | lift | inpaint | serve | edit`:
where the models run (`--server URL` or in-process `--backend NAME`) and their paths."""
from __future__ import annotations

import argparse
import os

from . import protocol as P
from .config import INPAINT_BACKENDS, LIFT_BACKENDS, SAM_MODEL_TYPES, SEGMENT_BACKENDS, ServerConfig

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


def services_from_args(args: argparse.Namespace, kind: str):
    """-> a `Services` object: HttpServices for --server, else LocalServices for --backend."""
    if args.server:
        from .api import HttpServices
        from .client import ClientTimeouts, UpliftClient

        client = UpliftClient(args.server, token=args.token or os.environ.get(TOKEN_ENV),
                              timeouts=ClientTimeouts(job=args.timeout))
        client.health()  # say "nothing listens" / "not Uplift" / "wrong token" before uploading anything
        return HttpServices(client)
    from .local import LocalServices

    fields = {"device": args.device, kind: args.backend or KIND_BACKENDS[kind][0]}
    for field in KIND_PATHS[kind]:
        fields[field] = getattr(args, field)
    if kind == "segment":
        fields["sam_model_type"] = args.sam_model_type
    # Only the requested kind is built; the others stay unloaded ('none').
    for other in KIND_BACKENDS:
        fields.setdefault(other, "none")
    return LocalServices(ServerConfig(**fields))


def refuse_overwriting_input(output, *inputs) -> None:
    """Never let an output path replace one of the command's inputs."""
    from pathlib import Path

    from ..core.errors import OutputWriteError

    out = Path(output).resolve()
    for source in inputs:
        if source is not None and Path(source).resolve() == out:
            raise OutputWriteError(f"the output {output} is also an input; choose another output path")
