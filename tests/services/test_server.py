"""Every endpoint through the client against a live server; bad input; failures; queue and concurrency."""
from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from uplift.core.camera import Camera
from uplift.core.image_io import encode_png, load_image, load_mask
from uplift.services import protocol as P
from uplift.services.api import HttpServices
from uplift.services.backends.grabcut import GrabCutSegmenter
from uplift.services.client import UpliftClient
from uplift.services.config import ServerConfig
from uplift.services.errors import (BackendNotLoadedError, BadRequestError, RequestTimeoutError, ServerBusyError,
                                    ServerFailedError)

from live_server import assert_healthy, default_server, running, scene  # noqa: F401 (fixture)

GARBAGE = b"\x89PNG\r\n\x1a\n this is not really a PNG" + bytes(range(256))


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (IHDR only, no pixel data): 0x0 or huge for cheap."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# -- every endpoint ---------------------------------------------------------------------------

def test_health_names_service_backends_device_and_queue(default_server):
    info = UpliftClient(default_server).health()
    assert info["service"] == P.SERVICE_NAME and info["api"] == P.API_VERSION
    assert info["backends"] == {"segment": "grabcut", "lift": "inflate", "inpaint": "structure_texture"}
    assert info["loaded"] == info["backends"]
    assert info["device"] == "cpu" and info["cuda"] is None
    assert info["limits"]["max_pixels"] == 2_000_000 and info["auth"] is False


def test_segment_endpoint(default_server):
    image, mask = scene()
    reply = UpliftClient(default_server).segment(encode_png(image), box=[14, 10, 50, 38])
    got = load_mask(reply.mask_png, shape=mask.shape)
    assert 0 <= reply.score <= 1
    assert (got & mask).sum() / (got | mask).sum() > 0.8


def test_segment_with_points_only(default_server):
    image, mask = scene()
    result = HttpServices(UpliftClient(default_server)).segment(image, points=[[32, 24], [2, 2]], labels=[1, 0])
    assert result.mask[24, 32] and not result.mask[2, 2]


def test_lift_endpoint_returns_a_placed_ply(default_server):
    from uplift.core.ply import read_ply

    image, mask = scene()
    cam = Camera.from_fov(image.shape[1], image.shape[0])
    ply = UpliftClient(default_server).lift(encode_png(image), encode_png(mask), cam.to_dict())
    g = read_ply(ply)
    uv, depth = cam.project(g.means.double().numpy())
    assert len(g) > mask.sum() and (depth > 0).all()
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < 64) & (uv[:, 1] >= 0) & (uv[:, 1] < 48)
    assert inside.all()
    assert mask[uv[:, 1].astype(int), uv[:, 0].astype(int)].mean() > 0.95  # splats sit on the mask's rays


def test_inpaint_endpoint_fill_and_seam(default_server):
    image, mask = scene()
    services = HttpServices(UpliftClient(default_server))
    from uplift.core.compositing import dilate, seam_ring

    filled = services.inpaint(image, mask, dilate=3)
    changed = (filled != image).any(-1)
    assert changed.any() and not (changed & ~dilate(mask, 3)).any()
    seam = services.inpaint(image, mask, mode="seam", dilate=2)
    changed = (seam != image).any(-1)
    assert changed.any() and not (changed & ~seam_ring(mask, 2)).any()


def test_openapi_documents_the_binary_protocol(default_server):
    import urllib.request

    schema = json.loads(urllib.request.urlopen(default_server + "/openapi.json").read())
    paths = schema["paths"]
    assert set(paths) >= {P.HEALTH_PATH, P.SEGMENT_PATH, P.LIFT_PATH, P.INPAINT_PATH}
    lift = paths[P.LIFT_PATH]["post"]
    assert "multipart/form-data" in lift["requestBody"]["content"]
    assert "application/octet-stream" in lift["responses"]["200"]["content"]
    assert "image/png" in paths[P.SEGMENT_PATH]["post"]["responses"]["200"]["content"]
    assert {"400", "401", "413", "500", "503"} <= set(paths[P.INPAINT_PATH]["post"]["responses"])


# -- bad input: status code, message, and the server still healthy -------------------------------

def raw(url: str, path: str, fields: dict, token: str | None = None):
    """POST multipart and return (status, json body) without the client's error mapping."""
    client = UpliftClient(url, token=token, retries=0)
    body, ctype = __import__("uplift.services.client", fromlist=["x"]).encode_multipart(fields)
    reply = client._send_once("POST", path, body, {"Content-Type": ctype})
    assert reply.headers.get(P.SERVICE_HEADER.lower()) == P.SERVICE_NAME
    return reply.status, json.loads(reply.body)


CAM = Camera.from_fov(64, 48).to_dict()


def bad_cases():
    image, mask = scene()
    img, msk = encode_png(image), encode_png(mask)
    other = encode_png(np.ones((20, 20), bool))
    empty = encode_png(np.zeros((48, 64), bool))
    box = json.dumps({"box": [10, 10, 40, 40]})
    return [
        ("segment garbage", P.SEGMENT_PATH, {"image": GARBAGE, "params": box}, 400, "bad_image", "not an image format|cannot be decoded"),
        ("segment 0x0", P.SEGMENT_PATH, {"image": png_with_size(0, 0), "params": box}, 400, "bad_image", ""),
        ("segment huge", P.SEGMENT_PATH, {"image": png_with_size(30000, 30000), "params": box}, 413, "too_large", "pixels"),
        ("segment box outside", P.SEGMENT_PATH, {"image": img, "params": json.dumps({"box": [100, 100, 200, 200]})}, 400, "bad_params", "outside"),
        ("segment point outside", P.SEGMENT_PATH, {"image": img, "params": json.dumps({"points": [[-5, 3]], "labels": [1]})}, 400, "bad_params", "inside"),
        ("segment no prompt", P.SEGMENT_PATH, {"image": img, "params": "{}"}, 400, "bad_params", "point or a box"),
        ("segment params not json", P.SEGMENT_PATH, {"image": img, "params": "{box"}, 400, "bad_params", "JSON"),
        ("segment missing image", P.SEGMENT_PATH, {"params": box}, 400, "bad_params", "image"),
        ("lift garbage", P.LIFT_PATH, {"image": GARBAGE, "mask": msk, "camera": json.dumps(CAM)}, 400, "bad_image", ""),
        ("lift mismatched mask", P.LIFT_PATH, {"image": img, "mask": other, "camera": json.dumps(CAM)}, 400, "bad_mask", "20x20.*64x48"),
        ("lift empty mask", P.LIFT_PATH, {"image": img, "mask": empty, "camera": json.dumps(CAM)}, 400, "bad_mask", "empty"),
        ("lift camera size", P.LIFT_PATH, {"image": img, "mask": msk, "camera": json.dumps(Camera.from_fov(32, 24).to_dict())}, 400, "bad_camera", "32x24"),
        ("lift camera garbage", P.LIFT_PATH, {"image": img, "mask": msk, "camera": json.dumps({"width": 3})}, 400, "bad_camera", "lacks"),
        ("lift 0x0", P.LIFT_PATH, {"image": png_with_size(0, 0), "mask": msk, "camera": json.dumps(CAM)}, 400, "bad_image", ""),
        ("lift huge", P.LIFT_PATH, {"image": png_with_size(5000, 5000), "mask": msk, "camera": json.dumps(CAM)}, 413, "too_large", ""),
        ("inpaint garbage mask", P.INPAINT_PATH, {"image": img, "mask": GARBAGE}, 400, "bad_image", "mask"),
        ("inpaint 0x0", P.INPAINT_PATH, {"image": png_with_size(0, 0), "mask": msk}, 400, "bad_image", ""),
        ("inpaint mismatched mask", P.INPAINT_PATH, {"image": img, "mask": other}, 400, "bad_mask", "20x20"),
        ("inpaint empty mask", P.INPAINT_PATH, {"image": img, "mask": empty}, 400, "bad_mask", "empty"),
        ("inpaint bad mode", P.INPAINT_PATH, {"image": img, "mask": msk, "params": json.dumps({"mode": "blur"})}, 400, "bad_params", "mode"),
        ("inpaint absurd dilate", P.INPAINT_PATH, {"image": img, "mask": msk, "params": json.dumps({"dilate": 10**9})}, 400, "bad_params", "dilate"),
    ]


@pytest.mark.parametrize("case", bad_cases(), ids=lambda c: c[0])
def test_bad_input_is_a_4xx_with_a_message(default_server, case):
    _, path, fields, status, code, pattern = case
    got_status, body = raw(default_server, path, fields)
    assert (got_status, body["error"]) == (status, code), body
    assert body["detail"] and __import__("re").search(pattern, body["detail"]), body["detail"]
    assert_healthy(default_server)


def test_bad_input_reaches_the_client_as_bad_request(default_server):
    image, _ = scene()
    with pytest.raises(BadRequestError, match="empty"):
        HttpServices(UpliftClient(default_server)).inpaint(image, np.zeros((48, 64), bool))


def test_unknown_path_is_an_uplift_404(default_server):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(default_server + "/v2/segment")
    assert err.value.code == 404 and err.value.headers[P.SERVICE_HEADER] == P.SERVICE_NAME
    assert "API v1" in json.loads(err.value.read())["detail"]


def test_wrong_token_on_every_endpoint():
    image, mask = scene()
    fields = {"image": encode_png(image), "mask": encode_png(mask), "camera": json.dumps(CAM),
              "params": json.dumps({"box": [10, 10, 40, 40]})}
    with running(ServerConfig(token="right")) as url:
        for path in (P.SEGMENT_PATH, P.LIFT_PATH, P.INPAINT_PATH):
            status, body = raw(url, path, fields, token="wrong")
            assert (status, body["error"]) == (401, "unauthorized") and "token" in body["detail"]
        assert_healthy(url, token="right")


def test_upload_limit():
    image, mask = scene(200, 200)
    with running(ServerConfig(max_upload_bytes=20_000)) as url:
        big = encode_png((np.random.default_rng(0).random((200, 200, 3)) * 255).astype(np.uint8))
        assert len(big) > 20_000
        status, body = raw(url, P.SEGMENT_PATH, {"image": big, "params": json.dumps({"box": [1, 1, 9, 9]})})
        assert (status, body["error"]) == (413, "too_large") and "20,000" in body["detail"]
        assert_healthy(url)


def test_upload_limit_without_content_length():
    """A chunked upload announces no size: the server counts the bytes as they arrive."""
    import http.client

    from uplift.services.client import encode_multipart

    big = (np.random.default_rng(1).random((200, 200, 3)) * 255).astype(np.uint8)
    body, ctype = encode_multipart({"image": encode_png(big), "params": json.dumps({"box": [1, 1, 9, 9]})})
    with running(ServerConfig(max_upload_bytes=20_000)) as url:
        conn = http.client.HTTPConnection(*url[len("http://"):].split(":"), timeout=30)
        chunks = (body[i:i + 4096] for i in range(0, len(body), 4096))
        conn.request("POST", P.SEGMENT_PATH, body=chunks, headers={"Content-Type": ctype}, encode_chunked=True)
        reply = conn.getresponse()
        assert reply.status == 413 and json.loads(reply.read())["error"] == "too_large"
        conn.close()
        assert_healthy(url)


def test_missing_prompt_for_a_prompted_backend():
    class PromptedInpainter:
        name, takes_prompt = "prompted", True

        def inpaint(self, image, region, prompt):
            return np.where(region[..., None], 128, image).astype(np.uint8)

    image, mask = scene()
    with running(ServerConfig(), inpainter=PromptedInpainter()) as url:
        status, body = raw(url, P.INPAINT_PATH, {"image": encode_png(image), "mask": encode_png(mask)})
        assert (status, body["error"]) == (400, "bad_params") and "needs a prompt" in body["detail"]
        out = HttpServices(UpliftClient(url)).inpaint(image, mask, prompt="grass")
        assert (out[mask] == 128).all()
        assert_healthy(url)


# -- backend failures: 5xx with a message, server keeps serving ---------------------------------

class ExplodingSegmenter:
    name = "exploding"

    def __init__(self, exc):
        self.exc = exc

    def segment(self, image, points, labels, box):
        raise self.exc


def test_cuda_out_of_memory_is_a_500_and_the_server_survives():
    import torch

    image, _ = scene()
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    with running(ServerConfig(), segmenter=ExplodingSegmenter(oom)) as url:
        status, body = raw(url, P.SEGMENT_PATH, {"image": encode_png(image), "params": json.dumps({"box": [1, 1, 30, 30]})})
        assert (status, body["error"]) == (500, "out_of_memory") and "GPU memory" in body["detail"]
        with pytest.raises(ServerFailedError, match="ran out of GPU memory"):
            HttpServices(UpliftClient(url)).segment(image, box=[1, 1, 30, 30])
        assert_healthy(url)
        # inpainting still works on the same server
        assert HttpServices(UpliftClient(url)).inpaint(image, scene()[1]).shape == image.shape


def test_backend_crash_is_a_500_with_its_message():
    image, _ = scene()
    with running(ServerConfig(), segmenter=ExplodingSegmenter(ValueError("weights are corrupt"))) as url:
        with pytest.raises(ServerFailedError, match="exploding backend failed: ValueError: weights are corrupt"):
            HttpServices(UpliftClient(url)).segment(image, box=[1, 1, 30, 30])
        assert_healthy(url)


def test_backend_not_loaded():
    image, mask = scene()
    with running(ServerConfig(segment="none")) as url:
        assert UpliftClient(url).health()["loaded"]["segment"] is None
        with pytest.raises(BackendNotLoadedError, match="without a segment backend"):
            HttpServices(UpliftClient(url)).segment(image, box=[1, 1, 30, 30])
        assert HttpServices(UpliftClient(url)).inpaint(image, mask).shape == image.shape


class GatedSegmenter:
    """Real GrabCut that first waits until the test opens the gate (so jobs overlap for sure)."""
    name = "gated"

    def __init__(self):
        self.gate = threading.Event()
        self.started = threading.Event()
        self.inner = GrabCutSegmenter()

    def segment(self, image, points, labels, box):
        self.started.set()
        self.gate.wait(30)
        return self.inner.segment(image, points, labels, box)


def test_health_answers_while_a_job_runs_and_the_job_times_out():
    segmenter = GatedSegmenter()
    image, _ = scene()
    with running(ServerConfig(request_timeout_s=1.0), segmenter=segmenter) as url:
        errors = []
        worker = threading.Thread(target=lambda: errors.append(pytest.raises(
            RequestTimeoutError, HttpServices(UpliftClient(url, retries=0)).segment, image, box=[1, 1, 30, 30])))
        worker.start()
        assert segmenter.started.wait(10)
        info = UpliftClient(url).health()          # the event loop is free while the job runs
        assert info["queue"]["running"] == 1
        worker.join(20)
        assert errors and "limit of 1 s" in str(errors[0].value)
        segmenter.gate.set()
        deadline = time.monotonic() + 10
        while UpliftClient(url).health()["queue"]["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert HttpServices(UpliftClient(url)).segment(image, box=[14, 10, 50, 38]).mask.any()


def test_twenty_concurrent_requests_none_lost():
    segmenter = GatedSegmenter()
    image, mask = scene()
    with running(ServerConfig(queue_size=3), segmenter=segmenter) as url:
        def one(_):
            try:
                return HttpServices(UpliftClient(url, retries=0)).segment(image, box=[14, 10, 50, 38])
            except ServerBusyError as exc:
                return exc

        with ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(one, i) for i in range(20)]
            assert segmenter.started.wait(10)
            # While the first job holds the gate, one runs and queue_size 3 wait: the other 16 must be
            # answered busy. Wait for them (not a fixed sleep: on a loaded machine requests arrive late).
            deadline = time.monotonic() + 60
            while sum(f.done() for f in futures) < 16 and time.monotonic() < deadline:
                time.sleep(0.05)
            done_while_held = sum(f.done() for f in futures)
            segmenter.gate.set()
            results = [f.result(timeout=60) for f in futures]
        answers = [r for r in results if not isinstance(r, Exception)]
        busy = [r for r in results if isinstance(r, ServerBusyError)]
        assert len(answers) + len(busy) == 20
        assert done_while_held == 16 and len(busy) == 16 and len(answers) == 4  # one running + queue_size 3
        for r in answers:
            assert (r.mask & mask).sum() / (r.mask | mask).sum() > 0.8
        assert all("busy" in str(b) for b in busy)
        assert_healthy(url)


def test_twenty_concurrent_requests_with_retries_all_answered():
    image, mask = scene()
    with running(ServerConfig(queue_size=2)) as url:
        def one(_):
            return HttpServices(UpliftClient(url, retries=40, max_retry_wait=0.2)).segment(image, box=[14, 10, 50, 38])

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(one, range(20), timeout=120))
        assert len(results) == 20 and all(r.mask.shape == mask.shape for r in results)
        masks = np.stack([r.mask for r in results])
        assert (masks == masks[0]).all()  # the same request gives the same answer under load
