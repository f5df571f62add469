"""`make demo` runs `scripts/demo.py --out demo-output`; this runs the same script and
checks what it leaves behind."""
from __future__ import annotations

from pathlib import Path

import re
import subprocess
import sys

import numpy as np
import pytest

from uplift.core.image_io import load_image, load_mask
from uplift.pipeline.edit import STAGES
from uplift.pipeline.keep import KEPT_FILES

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    done = subprocess.run([sys.executable, "scripts/demo.py", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out, done.stdout + done.stderr


def test_demo_prints_each_stage_with_its_time(demo):
    _, log = demo
    for stage in STAGES:
        assert re.search(rf"\[uplift\] {stage}: \d+ ms", log), f"no timing line for {stage}"
    assert "demo.blend written" in log


def test_demo_writes_the_intermediates_final_and_before_after(demo):
    out, _ = demo
    for name in ("photo.png", "before_after.png", "README.txt", "demo.blend", *KEPT_FILES):
        assert name in (out / "README.txt").read_text() or name == "README.txt", name
        assert (out / name).is_file(), name
    photo, final = load_image(out / "photo.png"), load_image(out / "final.png")
    assert photo.shape == final.shape == (400, 600, 3)
    pair = load_image(out / "before_after.png")
    assert pair.shape == (400, 1200, 3)
    assert np.array_equal(pair[:, :600], photo) and np.array_equal(pair[:, 600:], final)


def test_demo_edit_changed_the_cup_and_nothing_far_from_it(demo):
    out, _ = demo
    photo, final = load_image(out / "photo.png"), load_image(out / "final.png")
    mask = load_mask(out / "mask.png", shape=photo.shape[:2])
    region = load_mask(out / "region.png", shape=photo.shape[:2])
    assert 0.1 < mask.mean() < 0.4  # the cup, not the whole photo
    diff = np.abs(final.astype(int) - photo.astype(int)).sum(-1)
    assert (diff[mask] > 30).mean() > 0.2
    assert np.array_equal(final[~region], photo[~region])


def test_demo_blend_is_a_blender_file(demo):
    out, _ = demo
    head = (out / "demo.blend").read_bytes()[:8]
    # Saved compressed (zstd frame) or plain ("BLENDER").
    assert head.startswith(b"BLENDER") or head.startswith(b"\x28\xb5\x2f\xfd")
    assert (out / "demo.blend").stat().st_size > 10_000
