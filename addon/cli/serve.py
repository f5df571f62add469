"""`uplift serve`: the model services over HTTP for the Blender extension and `--server`."""
from __future__ import annotations


def add_parser(sub) -> None:
    from ..core.image_io import MAX_PIXELS
    from ..services import protocol as P
    from ..services.config import INPAINT_BACKENDS, LIFT_BACKENDS, SEGMENT_BACKENDS, ServerConfig
    from ..services.options import TOKEN_ENV, add_model_paths

    p = sub.add_parser("serve", help="serve segmentation, lifting and inpainting over HTTP",
                       description="Start the Uplift model server (FastAPI + uvicorn). It binds to loopback "
                                   "unless --host says otherwise; the API is documented at /docs.")
    p.add_argument("--host", default=P.DEFAULT_HOST, help=f"address to bind (default {P.DEFAULT_HOST}, this machine only)")
    p.add_argument("--port", type=int, default=P.DEFAULT_PORT, help=f"port (default {P.DEFAULT_PORT})")
    p.add_argument("--segment", choices=SEGMENT_BACKENDS, default="grabcut")
    p.add_argument("--lift", choices=LIFT_BACKENDS, default="inflate")
    p.add_argument("--inpaint", choices=INPAINT_BACKENDS, default=ServerConfig().inpaint)
    add_model_paths(p, ("sam_checkpoint", "trellis_model", "lama_model", "diffusers_model"))
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' on every request (default: ${TOKEN_ENV})")
    p.add_argument("--max-upload-mb", type=float, default=P.DEFAULT_MAX_UPLOAD_BYTES / 2**20)
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help=f"refuse images over this many pixels (default {MAX_PIXELS:,})")
    p.add_argument("--queue-size", type=int, default=P.DEFAULT_QUEUE_SIZE,
                   help="requests that may wait behind the running one before the server answers 503")
    p.add_argument("--request-timeout", type=float, default=P.DEFAULT_REQUEST_TIMEOUT_S, metavar="S")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--diffusers-steps", type=int, default=30)
    p.set_defaults(run=run)


def config_from_args(args):
    import os

    from ..services.config import ServerConfig
    from ..services.options import TOKEN_ENV

    return ServerConfig(
        host=args.host, port=args.port, segment=args.segment, lift=args.lift, inpaint=args.inpaint,
        sam_checkpoint=args.sam_checkpoint, sam_model_type=args.sam_model_type, trellis_model=args.trellis_model,
        lama_model=args.lama_model, diffusers_model=args.diffusers_model, device=args.device,
        token=args.token or os.environ.get(TOKEN_ENV) or None, max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels, queue_size=args.queue_size, request_timeout_s=args.request_timeout,
        seed=args.seed, diffusers_steps=args.diffusers_steps)


def run(args) -> int:
    import sys

    from ..services.client import is_loopback_url
    from ..services.server import serve

    config = config_from_args(args)
    if not is_loopback_url(f"http://{config.host}/") and config.token is None:
        print(f"uplift serve: warning: listening on {config.host} without --token; anyone on the network "
              "can use this server", file=sys.stderr)
    print(f"uplift serve: loading backends segment={config.segment} lift={config.lift} inpaint={config.inpaint} ...",
          file=sys.stderr, flush=True)
    serve(config)
    return 0
