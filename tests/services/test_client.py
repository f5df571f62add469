"""The standard-library client: error types against real sockets, retries, per-phase timeouts."""
from __future__ import annotations

import http.server
import json
import socket
import threading

import numpy as np
import pytest

from uplift.core.camera import Camera
from uplift.core.image_io import encode_png
from uplift.services import protocol as P
from uplift.services.api import HttpServices
from uplift.services.client import ClientTimeouts, UpliftClient, encode_multipart, is_loopback_url
from uplift.services.config import ServerConfig
from uplift.services.errors import (AuthenticationError, NotUpliftServerError, RemoteServerNotAllowedError,
                                    RequestTimeoutError, ServerBusyError, ServerFailedError, ServerUnreachableError)

from live_server import assert_healthy, running, scene


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StubServer:
    """A plain http.server on loopback answering with scripted (status, headers, body) replies."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[str] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stub.requests.append(f"{self.command} {self.path}")
                status, headers, body = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


UPLIFT = {P.SERVICE_HEADER: P.SERVICE_NAME}
HEALTH_OK = (200, {**UPLIFT, "Content-Type": "application/json"},
             json.dumps({"service": "uplift", "api": "v1"}).encode())


def test_dead_port_is_unreachable_with_a_hint():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnreachableError, match=r"uplift serve.* running"):
        UpliftClient(url).health()


def test_a_plain_web_server_is_not_uplift():
    with StubServer([(200, {"Content-Type": "text/html"}, b"<html>directory listing</html>")]) as stub:
        with pytest.raises(NotUpliftServerError, match="not an Uplift server.*port"):
            UpliftClient(stub.url).health()
        image, mask = scene()
        with pytest.raises(NotUpliftServerError):
            UpliftClient(stub.url).segment(encode_png(image), box=[0, 0, 10, 10])


def test_python_http_server_module_is_not_uplift(tmp_path):
    """The stdlib's own file server (SimpleHTTPRequestHandler) on the port: 404 HTML, not Uplift."""
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(NotUpliftServerError, match="not an Uplift server"):
            UpliftClient(f"http://127.0.0.1:{httpd.server_address[1]}").health()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_other_api_version_is_refused():
    reply = (200, UPLIFT, json.dumps({"service": "uplift", "api": "v2"}).encode())
    with StubServer([reply]) as stub:
        with pytest.raises(NotUpliftServerError, match="API 'v2'"):
            UpliftClient(stub.url).health()


def test_token_checks_against_a_live_server():
    with running(ServerConfig(token="s3cret")) as url:
        with pytest.raises(AuthenticationError, match="token"):
            UpliftClient(url).health()
        with pytest.raises(AuthenticationError, match="does not match"):
            UpliftClient(url, token="wrong").health()
        image, _ = scene()
        with pytest.raises(AuthenticationError):
            UpliftClient(url, token="wrong").segment(encode_png(image), box=[10, 10, 50, 40])
        info = UpliftClient(url, token="s3cret").health()
        assert info["auth"] is True
        assert_healthy(url, token="s3cret")


def test_503_is_retried_after_the_hint_then_succeeds():
    busy = (503, {**UPLIFT, "Retry-After": "0", "Content-Type": "application/json"},
            json.dumps({"service": "uplift", "error": "busy", "detail": "queue full"}).encode())
    with StubServer([busy, busy, HEALTH_OK]) as stub:
        info = UpliftClient(stub.url, retries=3).health()
        assert info["service"] == "uplift"
        assert len(stub.requests) == 3


def test_503_retries_are_bounded():
    busy = (503, {**UPLIFT, "Retry-After": "0"}, json.dumps({"error": "busy", "detail": "queue full"}).encode())
    with StubServer([busy]) as stub:
        with pytest.raises(ServerBusyError, match="busy"):
            UpliftClient(stub.url, retries=2).health()
        assert len(stub.requests) == 3  # the first try and two retries


def test_truncated_ply_from_the_server_is_a_clear_failure():
    """An Uplift-branded lift answer whose PLY is cut short (a backend or proxy fault)."""
    from uplift.core.ply import ply_bytes
    from uplift.services.backends.inflate import InflateConfig, InflateLifter

    image, mask = scene()
    cam = Camera.from_fov(image.shape[1], image.shape[0])
    good = ply_bytes(InflateLifter(InflateConfig(fit_passes=0)).lift(image, mask, cam))
    cut = good[: len(good) * 2 // 3]
    with StubServer([(200, {**UPLIFT, "Content-Type": "application/octet-stream"}, cut)]) as stub:
        services = HttpServices(UpliftClient(stub.url))
        with pytest.raises(ServerFailedError, match="unreadable answer.*(truncated|short|bytes)"):
            services.lift(image, mask, cam)


def test_connection_closed_mid_answer():
    lying = (200, {**UPLIFT, "Content-Length": "5000"}, b"ply\nformat binary_little_endian 1.0\n")
    with StubServer([lying]) as stub:
        with pytest.raises(ServerFailedError, match="mid-answer"):
            UpliftClient(stub.url).lift(b"x", b"y", {})


def test_job_timeout_is_its_own_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        client = UpliftClient(f"http://127.0.0.1:{listener.getsockname()[1]}",
                              timeouts=ClientTimeouts(connect=1.0, upload=1.0, job=0.3))
        with pytest.raises(RequestTimeoutError, match="did not answer within 0.3 s"):
            client.health()
    finally:
        listener.close()


def test_loopback_detection_and_refusal():
    assert is_loopback_url("http://127.0.0.1:8765") and is_loopback_url("http://localhost:1")
    assert is_loopback_url("http://[::1]:8765") and is_loopback_url("http://127.8.0.2/")
    assert not is_loopback_url("http://192.168.1.4:8765") and not is_loopback_url("http://example.com")
    with pytest.raises(RemoteServerNotAllowedError, match="online access"):
        UpliftClient("http://192.168.1.4:8765", loopback_only=True)
    UpliftClient("http://127.0.0.1:8765", loopback_only=True)  # allowed


def test_multipart_encoding_round_trips_through_a_real_parser():
    from email.parser import BytesParser
    from email.policy import HTTP

    body, ctype = encode_multipart({"image": b"\x00\x01binary\r\n--not-a-boundary", "params": '{"a": 1}'})
    msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
    parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True) for p in msg.iter_parts()}
    assert parts == {"image": b"\x00\x01binary\r\n--not-a-boundary", "params": b'{"a": 1}'}
