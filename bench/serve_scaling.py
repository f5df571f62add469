"""`uplift serve --ray` throughput against replica count: requests per second for segment
(GrabCut) and inpaint (structure_texture) with 1 and then 2 replicas, each held to one CPU
(one thread), on a local Ray instance on loopback. Reported as the 2 / 1 ratio; the aim is
>= 1.5x for inpaint on a 2-core machine. The client pre-encodes every upload so that its own
CPU use stays small."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .common import Row

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data" / "photos"
SCALE = 0.2           # truck.jpg at 360x240: jobs of a second or two on one thread
CLIENTS = 4           # concurrent requests in flight: enough to keep two replicas busy
REQUESTS = 8          # per kind and replica count


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _truck():
    """-> (360x240 truck photo, its GrabCut mask, the box)."""
    import cv2
    import numpy as np

    from uplift.core.image_io import load_image
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices

    truck = cv2.resize(load_image(PHOTOS / "truck.jpg"), None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
    box = (np.array([110, 270, 1726, 860]) * SCALE).tolist()
    return truck, LocalServices(ServerConfig()).segment(truck, box=box).mask, box


def _inpaint_in_a_process(count: int) -> tuple[float, float]:
    """`count` inpaint jobs in this (pool) process on one thread -> (start, end) wall clock."""
    import cv2
    import torch

    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    truck, mask, _ = _truck()
    services = LocalServices(ServerConfig())
    services.inpaint(truck, mask, dilate=8)   # warm-up
    start = time.perf_counter()
    for _ in range(count):
        services.inpaint(truck, mask, dilate=8)
    return start, time.perf_counter()


def _machine_scaling(jobs: int = 4) -> dict[int, float]:
    """The machine's own answer, without Ray or HTTP: inpaint jobs per second in 1 and in 2
    one-thread processes. On a shared machine this bounds what 2 replicas can show."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    rates = {}
    context = multiprocessing.get_context("spawn")
    for processes in (1, 2):
        with ProcessPoolExecutor(processes, mp_context=context) as pool:
            spans = list(pool.map(_inpaint_in_a_process, [jobs // processes] * processes))
        rates[processes] = jobs / (max(end for _, end in spans) - min(start for start, _ in spans))
    return rates


def _requests():
    """-> {kind: (path, multipart body, content type)} for a 360x240 truck photo."""
    import json

    from uplift.core.image_io import encode_png
    from uplift.services import protocol as P
    from uplift.services.client import encode_multipart

    truck, mask, box = _truck()
    image = encode_png(truck, P.PNG_COMPRESS_LEVEL)
    segment = encode_multipart({"image": image, "params": json.dumps({"box": box})})
    inpaint = encode_multipart({"image": image, "mask": encode_png(mask, P.PNG_COMPRESS_LEVEL),
                                "params": json.dumps({"dilate": 8})})
    return {"segment": (P.SEGMENT_PATH, *segment), "inpaint": (P.INPAINT_PATH, *inpaint)}


def _throughput(url: str, path: str, body: bytes, ctype: str) -> float:
    """Requests per second with CLIENTS requests always in flight (one warm-up each first)."""
    from uplift.services.client import UpliftClient

    client = UpliftClient(url, retries=0)

    def one(_):
        reply = client._send_once("POST", path, body, {"Content-Type": ctype})
        if reply.status != 200:
            raise RuntimeError(f"HTTP {reply.status}: {reply.body[:200]!r}")

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(CLIENTS)))
        start = time.perf_counter()
        list(pool.map(one, range(REQUESTS)))
        return REQUESTS / (time.perf_counter() - start)


def rows() -> list[Row]:
    try:
        import ray  # noqa: F401
    except ImportError:
        return [Row("serve", "Ray Serve replica scaling", None, "", "ray is not installed")]
    from uplift.services.config import RayConfig, ServerConfig
    from uplift.services.ray_host import deploy, start_ray_host

    if not (PHOTOS / "truck.jpg").is_file():
        return [Row("serve", "test photos missing", None, "", str(PHOTOS))]
    requests = _requests()
    config = ServerConfig(port=_free_port())
    rates: dict[tuple[str, int], float] = {}
    host = start_ray_host(config, RayConfig(replicas=1))
    try:
        for replicas in (1, 2):
            if replicas > 1:
                deploy(config, RayConfig(replicas=replicas))
            for kind, (path, body, ctype) in requests.items():
                rates[kind, replicas] = _throughput(host.url, path, body, ctype)
    finally:
        host.stop()
    machine = _machine_scaling()
    out = [Row("serve", "inpaint, plain processes (no Ray, no HTTP), 1 -> 2", machine[2] / machine[1], "x",
               f"{machine[1]:.3f} -> {machine[2]:.3f} jobs/s: what this machine itself gives two one-thread workers")]
    for kind in requests:
        one, two = rates[kind, 1], rates[kind, 2]
        out.append(Row("serve", f"{kind} via Ray Serve, 1 replica (1 CPU)", one, "req/s", f"{CLIENTS} in flight"))
        out.append(Row("serve", f"{kind} via Ray Serve, 2 replicas (1 CPU each)", two, "req/s",
                       f"x{two / one:.2f} of 1 replica" + (" (aim >= 1.5x)" if kind == "inpaint" else "")))
    return out


if __name__ == "__main__":
    for r in rows():
        print(f"{r.name:<48} {r.value if r.value is None else round(r.value, 3)} {r.unit} {r.note}")
