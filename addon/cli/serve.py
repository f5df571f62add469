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
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' on every request (default: ${TOKEN_ENV}; "
                                   "a server off loopback without one makes a random token)")
    p.add_argument("--no-token", action="store_true",
                   help="serve a non-loopback address without any token (only on a trusted network)")
    p.add_argument("--token-file", metavar="PATH",
                   help="where a generated token is written, mode 0600 (default: ~/.config/uplift/serve-PORT.token)")
    p.add_argument("--max-upload-mb", type=float, default=P.DEFAULT_MAX_UPLOAD_BYTES / 2**20)
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help=f"refuse images over this many pixels (default {MAX_PIXELS:,})")
    p.add_argument("--queue-size", type=int, default=P.DEFAULT_QUEUE_SIZE,
                   help="requests that may wait behind the running one before the server answers 503")
    p.add_argument("--request-timeout", type=float, default=P.DEFAULT_REQUEST_TIMEOUT_S, metavar="S")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--diffusers-steps", type=int, default=30)
    ray = p.add_argument_group("Ray Serve (a studio's GPUs: replicas, placement, queueing)")
    ray.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="host the models on Ray Serve: without ADDRESS a local Ray instance, else join that "
                          "cluster (e.g. ray://head:10001 or head:6379)")
    ray.add_argument("--replicas", type=int, help="model replicas, each loading the backends once (default 1)")
    ray.add_argument("--gpus-per-replica", type=float, metavar="G",
                     help="GPUs Ray reserves per replica; 0.5 puts two on one GPU (default 0: CPU)")
    ray.add_argument("--cpus-per-replica", type=float, metavar="C",
                     help="CPUs Ray reserves per replica, also its thread count (default 1)")
    ray.add_argument("--max-ongoing", type=int, metavar="K", help="jobs one replica runs at once (default 1)")
    ray.add_argument("--min-replicas", type=int, help="autoscale: fewest replicas (with --max-replicas)")
    ray.add_argument("--max-replicas", type=int, help="autoscale: most replicas (with --min-replicas)")
    ray.add_argument("--object-store-mb", type=int, help="object store of a local Ray instance (default 512)")
    p.set_defaults(run=run)


RAY_FIELDS = ("replicas", "gpus_per_replica", "cpus_per_replica", "max_ongoing", "min_replicas", "max_replicas",
              "object_store_mb")  # options named as RayConfig's fields


def ray_config_from_args(args):
    """-> RayConfig for --ray, else None (and the Ray-only options are refused)."""
    from ..core.errors import ConfigError
    from ..services.config import RayConfig

    given = {field: getattr(args, field) for field in RAY_FIELDS if getattr(args, field) is not None}
    if args.ray is None:
        if given:
            flag = "--" + next(iter(given)).replace("_", "-")
            raise ConfigError(f"{flag} is a Ray Serve option: add --ray (local) or --ray ADDRESS")
        return None
    return RayConfig(address=None if args.ray == "local" else args.ray, **given)


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
    import dataclasses
    import sys

    from ..services.auth import display_url, no_token_warning, resolve_token, token_notice
    from ..services.client import is_loopback_host

    config = config_from_args(args)
    ray_config = ray_config_from_args(args)
    serve_token = resolve_token(config.host, config.port, config.token, args.no_token, args.token_file)
    config = dataclasses.replace(config, token=serve_token.token)
    if serve_token.generated_file is not None:
        print(token_notice(config.host, config.port, serve_token), file=sys.stderr, flush=True)
    elif config.token is None and not is_loopback_host(config.host):
        print(no_token_warning(config.host, config.port), file=sys.stderr, flush=True)
    where = "" if ray_config is None else f" on Ray ({ray_config.address or 'local instance'}, " \
        f"{ray_config.replicas} replica(s))"
    print(f"uplift serve: loading backends segment={config.segment} lift={config.lift} inpaint={config.inpaint}"
          f"{where} ...", file=sys.stderr, flush=True)
    if ray_config is None:
        from ..services.server import serve

        serve(config)
    else:
        from ..services.ray_host import serve_ray

        url = display_url(config.host, config.port)
        serve_ray(config, ray_config, on_ready=lambda _: print(f"uplift serve: ready at {url} (Ray Serve); "
                                                               "Ctrl-C stops it", file=sys.stderr, flush=True))
    return 0
