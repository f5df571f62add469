"""HTTP client for `uplift serve` — standard library only, because it runs inside Blender.

Blocking by design: the Blender layer calls it from a worker thread so the UI never
waits on the network. Each phase has its own timeout (connect, upload, job), a 503
("queue full") is retried after the server's Retry-After hint a bounded number of
times, and every failure becomes one of the `services.errors` classes with a message
that says what to do.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import protocol as P
from .errors import (
    AuthenticationError,
    BackendNotLoadedError,
    BadRequestError,
    NotUpliftServerError,
    RemoteServerNotAllowedError,
    RequestTimeoutError,
    ServerBusyError,
    ServerFailedError,
    ServerUnreachableError,
    ServiceError,
)


@dataclass(frozen=True)
class ClientTimeouts:
    connect: float = 3.0    # seconds to open the TCP connection
    upload: float = 60.0    # seconds allowed per socket write while sending the request
    job: float = 600.0      # seconds to wait for the answer once the request is sent

    def __post_init__(self) -> None:
        for name in ("connect", "upload", "job"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ClientTimeouts.{name} must be positive")


@dataclass(frozen=True)
class SegmentResponse:
    mask_png: bytes   # PNG, mode L, 255 inside the mask, the image's size
    score: float


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]   # lower-case names
    body: bytes


def is_loopback_url(url: str) -> bool:
    """True when `url`'s host is this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def encode_multipart(fields: dict[str, bytes | str]) -> tuple[bytes, str]:
    """-> (body, content type). bytes values become file parts, str values text parts."""
    boundary = "uplift-" + uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in fields.items():
        if isinstance(value, str):
            head = f'Content-Disposition: form-data; name="{name}"\r\nContent-Type: application/json\r\n'
            data = value.encode("utf-8")
        else:
            head = (f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                    "Content-Type: application/octet-stream\r\n")
            data = bytes(value)
        chunks += [f"--{boundary}\r\n{head}\r\n".encode("ascii"), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class UpliftClient:
    """One Uplift server at `url` (e.g. http://127.0.0.1:8765)."""

    def __init__(self, url: str = P.DEFAULT_URL, token: str | None = None,
                 timeouts: ClientTimeouts = ClientTimeouts(), retries: int = 3,
                 max_retry_wait: float = 30.0, loopback_only: bool = False) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServiceError(f"server URL {url!r} must look like http://127.0.0.1:{P.DEFAULT_PORT}")
        if loopback_only and not is_loopback_url(url):
            raise RemoteServerNotAllowedError(
                f"{url} is not on this machine; only local servers are allowed "
                "(allow online access in Blender's preferences to use a remote server)")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ServiceError(f"server URL {url!r} has an invalid port") from None
        self.url = url.rstrip("/")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, port
        self._prefix = parts.path.rstrip("/")
        self.token = token
        self.timeouts = timeouts
        if retries < 0 or max_retry_wait < 0:
            raise ValueError("retries and max_retry_wait must be >= 0")
        self.retries = retries
        self.max_retry_wait = max_retry_wait

    # -- endpoints --------------------------------------------------------------
    def health(self) -> dict:
        """The server's identity, backends and device; raises unless it is a compatible Uplift server."""
        reply = self._request("GET", P.HEALTH_PATH)
        try:
            info = json.loads(reply.body)
        except (ValueError, UnicodeDecodeError):
            info = None
        if not isinstance(info, dict) or info.get("service") != P.SERVICE_NAME:
            raise NotUpliftServerError(self._not_uplift("its /v1/health answer is not Uplift's"))
        if info.get("api") != P.API_VERSION:
            raise NotUpliftServerError(
                f"the Uplift server at {self.url} speaks API {info.get('api')!r}, this client {P.API_VERSION!r}; "
                "update the extension or the server so both match")
        return info

    def segment(self, image: bytes, points=(), labels=(), box=None) -> SegmentResponse:
        """image: encoded PNG/JPEG; points: [[x, y], ...] pixels; labels: 1 foreground / 0 background;
        box: [x0, y0, x1, y1] pixels or None."""
        params = {"points": [[float(x), float(y)] for x, y in points], "labels": [int(v) for v in labels],
                  "box": None if box is None else [float(v) for v in box]}
        reply = self._request("POST", P.SEGMENT_PATH, {P.IMAGE_PART: image, P.PARAMS_PART: json.dumps(params)})
        try:
            score = float(reply.headers.get(P.SCORE_HEADER.lower(), "nan"))
        except ValueError:
            score = float("nan")
        return SegmentResponse(reply.body, score)

    def lift(self, image: bytes, mask: bytes, camera: dict, mesh: bytes | None = None,
             mesh_params: dict | None = None) -> bytes:
        """image, mask: encoded images of one size; camera: Camera.to_dict() -> PLY bytes. With `mesh`
        (a mesh file's bytes) the object is lifted onto it; mesh_params: {"format": ".glb" | ".ply" |
        ".stl" | ".obj", "up": "auto" | "y" | "z", "as_placed": bool, "fit": int}."""
        fields = {P.IMAGE_PART: image, P.MASK_PART: mask, P.CAMERA_PART: json.dumps(camera)}
        if mesh is not None:
            fields.update({P.MESH_PART: mesh, P.PARAMS_PART: json.dumps(mesh_params or {})})
        return self._request("POST", P.LIFT_PATH, fields).body

    def inpaint(self, image: bytes, mask: bytes, mode: str = "fill", dilate: int = 0,
                prompt: str | None = None) -> bytes:
        """-> RGB PNG of the image's size; only pixels in the (dilated) mask / seam ring change."""
        params = {"mode": mode, "dilate": int(dilate), "prompt": prompt}
        return self._request("POST", P.INPAINT_PATH, {P.IMAGE_PART: image, P.MASK_PART: mask,
                                                      P.PARAMS_PART: json.dumps(params)}).body

    # -- transport ----------------------------------------------------------------
    def _request(self, method: str, path: str, fields: dict[str, bytes | str] | None = None) -> Reply:
        body, content_type = encode_multipart(fields) if fields is not None else (None, None)
        headers = {"Accept": "application/json, image/png, application/octet-stream"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(self.retries + 1):
            reply = self._send_once(method, path, body, headers)
            if reply.status != 503 or not self._from_uplift(reply):
                break
            if attempt == self.retries:
                break
            time.sleep(self._retry_delay(reply, attempt))
        return self._check(reply)

    def _retry_delay(self, reply: Reply, attempt: int) -> float:
        try:
            hint = float(reply.headers.get("retry-after", ""))
        except ValueError:
            hint = 0.5 * 2 ** attempt
        return min(max(hint, 0.05), self.max_retry_wait)

    def _send_once(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeouts.connect)
        try:
            try:
                conn.connect()
            except (socket.timeout, TimeoutError):
                raise ServerUnreachableError(
                    f"nothing answered at {self.url} within {self.timeouts.connect:g} s — is `uplift serve` running?") from None
            except OSError as exc:
                raise ServerUnreachableError(
                    f"nothing listens at {self.url} ({exc.strerror or exc}) — is `uplift serve` running, "
                    "and on this port?") from None
            try:
                conn.sock.settimeout(self.timeouts.upload)
                conn.request(method, self._prefix + path, body=body, headers=headers)
            except (socket.timeout, TimeoutError):
                raise RequestTimeoutError(f"sending the request to {self.url} took longer than "
                                          f"{self.timeouts.upload:g} s") from None
            except OSError as exc:
                # The server may refuse a too-large upload and close early; its answer is still readable.
                if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                    raise ServerFailedError(f"the connection to {self.url} failed while sending: {exc}") from None
            try:
                conn.sock.settimeout(self.timeouts.job)
                response = conn.getresponse()
                data = response.read()
            except (socket.timeout, TimeoutError):
                raise RequestTimeoutError(f"the server at {self.url} did not answer within "
                                          f"{self.timeouts.job:g} s") from None
            except http.client.IncompleteRead as exc:
                raise ServerFailedError(f"the server at {self.url} closed the connection mid-answer "
                                        f"({len(exc.partial)} bytes received)") from None
            except (http.client.HTTPException, OSError) as exc:
                raise NotUpliftServerError(self._not_uplift(f"it did not answer with valid HTTP ({exc})")) from None
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            conn.close()

    @staticmethod
    def _from_uplift(reply: Reply) -> bool:
        return reply.headers.get(P.SERVICE_HEADER.lower()) == P.SERVICE_NAME

    def _not_uplift(self, why: str) -> str:
        return (f"something answers at {self.url} but it is not an Uplift server ({why}); "
                f"check the port — `uplift serve` listens on {P.DEFAULT_PORT} unless given --port")

    def _check(self, reply: Reply) -> Reply:
        if not self._from_uplift(reply):
            raise NotUpliftServerError(self._not_uplift(f"HTTP {reply.status} without Uplift's headers"))
        if 200 <= reply.status < 300:
            return reply
        try:
            payload = json.loads(reply.body)
            code, detail = str(payload.get("error", "")), str(payload.get("detail", ""))
        except (ValueError, UnicodeDecodeError, AttributeError):
            code, detail = "", reply.body[:200].decode("utf-8", "replace")
        detail = detail or f"HTTP {reply.status}"
        if reply.status == 401 or code == P.ERR_UNAUTHORIZED:
            hint = "set the token the server was started with (`uplift serve --token`)" if not self.token \
                else "the token does not match the one the server was started with"
            raise AuthenticationError(f"the Uplift server at {self.url} refused the request: {hint}")
        if code == P.ERR_NOT_LOADED:
            raise BackendNotLoadedError(detail)
        if reply.status == 503:
            raise ServerBusyError(f"the Uplift server at {self.url} is busy ({detail}); "
                                  f"still busy after {self.retries} retries — try again shortly")
        if reply.status == 504 or code == P.ERR_TIMEOUT:
            raise RequestTimeoutError(detail)
        if reply.status >= 500:
            raise ServerFailedError(f"the Uplift server failed: {detail}")
        raise BadRequestError(detail)
