"""`uplift serve`: the model services over HTTP (FastAPI + uvicorn).

The protocol is described in `protocol.py` and served as OpenAPI at /openapi.json
(browsable at /docs). Design against the four classic failures of model servers:

- wrong server: every answer, errors included, carries `X-Uplift-Service: uplift`, and
  /v1/health names the service, API version and loaded backends, so the client can say
  "this is not an Uplift server" instead of failing on a strange body;
- port mix-up: start-up checks the port first and says whether an Uplift server or some
  other program already holds it; the client's "nothing listens" names URL and port;
- out of memory: backend crashes (CUDA OOM included) are contained per request — the
  CUDA cache is emptied, the request gets a 500 JSON message, the server keeps serving;
  pixel and upload limits refuse absurd inputs up front;
- blocked UIs: backend work runs in a worker thread behind a one-job gate, so /v1/health
  answers instantly during a job; a bounded queue answers 503 + Retry-After instead of
  letting callers hang; every job has a time limit (504).

With a token, every request (health and the schema too) needs
`Authorization: Bearer TOKEN`; a refusal is still an Uplift-branded 401, so the client
can tell "wrong token" from "wrong server".
"""
# No `from __future__ import annotations`: FastAPI must resolve the endpoint annotations,
# which name classes imported inside create_app.
import asyncio
import hmac
import json
import math
import threading
import time
from dataclasses import dataclass

from ..core.errors import (BackendFailedError, BackendUnavailableError, CameraError, ConfigError,
                           ImageFormatError, MaskError, MeshFormatError, UpliftError)
from . import protocol as P
from .config import ServerConfig
from .errors import BackendNotLoadedError, BackendOutOfMemoryError, ImageTooLargeError, InvalidRequestError
from .local import LocalServices

ERROR_STATUS = (  # (exception class, HTTP status, error code); first match wins
    (ImageTooLargeError, 413, P.ERR_TOO_LARGE),
    (ImageFormatError, 400, P.ERR_BAD_IMAGE),
    (MaskError, 400, P.ERR_BAD_MASK),
    (MeshFormatError, 400, P.ERR_BAD_MESH),
    (CameraError, 400, P.ERR_BAD_CAMERA),
    (InvalidRequestError, 400, P.ERR_BAD_PARAMS),
    (BackendNotLoadedError, 409, P.ERR_NOT_LOADED),
    (BackendOutOfMemoryError, 500, P.ERR_OUT_OF_MEMORY),
    (BackendFailedError, 500, P.ERR_BACKEND_FAILED),
    (BackendUnavailableError, 500, P.ERR_BACKEND_FAILED),
    (UpliftError, 500, P.ERR_BACKEND_FAILED),
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("uplift")
    except PackageNotFoundError:
        return "unknown"


class ServerBusy(Exception):
    """Every worker and queue slot is taken: 503 + Retry-After (both hosts)."""

    def __init__(self, retry_after: int, load: str) -> None:
        super().__init__(retry_after, load)
        self.retry_after = retry_after
        self.load = load


class JobTimeout(Exception):
    pass


class UploadTooLarge(Exception):
    pass


class JobClock:
    """Running mean of job durations, for the Retry-After hint of a 503 (both hosts)."""

    def __init__(self) -> None:
        self.mean_s = 1.0

    def record(self, seconds: float) -> None:
        self.mean_s = 0.7 * self.mean_s + 0.3 * seconds

    def retry_after(self, waiting: int, workers: int = 1) -> int:
        """Seconds until a slot is likely free: the jobs ahead, spread over the workers."""
        return int(min(60, max(1, math.ceil(self.mean_s * (waiting + 1) / max(1, workers)))))


class JobGate:
    """One backend job at a time; at most `queue_size` more wait; the rest are refused.

    A job that outlives its time limit keeps the gate until its thread really ends
    (a thread cannot be killed, and a second GPU job beside it is what we avoid)."""

    def __init__(self, queue_size: int, timeout_s: float) -> None:
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self.running = 0
        self.waiting = 0
        self._slot: asyncio.Semaphore | None = None
        self.clock = JobClock()

    def retry_after(self) -> int:
        return self.clock.retry_after(self.waiting)

    async def run(self, fn):
        if self._slot is None:
            self._slot = asyncio.Semaphore(1)
        if self.running + self.waiting >= 1 + self.queue_size:
            raise ServerBusy(self.retry_after(), f"{self.running} running, {self.waiting} waiting")
        deadline = time.monotonic() + self.timeout_s
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slot.acquire(), timeout=self.timeout_s)
        except asyncio.TimeoutError:
            raise JobTimeout(f"the job waited {self.timeout_s:g} s for its turn") from None
        finally:
            self.waiting -= 1
        self.running += 1
        start = time.monotonic()
        task = asyncio.ensure_future(asyncio.to_thread(fn))

        def finished(_):
            self.running -= 1
            self.clock.record(time.monotonic() - start)
            self._slot.release()

        task.add_done_callback(finished)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise JobTimeout(f"the job did not finish within the server's limit of {self.timeout_s:g} s") from None


# -- jobs: what a worker does with decoded input, the same on both hosts ------------------

def _segment_job(services: LocalServices, image, params: dict):
    from ..core.image_io import encode_png

    result = services.segment(image, params.get("points"), params.get("labels"), params.get("box"))
    return encode_png(result.mask, P.PNG_COMPRESS_LEVEL), result.score


def _lift_job(services: LocalServices, image, mask, camera, mesh: tuple | None = None):
    """`mesh`: (file bytes, suffix, params) of an uploaded mesh to lift onto, as plain data so the
    job can travel to a Ray replica; it is saved to a temporary file where the job runs."""
    import tempfile
    from pathlib import Path

    from ..core.ply import ply_bytes

    if mesh is None:
        g = services.lift(image, mask, camera)
    else:
        data, suffix, params = mesh
        with tempfile.TemporaryDirectory(prefix="uplift-mesh-") as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(data)
            g = services.lift(image, mask, camera, mesh=mesh_config(params, path))
    return ply_bytes(g), len(g)


def _inpaint_job(services: LocalServices, image, mask, params: dict):
    from ..core.image_io import encode_png

    out = services.inpaint(image, mask, params.get("mode", "fill"), params.get("dilate", 0), params.get("prompt"))
    return encode_png(out, P.PNG_COMPRESS_LEVEL)


JOBS = {"segment": _segment_job, "lift": _lift_job, "inpaint": _inpaint_job}


def worker_id() -> str:
    """Which process answered (X-Uplift-Worker): host name and process id."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(services: LocalServices, job: str, args: tuple):
    """-> (result, worker id). Raises UpliftError for bad input and contained backend failures."""
    return JOBS[job](services, *args), worker_id()


class LocalRunner:
    """The embedded host: jobs run on a thread of this process behind a `JobGate`."""

    kind = "uvicorn"

    def __init__(self, services: LocalServices, config: ServerConfig) -> None:
        self.services = services
        self.config = config
        self.gate = JobGate(config.queue_size, config.request_timeout_s)

    async def run(self, job: str, *args):
        return await self.gate.run(lambda: run_job(self.services, job, args))

    def loaded(self) -> dict:
        return self.services.loaded()

    def queue(self) -> dict:
        return {"running": self.gate.running, "waiting": self.gate.waiting, "size": self.config.queue_size}

    async def host(self) -> dict:
        return {"kind": self.kind, "replicas": 1, "max_ongoing_requests": 1, "worker": worker_id()}


def error_body(code: str, detail: str) -> bytes:
    return json.dumps({"service": P.SERVICE_NAME, "error": code, "detail": detail}).encode()


class GuardMiddleware:
    """Pure ASGI: brands every answer, checks the token, and enforces the upload limit."""

    def __init__(self, app, token: str | None, max_upload_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def branded_send(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (P.SERVICE_HEADER.lower().encode(), P.SERVICE_NAME.encode())]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is not None:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                detail = "this Uplift server needs 'Authorization: Bearer TOKEN' with the token given to --token" \
                    if not given else "the token does not match the one this Uplift server was started with"
                return await _respond(branded_send, 401, error_body(P.ERR_UNAUTHORIZED, detail),
                                      [(b"www-authenticate", b"Bearer")])
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_upload_bytes:
            return await _respond(branded_send, 413, error_body(
                P.ERR_TOO_LARGE, f"the upload is {int(length):,} bytes, over this server's limit of "
                                 f"{self.max_upload_bytes:,}"))
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # No announced size (chunked): buffer up to the limit, refuse past it, then replay.
            buffered, total = [], 0
            while True:
                message = await receive()
                buffered.append(message)
                total += len(message.get("body", b""))
                if total > self.max_upload_bytes:
                    return await _respond(branded_send, 413, error_body(
                        P.ERR_TOO_LARGE, f"the upload is over this server's limit of {self.max_upload_bytes:,} bytes"))
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break

            async def replay():
                return buffered.pop(0) if buffered else await receive()
            source = replay
        else:
            source = receive
        received = 0

        async def counting_receive():  # a size header that lies is caught here
            nonlocal received
            message = await source()
            received += len(message.get("body", b""))
            if received > self.max_upload_bytes:
                raise UploadTooLarge()
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await branded_send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception as exc:  # anything a handler did not turn into an answer: still a branded JSON 500
            if started:
                raise
            await _respond(branded_send, 500, error_body(P.ERR_BACKEND_FAILED,
                                                         f"internal error: {type(exc).__name__}: {exc}"))


async def _respond(send, status: int, body: bytes, extra_headers=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra_headers]})
    await send({"type": "http.response.body", "body": body})


def _decode_image(data: bytes, max_pixels: int, what: str):
    """Bytes -> uint8 [H, W, 3] (bool [H, W] for a mask); over-limit sizes are refused from
    the header before decoding (`core.image_io.check_pixel_count`)."""
    from ..core.image_io import load_image, load_mask

    if what == "mask":
        return load_mask(data, what="mask", allow_empty=True, max_pixels=max_pixels)
    return load_image(data, what=what, max_pixels=max_pixels)


def _params(text: str | None, what: str = "params") -> dict:
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"the '{what}' part is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"the '{what}' part must be a JSON object")
    return value


def mesh_config(params: dict, path):
    """The uploaded mesh's lift options (the 'params' part) -> backends.mesh_lift.MeshLiftConfig for the
    file saved at `path` (its name ends in the declared format)."""
    from .backends.mesh_lift import MeshLiftConfig

    unknown = set(params) - {"format", "up", "as_placed", "refine", "fit", "name"}
    if unknown:
        raise InvalidRequestError(f"unknown mesh parameters: {', '.join(sorted(unknown))}")
    name = params.get("name") or "(uploaded)"
    if not isinstance(name, str) or len(name) > 200 or not name.isprintable():
        raise InvalidRequestError("the mesh's name must be printable text of at most 200 characters")
    fields = {"path": path, "up": params.get("up") or "auto", "as_placed": params.get("as_placed", False),
              "name": name}
    if not isinstance(fields["as_placed"], bool):
        raise InvalidRequestError("as_placed must be true or false")
    fields["refine"] = params.get("refine", False)
    if not isinstance(fields["refine"], bool):
        raise InvalidRequestError("refine must be true or false")
    if fields["as_placed"] and params.get("fit") is not None:
        raise InvalidRequestError("as_placed and fit exclude each other: a mesh already lined up through the "
                                  "camera is not fitted (the command line's --as-placed | --fit)")
    if params.get("fit") is not None:
        fields["fit_k"] = params["fit"]
    try:
        return MeshLiftConfig(**fields)
    except ConfigError as exc:
        raise InvalidRequestError(str(exc)) from None


def mesh_format(params: dict) -> str:
    fmt = params.get("format")
    if fmt not in P.MESH_FORMATS:
        raise InvalidRequestError(f"the mesh's format must be one of {', '.join(P.MESH_FORMATS)}, not {fmt!r} "
                                  "(one self-contained file: a .gltf's buffers and textures are separate files)")
    return fmt


def create_app(config: ServerConfig = ServerConfig(), services: LocalServices | None = None, *, load: bool = True,
               runner=None):
    """The ASGI app. `load` builds every configured backend now, so a bad checkpoint path
    fails at start-up rather than on the first click. `runner` says where jobs run: by
    default a `LocalRunner` over `services` (plain uvicorn); `ray_host` passes one that
    sends them to Ray Serve replicas. Everything else (token, limits, decoding, error
    bodies, the busy answer) is this one app on both hosts."""
    from fastapi import FastAPI, File, Form, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from ..core.device import pick_device

    if runner is None:
        services = services or LocalServices(config)
        if load:
            services.load_all()
        runner = LocalRunner(services, config)
    device = str(pick_device(config.device)) if runner.kind == LocalRunner.kind else config.device

    app = FastAPI(title="Uplift model services", version=version(), description=P.__doc__,
                  openapi_tags=[{"name": "services", "description": "binary multipart in, binary out"}])
    app.state.runner = runner
    app.add_middleware(GuardMiddleware, token=config.token, max_upload_bytes=config.max_upload_bytes)

    def json_error(status: int, code: str, detail: str, headers: dict | None = None) -> Response:
        return Response(error_body(code, detail), status_code=status, media_type="application/json", headers=headers)

    @app.exception_handler(UpliftError)
    async def _uplift_error(_request, exc: UpliftError):
        for cls, status, code in ERROR_STATUS:
            if isinstance(exc, cls):
                return json_error(status, code, str(exc))

    @app.exception_handler(ServerBusy)
    async def _busy(_request, exc: ServerBusy):
        return json_error(503, P.ERR_BUSY, f"the server is busy ({exc.load})",
                          {P.RETRY_AFTER_HEADER: str(exc.retry_after)})

    @app.exception_handler(JobTimeout)
    async def _timeout(_request, exc: JobTimeout):
        return json_error(504, P.ERR_TIMEOUT, str(exc))

    @app.exception_handler(UploadTooLarge)
    async def _too_large(_request, _exc):
        return json_error(413, P.ERR_TOO_LARGE, f"the upload is over this server's limit of {config.max_upload_bytes:,} bytes")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        parts = sorted({str(e.get("loc", ["", "?"])[-1]) for e in exc.errors()})
        return json_error(400, P.ERR_BAD_PARAMS, f"the request lacks or garbles the part(s) {', '.join(parts)}; "
                                                 "see /docs for the multipart layout")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return json_error(404, P.ERR_NOT_FOUND, f"no endpoint {request.method} {request.url.path} on this Uplift "
                                                    f"server (API {P.API_VERSION})")
        return json_error(exc.status_code, P.ERR_BAD_PARAMS, str(exc.detail))

    errors = {s: {"description": d, "content": {"application/json": {"example": {
        "service": P.SERVICE_NAME, "error": c, "detail": "…"}}}} for s, c, d in (
        (400, P.ERR_BAD_IMAGE, "bad input: not an image, mask size mismatch, empty mask, box outside the image, "
                               "missing prompt (error: bad_image | bad_mask | bad_camera | bad_params)"),
        (401, P.ERR_UNAUTHORIZED, "missing or wrong bearer token"),
        (409, P.ERR_NOT_LOADED, "the server runs without this backend"),
        (413, P.ERR_TOO_LARGE, "upload or image over the server's limits"),
        (500, P.ERR_BACKEND_FAILED, "the backend failed (error: backend_failed | out_of_memory); the server keeps serving"),
        (503, P.ERR_BUSY, "queue full; retry after the Retry-After header's seconds"),
        (504, P.ERR_TIMEOUT, "the job exceeded the server's time limit"))}

    @app.get(P.HEALTH_PATH, tags=["services"], summary="Identity, backends, device and queue")
    async def health() -> dict:
        info = {"service": P.SERVICE_NAME, "api": P.API_VERSION, "version": version(),
                "backends": {**{k: getattr(config, k) for k in ("segment", "lift", "inpaint")}},
                "loaded": runner.loaded(), "device": device, "cuda": None,
                "queue": runner.queue(), "host": await runner.host(),
                "limits": {"max_upload_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels,
                           "request_timeout_s": config.request_timeout_s},
                "auth": config.token is not None}
        if device.startswith("cuda"):
            import torch

            free, total = torch.cuda.mem_get_info()
            info["cuda"] = {"name": torch.cuda.get_device_name(), "free_bytes": free, "total_bytes": total}
        return info

    @app.post(P.SEGMENT_PATH, tags=["services"], summary="Mask from points and/or a box",
              response_class=Response, responses={200: {"description": "mask PNG (8-bit, 255 inside) of the image's "
                                                        "size; header X-Uplift-Score: quality in [0, 1]",
                                                        "content": {"image/png": {}}}, **errors})
    async def segment(image: UploadFile = File(..., description="PNG or JPEG photo"),
                      params: str = Form("{}", description='JSON {"points": [[x, y], ...], "labels": [1|0, ...], '
                                                           '"box": [x0, y0, x1, y1] | null} in pixels')):
        p = _params(params)
        img = await asyncio.to_thread(_decode_image, await image.read(), config.max_pixels, "image")
        (png, score), worker = await runner.run("segment", img, p)
        return Response(png, media_type="image/png", headers={P.SCORE_HEADER: f"{score:.6f}", P.WORKER_HEADER: worker})

    @app.post(P.LIFT_PATH, tags=["services"], summary="3D Gaussians of the masked object, placed in the camera's world",
              response_class=Response, responses={200: {"description": "binary little-endian 3DGS PLY; header "
                                                        "X-Uplift-Gaussians: count", "content": {"application/octet-stream": {}}},
                                                  **errors})
    async def lift(image: UploadFile = File(..., description="PNG or JPEG photo"),
                   mask: UploadFile = File(..., description="mask image of the photo's size (>= 128 or alpha = inside)"),
                   camera: str = Form(..., description='JSON {"width", "height", "K": 3x3, "world_to_camera": 4x4}, '
                                                       "OpenCV axes"),
                   mesh: UploadFile | None = File(None, description="optional: lift onto this mesh or splat file "
                                                  f"({', '.join(P.MESH_FORMATS)}) instead of the server's lifter"),
                   params: str = Form("{}", description='with a mesh: JSON {"format": '
                                                        + " | ".join(f'"{f}"' for f in P.MESH_FORMATS)
                                                        + ', "up": "auto" | "y" | "z", "as_placed": bool, "refine": bool, '
                                                        '"fit": hypotheses, "name": the file\'s name for messages}')):
        from ..core.camera import Camera

        cam = Camera.from_dict(_params(camera, "camera"))
        img = await asyncio.to_thread(_decode_image, await image.read(), config.max_pixels, "image")
        msk = await asyncio.to_thread(_decode_image, await mask.read(), config.max_pixels, "mask")
        mesh_part = None
        if mesh is not None:
            p = _params(params)
            suffix = mesh_format(p)
            mesh_config(p, f"upload{suffix}")  # a bad option is a 400 now, not after the queue and the upload's parse
            mesh_part = (await mesh.read(), suffix, p)
        (data, count), worker = await runner.run("lift", img, msk, cam, mesh_part)
        return Response(data, media_type="application/octet-stream",
                        headers={P.COUNT_HEADER: str(count), P.WORKER_HEADER: worker})

    @app.post(P.INPAINT_PATH, tags=["services"], summary="Fill the (dilated) mask, or a seam ring around it",
              response_class=Response, responses={200: {"description": "RGB PNG of the image's size; only pixels "
                                                        "in the filled region differ from the input",
                                                        "content": {"image/png": {}}}, **errors})
    async def inpaint(image: UploadFile = File(..., description="PNG or JPEG photo"),
                      mask: UploadFile = File(..., description="mask of the photo's size"),
                      params: str = Form("{}", description='JSON {"mode": "fill" | "seam", "dilate": pixels, '
                                                           '"prompt": text | null}')):
        p = _params(params)
        img = await asyncio.to_thread(_decode_image, await image.read(), config.max_pixels, "image")
        msk = await asyncio.to_thread(_decode_image, await mask.read(), config.max_pixels, "mask")
        png, worker = await runner.run("inpaint", img, msk, p)
        return Response(png, media_type="image/png", headers={P.WORKER_HEADER: worker})

    return app


# -- running ----------------------------------------------------------------------------

def check_port_free(host: str, port: int) -> None:
    """Fail with a message that says who holds the port, before uvicorn prints a traceback."""
    import socket

    from .client import UpliftClient
    from .errors import ServiceError

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
            return
        except OSError as exc:
            reason = exc.strerror or str(exc)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    try:
        info = UpliftClient(url, retries=0).health()
        holder = f"an Uplift server (backends {info.get('backends')}) already runs there — use it, or pick another --port"
    except ServiceError as exc:
        holder = ("another program holds it — pick another --port and set the same URL in the extension"
                  if "not an Uplift server" in str(exc) or "token" in str(exc) else f"({reason})")
    raise ConfigError(f"cannot listen on {host}:{port}: {holder}")


@dataclass
class BackgroundServer:
    """A uvicorn server on a thread (tests, notebooks): `url`, then `stop()`."""
    server: object
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_background(app, host: str = P.DEFAULT_HOST, port: int = 0) -> BackgroundServer:
    """Serve `app` on a daemon thread; port 0 picks a free ephemeral port."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="uplift-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigError(f"the Uplift server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return BackgroundServer(server, thread, f"http://{host}:{bound}")


def serve(config: ServerConfig) -> None:
    """Blocking: load backends, then serve until interrupted."""
    import uvicorn

    check_port_free(config.host, config.port)
    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level="info")
