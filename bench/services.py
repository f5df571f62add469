"""Model-service speed: HTTP overhead of `uplift serve` against in-process calls, and the
embedded backends (GrabCut, inflate lifting, the default structure_texture inpainting) on the test photos (tests/data/photos)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import Row, median_time

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data" / "photos"


def rows() -> list[Row]:
    import cv2

    from uplift.core.camera import Camera
    from uplift.core.image_io import load_image
    from uplift.services.api import HttpServices
    from uplift.services.client import UpliftClient
    from uplift.services.config import ServerConfig
    from uplift.services.local import LocalServices
    from uplift.services.server import create_app, start_background

    if not (PHOTOS / "truck.jpg").is_file():
        return [Row("services", "test photos missing", None, "", str(PHOTOS))]
    truck = load_image(PHOTOS / "truck.jpg")
    box = [110, 270, 1726, 860]
    dog = cv2.resize(load_image(PHOTOS / "dog.jpg")[180:420, 150:450], (150, 120), interpolation=cv2.INTER_AREA)
    dog_mask = np.zeros((120, 150), bool)
    cv2.ellipse(dog_mask.view(np.uint8), (75, 70), (55, 45), 0, 0, 360, 1, -1)
    dog_cam = Camera.from_fov(150, 120)

    local = LocalServices(ServerConfig())
    server = start_background(create_app(ServerConfig(), local))
    try:
        client = UpliftClient(server.url)
        http = HttpServices(client)
        health = median_time(client.health, repeats=20)
        seg_local = median_time(lambda: local.segment(truck, box=box), repeats=3)
        seg_http = median_time(lambda: http.segment(truck, box=box), repeats=3)
        lift_local = median_time(lambda: local.lift(dog, dog_mask, dog_cam), repeats=3)
        count = len(local.lift(dog, dog_mask, dog_cam))
        truck_mask = local.segment(truck, box=box).mask
        inpaint_local = median_time(lambda: local.inpaint(truck, truck_mask, dilate=8), repeats=3)
        inpaint_http = median_time(lambda: http.inpaint(truck, truck_mask, dilate=8), repeats=3)
    finally:
        server.stop()
    return [
        Row("services", "GET /v1/health round trip", health * 1000, "ms", "loopback, median of 20"),
        Row("services", "segment grabcut truck 1800x1200 (in-process)", seg_local, "s"),
        Row("services", "segment grabcut truck via HTTP", seg_http, "s", f"x{seg_http / seg_local:.2f} of in-process"),
        Row("services", "lift inflate 150x120 crop (3 fit passes)", lift_local, "s", f"{count} Gaussians"),
        Row("services", f"inpaint {local.config.inpaint} truck (in-process)", inpaint_local, "s"),
        Row("services", f"inpaint {local.config.inpaint} truck via HTTP", inpaint_http, "s",
            f"x{inpaint_http / inpaint_local:.2f} of in-process (PNG both ways)"),
    ]
