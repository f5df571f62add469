"""`uplift segment | lift | inpaint | serve` end to end: in-process backends, a live
`uplift serve` subprocess, and the errors a user sees."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from token_checks import assert_generated_token

from uplift.cli.main import main
from uplift.core.camera import Camera
from uplift.core.image_io import load_image, load_mask, save_png

UPLIFT = [sys.executable, "-m", "uplift.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def photo(tmp_path, shared_data):
    """truck.jpg's rear wheel: a 320x260 crop at half size (160x130)."""
    from PIL import Image

    crop = load_image(shared_data / "photos" / "truck.jpg")[600:860, 380:700]
    path = tmp_path / "photo.png"
    Image.fromarray(crop).resize((160, 130), Image.Resampling.LANCZOS).save(path)
    return path


@pytest.fixture(scope="module")
def live_server():
    """`uplift serve` as a real subprocess on a free port."""
    port = free_port()
    proc = subprocess.Popen([*UPLIFT, "serve", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    from uplift.services.client import UpliftClient
    from uplift.services.errors import ServerUnreachableError

    deadline = time.monotonic() + 60
    while True:
        try:
            UpliftClient(url, retries=0).health()
            break
        except ServerUnreachableError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"uplift serve did not start: {proc.stdout.read()}")
            time.sleep(0.2)
    yield url, port
    proc.terminate()
    proc.wait(20)


@pytest.mark.slow
def test_segment_lift_inpaint_in_process(photo, tmp_path, capsys):
    mask, ply, cam, plate = (tmp_path / n for n in ("mask.png", "obj.ply", "cam.json", "plate.png"))
    before = photo.read_bytes()
    assert main(["segment", str(photo), "--box", "20,10,145,125", "--point", "80,70", "-o", str(mask)]) == 0
    m = load_mask(mask)
    assert m.shape == (130, 160) and 0.1 < m.mean() < 0.9 and m[70, 80]
    assert main(["lift", str(photo), "--mask", str(mask), "-o", str(ply), "--camera-out", str(cam)]) == 0
    from uplift.core.ply import read_ply

    g = read_ply(ply)
    camera = Camera.load(cam)
    assert (camera.width, camera.height) == (160, 130) and len(g) > m.sum()
    assert main(["inpaint", str(photo), "--mask", str(mask), "-o", str(plate), "--dilate", "4"]) == 0
    out, image = load_image(plate), load_image(photo)
    from uplift.core.compositing import dilate

    assert not ((out != image).any(-1) & ~dilate(m, 4)).any()
    assert photo.read_bytes() == before  # inputs are never modified
    assert "wrote" in capsys.readouterr().out


def test_lift_through_a_given_camera(photo, tmp_path):
    mask, cam, ply = tmp_path / "mask.png", tmp_path / "cam.json", tmp_path / "obj.ply"
    m = np.zeros((130, 160), bool)
    m[50:100, 50:110] = True
    save_png(mask, m)
    camera = Camera.from_fov(160, 130, 40.0)
    camera.save(cam)
    assert main(["lift", str(photo), "--mask", str(mask), "--camera", str(cam), "-o", str(ply)]) == 0
    from uplift.core.ply import read_ply

    uv, z = camera.project(read_ply(ply).means.double().numpy())
    assert (z > 0).all() and (uv[:, 0] >= 49).all() and (uv[:, 0] <= 111).all()
    wrong = tmp_path / "wrong.json"
    Camera.from_fov(100, 100).save(wrong)
    assert main(["lift", str(photo), "--mask", str(mask), "--camera", str(wrong), "-o", str(ply)]) == 2


@pytest.mark.slow
def test_commands_against_a_live_uplift_serve(live_server, photo, tmp_path):
    url, _ = live_server
    mask, ply, plate = tmp_path / "mask.png", tmp_path / "obj.ply", tmp_path / "plate.png"
    run = lambda *args: subprocess.run([*UPLIFT, *args], capture_output=True, text=True, timeout=300)  # noqa: E731
    r = run("segment", str(photo), "--box", "20,10,145,125", "-o", str(mask), "--server", url)
    assert r.returncode == 0, r.stderr
    r = run("lift", str(photo), "--mask", str(mask), "-o", str(ply), "--server", url)
    assert r.returncode == 0, r.stderr
    r = run("inpaint", str(photo), "--mask", str(mask), "-o", str(plate), "--server", url)
    assert r.returncode == 0, r.stderr
    assert load_image(plate).shape == (130, 160, 3)


def test_second_serve_on_the_same_port_says_who_is_there(live_server):
    _, port = live_server
    r = subprocess.run([*UPLIFT, "serve", "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "an Uplift server" in r.stderr and "already runs there" in r.stderr and "Traceback" not in r.stderr


def test_serve_on_a_port_held_by_another_program():
    import http.server
    import threading

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(Exception) as err:
            from uplift.services.server import check_port_free

            check_port_free("127.0.0.1", httpd.server_address[1])
        assert "another program holds it" in str(err.value)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_user_errors_are_one_line_messages(photo, tmp_path, capsys):
    mask = tmp_path / "mask.png"
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["segment", str(photo), "--box", "1,1,50,50", "-o", str(mask), "--server", dead]) == 2
    assert "is `uplift serve` running" in capsys.readouterr().err
    assert main(["segment", str(photo), "-o", str(mask)]) == 2
    assert "--box" in capsys.readouterr().err
    assert main(["segment", str(photo), "--box", "500,500,600,600", "-o", str(mask)]) == 2
    assert "outside" in capsys.readouterr().err
    save_png(mask, np.ones((10, 10), bool))
    assert main(["inpaint", str(photo), "--mask", str(mask), "-o", str(tmp_path / "p.png")]) == 2
    assert "10x10" in capsys.readouterr().err
    assert main(["inpaint", str(photo), "--mask", str(mask), "-o", str(photo)]) == 2
    assert "also an input" in capsys.readouterr().err
    save_png(mask, np.ones((130, 160), bool))
    assert main(["inpaint", str(photo), "--mask", str(mask), "-o", str(tmp_path / "p.png"),
                 "--backend", "lama", "--lama-model", str(tmp_path / "none.pt")]) == 2
    assert "none.pt is not a file" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_serve_rejects_bad_settings(capsys):
    assert main(["serve", "--segment", "sam", "--port", str(free_port())]) == 2
    assert "--sam-checkpoint" in capsys.readouterr().err


def test_serve_on_a_non_loopback_bind_generates_a_token(tmp_path):
    """`uplift serve --host 0.0.0.0` without --token: a random token, printed once and written 0600.
    The server binds every interface but is reached here only through 127.0.0.1."""
    from uplift.services.client import UpliftClient
    from uplift.services.errors import AuthenticationError, ServerUnreachableError

    port, token_file, log = free_port(), tmp_path / "serve.token", tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*UPLIFT, "serve", "--host", "0.0.0.0", "--port", str(port), "--token-file",
                                 str(token_file)], stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                UpliftClient(url, retries=0).health()
                pytest.fail("a server on 0.0.0.0 answered without a token")
            except AuthenticationError as exc:
                assert "set the token" in str(exc)
                break
            except ServerUnreachableError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert_generated_token(token_file, log, port, url, "uvicorn")
        r = subprocess.run([*UPLIFT, "segment", str(TEST_PHOTO), "--box", "10,10,60,60", "-o", str(tmp_path / "m.png"),
                            "--server", url], capture_output=True, text=True, timeout=120, env=_env_without_token())
        assert r.returncode == 2 and "token" in r.stderr and "Traceback" not in r.stderr
    finally:
        proc.terminate()
        proc.wait(20)


TEST_PHOTO = Path(__file__).resolve().parent / "data" / "photos" / "dog.jpg"


def _env_without_token() -> dict:
    from uplift.services.options import TOKEN_ENV

    return {k: v for k, v in os.environ.items() if k != TOKEN_ENV}


def test_serve_token_options_are_checked(capsys):
    assert main(["serve", "--host", "0.0.0.0", "--token", "abc", "--no-token", "--port", str(free_port())]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["serve", "--replicas", "2", "--port", str(free_port())]) == 2
    assert "--replicas is a Ray Serve option: add --ray" in capsys.readouterr().err
    assert main(["serve", "--ray", "--min-replicas", "1", "--port", str(free_port())]) == 2
    assert "both --min-replicas and --max-replicas" in capsys.readouterr().err
