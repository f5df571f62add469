"""The wire protocol between `uplift serve` and its clients (standard library only).

Every endpoint lives under /v1. Requests carry binary payloads as
multipart/form-data (images as PNG/JPEG file parts, parameters as one JSON text
part named `params`); responses are raw bytes (PNG, PLY) with metadata in
`X-Uplift-*` headers, or JSON. Errors are JSON `{"service": "uplift", "error": CODE,
"detail": MESSAGE}` so a client can tell an Uplift server's refusal from some
other program answering on the port.

| method, path       | request parts                          | 200 response |
| ------------------ | -------------------------------------- | ------------ |
| GET  /v1/health    | -                                      | JSON (service, api, version, backends, device, CUDA memory) |
| POST /v1/segment   | image, params {points, labels, box}    | mask PNG (L, 0/255) + X-Uplift-Score |
| POST /v1/lift      | image, mask, camera (JSON text)        | binary little-endian 3DGS PLY + X-Uplift-Gaussians |
| POST /v1/inpaint   | image, mask, params {mode, dilate, prompt} | RGB PNG of the image's size |
"""
from __future__ import annotations

SERVICE_NAME = "uplift"          # /v1/health's "service"; tells an Uplift server from anything else
API_VERSION = "v1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"

HEALTH_PATH = f"/{API_VERSION}/health"
SEGMENT_PATH = f"/{API_VERSION}/segment"
LIFT_PATH = f"/{API_VERSION}/lift"
INPAINT_PATH = f"/{API_VERSION}/inpaint"

SERVICE_HEADER = "X-Uplift-Service"    # on every response of an Uplift server, errors included
SCORE_HEADER = "X-Uplift-Score"        # segment: the mask's predicted quality
COUNT_HEADER = "X-Uplift-Gaussians"    # lift: number of Gaussians in the PLY
RETRY_AFTER_HEADER = "Retry-After"     # 503: seconds until a queue slot is likely free
WORKER_HEADER = "X-Uplift-Worker"      # host:pid of the process (Ray replica) that ran the job

# Multipart part names.
IMAGE_PART = "image"
MASK_PART = "mask"
CAMERA_PART = "camera"
PARAMS_PART = "params"
MESH_PART = "mesh"      # lift: the artist's own mesh file (one self-contained file: GLB, PLY, STL, OBJ)
MESH_FORMATS = (".glb", ".ply", ".stl", ".obj", ".spz", ".splat")  # what one uploaded file can carry (a mesh,
                                                                 # or splats); .gltf has side files

INPAINT_MODES = ("fill", "seam")

# zlib level of the PNGs both sides send: speed over size (the link is usually loopback).
PNG_COMPRESS_LEVEL = 1

# Limits a server applies unless configured otherwise (see ServerConfig).
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024
DEFAULT_QUEUE_SIZE = 8
DEFAULT_REQUEST_TIMEOUT_S = 600.0

# Error codes in the JSON body of a non-200 answer.
ERR_BAD_IMAGE = "bad_image"
ERR_BAD_MASK = "bad_mask"
ERR_BAD_CAMERA = "bad_camera"
ERR_BAD_PARAMS = "bad_params"
ERR_BAD_MESH = "bad_mesh"
ERR_TOO_LARGE = "too_large"
ERR_UNAUTHORIZED = "unauthorized"
ERR_NOT_LOADED = "backend_not_loaded"
ERR_BUSY = "busy"
ERR_TIMEOUT = "timeout"
ERR_BACKEND_FAILED = "backend_failed"
ERR_OUT_OF_MEMORY = "out_of_memory"
ERR_NOT_FOUND = "not_found"
